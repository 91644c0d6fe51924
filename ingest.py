"""Ingest corpus/ into the Chroma store (incremental). Usage: python ingest.py [--json] [--corpus DIR]"""

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from assistant.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
