"""Selection over inputs of any length: compact per-segment records, a resumable journal, shards.

While the reader streams an input, every segment leaves behind only a record of a few tens of
bytes: its span, its token count, an 8-byte digest of its text and each per-segment signal's
score (BM25 keeps its term counts, ``fusion.BM25``). No text is kept. Why no pool of candidate
texts: with several signals the ranking is a reciprocal-rank fusion, and BM25's idf and average
length move with every new segment, so no segment can be ruled out before the input ends.
Once every segment is scored, the kept spans are read again from the source (a string is
sliced, a file re-read as a stream; standard input is spooled to a temporary file first) and
each one's digest is checked, so a file that changed between the two passes is an error.

The journal (``checkpoint=``) is a JSON-lines file: a header that says what it is valid for,
then one line per scored window of segments, flushed as it is written. A run started again
with the same journal resumes after the last complete line and gives the same scores, since
windows are scored whole and their composition does not depend on where a run stopped.

With torch.distributed initialised (``torchrun``), every rank segments the whole input (it is
deterministic) and scores the segments ``index % world_size == rank``; the scores are gathered
with ``all_gather_object`` over the process group (gloo, NCCL or HCCL), so that every rank
holds every score and selects the same key context.
"""

from __future__ import annotations

import atexit
import bisect
import ctypes
import datetime
import errno
import hashlib
import json
import math
import os
import shutil
import stat
import sys
import tempfile
import weakref
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist

from .errors import InputError
from .models import _npu_available
from .quantize import is_int8, quantized_weights
from .segments import Segment
from .selection import Floats, SegmentScore

__all__ = ["Journal", "SegmentRecords", "SegmentTable", "Shard", "digest", "join_process_group", "read_spans", "spool_stdin"]

