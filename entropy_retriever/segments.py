"""Split long input into segments of about ``segment_tokens`` tokens, never losing a character.

Input is a string, a file path (read as a stream, a chunk at a time, so a file of several
GB is never held whole), or an iterable of documents. Cuts fall at paragraph ends, then
line ends, then sentence ends, and only where none exists inside a segment's budget, at
a token boundary. Every segment keeps the character span ``[start, end)`` of its source,
and the spans of one source cover it in order with nothing missing.
"""

from __future__ import annotations

import codecs
import os
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Union

from .errors import InputError, check_text
from .files import looks_binary

__all__ = ["Document", "Segment", "Segmenter", "Context"]

# Where a unit (the smallest piece we never cut inside unless forced) ends: after a blank
# line, after a line break, or after sentence-final punctuation and its closing quotes.
_BOUNDARY = re.compile(r"\n[ \t]*\n\s*|\n|[.!?。！？](?:[\"'”’)\]]*)[ \t]+")
_READ_BYTES = 1 << 20  # bytes read from a file at a time
# Text with no boundary at all (one enormous line) is cut at whitespace (else anywhere) into
# units of at most this many characters, so that tokenising it stays cheap and bounded.
_MAX_UNIT_CHARS = 1 << 17
_TOKENISE_UNITS = 1024  # units tokenised in one call


@dataclass(frozen=True)
class Document:
    """One document of a multi-document context. ``text`` is a string or a file path."""

    text: Union[str, os.PathLike]
    id: str = ""
    metadata: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Segment:
    """A piece of one source: its text and the character span ``[start, end)`` it came from."""

    index: int  # position in the whole input, across sources
    source: str  # the document id ("" for a single text)
    start: int
    end: int
    text: str
    n_tokens: int  # in the segmenter's tokenizer
    line: int = 0  # the 1-based line of its source it starts on (0: not known)

    def __post_init__(self) -> None:
        if self.end - self.start != len(self.text):
            raise ValueError("a segment's span must match its text length")


Context = Union[str, os.PathLike, Document, Iterable[Union[str, os.PathLike, Document]]]


