from llama_index.postprocessor.entropy_retriever.base import CertaintyRerank

__all__ = ["CertaintyRerank"]
