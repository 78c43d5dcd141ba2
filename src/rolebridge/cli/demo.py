"""`rolebridge demo`: the cross-account walkthrough on a fresh data dir, with a server it starts and stops."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(keep: Annotated[Path | None, typer.Option("--keep", help="Use (and keep) this data dir.")] = None) -> None:
        """Run the walkthrough end to end: one job that works cross-account, two that fail and say why."""
        from rolebridge.platform.demo import run_demo

        raise typer.Exit(run_demo(keep))
