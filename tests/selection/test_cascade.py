"""The opt-in cascade (prefilter=): the cheap signals rank every segment, the model reads a shortlist."""

from __future__ import annotations

import numpy as np
import pytest

from entropy_retriever import InputError, LongContextReader
from entropy_retriever.cli import main
from entropy_retriever.config import DEFAULT
from entropy_retriever.pipeline import PREFILTER_EACH, rank, shortlist

TEXT = "".join(f"Entry {i}. The harbour log notes calm water and {i} boats in the bay. " for i in range(400))
TEXT += "The lighthouse keeper is named Orla Brennan, and she has kept the light for thirty years. "
TEXT += "".join(f"Entry {i}. The tide tables note the water level at noon. " for i in range(400))
QUESTION = "Who is the lighthouse keeper?"


def test_the_shortlist_is_the_best_share_or_count_plus_each_cheap_signal_s_best():
    bm25 = np.arange(40, dtype=float)  # segment 0 best
    dense = np.arange(40, dtype=float)[::-1].copy()  # segment 39 best
    chosen = shortlist({"bm25": bm25, "dense": dense}, 2, "zscore")
    assert list(chosen) == sorted(chosen)
    assert set(range(PREFILTER_EACH)) <= set(chosen) and set(range(40 - PREFILTER_EACH, 40)) <= set(chosen)
    assert len(shortlist({"bm25": bm25}, 0.5, "zscore")) == 20  # a share of the segments
    assert len(shortlist({"bm25": bm25}, 10, "zscore")) == 10  # a count
    assert len(shortlist({"bm25": bm25}, 1000, "zscore")) == 40


def test_rank_under_a_cascade_puts_the_model_s_candidates_first_and_the_rest_in_the_cheap_order():
    n = 10
    bm25 = np.array([5, 4, 3, 2, 1, 0, 6, 7, 8, 9], dtype=float)  # 5 best, then 4, 3, ...
    certainty = np.full(n, np.nan)
    candidates = np.array([3, 4, 5])
    certainty[candidates] = [1.0, 2.0, 3.0]  # the model prefers 3
    config = DEFAULT.but(signals=("certainty", "bm25"))
    ranked = rank({"certainty": certainty, "bm25": bm25}, QUESTION, config, lambda idx: ["x"] * len(idx), candidates)
    assert set(ranked.order[:3]) == {3, 4, 5} and list(ranked.order[3:]) == [2, 1, 0, 6, 7, 8, 9]
    assert ranked.fused[[0, 1, 2, 6]].min() > ranked.fused[candidates].max()
    assert sorted(ranked.order) == list(range(n))


def reader(tiny, tokenizer, **kwargs):
    return LongContextReader(tiny, tokenizer, segment_tokens=64, top_k=2, signals=("certainty", "bm25"),
                             progress=False, **kwargs)


def test_the_model_reads_only_the_shortlist_and_bm25_s_best_is_among_it(tiny, tokenizer):
    key = reader(tiny, tokenizer, prefilter=0.1).select(TEXT, QUESTION)
    read = [s for s in key.segments if "certainty" in s.signals]
    assert 0 < len(read) <= int(np.ceil(0.1 * len(key.segments))) + PREFILTER_EACH < len(key.segments)
    assert all("bm25" in s.signals for s in key.segments)
    assert "Orla Brennan" in key.text  # the keyword's segment reached the model and was kept
    best_bm25 = min(key.segments, key=lambda s: s.signals["bm25"])
    assert "certainty" in best_bm25.signals and best_bm25.selected


def test_a_shortlist_of_every_segment_selects_what_the_plain_reader_selects(tiny, tokenizer):
    plain = reader(tiny, tokenizer).select(TEXT, QUESTION)
    every = reader(tiny, tokenizer, prefilter=10**6).select(TEXT, QUESTION)
    assert [(s.start, s.end) for s in every.spans] == [(s.start, s.end) for s in plain.spans]
    assert [s.score for s in every.segments] == pytest.approx([s.score for s in plain.segments])


@pytest.mark.parametrize("value", [0, 1.0, 1.5, -3, True, "0.1", float("nan")])
def test_bad_prefilter_values_are_refused_before_anything_loads(value):
    with pytest.raises(InputError, match="prefilter must be None .*, a share between 0 and 1"):
        LongContextReader.from_pretrained(prefilter=value)


def test_a_cascade_needs_a_cheap_signal_and_no_journal(tiny, tokenizer, tmp_path):
    with pytest.raises(InputError, match="has none: add 'bm25' or 'dense'"):
        LongContextReader(tiny, tokenizer, signals=("certainty",), prefilter=0.2)
    with pytest.raises(InputError, match="does not run with a checkpoint journal"):
        reader(tiny, tokenizer, prefilter=0.2).select(TEXT, QUESTION, checkpoint=tmp_path / "run.jsonl")
    assert not (tmp_path / "run.jsonl").exists()


def test_the_command_line_takes_a_share_or_a_count(tiny_folder, tmp_path, capsys):
    doc = tmp_path / "log.txt"
    doc.write_text(TEXT, encoding="utf-8")
    args = ["select", str(doc), QUESTION, "--model", str(tiny_folder), "--device", "cpu", "--segment-tokens", "64",
            "--signals", "certainty", "bm25", "--top-k", "2", "--json", "--no-progress"]
    assert main([*args, "--prefilter", "5"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert sum("certainty" in s["signals"] for s in out["segments"]) <= 5 + PREFILTER_EACH
    with pytest.raises(SystemExit):
        main([*args, "--prefilter", "some"])
    assert "give a share between 0 and 1" in capsys.readouterr().err
