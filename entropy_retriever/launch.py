"""The ``entropy-retriever`` command's entry point: imports the command line, then runs it.

Importing torch and transformers takes a second or two. A Ctrl-C (or SIGTERM) in that time
would otherwise print a traceback from deep inside an import; here it ends like a Ctrl-C at any
other moment: one line and exit status 130. This module imports nothing heavy at its top, and
the package's ``__init__`` imports its public names lazily, for the same reason.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["main"]

INTERRUPTED = 130


_signalled: list[int] = []


def _interrupt(signum, frame):  # Ctrl-C or SIGTERM during the imports: noted, then unwound
    _signalled.append(signum)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Imported here, not at the top: this import is what the Ctrl-C may interrupt.
        from .cli import main as run  # local: this import is what a Ctrl-C may interrupt
    except BaseException:
        # An interrupted import may surface as another error (numpy's half-imported module
        # raised RecursionError): after a signal, any failure here is the interruption.
        if not _signalled:
            raise
        # Ignore any further signal, say it once and leave at once: a half-finished import
        # (torch's, numpy's) can leave threads or handlers that act on the signal again while
        # the interpreter shuts down (the process then died by SIGINT after the line). Nothing
        # of ours has run yet, so there is nothing to close.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        sys.stderr.write("entropy-retriever: interrupted\n")
        sys.stderr.flush()
        os._exit(INTERRUPTED)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    try:
        return run(argv)
    except KeyboardInterrupt:  # between the imports and the command's own handler (argument parsing)
        print("entropy-retriever: interrupted", file=sys.stderr)
        return INTERRUPTED
