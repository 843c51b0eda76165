from llama_index.llms.entropy_retriever.base import LongContextLLM

__all__ = ["LongContextLLM"]
