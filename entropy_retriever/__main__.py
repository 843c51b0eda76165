"""``python -m entropy_retriever`` is the command line (also under ``torchrun ... -m entropy_retriever``)."""

import sys

from .launch import main

sys.exit(main())
