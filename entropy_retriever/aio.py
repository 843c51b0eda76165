"""Run blocking model work without blocking an event loop (used by the async framework adapters)."""

from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator, Callable, Iterator, TypeVar

__all__ = ["iterate_in_thread"]

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(make_iterator: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Drive a blocking iterator in a worker thread and yield its items to the event loop.

    The loop stays free between items; an exception in the worker is raised here, in the
    consumer, not lost in the thread.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def work() -> None:
        try:
            for item in make_iterator():
                loop.call_soon_threadsafe(queue.put_nowait, (item, None))
        except BaseException as exc:  # handed to the consumer below
            loop.call_soon_threadsafe(queue.put_nowait, (_DONE, exc))
        else:
            loop.call_soon_threadsafe(queue.put_nowait, (_DONE, None))

    threading.Thread(target=work, daemon=True, name="entropy-retriever-stream").start()
    while True:
        item, error = await queue.get()
        if item is _DONE:
            if error is not None:
                raise error
            return
        yield item
