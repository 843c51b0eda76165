"""LangChain integration of entropy-retriever."""

from langchain_entropy_retriever.chat_models import ChatEntropyRetriever
from langchain_entropy_retriever.compressors import CertaintyCompressor
from langchain_entropy_retriever.retrievers import LongDocumentRetriever
from langchain_entropy_retriever.tools import LongFileInput, LongFileTool

__all__ = ["CertaintyCompressor", "ChatEntropyRetriever", "LongDocumentRetriever", "LongFileInput", "LongFileTool"]
