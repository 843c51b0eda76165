"""Selection in bounded memory, resumable runs, and sharding over torch.distributed (tiny models)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entropy_retriever import InputError, LongContextReader, Selection
from entropy_retriever.pipeline import choose, rank
from entropy_retriever.segments import Document, Segment
from entropy_retriever.selection import GAP
from entropy_retriever.signals import bm25_scores
from entropy_retriever.streaming import DIGEST_BYTES, Journal, SegmentRecords, Shard, digest, read_spans

TEXT = "".join(
    f"Entry {i}. The lighthouse keeper wrote that the lamp was {('trimmed', 'cleaned', 'relit')[i % 3]} "
    f"at {i % 12 + 1} o'clock, and that {i % 4 + 2} gulls sat on the rail.\n\n"
    for i in range(90)
)
QUESTION = "When was the lamp relit, and how many gulls were there?"
SIGNALS = ("certainty", "bm25")  # the dense signal is covered by the integration tests


def reader(tiny, tokenizer, **kwargs):
    kwargs.setdefault("signals", SIGNALS)
    return LongContextReader(tiny, tokenizer, segment_tokens=48, progress=False, **kwargs)


def spans(key):
    return [(s.source, s.start, s.end, s.text) for s in key.spans]


@pytest.mark.parametrize("rule", [{"top_k": 3}, {"token_budget": 200}, {"top_k": 1}])
def test_streamed_selection_equals_selection_over_the_whole_list(tiny, tokenizer, rule):
    r = reader(tiny, tokenizer, **rule)
    key = r.select(TEXT, QUESTION)
    segments = list(r.segmenter.split(TEXT))
    certainty = r.scorer.score(segments, QUESTION)  # one call over all segments: other batches, same scores
    texts = [s.text for s in segments]
    values = {"certainty": certainty, "bm25": bm25_scores(texts, QUESTION)}
    ranked = rank(values, QUESTION, r.config, lambda idx: [texts[i] for i in idx])
    sizes = [s.n_tokens for s in segments] if r.selection.token_budget is not None else None
    kept = choose(r.selection, ranked, sizes, r.count(GAP))
    assert sorted(i for s in key.spans for i in s.segment_indices) == sorted(kept)
    assert [s.text for s in key.spans] == [t for t in _merged(segments, sorted(kept))]
    assert [s.score for s in key.segments] == pytest.approx(ranked.fused.tolist(), abs=1e-4)
    assert len(key.segments) == len(segments) and sum(s.selected for s in key.segments) >= 1
    per_signal = 8 * (len(r.signals) - ("bm25" in r.signals))
    assert key.meta["record_bytes"] / len(segments) <= 24 + per_signal + 12 / len(segments)  # one source: one run


def _merged(segments, kept):
    """The kept segments' texts, adjacent ones joined (segments of one text tile it without overlap)."""
    out, last = [], None
    for i in kept:
        if last is not None and i == last + 1:
            out[-1] += segments[i].text
        else:
            out.append(segments[i].text)
        last = i
    return out


def test_records_keep_sources_spans_and_budgets_compactly():
    records = SegmentRecords(["certainty"])
    texts = {"a": ["one two ", "three "], "b": ["four"], "c": ["five six", " seven"]}
    made = []
    for source, pieces in texts.items():
        start = 0
        for piece in pieces:
            made.append(Segment(len(made), source, start, start + len(piece), piece, len(piece.split())))
            start += len(piece)
    for segment in made:
        records.add(segment, segment.n_tokens)
    assert records.budget_tokens is records.n_tokens  # no second array while the sizes agree
    assert [records.source_of(i) for i in range(len(made))] == [s.source for s in made]
    assert [records.span_of(i) for i in range(len(made))] == [(s.start, s.end) for s in made]
    assert [records.digest_of(i) for i in range(len(made))] == [digest(s.text) for s in made]
    assert records.nbytes() == len(made) * (8 + 4 + 4 + DIGEST_BYTES + 8) + 3 * 12  # three runs of one source each
    # a budget counted another way appears only once it differs, the earlier sizes filled in
    records.add(Segment(len(made), "c", 14, 18, "more", 1), 3)
    assert list(records.budget_tokens) == [s.n_tokens for s in made] + [3] and list(records.n_tokens)[-1] == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 60), st.floats(-5, 5, allow_nan=False)), min_size=1, max_size=40),
    st.integers(10, 400),
    st.integers(0, 5),
)
def test_choosing_by_sizes_equals_choosing_by_texts(items, budget, gap):
    """The records keep token counts, not texts: the same rule must give the same choice."""
    sizes = [n for n, _ in items]
    scores = [x for _, x in items]
    texts = ["w" * n for n in sizes]
    count = len
    rule = Selection(token_budget=budget)
    try:
        by_text = rule.choose(texts, scores, lambda t: gap if t.startswith("\n") else count(t))
    except InputError:
        with pytest.raises(InputError):
            rule.choose_sizes(sizes, scores, gap)
        return
    assert rule.choose_sizes(sizes, scores, gap) == by_text
    for k in (1, 3):
        assert Selection(top_k=k).choose_sizes(None, scores, 0) == Selection(top_k=k).choose(texts, scores, count)