class Segmenter:
    """Cut text into segments of about ``segment_tokens`` tokens, overlapping by ``overlap_tokens``."""

    def __init__(
        self,
        tokenizer,
        segment_tokens: int = 512,
        overlap_tokens: int = 0,
        *,
        encoding_errors: str = "strict",
    ) -> None:
        check_segment_options(segment_tokens, overlap_tokens, encoding_errors)
        self.tokenizer = tokenizer
        self.segment_tokens = segment_tokens
        self.overlap_tokens = overlap_tokens
        self.encoding_errors = encoding_errors

    # ------------------------------------------------------------------ public
    def split(self, context: Context) -> Iterator[Segment]:
        """Yield the segments of ``context`` lazily, source after source, in order."""
        index = 0
        seen_any_text = False
        for source_id, chunks in self._sources(context):
            for start, end, text in self._pack(self._units(chunks)):
                if text.strip():
                    seen_any_text = True
                # Packing adds up per-unit counts, which overestimate (a sentence tokenised
                # alone loses its merges with its neighbours); record the true count.
                yield Segment(index, source_id, start, end, text, self.count_tokens(text))
                index += 1
        if not seen_any_text:
            raise InputError(
                "the context is empty or only whitespace: pass the text (or file) to read"
            )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # ------------------------------------------------------------ the sources
    def sources(self, context: Context) -> Iterator[tuple[str, Iterator[str]]]:
        """``(source id, chunks of its text)`` for each source of ``context``, as ``split`` reads them."""
        return self._sources(context)

    def _sources(self, context: Context) -> Iterator[tuple[str, Iterator[str]]]:
        if isinstance(context, (str, os.PathLike, Document)):
            items: Iterable = [context]
            single = True
        else:
            try:
                items = iter(context)
            except TypeError:
                raise InputError(
                    f"cannot read a context of type {type(context).__name__}: pass a string, "
                    "a pathlib.Path, a Document, or an iterable of those"
                ) from None
            single = False
        seen: dict[str, int] = {}  # source id -> document number: ids must tell the documents apart
        for number, item in enumerate(items):
            if isinstance(item, Document):
                source_id = item.id or str(number)
                body = item.text
            elif isinstance(item, os.PathLike):
                source_id, body = os.fspath(item), item  # a file is named by its path
            else:
                source_id = "" if single else str(number)
                body = item
            if source_id in seen:
                raise InputError(
                    f"documents {seen[source_id]} and {number} have the same id {source_id!r}, so their spans "
                    "could not be told apart: give each document a unique id (or the same file only once)"
                )
            seen[source_id] = number
            if isinstance(body, str):
                check_text(body, "the context" if single else f"document {number}")
                yield source_id, iter([body])
            elif isinstance(body, os.PathLike):
                named = isinstance(item, Document) and item.id  # e.g. "<stdin>", not its spool file's path
                yield source_id, self._read_file(Path(body), item.id if named else str(body))
            else:
                raise InputError(
                    f"document {number} is a {type(body).__name__}: each document must be a "
                    "string, a pathlib.Path or a Document"
                )

    def _read_file(self, path: Path, name: str) -> Iterator[str]:
        """The file's text, a chunk at a time; an error (naming it ``name``) if it is binary, not UTF-8,
        or changes meanwhile."""
        check_readable_file(path)
        decoder = codecs.getincrementaldecoder("utf-8")(errors=self.encoding_errors)
        consumed = lines = 0
        with open(path, "rb") as handle:
            before = os.fstat(handle.fileno())
            while True:
                data = handle.read(_READ_BYTES)
                if looks_binary(data):  # anywhere in the file, not only its head
                    raise InputError(
                        f"{name} looks like a binary file (it holds NUL bytes), not text: extract its text "
                        "first (for example with pdftotext, or by saving it as plain text) and read that"
                    )
                pending = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(data, final=not data)
                except UnicodeDecodeError as exc:
                    offset = consumed - pending + exc.start
                    line = lines + exc.object[:exc.start].count(b"\n") + 1
                    raise InputError(
                        f"{name} is not valid UTF-8: byte {exc.object[exc.start:exc.start + 1]!r} at byte offset "
                        f"{offset:,} (line {line:,}). Convert it to UTF-8 (for example iconv -f latin1 -t utf-8), "
                        "or read it with encoding_errors='replace' (CLI: --encoding-errors replace) to "
                        "substitute U+FFFD for the bad bytes."
                    ) from None
                consumed += len(data)
                lines += data.count(b"\n")
                if text:
                    yield text
                if not data:
                    break
            after = os.fstat(handle.fileno())
        if consumed != before.st_size or after.st_size != before.st_size or after.st_mtime_ns != before.st_mtime_ns:
            raise InputError(
                f"{name} changed while it was read ({before.st_size:,} bytes when opened, {consumed:,} read, "
                f"{after.st_size:,} at the end): read a file that is not being written to, or a copy of it"
            )

    # ----------------------------------------------------------------- units
    def _units(self, chunks: Iterator[str]) -> Iterator[tuple[int, str, int]]:
        """Yield ``(start, text, n_tokens)`` of consecutive units that tile the source."""
        carry = ""
        carry_start = 0
        for chunk in chunks:
            buffer = carry + chunk
            # The tail after the last boundary may continue in the next chunk: keep it.
            # A boundary at the very end may also grow (more blank lines), so hold it too.
            cuts = _bounded([m.end() for m in _BOUNDARY.finditer(buffer)], buffer)
            if not cuts:
                carry = buffer
                continue
            start = carry_start
            for first in range(0, len(cuts), _TOKENISE_UNITS):  # a batch of units at a time bounds the transient lists
                bounds = cuts[first:first + _TOKENISE_UNITS]
                begin = cuts[first - 1] if first else 0
                pieces = [buffer[a:b] for a, b in zip([begin] + bounds[:-1], bounds)]
                yield from self._tokenised(start, pieces)
                start = carry_start + bounds[-1]
            carry_start += cuts[-1]
            carry = buffer[cuts[-1]:]
        if carry:
            cuts = _bounded([], carry)
            pieces = [carry[a:b] for a, b in zip([0] + cuts, cuts + [len(carry)])]
            yield from self._tokenised(carry_start, pieces)

    def _tokenised(self, start: int, pieces: list[str]) -> Iterator[tuple[int, str, int]]:
        counts = [len(ids) for ids in self.tokenizer(pieces, add_special_tokens=False)["input_ids"]]
        for piece, n_tokens in zip(pieces, counts):
            if n_tokens > self.segment_tokens:
                yield from self._split_long(start, piece)
            else:
                yield start, piece, n_tokens
            start += len(piece)

    def _split_long(self, start: int, piece: str) -> Iterator[tuple[int, str, int]]:
        """A unit longer than a segment: cut at whitespace near token boundaries."""
        encoded = self.tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        begin_char = 0
        token = 0
        while token < len(offsets):
            stop = min(token + self.segment_tokens, len(offsets))
            end_char = len(piece) if stop >= len(offsets) else offsets[stop][0]
            if end_char <= begin_char:  # a degenerate mapping; take at least one character
                end_char = begin_char + 1
            yield start + begin_char, piece[begin_char:end_char], stop - token
            begin_char = end_char
            token = stop

    # --------------------------------------------------------------- packing
    def _pack(self, units: Iterator[tuple[int, str, int]]) -> Iterator[tuple[int, int, str]]:
        """Greedily join units into segments; carry trailing units forward as overlap."""
        current: deque[tuple[int, str, int]] = deque()
        total = 0
        fresh = False  # whether ``current`` holds any unit not yet emitted
        for unit in units:
            n_tokens = unit[2]
            # Whitespace alone never opens a segment: it stays with the text before it.
            if current and fresh and total + n_tokens > self.segment_tokens and unit[1].strip():
                yield self._join(current)
                current, total = self._overlap_tail(current)
                fresh = False
                # An overlap that leaves no room for the next unit is dropped.
                while current and total + n_tokens > self.segment_tokens:
                    total -= current.popleft()[2]
            current.append(unit)
            total += n_tokens
            fresh = True
        if current and fresh:
            yield self._join(current)

    def _overlap_tail(self, units: deque) -> tuple[deque, int]:
        tail: deque[tuple[int, str, int]] = deque()
        total = 0
        for unit in reversed(units):
            if total + unit[2] > self.overlap_tokens:
                break
            tail.appendleft(unit)
            total += unit[2]
        return tail, total

    @staticmethod
    def _join(units: deque) -> tuple[int, int, str]:
        text = "".join(u[1] for u in units)
        start = units[0][0]
        return start, start + len(text), text


