"""Options every state-touching command shares, so they are spelled and documented once."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

DataDir = Annotated[str | None, typer.Option("--data-dir", envvar="ROLEBRIDGE_DATA_DIR",
                                             help="State directory (default ./.rolebridge).")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", envvar="ROLEBRIDGE_DATABASE_URL",
                                                 help="SQLAlchemy URL (default: SQLite in the data dir).")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))
