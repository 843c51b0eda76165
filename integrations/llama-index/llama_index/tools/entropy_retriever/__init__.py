from llama_index.tools.entropy_retriever.base import long_file_tool

__all__ = ["long_file_tool"]
