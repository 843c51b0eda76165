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
    consumer, not lost in the thread. When the consumer stops early (``break``, ``aclose()``,
    cancellation), the worker stops at its next item and closes the iterator.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    cancelled = threading.Event()

    def put(entry) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, entry)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            cancelled.set()

    def work() -> None:
        iterator = make_iterator()
        try:
            for item in iterator:
                if cancelled.is_set():
                    break
                put((item, None))
        except BaseException as exc:  # handed to the consumer below
            put((_DONE, exc))
        else:
            put((_DONE, None))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:  # a generator's cleanup runs here: LongContextLM stops generating
                close()

    threading.Thread(target=work, daemon=True, name="entropy-retriever-stream").start()
    try:
        while True:
            item, error = await queue.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        cancelled.set()  # the consumer stopped early (or finished): the worker stops at its next item