DIGEST_BYTES = 8
JOURNAL_VERSION = 1


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``; a no-op elsewhere).

    Scoring allocates and frees vocabulary-sized buffers batch after batch; without this, glibc
    keeps the freed pages and a long run's RSS creeps up with the input (measured: +170 MB over
    2M tokens without it, +20 MB with it).
    """
    global _TRIM
    if _TRIM is None:
        try:
            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim if sys.platform.startswith("linux") else False
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM: Any = None  # libc's malloc_trim, False where there is none, None until looked up


def digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES).digest()


class SegmentRecords:
    """Every segment's span, token count, digest and per-segment signal scores, in compact arrays.

    About 24 bytes a segment plus 8 per per-segment signal: its start (8 bytes), its length in
    characters (4), its tokens (4) and the digest of its text (8). Sources are kept as runs (a
    source's segments are consecutive), and budget sizes only where they differ from the token
    count (a token budget counted with another tokenizer's rule).
    """

    def __init__(self, signals: Sequence[str]) -> None:
        self.sources: list[str] = []
        self._run_first = array("q")  # the first segment of each run of one source
        self._run_source = array("i")  # which source each run is
        self._source_number: dict[str, int] = {}
        self.start = array("q")
        self.length = array("I")
        self.n_tokens = array("I")
        self._budget: array | None = None  # only once some budget size differs from the token count
        self.digests = bytearray()
        self.scores = {name: array("d") for name in signals}

    def __len__(self) -> int:
        return len(self.start)

    def add(self, segment: Segment, budget_tokens: int) -> None:
        number = self._source_number.get(segment.source)
        if number is None:
            number = self._source_number[segment.source] = len(self.sources)
            self.sources.append(segment.source)
        if not self._run_source or self._run_source[-1] != number:
            self._run_first.append(len(self.start))
            self._run_source.append(number)
        if budget_tokens != segment.n_tokens and self._budget is None:
            self._budget = array("I", self.n_tokens)
        self.start.append(segment.start)
        self.length.append(segment.end - segment.start)
        self.n_tokens.append(segment.n_tokens)
        if self._budget is not None:
            self._budget.append(budget_tokens)
        self.digests += digest(segment.text)
        for values in self.scores.values():
            values.append(math.nan)  # filled in when scored (here, from the journal, or from another rank)

    @property
    def budget_tokens(self) -> array:
        """Each segment's size against a token budget (its token count unless counted otherwise)."""
        return self.n_tokens if self._budget is None else self._budget

    def digest_of(self, index: int) -> bytes:
        return bytes(self.digests[index * DIGEST_BYTES:(index + 1) * DIGEST_BYTES])

    def source_of(self, index: int) -> str:
        return self.sources[self._run_source[bisect.bisect_right(self._run_first, index) - 1]]

    def span_of(self, index: int) -> tuple[int, int]:
        """``(start, end)``: the segment's characters in its source."""
        start = self.start[index]
        return start, start + self.length[index]

    def nbytes(self) -> int:
        arrays: list[array] = [self._run_first, self._run_source, self.start, self.length, self.n_tokens, *self.scores.values()]
        if self._budget is not None:
            arrays.append(self._budget)
        return sum(a.itemsize * len(a) for a in arrays) + len(self.digests)


class SegmentTable(Sequence):
    """Every segment's score, selected or not, as :class:`SegmentScore` rows built on access."""

    def __init__(self, records: SegmentRecords, fused: Floats, kept: set[int], signals: dict) -> None:
        packed = array("d")
        packed.frombytes(memoryview(fused).cast("B") if isinstance(fused, array) else _float64_bytes(fused))
        self._records, self._fused, self._kept, self._signals = records, packed, kept, signals

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        r = self._records
        return SegmentScore(index, r.source_of(index), *r.span_of(index), float(self._fused[index]),
                            index in self._kept, {name: float(values[index]) for name, values in self._signals.items()
                                                  if not math.isnan(values[index])})  # absent: not scored by it

    def __eq__(self, other) -> bool:
        return list(self) == list(other)


def _float64_bytes(values) -> bytes:
    return np.asarray(values, dtype=np.float64).tobytes()


def read_spans(
    sources: Iterator[tuple[str, Iterator[str]]], wanted: dict[str, list[tuple[int, int]]], *, lines: dict | None = None
) -> dict:
    """``{(source, start, end): text}`` for the wanted character spans, read from a stream of chunks per source.

    With ``lines`` (a dict), ``lines[(source, start, end)]`` is set to the 1-based line the span starts on.
    """
    found: dict = {}
    for source, chunks in sources:
        spans = sorted(wanted.get(source, ()))
        if not spans:
            continue
        parts: dict = {span: [] for span in spans}
        offset = 0
        newlines = 0  # line breaks before ``offset``
        first = 0  # spans before this one have ended
        for chunk in chunks:
            end_of_chunk = offset + len(chunk)
            while first < len(spans) and spans[first][1] <= offset:
                first += 1
            for span in spans[first:]:
                a, b = span
                if a >= end_of_chunk:
                    break
                if lines is not None and offset <= a:
                    lines[(source, a, b)] = newlines + chunk.count("\n", 0, a - offset) + 1
                if b > offset:
                    parts[span].append(chunk[max(a - offset, 0):min(b - offset, len(chunk))])
            offset = end_of_chunk
            newlines += chunk.count("\n")
            if first >= len(spans):
                break
        for (a, b), pieces in parts.items():
            found[(source, a, b)] = "".join(pieces)
    return found


def _remove_if_there(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)


def spool_stdin(stream=None) -> Path:
    """Copy standard input to a temporary file, a chunk at a time, and return its path (bounded memory).

    The file is removed when the process exits.
    """

    closed = InputError("standard input is closed, so there is nothing to read: pipe the text in "
                        "(cat FILE | entropy-retriever select - QUESTION), or pass the file's path instead of -")
    if stream is None:
        if sys.stdin is None or sys.stdin.closed:  # started with <&- (Python then sets sys.stdin to None)
            raise closed
        stream = sys.stdin.buffer
    handle = tempfile.NamedTemporaryFile(prefix="entropy-retriever-stdin-", suffix=".txt", delete=False)
    with handle:
        try:
            shutil.copyfileobj(stream, handle, 1 << 20)
        except OSError as exc:
            os.unlink(handle.name)
            if exc.errno == errno.EBADF:
                raise closed from None
            raise InputError(f"standard input could not be read ({exc.strerror}): save the text to a file and "
                             "pass its path instead of -") from None
        except ValueError:  # "I/O operation on closed file"
            os.unlink(handle.name)
            raise closed from None
    atexit.register(_remove_if_there, handle.name)
    return Path(handle.name)


# ------------------------------------------------------------------------------ sharding
@dataclass(frozen=True)
class Shard:
    """Which segments this process scores: those with ``index % size == rank``."""

    rank: int = 0
    size: int = 1

    @classmethod
    def current(cls, distributed: bool | None) -> "Shard":
        """The process group's shard when ``distributed`` is True, or None and a group is initialised."""
        if distributed is False:
            return cls()

        ready = dist.is_available() and dist.is_initialized()
        if distributed and not ready:
            raise InputError(
                "distributed=True needs an initialised torch.distributed process group: launch with "
                "torchrun and call torch.distributed.init_process_group() first (the CLI does this itself)"
            )
        if not ready:
            return cls()
        return cls(dist.get_rank(), dist.get_world_size())

    def owns(self, index: int) -> bool:
        return index % self.size == self.rank

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def gather(self, records: SegmentRecords, names: Sequence[str]) -> None:
        """Fill in the scores other ranks computed (every rank ends with all of them)."""
        if self.size == 1 or not names:
            return

        mine = {name: array("d", records.scores[name][self.rank::self.size]) for name in names}
        gathered: list = [None] * self.size
        dist.all_gather_object(gathered, (self.rank, len(records), mine))
        for rank, total, scores in gathered:
            if total != len(records):
                raise InputError(
                    f"rank {rank} read {total} segments but rank {self.rank} read {len(records)}: "
                    "every rank must be given the same input"
                )
            for name in names:
                records.scores[name][rank::self.size] = scores[name]

    def agree(self, error: Exception | None) -> None:
        """Every rank learns whether any rank failed before the next collective, so that all stop
        with one line instead of the others dying inside the collective. Re-raises this rank's
        own error; on the others, raises an InputError that names the failed rank and its message."""
        if self.size == 1:
            if error is not None:
                raise error
            return

        said = None if error is None else (type(error).__name__, str(error).splitlines()[0] if str(error) else "")
        outcomes: list = [None] * self.size
        dist.all_gather_object(outcomes, (self.rank, said))
        if error is not None:
            raise error
        failed = [(rank, what) for rank, what in outcomes if what is not None]
        if failed:
            rank, (kind, message) = failed[0]
            raise InputError(f"rank {rank} of {self.size} stopped ({kind}: {message}); every rank stops with it")

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank."""
        if self.size == 1:
            return value

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def join_process_group() -> "Shard":
    """Under torchrun (``WORLD_SIZE`` > 1), join the process group as the command line does, and
    return this rank's :class:`Shard` (a single shard when not launched by torchrun).

    The backend follows the device: NCCL on CUDA (each rank on GPU ``LOCAL_RANK``), HCCL on an
    Ascend NPU through ``torch_npu``, gloo on CPU. Each rank gets an equal share of the machine's
    cores (torchrun itself gives every rank one thread). Call it once, before building a reader,
    in a script that ``torchrun`` launches; the reader then shards on its own.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Shard()


    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    elif _npu_available():
        torch.npu.set_device(local_rank)  # type: ignore[attr-defined]  # torch_npu adds torch.npu
        backend = "hccl"
    else:
        backend = "gloo"
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local_world)))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
        atexit.register(_leave_process_group)  # a script that never leaves the group still exits cleanly
    return Shard.current(True)


