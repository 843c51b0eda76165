"""LongFileTool: a LangChain tool that answers a question about one long file inside configured roots."""

from __future__ import annotations

import asyncio
import numbers
import os
from typing import Any, Optional

from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class LongFileInput(BaseModel):
    path: str = Field(description="Path of a text file, relative to the readable folder.")
    question: str = Field(description="What to find out from the file.")


class LongFileTool(BaseTool):
    """Answer a question about a text file far longer than the model's window.

    Only regular UTF-8 files inside ``roots`` are read; ``..`` escapes, absolute paths
    elsewhere, symlinks that leave the roots, directories, devices, FIFOs, binary files and
    files over ``max_bytes`` are refused with a message the agent sees (``handle_tool_error``)
    and can act on. Nothing outside the roots is echoed.

    >>> tool = LongFileTool(roots=["./docs"])
    >>> tool.invoke({"path": "manual.txt", "question": "What is the door code?"})
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "read_long_file"
    description: str = "Answer a question about one long text file."
    args_schema: type[BaseModel] = LongFileInput
    handle_tool_error: bool = True
    roots: list[str] = Field(default_factory=list, description="Folders the agent may read from.")
    max_bytes: Optional[int] = Field(default=None, description="Largest file size read, in bytes.")
    _qa: Any = PrivateAttr()

    def __init__(self, *, reader: Any = None, qa: Any = None, **kwargs: Any) -> None:
        from entropy_retriever import InputError, LongFileQA
        from entropy_retriever.integration import DEFAULT_MAX_BYTES

        roots = kwargs.get("roots", [])
        if isinstance(roots, (str, os.PathLike)):
            roots = [roots]  # one folder, never the characters of its name
        kwargs["roots"] = [os.fspath(r) if isinstance(r, (str, os.PathLike)) else r for r in roots]
        max_bytes = kwargs.get("max_bytes")
        if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral) or max_bytes < 1):
            raise InputError(f"max_bytes must be a positive integer (or None for {DEFAULT_MAX_BYTES:,}), got {max_bytes!r}")
        super().__init__(**kwargs)
        self._qa = qa or LongFileQA(self.roots, reader=reader, max_bytes=DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes))
        self.description = self._qa.description

    def _run(self, path: str, question: str, **kwargs: Any) -> str:
        from entropy_retriever import InputError

        try:
            return self._qa.run(path, question)
        except InputError as exc:
            raise ToolException(str(exc)) from None

    async def _arun(self, path: str, question: str, **kwargs: Any) -> str:
        return await asyncio.to_thread(self._run, path, question)
