"""The package's public names, pinned (the LangChain partner-package convention)."""

from langchain_entropy_retriever import __all__

EXPECTED_ALL = [
    "CertaintyCompressor",
    "ChatEntropyRetriever",
    "LongDocumentRetriever",
    "LongFileInput",
    "LongFileTool",
]


def test_all_imports() -> None:
    assert sorted(EXPECTED_ALL) == sorted(__all__)
