"""Low-level facts every layer may need, with no import of any other module of the package:
the cache folder, the one lock per model, and a model's trained window.

Keeping them here (and not in ``models``) is what keeps the package's import graph free of
cycles: ``attention``, ``scoring`` and ``llm`` import this, and ``models`` builds on all of them.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

__all__ = ["cache_dir", "model_lock", "model_window"]


def cache_dir() -> Path:
    """Where converted models and recorded measurements live: ``$ENTROPY_RETRIEVER_CACHE``, else the XDG cache."""
    explicit = os.environ.get("ENTROPY_RETRIEVER_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "entropy-retriever"


_locks: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def model_lock(model) -> threading.RLock:
    """The one lock that every component running ``model`` holds while it runs it.

    A model and its fast tokenizer are not safe to drive from two threads at once (the Rust
    tokenizer raises "Already borrowed"; attention policies are switched per model), so the
    scorer, the reranker, the reader and LongContextLM all take this lock: concurrent callers
    queue instead of corrupting each other, and async adapters can run them in worker threads.
    """
    with _locks_guard:
        lock = _locks.get(model)
        if lock is None:
            lock = _locks[model] = threading.RLock()
        return lock


def model_window(model) -> int | None:
    """The number of positions the model was trained on, if its config says."""
    config = getattr(model, "config", None)
    config = getattr(config, "get_text_config", lambda: config)()
    return getattr(config, "max_position_embeddings", None)