def test_files_documents_and_iterables_are_read_twice_safely(tiny, tokenizer, tmp_path):
    path = tmp_path / "log.txt"
    path.write_text(TEXT, encoding="utf-8")
    r = reader(tiny, tokenizer, top_k=3)
    from_text = r.select(TEXT, QUESTION)
    from_file = r.select(path, QUESTION)
    assert [s[1:] for s in spans(from_file)] == [s[1:] for s in spans(from_text)]
    generator = (d for d in [Document(TEXT[:3000], id="a"), Document(path, id="b")])
    multi = r.select(generator, QUESTION)  # a one-pass iterable is fine too
    assert {s.source for s in multi.spans} <= {"a", "b"} and len(multi.segments) > len(from_text.segments)
    for span in multi.spans:
        body = TEXT[:3000] if span.source == "a" else TEXT
        assert body[span.start:span.end] == span.text


def test_read_spans_across_chunks():
    text = "abcdefghij" * 5
    chunks = iter([text[i:i + 7] for i in range(0, len(text), 7)])
    wanted = {"s": [(3, 12), (10, 30), (45, 50)]}
    found = read_spans(iter([("s", chunks)]), wanted)
    assert found == {("s", a, b): text[a:b] for a, b in wanted["s"]}


def test_a_file_that_changes_between_the_passes_is_an_error(tiny, tokenizer, tmp_path, monkeypatch):
    path = tmp_path / "log.txt"
    path.write_text(TEXT, encoding="utf-8")
    r = reader(tiny, tokenizer, top_k=2)
    real = r._score_all

    def score_then_edit(*args, **kwargs):
        out = real(*args, **kwargs)
        path.write_text(TEXT.replace("lamp", "LAMP"), encoding="utf-8")  # another process writes to it
        return out

    monkeypatch.setattr(r, "_score_all", score_then_edit)
    with pytest.raises(InputError, match="changed while it was read"):
        r.select(path, QUESTION)


class Interrupt(KeyboardInterrupt):
    pass


def test_a_killed_run_resumes_with_the_same_scores_and_spans(tiny, tokenizer, tmp_path):
    journal = tmp_path / "run.jsonl"
    whole = reader(tiny, tokenizer, top_k=3).select(TEXT, QUESTION)

    r = reader(tiny, tokenizer, top_k=3)
    r.window_segments = 4
    calls = {"n": 0}
    real = r.scorer.score

    def dies_on_the_third_window(segments, question):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Interrupt  # as Ctrl-C or SIGTERM would, between two windows
        return real(segments, question)

    r.scorer.score = dies_on_the_third_window
    with pytest.raises(Interrupt):
        r.select(TEXT, QUESTION, checkpoint=journal)
    lines = journal.read_text().splitlines()
    assert len(lines) == 1 + 2  # the header and the two windows scored before the kill

    resumed = reader(tiny, tokenizer, top_k=3)
    resumed.window_segments = 4
    scored = []
    real2 = resumed.scorer.score
    resumed.scorer.score = lambda segments, q: scored.extend(s.index for s in segments) or real2(segments, q)
    key = resumed.select(TEXT, QUESTION, checkpoint=journal)
    assert min(scored) == 8  # the first two windows (8 segments) came from the journal
    assert spans(key) == spans(whole)
    windowed_scores = [s.signals["certainty"] for s in key.segments]
    fresh = reader(tiny, tokenizer, top_k=3)
    fresh.window_segments = 4
    assert windowed_scores == [s.signals["certainty"] for s in fresh.select(TEXT, QUESTION).segments]  # exactly


