"""Fixtures for the LangChain integration: the real embedded model, loaded once."""

from __future__ import annotations

import pytest

from entropy_retriever.models import load_model


@pytest.fixture(scope="session")
def embedded():
    return load_model(device="cpu")
