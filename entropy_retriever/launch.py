"""The ``entropy-retriever`` command's entry point: imports the command line, then runs it.

Importing torch and transformers takes a second or two. A Ctrl-C (or SIGTERM) in that time
would otherwise print a traceback from deep inside an import; here it ends like a Ctrl-C at any
other moment: one line and exit status 130. This module imports nothing heavy at its top, and
the package's ``__init__`` imports its public names lazily, for the same reason.
"""

from __future__ import annotations

import signal
import sys

__all__ = ["main"]

INTERRUPTED = 130


def _terminate(signum, frame):  # SIGTERM during the imports unwinds like Ctrl-C
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        # Imported here, not at the top: this import is what the Ctrl-C may interrupt.
        from .cli import main as run  # local: this import is what a Ctrl-C may interrupt
    except KeyboardInterrupt:
        print("entropy-retriever: interrupted", file=sys.stderr)
        return INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    try:
        return run(argv)
    except KeyboardInterrupt:  # between the imports and the command's own handler (argument parsing)
        print("entropy-retriever: interrupted", file=sys.stderr)
        return INTERRUPTED
