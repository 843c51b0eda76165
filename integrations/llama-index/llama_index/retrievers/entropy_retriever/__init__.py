from llama_index.retrievers.entropy_retriever.base import LongDocumentRetriever

__all__ = ["LongDocumentRetriever"]
