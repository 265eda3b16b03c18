"""Add files to the store: ``python ingest.py PATH... [--json] [--config PATH]`` or ``python ingest.py --watch FOLDER``."""

import sys

from rag.cli import ingest_main

if __name__ == "__main__":
    sys.exit(ingest_main())
