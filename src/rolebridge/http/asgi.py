"""The app for worker processes (``--workers N``): built from the environment the parent set."""

from __future__ import annotations

import os

from rolebridge.bootstrap import open_services
from rolebridge.http import heap
from rolebridge.http.app import create_app

app = create_app(open_services(os.environ.get("ROLEBRIDGE_DATA_DIR"), os.environ.get("ROLEBRIDGE_DATABASE_URL")))
heap.settle()  # this process serves until it exits (http/heap.py)
