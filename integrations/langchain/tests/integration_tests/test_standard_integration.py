"""langchain-tests' standard retriever integration suite, on the embedded model."""

from __future__ import annotations

from functools import lru_cache

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from entropy_retriever.demo import make_demo_document
from entropy_retriever.models import load_model
from langchain_entropy_retriever import LongDocumentRetriever

pytestmark = pytest.mark.slow  # the retriever runs the real embedded model


@lru_cache(maxsize=1)
def _document() -> str:
    return make_demo_document(load_model(device="cpu").tokenizer, n_tokens=2500, depth=0.5).text


class TestLongDocumentRetriever(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self):
        return LongDocumentRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"document": _document(), "segment_tokens": 256, "k": 3}

    @property
    def retriever_query_example(self) -> str:
        return "What is the observatory's archive door code?"
