from __future__ import annotations

import resource

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entropy_retriever import InputError
from entropy_retriever import segments as segments_module
from entropy_retriever.segments import Document, Segmenter

WORDS = st.sampled_from(["alpha", "beta", "gamma.", "delta!", "\n", "\n\n", "  ", "Ωmega", "x" * 40, "é", "42;"])
TEXTS = st.lists(WORDS, min_size=1, max_size=300).map(" ".join).filter(lambda t: t.strip())


def assert_tiles(segments, text, overlapping=False):
    """Spans cover text in order, nothing missing, and each span's text is the source slice."""
    covered = 0
    for previous, seg in zip([None] + segments[:-1], segments):
        assert text[seg.start:seg.end] == seg.text
        assert seg.start <= covered, "a gap between segments"
        if not overlapping:
            assert seg.start == covered
        if previous is not None:
            assert seg.start >= previous.start and seg.end > previous.end
        covered = max(covered, seg.end)
    assert covered == len(text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS, size=st.integers(8, 64))
def test_spans_tile_the_text_and_respect_the_size(tokenizer, text, size):
    segmenter = Segmenter(tokenizer, size)
    segments = list(segmenter.split(text))
    assert_tiles(segments, text)
    assert [s.index for s in segments] == list(range(len(segments)))
    for seg in segments[:-1]:
        # A packed segment may exceed the budget only by merge effects at unit joins,
        # or by trailing whitespace that is never split off on its own.
        assert segmenter.count_tokens(seg.text.rstrip()) <= size + 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS, size=st.integers(16, 64), overlap=st.integers(1, 12))
def test_overlapping_spans_still_cover_everything_in_order(tokenizer, text, size, overlap):
    segments = list(Segmenter(tokenizer, size, overlap).split(text))
    assert_tiles(segments, text, overlapping=True)


def test_cuts_prefer_paragraph_and_sentence_ends(tokenizer):
    paragraph = "The first sentence is here. The second one follows it. " * 3
    text = "\n\n".join([paragraph.strip()] * 6)
    segments = list(Segmenter(tokenizer, 64).split(text))
    assert len(segments) > 2
    for seg in segments[:-1]:
        assert seg.text.rstrip(" ").endswith((".", "\n")), repr(seg.text[-30:])


def test_one_endless_line_is_cut_at_token_boundaries(tokenizer):
    text = "abc" * 2000
    segmenter = Segmenter(tokenizer, 50)
    segments = list(segmenter.split(text))
    assert_tiles(segments, text)
    assert max(s.n_tokens for s in segments) <= 52


def test_file_is_read_in_chunks_with_the_same_result_as_a_string(tokenizer, tmp_path, monkeypatch):
    text = "".join(f"Line {i} says something. Then more.\n" + ("\n" if i % 7 == 0 else "") for i in range(400))
    path = tmp_path / "doc.txt"
    path.write_text(text, encoding="utf-8")
    expected = [(s.start, s.end, s.text) for s in Segmenter(tokenizer, 40).split(text)]
    monkeypatch.setattr(segments_module, "_READ_BYTES", 97)  # many chunk borders
    reads = []
    original = Segmenter._read_file

    def counting(self, p, name):
        for chunk in original(self, p, name):
            reads.append(len(chunk))
            yield chunk

    monkeypatch.setattr(Segmenter, "_read_file", counting)
    got = [(s.start, s.end, s.text) for s in Segmenter(tokenizer, 40).split(path)]
    assert got == expected
    assert max(reads) <= 97 and len(reads) > 100


def test_documents_keep_their_ids_and_own_offsets(tokenizer, tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("Second document. " * 50, encoding="utf-8")
    docs = [Document("First document. " * 50, id="a"), path, "Third. " * 10]
    segments = list(Segmenter(tokenizer, 32).split(docs))
    sources = [s.source for s in segments]
    assert sources[0] == "a" and str(path) in sources and sources[-1] == "2"
    assert [s.index for s in segments] == list(range(len(segments)))
    firsts = {}
    for s in segments:
        firsts.setdefault(s.source, s.start)
    assert set(firsts.values()) == {0}


@pytest.mark.parametrize("context", ["", "   \n\t  ", []])
def test_empty_context_is_refused(tokenizer, context):
    with pytest.raises(InputError, match="empty"):
        list(Segmenter(tokenizer).split(context))


def test_missing_path_directory_and_fifo_are_refused(tokenizer, tmp_path):
    import os

    with pytest.raises(InputError, match="no such file"):
        list(Segmenter(tokenizer).split(tmp_path / "nope.txt"))
    with pytest.raises(InputError, match="directory"):
        list(Segmenter(tokenizer).split(tmp_path))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        list(Segmenter(tokenizer).split(fifo))


def test_invalid_utf8_is_an_error_or_replaced_on_request(tokenizer, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Caf\xe9 au lait. ".encode("latin-1") * 20)
    with pytest.raises(InputError, match="not valid UTF-8.*encoding_errors='replace'"):
        list(Segmenter(tokenizer).split(path))
    segments = list(Segmenter(tokenizer, encoding_errors="replace").split(path))
    assert "\ufffd" in segments[0].text


def test_bad_options_are_refused(tokenizer):
    with pytest.raises(InputError, match="segment_tokens"):
        Segmenter(tokenizer, 2)
    with pytest.raises(InputError, match="overlap_tokens"):
        Segmenter(tokenizer, 32, 32)
    with pytest.raises(InputError, match="iterable"):
        list(Segmenter(tokenizer).split(42))
    with pytest.raises(InputError, match="document 0"):
        list(Segmenter(tokenizer).split([Document(b"bytes")]))
    with pytest.raises(InputError, match="encoding_errors"):
        Segmenter(tokenizer, encoding_errors="ignore-everything")


def test_unbroken_text_is_cut_into_bounded_units_with_exact_spans(tokenizer, tmp_path, monkeypatch):
    import entropy_retriever.segments as segments

    monkeypatch.setattr(segments, "_MAX_UNIT_CHARS", 5000)
    monkeypatch.setattr(segments, "_READ_BYTES", 3000)
    words = ["alpha", "beta", "gamma", "delta,", "42", "epsilon"]
    line = " ".join(words[(i * 7) % 6] for i in range(12000))  # 70 kB and no sentence or line end
    path = tmp_path / "line.txt"
    path.write_text(line, encoding="utf-8")
    seen = []
    real = Segmenter._split_long

    def spy(self, start, piece):
        seen.append(len(piece))
        return real(self, start, piece)

    monkeypatch.setattr(Segmenter, "_split_long", spy)
    for source in (line, path):
        seen.clear()
        segs = list(Segmenter(tokenizer, 64).split(source))
        assert "".join(s.text for s in segs) == line
        assert all(a.end == b.start for a, b in zip(segs, segs[1:])) and segs[-1].end == len(line)
        assert max(seen) <= 5000  # nothing longer than the bound was ever tokenised in one piece
        assert max(s.n_tokens for s in segs) <= 64


@pytest.mark.slow
def test_a_four_megabyte_line_stays_in_bounded_memory(tokenizer, tmp_path):
    """The issue's case: a 4 MB line with no sentence end (it took +540 MB before the bound)."""
    words = ["alpha", "beta", "gamma", "delta,", "42", "epsilon"]
    path = tmp_path / "line.txt"
    path.write_text(" ".join(words[(i * 7) % 6] for i in range(700_000)), encoding="utf-8")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = sum(1 for _ in Segmenter(tokenizer, 512).split(path))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert n > 1000
    assert grown_mb < 150, grown_mb