def test_journal_for_another_run_corrupted_or_cut_short(tiny, tokenizer, tmp_path):
    journal = tmp_path / "run.jsonl"
    r = reader(tiny, tokenizer, top_k=2)
    r.window_segments = 8
    first = r.select(TEXT, QUESTION, checkpoint=journal)
    with pytest.raises(InputError, match="written for another run.*question"):
        r.select(TEXT, "Another question?", checkpoint=journal)
    with pytest.raises(InputError, match="segment_tokens"):
        reader(tiny, tokenizer, top_k=2, signals=SIGNALS).__class__(
            tiny, tokenizer, segment_tokens=64, top_k=2, signals=SIGNALS, progress=False
        ).select(TEXT, QUESTION, checkpoint=journal)

    good = journal.read_bytes()
    journal.write_bytes(good + b'{"i": [0, 1], "d": ["ab')  # a line cut short by a kill
    again = r.select(TEXT, QUESTION, checkpoint=journal)
    assert spans(again) == spans(first) and journal.read_bytes() == good  # tolerated, and trimmed

    lines = good.split(b"\n")
    corrupted = b"\n".join(lines[:2] + [b"not json"] + lines[2:])
    journal.write_bytes(corrupted)
    with pytest.raises(InputError, match="line 3 is corrupted"):
        r.select(TEXT, QUESTION, checkpoint=journal)
    assert journal.read_bytes() == corrupted  # refused, never overwritten

    other = tmp_path / "notes.txt"
    other.write_text("just some notes\n")
    with pytest.raises(InputError, match="not a journal header|not an entropy-retriever journal"):
        Journal(other, {})

    header, *rows = good.split(b"\n")[:-1]
    assert len(rows) >= 2
    swapped = b"\n".join([header, rows[1], rows[0], *rows[2:]]) + b"\n"  # windows out of input order
    journal.write_bytes(swapped)
    with pytest.raises(InputError, match="line 3 is corrupted"):
        r.select(TEXT, QUESTION, checkpoint=journal)
    assert journal.read_bytes() == swapped
    journal.write_bytes(good)
    assert len(Journal(journal, r._valid_for(QUESTION, Shard.current(None)))) == len(first.segments)

    changed = tmp_path / "changed.jsonl"
    r.select(TEXT, QUESTION, checkpoint=changed)
    with pytest.raises(InputError, match="differs from the one it recorded"):
        r.select(TEXT.replace("Entry 3.", "Entry 3!"), QUESTION, checkpoint=changed)


def test_threshold_is_capped(tiny, tokenizer, monkeypatch):
    import entropy_retriever.reader as reader_module

    monkeypatch.setattr(reader_module, "MAX_THRESHOLD_SEGMENTS", 5)
    r = reader(tiny, tokenizer, signals=("certainty",), threshold=1e9)
    with pytest.raises(InputError, match="keeps .* segments, more than the 5"):
        r.select(TEXT, QUESTION)


