"""The `rolebridge` command: one Typer app, one sub-app (or command) per module in this package.

Each command module exposes ``register(app)``; ``COMMAND_MODULES`` lists them. Errors from the
core (``AWSError``) are printed once, here, in AWS's words plus our explanation.
"""

from __future__ import annotations

import importlib
import sys

import typer

from rolebridge.errors import AWSError

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

app = typer.Typer(
    name="rolebridge",
    help="Short-lived cloud identities for data jobs: issuer, IAM/STS, job platform, setup tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command group not built yet
            if exc.name == name:
                continue
            raise
        module.register(app)


_register_all()


def _environment_error(exc: BaseException) -> str | None:
    """A one-line message for failures of the user's environment (database URL, data dir, files),
    which are not bugs and deserve no traceback; None for anything else."""
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
        app()
    except AWSError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        if exc.explanation:
            print(f"  why: {exc.explanation}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        message = _environment_error(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