def _bounded(cuts: list[int], buffer: str) -> list[int]:
    """``cuts`` (boundaries in ``buffer``) short of its very end, with more added wherever two are
    further apart than ``_MAX_UNIT_CHARS``: at the last whitespace before the limit, else at it.
    What follows the last cut is shorter than the limit."""
    out: list[int] = []
    previous = 0
    for cut in [c for c in cuts if c < len(buffer)] + [len(buffer)]:
        while cut - previous > _MAX_UNIT_CHARS:
            limit = previous + _MAX_UNIT_CHARS
            space = max(buffer.rfind(" ", limit - 4096, limit), buffer.rfind("\t", limit - 4096, limit))
            forced = space + 1 if space > previous else limit
            out.append(forced)
            previous = forced
        if cut < len(buffer):
            out.append(cut)
            previous = cut
    return out


def check_segment_options(segment_tokens, overlap_tokens, encoding_errors) -> None:
    """The segmenter's options, checked (before any model or tokenizer is loaded)."""
    if isinstance(segment_tokens, bool) or not isinstance(segment_tokens, int) or segment_tokens < 8:
        raise InputError(f"segment_tokens must be an integer >= 8, got {segment_tokens!r}")
    if isinstance(overlap_tokens, bool) or not isinstance(overlap_tokens, int) or not 0 <= overlap_tokens < segment_tokens:
        raise InputError(
            f"overlap_tokens must be an integer in [0, segment_tokens={segment_tokens}), "
            f"got {overlap_tokens!r}"
        )
    if encoding_errors not in ("strict", "replace"):
        raise InputError("encoding_errors must be 'strict' (raise on bad UTF-8) or 'replace' (U+FFFD)")


def check_readable_file(path: Path) -> None:
    """Raise an InputError that says what to do if ``path`` is not a regular, readable file."""
    if not path.exists():
        raise InputError(f"{path}: no such file. Check the path (relative paths start at {os.getcwd()}).")
    if path.is_dir():
        raise InputError(f"{path} is a directory: pass one file (or iterate its files yourself).")
    if not path.is_file():
        raise InputError(f"{path} is not a regular file (a device, socket or FIFO): pass a text file.")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path} is not readable: check its permissions.")
