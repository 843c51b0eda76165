"""The long-file tool for LlamaIndex agents: read a file far longer than the window, answer a question."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Iterable, Optional, Union

from llama_index.core.tools import FunctionTool


def long_file_tool(
    roots: Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]] = (),
    *,
    qa: Any = None,
    reader: Any = None,
    max_bytes: Optional[int] = None,
    name: Optional[str] = None,
) -> FunctionTool:
    """A ``FunctionTool`` that answers a question about one long text file inside ``roots``.

    Paths outside the roots (``..``, absolute paths elsewhere, symlinks that leave them),
    directories, devices, FIFOs, binary files and files over ``max_bytes`` are refused with a
    message the agent reads as the tool's output and can act on; nothing outside the roots is
    ever echoed.

    >>> tool = long_file_tool(roots=["./docs"])
    >>> agent = ReActAgent(tools=[tool], llm=llm)
    """
    from entropy_retriever import InputError, LongFileQA
    from entropy_retriever.integration import DEFAULT_MAX_BYTES, TOOL_NAME

    if qa is None:
        qa = LongFileQA(roots, reader=reader, max_bytes=DEFAULT_MAX_BYTES if max_bytes is None else max_bytes)

    def read_long_file(path: str, question: str) -> str:
        """Answer a question about one long text file."""
        try:
            return qa.run(path, question)
        except InputError as exc:  # a refusal or a bad argument: the agent reads it and tries again
            return f"Error: {exc}"

    async def aread_long_file(path: str, question: str) -> str:
        """Answer a question about one long text file."""
        return await asyncio.to_thread(read_long_file, path, question)

    return FunctionTool.from_defaults(
        fn=read_long_file, async_fn=aread_long_file, name=name or TOOL_NAME, description=qa.description
    )
