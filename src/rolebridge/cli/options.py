"""Options every state-touching command shares, so they are spelled and documented once."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

DataDir = Annotated[str | None, typer.Option("--data-dir", envvar="ROLEBRIDGE_DATA_DIR",
                                             help="State directory (default ./.rolebridge).")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", envvar="ROLEBRIDGE_DATABASE_URL",
                                                 help="SQLAlchemy URL (default: SQLite in the data dir).")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

# Piped or captured output is not 80 columns wide: rich would cut table cells (ARNs, subject patterns)
# to fit, losing the very text a user copies. Off a terminal, and unless COLUMNS says otherwise, tables
# get room to print whole.
def _width(stream: Any) -> int | None:
    return None if stream.isatty() or os.environ.get("COLUMNS") else 400


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def read_source(source: str) -> str:
    """The text of FILE, or of stdin for ``-``, as strict UTF-8 (what every "FILE or -" option reads).

    An unreadable file raises its ``OSError`` (``main`` prints it in one line); bytes that are not
    UTF-8 raise ``ValidationError``.
    """
    from pathlib import Path

    from rolebridge import errors

    data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.ValidationError(f"{'stdin' if source == '-' else source} is not UTF-8 text") from exc