@pytest.mark.slow  # three processes start torch: about 20 s
def test_two_gloo_ranks_under_torchrun_equal_one_process(tiny_folder, tmp_path):
    """torchrun --nproc-per-node 2 -m entropy_retriever select ... prints what one process prints."""
    doc = tmp_path / "log.txt"
    doc.write_text(TEXT, encoding="utf-8")
    args = ["select", str(doc), QUESTION, "--model", str(tiny_folder), "--device", "cpu", "--top-k", "3",
            "--segment-tokens", "48", "--fuse-signals", "certainty", "bm25", "--json", "--no-progress"]
    # --fuse-signals: torchrun would take --signals as an abbreviation of its own --signals-to-handle
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "entropy_retriever", *args], capture_output=True, text=True, env=env, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun comes with torch"
    journal = tmp_path / "ranks.jsonl"
    two = subprocess.run(
        [torchrun, "--nproc-per-node", "2", "--master-port", "29561", "-m", "entropy_retriever", *args,
         "--checkpoint", str(journal)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    one, both = json.loads(single.stdout), json.loads(two.stdout)  # rank 1 printed nothing
    assert [(s["start"], s["end"]) for s in both["spans"]] == [(s["start"], s["end"]) for s in one["spans"]]
    assert both["text"] == one["text"]
    assert [s["score"] for s in both["segments"]] == pytest.approx([s["score"] for s in one["segments"]], abs=1e-5)
    assert both["meta"]["ranks"] == 2 and one["meta"]["ranks"] == 1
    assert sorted(p.name for p in tmp_path.glob("ranks.rank*")) == ["ranks.rank0-of-2.jsonl", "ranks.rank1-of-2.jsonl"]


@pytest.mark.slow  # three processes start torch
def test_an_error_on_one_torchrun_rank_stops_every_rank_with_one_line(tiny_folder, tmp_path):
    """Rank 1's journal is a directory: both ranks exit 2, each with one line, and neither dies in gloo."""
    doc = tmp_path / "log.txt"
    doc.write_text(TEXT, encoding="utf-8")
    journal = tmp_path / "ranks.jsonl"
    (tmp_path / "ranks.rank1-of-2.jsonl").mkdir()  # only rank 1's own journal is bad
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    two = subprocess.run(
        [torchrun, "--nproc-per-node", "2", "--master-port", "29565", "-m", "entropy_retriever", "select", str(doc),
         QUESTION, "--model", str(tiny_folder), "--device", "cpu", "--top-k", "3", "--segment-tokens", "48",
         "--fuse-signals", "certainty", "bm25", "--no-progress", "--checkpoint", str(journal)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600,
    )
    assert two.returncode != 0
    lines = [line for line in two.stderr.splitlines() if line.startswith("entropy-retriever: error:")]
    assert len(lines) == 2, two.stderr[-3000:]  # one line from each rank
    assert any("is a directory" in line for line in lines)  # rank 1 says what was wrong
    assert any("rank 1 of 2 stopped" in line for line in lines)  # rank 0 says which rank failed
    assert "gloo" not in two.stderr.lower() and "Connection closed by peer" not in two.stderr
    assert two.stderr.count("exitcode  : 2") == 2, two.stderr[-3000:]  # torchrun's own report: both ranks exited 2


API_SCRIPT = """
import json, sys, torch
from entropy_retriever import LongContextReader
from entropy_retriever.streaming import join_process_group
shard = join_process_group()
reader = LongContextReader.from_pretrained(sys.argv[1], device="cpu", segment_tokens=48, top_k=3,
                                           signals=("certainty", "bm25"), progress=False)
key = reader.select(open(sys.argv[2], encoding="utf-8").read(), sys.argv[3])
line = json.dumps({"rank": shard.rank, "size": shard.size, "threads": torch.get_num_threads(),
                   "spans": [[s.start, s.end] for s in key.spans], "ranks": key.meta["ranks"]})
sys.stdout.write(line + "\\n")  # one write: the ranks share the pipe, and print() writes the newline apart
sys.stdout.flush()
"""


@pytest.mark.slow  # three processes start torch
def test_a_script_of_one_s_own_shards_under_torchrun_through_join_process_group(tiny_folder, tmp_path):
    """The API under torchrun: join_process_group() (what the CLI calls), then an ordinary reader."""
    doc = tmp_path / "log.txt"
    doc.write_text(TEXT, encoding="utf-8")
    script = tmp_path / "mine.py"
    script.write_text(API_SCRIPT, encoding="utf-8")
    args = [str(tiny_folder), str(doc), QUESTION]
    alone = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=600)
    assert alone.returncode == 0, alone.stderr[-3000:]
    one = json.loads(alone.stdout)
    assert (one["rank"], one["size"], one["ranks"]) == (0, 1, 1)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    two = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", "29563", str(script), *args],
                         capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    ranks = sorted((json.loads(line) for line in two.stdout.splitlines() if line.startswith("{")), key=lambda r: r["rank"])
    assert [(r["rank"], r["size"], r["ranks"]) for r in ranks] == [(0, 2, 2), (1, 2, 2)]
    assert all(r["spans"] == one["spans"] for r in ranks)  # every rank selects what one process selects
    assert all(r["threads"] == max(1, (os.cpu_count() or 1) // 2) for r in ranks)  # an equal share of the cores


def test_the_journal_s_model_identity_covers_every_weight(tiny):
    import copy

    import torch

    from entropy_retriever.streaming import model_identity

    same, changed = copy.deepcopy(tiny), copy.deepcopy(tiny)
    with torch.no_grad():  # one value deep inside the last layer's MLP: what a merged LoRA changes
        next(p for n, p in changed.named_parameters() if "mlp" in n and n.startswith("model.layers.1"))[0, 0] += 1e-3
    assert model_identity(same) == model_identity(tiny)
    assert model_identity(changed)["fingerprint"] != model_identity(tiny)["fingerprint"]


def test_a_second_run_on_the_same_journal_is_refused_while_the_first_writes(tiny, tokenizer, tmp_path):
    from entropy_retriever.streaming import Journal

    path = tmp_path / "run.jsonl"
    first = Journal(path, {"run": 1})
    try:
        with pytest.raises(InputError, match="another run is writing it now"):
            reader(tiny, tokenizer, top_k=2).select(TEXT, QUESTION, checkpoint=path)
    finally:
        first.close()
    key = reader(tiny, tokenizer, top_k=2).select(TEXT, QUESTION, checkpoint=path)  # free again
    assert key.spans and path.stat().st_size > 0


def test_a_mapping_is_read_as_documents_by_id(tiny, tokenizer):
    key = reader(tiny, tokenizer, top_k=1).select({"log-a": TEXT, "log-b": "The lamp was never relit. " * 20}, QUESTION)
    assert {s.source for s in key.segments} == {"log-a", "log-b"}
