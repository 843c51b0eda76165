"""Safe file access for agents: read only regular text files inside configured root folders.

An agent chooses which path to open, and an agent can be steered by what it has read, so the
long-file tools treat every path as untrusted. :class:`FileAccess` resolves a path against
the roots the developer configured and refuses, with a message the agent can act on:

- an empty path or one with a NUL byte;
- a path that leaves every root: ``..`` escapes, absolute paths elsewhere, and symlinks
  (anywhere along the path) whose target lies outside the roots;
- anything that is not a regular file: directories, devices, FIFOs, sockets;
- files larger than ``max_bytes``, and binary files (a NUL byte, or not valid UTF-8);
- files with more than one hard link (unless ``allow_hard_links=True``): a hard link is the
  same file under a second name, possibly outside the roots, and no path check can see where
  the other names are, so a link planted inside a root could expose a file from outside it.

Refusals name the path the agent gave and the rule it broke, never the contents of the file,
and never anything about files outside the roots beyond "not allowed".
The file is opened once, without following a final symlink and without blocking on a FIFO,
and the checks run on the open descriptor, so the file cannot be swapped between check and read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable, Union

from .errors import InputError

__all__ = ["FileAccess", "FileAccessError"]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
_SNIFF_BYTES = 8192


def looks_binary(head: bytes) -> bool:
    """The rule for "not a text file": a NUL byte among the first 8 KiB."""
    return b"\x00" in head[:_SNIFF_BYTES]


class FileAccessError(InputError):
    """A path the long-file tool refuses to read; the message is safe to show an agent."""


class FileAccess:
    """Which files an agent may read: regular UTF-8 text files under ``roots``, at most ``max_bytes``.

    >>> access = FileAccess(roots=["/srv/reports"], max_bytes=5_000_000)
    >>> text = access.read_text("2025/annual.txt")   # relative paths start at the first root
    """

    def __init__(
        self,
        roots: Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]],
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        allow_hard_links: bool = False,
    ):
        if isinstance(roots, (str, os.PathLike)):
            roots = [roots]
        given = tuple(Path(r).expanduser() for r in roots)
        if not given:
            raise InputError("FileAccess needs at least one root folder that the agent may read from")
        real = []
        for root in given:
            if not root.is_dir():
                raise InputError(f"root {root} is not an existing folder: create it or pass another root")
            real.append(Path(os.path.realpath(root)))
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise InputError(f"max_bytes must be a positive integer, got {max_bytes!r}")
        self.roots = given
        self.max_bytes = max_bytes
        self.allow_hard_links = bool(allow_hard_links)
        self._real_roots = tuple(real)

    def __repr__(self) -> str:
        return f"FileAccess(roots={[str(r) for r in self.roots]}, max_bytes={self.max_bytes})"

    def describe(self) -> str:
        """One line for a tool description: where the agent may read."""
        return "readable folders: " + ", ".join(str(r) for r in self._real_roots)

    def resolve(self, path: Union[str, os.PathLike]) -> Path:
        """The real path of ``path`` if it lies inside a root, else a FileAccessError."""
        text = os.fspath(path) if isinstance(path, os.PathLike) else path
        if not isinstance(text, str) or not text.strip():
            raise FileAccessError("no path given: pass the path of a text file, relative to " + self.describe())
        if "\x00" in text:
            raise FileAccessError("the path contains a NUL character: pass a plain file path")
        candidate = Path(text.strip()).expanduser()
        if not candidate.is_absolute():
            candidate = self._real_roots[0] / candidate
        real = Path(os.path.realpath(candidate))  # follows every symlink and '..' on the way
        if not any(real == root or root in real.parents for root in self._real_roots):
            raise FileAccessError(
                f"access to {text!r} is not allowed: it lies outside the folders this tool may read "
                f"(or is a link that leads outside them). Use a path inside: {', '.join(map(str, self._real_roots))}"
            )
        return real

    def read_text(self, path: Union[str, os.PathLike]) -> str:
        """Read the whole file at ``path`` as UTF-8 text, after every check."""
        real = self.resolve(path)
        shown = os.fspath(path)
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(real, flags)
        except FileNotFoundError:
            raise FileAccessError(f"{shown!r}: no such file. List the folder or check the spelling ({self.describe()}).") from None
        except IsADirectoryError:
            raise FileAccessError(f"{shown!r} is a directory: pass the path of one file inside it.") from None
        except PermissionError:
            raise FileAccessError(f"{shown!r} is not readable (permission denied).") from None
        except OSError as exc:  # ELOOP: the final component became a symlink after resolve()
            raise FileAccessError(f"{shown!r} cannot be opened safely ({exc.strerror}).") from None
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise FileAccessError(f"{shown!r} is a directory: pass the path of one file inside it.")
            if not stat.S_ISREG(info.st_mode):
                raise FileAccessError(f"{shown!r} is not a regular file (a device, FIFO or socket): pass a text file.")
            if info.st_nlink > 1 and not self.allow_hard_links:
                raise FileAccessError(
                    f"{shown!r} has {info.st_nlink} hard links (other names for the same file, possibly outside the "
                    "readable folders), so this tool does not read it: ask the developer for a copy of the file."
                )
            if info.st_size > self.max_bytes:
                raise FileAccessError(
                    f"{shown!r} is {info.st_size:,} bytes, over this tool's limit of {self.max_bytes:,} bytes: "
                    "pick a smaller file, or ask the developer to raise max_bytes."
                )
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(self.max_bytes + 1)
        finally:
            os.close(fd)
        if len(data) > self.max_bytes:  # grew after the check
            raise FileAccessError(f"{shown!r} is over this tool's limit of {self.max_bytes:,} bytes.")
        if looks_binary(data):
            raise FileAccessError(f"{shown!r} looks binary (it contains NUL bytes): this tool reads text files only.")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileAccessError(
                f"{shown!r} is not UTF-8 text (an invalid byte about {exc.start:,} bytes in): this tool reads text files only."
            ) from None
