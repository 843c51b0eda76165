"""``python -m entropy_retriever`` is the command line (also under ``torchrun ... -m entropy_retriever``)."""

import sys

from .cli import main

sys.exit(main())
