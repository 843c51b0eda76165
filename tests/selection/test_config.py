"""One shipped configuration: every entry point takes its defaults from it, and it checks itself."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from entropy_retriever.config import DEFAULT, SelectionConfig
from entropy_retriever.errors import InputError

# The configuration fields each entry point exposes, under the entry point's own name for them.
READER_FIELDS = ("segment_tokens", "overlap_tokens", "signals", "metric", "template", "fusion", "hops")
RERANK_FIELDS = ("signals", "metric", "template", "fusion", "hops")


def _default(callable_, name):
    return inspect.signature(callable_).parameters[name].default


def test_every_entry_point_takes_its_defaults_from_the_one_configuration():
    from entropy_retriever import CertaintyReranker, LongContextReader
    from entropy_retriever.cli import build_parser
    from entropy_retriever.reader import DEFAULT_SELECTION
    from entropy_retriever.scoring import CertaintyScorer
    from langchain_entropy_retriever import CertaintyCompressor
    from langchain_entropy_retriever import LongDocumentRetriever as LangChainRetriever
    from llama_index.postprocessor.entropy_retriever import CertaintyRerank

    for name in READER_FIELDS:
        assert _default(LongContextReader, name) == getattr(DEFAULT, name), name
    assert DEFAULT_SELECTION.token_budget == DEFAULT.token_budget
    for name in RERANK_FIELDS:
        assert _default(CertaintyReranker, name) == getattr(DEFAULT, name), name
    for name in ("signals", "metric", "fusion", "hops"):
        assert _default(CertaintyRerank.__init__, name) == getattr(DEFAULT, name), name
        for model in (CertaintyCompressor, LangChainRetriever):
            assert model.model_fields[name].default == getattr(DEFAULT, name), (model, name)
    assert LangChainRetriever.model_fields["segment_tokens"].default == DEFAULT.segment_tokens
    assert _default(CertaintyScorer, "metric") == DEFAULT.metric
    assert _default(CertaintyScorer, "template") == DEFAULT.template
    for command in ("ask", "select", "demo"):
        args = build_parser().parse_args([command] + (["f", "q"] if command != "demo" else []))
        assert tuple(args.signals) == DEFAULT.signals and args.metric == DEFAULT.metric
        assert (args.fusion, args.hops, args.template) == (DEFAULT.fusion, DEFAULT.hops, DEFAULT.template)
        assert (args.segment_tokens, args.overlap_tokens, args.budget) == (DEFAULT.segment_tokens, DEFAULT.overlap_tokens, None)


def test_the_benchmark_measures_the_reader_s_own_configuration(tiny, tokenizer):
    from entropy_retriever import LongContextReader

    reader = LongContextReader(tiny, tokenizer, signals=DEFAULT.signals, progress=False)
    assert reader.config == DEFAULT
    assert LongContextReader(tiny, tokenizer, hops=1, progress=False).config == DEFAULT.but(hops=1)


@pytest.mark.parametrize("bad, message", [
    ({"segment_tokens": 4}, "segment_tokens must be an integer >= 8"),
    ({"overlap_tokens": 512}, "overlap_tokens must be an integer in"),
    ({"token_budget": 100}, "cannot hold one segment"),
    ({"token_budget": 0}, "token_budget must be a positive integer"),
    ({"signals": ("certainty", "tfidf")}, "signals must be distinct names"),
    ({"metric": "perplexity"}, "unknown metric"),
    ({"template": "fancy"}, "unknown template"),
    ({"fusion": "max"}, "unknown fusion"),
    ({"hops": -1}, "hops must be a whole number"),
    ({"hops": 1.0}, "hops must be a whole number"),
])
def test_a_bad_configuration_says_what_is_wrong(bad, message):
    with pytest.raises(InputError, match=message):
        DEFAULT.but(**bad)


def test_the_configuration_is_frozen_and_named_in_labels():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.hops = 3  # type: ignore[misc]
    assert DEFAULT.label == f"{DEFAULT.fusion}(certainty:{DEFAULT.metric}, bm25, dense)"
    assert SelectionConfig(signals=("certainty",)).label == DEFAULT.metric
