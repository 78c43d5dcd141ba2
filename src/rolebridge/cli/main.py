"""The `rolebridge` command: one Typer app, one sub-app (or command) per module in this package.

Each command module exposes ``register(app)``; ``COMMAND_MODULES`` lists them. Errors from the
core (``AWSError``) are printed once, here, in AWS's words plus our explanation.

The app is built on first use (``get_app()``, or the module attribute ``app``): `rolebridge run`
first tries ``platform.fastrun``, which hands the run to the warm server without importing Typer
or the store (~1 s of imports), and falls back to the Typer command for anything it does not
handle itself (docs/run-latency.md).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

COMMAND_MODULES = [
    "rolebridge.cli.server",
    "rolebridge.cli.accounts",
    "rolebridge.cli.clusters",
    "rolebridge.cli.issuer",
    "rolebridge.cli.token",
    "rolebridge.cli.run",
    "rolebridge.cli.jobs",
    "rolebridge.cli.runs",
    "rolebridge.cli.demo",
    "rolebridge.cli.policy",
    "rolebridge.cli.grant",
    "rolebridge.cli.explain",
    "rolebridge.cli.lint",
    "rolebridge.cli.access",
    "rolebridge.cli.db",
    "rolebridge.cli.audit",
]

_app: typer.Typer | None = None


def get_app() -> typer.Typer:
    """The Typer app with every command registered (built once)."""
    global _app
    if _app is None:
        import typer

        app = typer.Typer(
            name="rolebridge",
            help="Short-lived cloud identities for data jobs: issuer, IAM/STS, job platform, setup tools.",
            no_args_is_help=True,
            add_completion=False,
            pretty_exceptions_enable=False,
        )
        for name in COMMAND_MODULES:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:  # a command group not built yet
                if exc.name == name:
                    continue
                raise
            module.register(app)
        _app = app
    return _app


def __getattr__(name: str) -> Any:
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _fast_path(argv: list[str]) -> int | None:
    """`rolebridge run` through the warm server's control socket; None when the full CLI must handle it."""
    if len(argv) < 2 or argv[1] != "run":
        return None
    from rolebridge.platform.fastrun import run_fast

    return run_fast(argv[2:])


def _environment_error(exc: BaseException) -> str | None:
    """A one-line message for failures of the user's environment (database URL, data dir, files,
    an AWS endpoint, profile or credentials), which are not bugs and deserve no traceback; None
    for anything else."""
    if type(exc).__module__.startswith("botocore."):
        from rolebridge.cli.aws import describe_failure

        return describe_failure(exc)
    if type(exc).__module__.startswith("sqlalchemy."):
        orig = getattr(exc, "orig", None)
        detail = str(orig if orig is not None else exc).strip().splitlines()
        return f"database: {detail[0] if detail else type(exc).__name__} (check --database-url / --data-dir)"
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        return f"{exc.strerror or exc}{where}"
    return None


def main() -> None:
    try:
        code = _fast_path(sys.argv)
        if code is not None:
            sys.exit(code)
        get_app()()
    except Exception as exc:
        from rolebridge.errors import AWSError

        if isinstance(exc, AWSError):
            print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
            if exc.explanation:
                print(f"  why: {exc.explanation}", file=sys.stderr)
            sys.exit(1)
        message = _environment_error(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
