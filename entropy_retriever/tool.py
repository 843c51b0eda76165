"""The long-file question-answering tool for agents, independent of any agent framework.

The LlamaIndex and LangChain tools are thin wrappers around :class:`LongFileQA`: it checks the
path with :class:`~entropy_retriever.files.FileAccess` (only text files inside the configured
roots), reads the file with the XL3M reader, and returns the answer with the character spans
it was read from, so an agent can cite or open them.
"""

from __future__ import annotations

import os
from typing import Iterable, Union

from .errors import InputError
from .files import DEFAULT_MAX_BYTES, FileAccess, FileAccessError
from .reader import Answer, LongContextReader

__all__ = ["LongFileQA", "TOOL_NAME", "TOOL_DESCRIPTION"]

TOOL_NAME = "read_long_file"
TOOL_DESCRIPTION = (
    "Answer a question about one long text file, far longer than your context window. "
    "Arguments: path (a text file, relative to the readable folder) and question (what to find in it). "
    "Returns the answer and the lines (and character ranges) of the file it came from."
)


class LongFileQA:
    """Answer questions about long files inside ``roots``; every path is checked before it is read.

    >>> qa = LongFileQA(roots=["./reports"])
    >>> qa.run("q3.txt", "What was the revenue?")
    """

    def __init__(
        self,
        roots: Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]] = (),
        *,
        reader: LongContextReader | None = None,
        access: FileAccess | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if access is None:
            if isinstance(roots, (list, tuple)) and not roots:
                raise InputError("LongFileQA needs roots=[...]: the folders an agent may read files from")
            access = FileAccess(roots, max_bytes=max_bytes)
        self.access = access
        self._reader = reader

    @property
    def reader(self) -> LongContextReader:
        """The reader, built (with the shared default model) on first use, so that a tool costs nothing until called."""
        if self._reader is None:
            self._reader = LongContextReader()
        return self._reader

    @property
    def description(self) -> str:
        return f"{TOOL_DESCRIPTION} The {self.access.describe()}."

    def answer(self, path: Union[str, os.PathLike], question: str) -> Answer:
        """Check ``path``, read it, and answer; raises FileAccessError or InputError with an agent-readable message."""
        if not isinstance(question, str) or not question.strip():
            raise InputError("no question given: say what to find in the file")
        text = self.access.read_text(path)
        if not text.strip():
            raise FileAccessError(f"{os.fspath(path)!r} is empty: there is nothing to read in it.")
        return self.reader.answer(text, question)

    def run(self, path: Union[str, os.PathLike], question: str) -> str:
        """The answer as text for an agent, with the character ranges it was read from."""
        answer = self.answer(path, question)
        spans = ", ".join(f"{s.lines} (characters {s.start}-{s.end})" for s in answer.key_context.spans)
        return f"{answer.text}\n\n(read from {spans} of {os.fspath(path)})"