def wait_for_the_other_ranks(seconds: float = 30) -> None:
    """Wait until every rank arrives here, at most ``seconds`` (a rank that failed elsewhere never
    arrives): so that none exits while another still talks to it. gloo only: NCCL and HCCL have
    no barrier with a timeout."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "gloo":
        try:
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=seconds))
        except RuntimeError:  # a rank that never came: go on all the same
            pass


def _leave_process_group() -> None:
    """At exit: leave the group this module joined, after the other ranks; nothing if it was left already."""
    if dist.is_available() and dist.is_initialized():
        wait_for_the_other_ranks()
        dist.destroy_process_group()


# ------------------------------------------------------------------------------- journal
class Journal:
    """Scores appended as they are computed, for resuming an interrupted run (see the module doc)."""

    def __init__(self, path: str | os.PathLike, valid_for: dict) -> None:
        self.path = Path(path)
        self.valid_for = valid_for
        # What an earlier run recorded, compact (about 16 bytes a segment and 8 per signal):
        # indices ascending, with digests and scores at the same positions.
        self._indices = array("q")
        self._digests = bytearray()
        self._scores: dict[str, array] = {}
        self._handle = self._open_locked()
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def _open_locked(self):
        """Open (or create) the journal, checked before any scoring, and hold an exclusive lock on
        it for the run: a second run writing the same journal is refused instead of corrupting it."""
        if not str(self.path) or str(self.path) == ".":
            raise InputError("the checkpoint path is empty: name a journal file, e.g. --checkpoint run.jsonl")
        try:
            info = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise self._refuse(f"it cannot be examined ({exc.strerror})") from None
        if info is not None:
            if stat.S_ISLNK(info.st_mode):
                raise self._refuse("it is a symbolic link; a journal must be a regular file")
            if stat.S_ISDIR(info.st_mode):
                raise self._refuse("it is a directory; name a file inside it")
            if not stat.S_ISREG(info.st_mode):
                raise self._refuse("it is not a regular file (a device, FIFO or socket)")
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._refuse(f"its folder cannot be created ({exc.strerror})") from None
        if not os.access(parent, os.W_OK | os.X_OK) or (info is not None and not os.access(self.path, os.R_OK | os.W_OK)):
            raise self._refuse("it is not writable here (permission denied)")
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise self._refuse(f"it cannot be opened ({exc.strerror})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for something else since the look above
            os.close(fd)
            raise self._refuse("it is not a regular file")
        try:
            import fcntl  # local: POSIX only; on Windows the journal is not locked
        except ImportError:
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise self._refuse("another run is writing it now; wait for it to finish, or pass another path") from None
        os.set_blocking(fd, True)
        return open(fd, "r+b")

    def __len__(self) -> int:
        """How many segments the journal had recorded when it was opened."""
        return len(self._indices)

    def _refuse(self, why: str) -> InputError:
        return InputError(f"checkpoint {self.path}: {why}. It was left as it is; pass another path, or delete it to start over.")

    def _load(self) -> None:
        """Read the journal a line at a time; a last line cut short (a run killed mid-write) is dropped."""
        kept_bytes = 0
        handle = self._handle
        handle.seek(0)
        header_line = handle.readline()
        if header_line:
            if not header_line.endswith(b"\n"):
                raise self._refuse("it has no complete header line")
            self._check_header(header_line)
            kept_bytes = len(header_line)
            for number, line in enumerate(handle, start=2):
                if not line.endswith(b"\n"):
                    break  # cut short: dropped below
                try:
                    entry = json.loads(line)
                    digests = [bytes.fromhex(d) for d in entry["d"]]
                    scores = {str(k): [float(x) for x in v] for k, v in entry["s"].items()}
                    indices = [int(i) for i in entry["i"]]
                    if any(len(d) != DIGEST_BYTES for d in digests) or any(len(v) != len(indices) for v in scores.values()):
                        raise ValueError
                    self._add(indices, digests, scores)
                except (ValueError, KeyError, TypeError, IndexError, AttributeError):
                    raise self._refuse(f"line {number} is corrupted") from None
                kept_bytes += len(line)
        handle.truncate(kept_bytes)  # drop a line cut short, so that appending starts on a fresh line
        handle.seek(kept_bytes)
        self._size = kept_bytes

    def _check_header(self, line: bytes) -> None:
        try:
            header = json.loads(line)
        except ValueError:
            raise self._refuse("its first line is not a journal header") from None
        if not isinstance(header, dict) or header.get("journal") != "entropy-retriever":
            raise self._refuse("it is not an entropy-retriever journal")
        if header.get("version") != JOURNAL_VERSION:
            raise self._refuse(f"it is version {header.get('version')}, this library writes version {JOURNAL_VERSION}")
        theirs = header.get("valid_for", {})
        differ = sorted(k for k in set(theirs) | set(self.valid_for) if theirs.get(k) != self.valid_for.get(k))
        if differ:
            detail = "; ".join(f"{k}: journal {theirs.get(k)!r}, now {self.valid_for.get(k)!r}" for k in differ[:4])
            raise self._refuse(f"it was written for another run ({detail})")

    def _add(self, indices: list[int], digests: list[bytes], scores: dict[str, list[float]]) -> None:
        if not self._indices:
            self._scores = {name: array("d") for name in scores}
        if set(scores) != set(self._scores):
            raise ValueError("other signals than the lines before")
        for position, index in enumerate(indices):
            if self._indices and index <= self._indices[-1]:
                raise ValueError("segments out of order")  # a run writes its windows in input order
            self._indices.append(index)
            self._digests += digests[position]
            for name, values in scores.items():
                self._scores[name].append(values[position])

    def recorded(self, index: int, text_digest: bytes) -> dict | None:
        """The scores recorded for segment ``index``, or None; an error if its text differs."""
        position = bisect.bisect_left(self._indices, index)
        if position == len(self._indices) or self._indices[position] != index:
            return None
        if self._digests[position * DIGEST_BYTES:(position + 1) * DIGEST_BYTES] != text_digest:
            raise self._refuse(f"segment {index} of the input differs from the one it recorded (the input changed)")
        return {name: values[position] for name, values in self._scores.items()}

    def append(self, indices: Sequence[int], digests: Sequence[bytes], scores: dict[str, Sequence[float]]) -> None:
        """Append one window's scores and flush them to disk; a failed write (a full disk) leaves the
        journal as it was before this window, so a later run resumes from there."""
        out = b""
        if self._size == 0:
            header = {"journal": "entropy-retriever", "version": JOURNAL_VERSION, "valid_for": self.valid_for}
            out += (json.dumps(header) + "\n").encode()
        line = {"i": list(indices), "d": [d.hex() for d in digests], "s": {k: [float(x) for x in v] for k, v in scores.items()}}
        out += (json.dumps(line) + "\n").encode()
        try:
            self._handle.write(out)
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            try:
                self._handle.seek(self._size)
                self._handle.truncate(self._size)
            except OSError:
                pass
            raise InputError(
                f"checkpoint {self.path}: could not write ({exc.strerror}); it keeps what was recorded before, "
                "so the same command resumes from there once there is room"
            ) from None
        self._size += len(out)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()  # also releases the lock
            self._handle = None


_FINGERPRINTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def weights_fingerprint(model) -> str:
    """A hash of every parameter's name, shape, dtype and bytes: any change to any weight changes it.

    Computed once per model object (about a second for 135M parameters on a CPU); a model changed
    in place after that (``merge_and_unload`` on the same object) should be passed as a new object.
    """

    cached = _FINGERPRINTS.get(model)
    if cached is not None:
        return cached
    h = hashlib.blake2b(digest_size=16)
    with torch.no_grad():  # int8 layers keep their weights outside parameters(): hashed too
        for name, p in [*model.named_parameters(), *quantized_weights(model)]:
            h.update(f"{name}:{tuple(p.shape)}:{p.dtype}".encode())
            h.update(p.detach().contiguous().view(-1).view(torch.uint8).cpu().numpy().tobytes())
    value = h.hexdigest()
    try:
        _FINGERPRINTS[model] = value
    except TypeError:  # not weak-referenceable: computed again next time
        pass
    return value


def model_identity(model) -> dict:
    """What a journal checks the model by: its name, class, dtype, size and a hash of all its weights."""
    params = list(model.parameters())
    return {
        "name": str(getattr(model.config, "_name_or_path", "")),
        "class": type(model).__name__,
        "dtype": "int8" if is_int8(model) else str(next(iter(params)).dtype),
        "parameters": sum(p.numel() for p in params),
        "fingerprint": weights_fingerprint(model),
    }


def rank_path(path: str | os.PathLike, shard: Shard) -> Path:
    """Each rank keeps its own journal: ``run.jsonl`` -> ``run.rank0-of-2.jsonl``."""
    path = Path(path)
    if shard.size == 1:
        return path
    return path.with_name(f"{path.stem}.rank{shard.rank}-of-{shard.size}{path.suffix}")
