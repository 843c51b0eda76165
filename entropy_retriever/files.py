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
The path is checked as text first (an absolute path must start with a root; ``..`` may not
climb above one), so nothing outside the roots is ever looked at. It is then walked from an
open descriptor of its root, one component at a time (``openat`` with ``O_NOFOLLOW``): a link
is read and resolved by this module, and must lead inside the roots, never by the kernel. The
file is opened once, without blocking on a FIFO, and the checks and the read use that one
descriptor, so no folder or file swapped in during the walk can lead outside.
"""

from __future__ import annotations

import numbers
import os
import stat
from pathlib import Path
from typing import Iterable, Union

from .errors import InputError

__all__ = ["FileAccess", "FileAccessError"]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024


def looks_binary(data: bytes) -> bool:
    """The rule for "not a text file": a NUL byte anywhere in it (checked on every chunk read)."""
    return b"\x00" in data


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
    ) -> None:
        if isinstance(roots, (str, os.PathLike)):
            roots = [roots]  # one folder, never the characters of its name
        try:
            listed = list(roots)
        except TypeError:
            raise InputError(f"roots must be a folder or a list of folders, got {type(roots).__name__}") from None
        given = []
        for root in listed:
            if not isinstance(root, (str, os.PathLike)):
                raise InputError(f"each root must be a folder path (str or pathlib.Path), got {root!r}")
            if not os.fspath(root):
                raise InputError("a root is an empty string, which would mean the working folder: "
                                 "name each folder the agent may read, e.g. roots=['./reports']")
            given.append(Path(root).expanduser())
        if not given:
            raise InputError("FileAccess needs at least one root folder that the agent may read from")
        real = []
        for root in given:
            if not root.is_dir():
                raise InputError(f"root {root} is not an existing folder: create it or pass another root")
            real.append(Path(os.path.realpath(root)))
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral) or max_bytes < 1:
            raise InputError(f"max_bytes must be a positive integer, got {max_bytes!r}")
        self.roots: tuple[Path, ...] = tuple(given)
        self.max_bytes: int = int(max_bytes)
        self.allow_hard_links: bool = bool(allow_hard_links)
        self._real_roots: tuple[Path, ...] = tuple(real)
        # Each root as the agent may write it (absolute, as given) and as it really is: (parts, real root).
        self._prefixes: list[tuple[tuple[str, ...], Path]] = sorted({(Path(os.path.abspath(g)).parts, r) for g, r in zip(given, real)}
                                | {(r.parts, r) for r in real}, key=lambda x: -len(x[0]))

    def __repr__(self) -> str:
        return f"FileAccess(roots={[str(r) for r in self.roots]}, max_bytes={self.max_bytes})"

    def describe(self) -> str:
        """One line for a tool description: where the agent may read."""
        return "readable folders: " + ", ".join(str(r) for r in self._real_roots)

    def _refuse_outside(self, text: str) -> FileAccessError:
        return FileAccessError(
            f"access to {text!r} is not allowed: it lies outside the folders this tool may read "
            f"(or is a link that leads outside them). Use a path inside: {', '.join(map(str, self._real_roots))}"
        )

    def _start(self, path) -> tuple[str, Path, list[str]]:
        """The path as given, the root it starts from and its remaining parts, checked on the text
        alone: nothing outside the roots is looked at on the filesystem."""
        text = os.fspath(path) if isinstance(path, os.PathLike) else path
        if not isinstance(text, str) or not text.strip():
            raise FileAccessError("no path given: pass the path of a text file, relative to " + self.describe())
        if "\x00" in text:
            raise FileAccessError("the path contains a NUL character: pass a plain file path")
        candidate = Path(text).expanduser() if text.startswith("~") else Path(text)
        if not candidate.is_absolute():
            return text, self._real_roots[0], [p for p in candidate.parts if p != "."]
        for parts, root in self._prefixes:
            if candidate.parts[: len(parts)] == parts:
                return text, root, [p for p in candidate.parts[len(parts):] if p != "."]
        raise self._refuse_outside(text)

    def _follow(self, text: str, name: str, stack: list[int], directory: int) -> tuple[list[int], list[str]]:
        """Resolve the link ``name`` in the folder open at ``stack[-1]``: a relative target goes on
        from that folder, an absolute one must start with a root and goes on from its descriptor."""
        try:
            target = Path(os.readlink(name, dir_fd=stack[-1]))
        except OSError:  # it changed between the look and the read: no longer a link, or gone
            raise FileAccessError(f"{text!r} changed while it was opened: try again.") from None
        if target.is_absolute():
            for prefix, real_root in self._prefixes:
                if target.parts[: len(prefix)] == prefix:
                    for fd in stack:
                        os.close(fd)
                    stack[:] = [os.open(real_root, directory)]
                    target = Path(*target.parts[len(prefix):]) if len(target.parts) > len(prefix) else Path()
                    break
            else:
                raise self._refuse_outside(text)
        return stack, [p for p in target.parts if p != "."]

    def _open(self, text: str, root: Path, parts: list[str]) -> int:
        """Walk from an open descriptor of ``root`` one component at a time, never following a link
        the kernel would follow: each is read and resolved here, and must stay inside the roots.
        Returns a descriptor of the final file (opened without blocking on a FIFO)."""
        nofollow = getattr(os, "O_NOFOLLOW", 0)
        directory = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow
        stack = [os.open(root, directory)]
        pending, links = list(parts), 0
        try:
            while pending:
                name = pending.pop(0)
                if name == "..":
                    if len(stack) == 1:
                        raise self._refuse_outside(text)
                    os.close(stack.pop())
                    continue
                last = not pending
                try:
                    info = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
                except FileNotFoundError:
                    raise FileAccessError(f"{text!r}: no such file. List the folder or check the spelling ({self.describe()}).") from None
                except NotADirectoryError:
                    raise FileAccessError(f"{text!r}: a part of the path is a file, not a folder.") from None
                if stat.S_ISLNK(info.st_mode):
                    links += 1
                    if links > 40:
                        raise FileAccessError(f"{text!r} goes through too many links.")
                    stack, target = self._follow(text, name, stack, directory)
                    pending = target + pending
                    continue
                flags = (os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0)) if last else directory
                try:
                    fd = os.open(name, flags, dir_fd=stack[-1])
                except FileNotFoundError:
                    raise FileAccessError(f"{text!r}: no such file. List the folder or check the spelling ({self.describe()}).") from None
                except NotADirectoryError:
                    raise FileAccessError(f"{text!r}: a part of the path is a file, not a folder.") from None
                except PermissionError:
                    raise FileAccessError(f"{text!r} is not readable (permission denied).") from None
                except OSError as exc:  # ELOOP and the like: the path changed while it was walked
                    raise FileAccessError(f"{text!r} cannot be opened safely ({exc.strerror}); try again.") from None
                stack.append(fd)
            if len(stack) == 1:
                raise FileAccessError(f"{text!r} is a directory: pass the path of one file inside it.")
            return stack.pop()
        finally:
            for fd in stack:
                os.close(fd)

    def read_text(self, path: Union[str, os.PathLike]) -> str:
        """Read the whole file at ``path`` as UTF-8 text, after every check, from the one descriptor
        that the walk from a root opened: no path is opened twice, so none can be swapped between."""
        shown, root, parts = self._start(path)
        fd = self._open(shown, root, parts)
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
