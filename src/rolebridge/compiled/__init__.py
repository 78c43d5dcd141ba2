"""The request path compiled by Cython, and the guard that runs a compiled module only while it is current.

Why: an AssumeRoleWithWebIdentity or a signed GetCallerIdentity is a few dozen steps of 1-20 µs in
the interpreter (decode, SigV4, token checks, trust evaluation, credentials, XML, the audit event),
and the interpreter's own dispatch is a large part of each. Compiled by Cython, the same source
runs with ~10-25 % less CPU per call through the server (``docs/benchmarks.md`` has the side by
side figures). Nothing is written for Cython: ``annotation_typing`` is off, so annotations stay
hints and every module keeps Python's semantics, and the interpreted source stays the reference.

How:
- ``python -m rolebridge.compiled build`` (run by ``make``; ``build.py``) compiles ``HOT_MODULES`` into
  ``compiled/extensions/`` (an extension per module, under the module's own path) and writes
  ``manifest.json``: the SHA-256 of each source it compiled. It rebuilds only what changed, and a
  failed build leaves the sources in charge.
- The extensions live where Python's own importer never looks, so only ``Guard`` can import one:
  installed by ``rolebridge/__init__.py`` before any submodule is imported, it imports a module's
  extension only if the manifest holds the digest of the source as it is now. A source edited
  since the build (a developer running pytest without ``make``), a source that is gone, and any
  checkout without this guard (an older commit, a bisect) import the sources, never a stale build.
- ``ROLEBRIDGE_COMPILED=0`` imports every module from source (profilers see Python frames; the
  benchmarks measure both, and ``make test`` runs the in-process suites both ways).
- ``python -m rolebridge.compiled status`` says which modules run compiled.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # src/rolebridge
MANIFEST = "compiled/manifest.json"
EXTENSIONS = "compiled/extensions"  # <root>/compiled/extensions/rolebridge/http/query<SUFFIX>, ...
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # this interpreter's, e.g. .cpython-311-x86_64-linux-gnu.so

# The modules every Query call runs through (found by tracing AssumeRoleWithWebIdentity and a signed
# GetCallerIdentity in-process), the HTTP protocol around them, and the audit trail's writer.
HOT_MODULES: tuple[str, ...] = (
    "rolebridge.audit.events", "rolebridge.audit.journal", "rolebridge.audit.writer",
    "rolebridge.caller", "rolebridge.clock", "rolebridge.context", "rolebridge.errors", "rolebridge.fastjson",
    "rolebridge.http.authn", "rolebridge.http.errors", "rolebridge.http.models", "rolebridge.http.protocol",
    "rolebridge.http.query", "rolebridge.http.query_api", "rolebridge.http.query_cycle", "rolebridge.http.sigv4",
    "rolebridge.http.xml",
    "rolebridge.iam.arns", "rolebridge.iam.authorize", "rolebridge.iam.guardrails", "rolebridge.iam.ids",
    "rolebridge.lookup_cache", "rolebridge.memo", "rolebridge.pid",
    "rolebridge.policy.compiled", "rolebridge.policy.conditions", "rolebridge.policy.evaluation",
    "rolebridge.policy.model", "rolebridge.policy.patterns", "rolebridge.policy.principals",
    "rolebridge.randomness", "rolebridge.s3.addressing", "rolebridge.s3.app", "rolebridge.services",
    "rolebridge.store.server_key",
    "rolebridge.sts.caller_identity", "rolebridge.sts.credentials", "rolebridge.sts.session_policy",
    "rolebridge.sts.session_rules", "rolebridge.sts.trace", "rolebridge.sts.web_identity",
    "rolebridge.tokens._jose", "rolebridge.tokens.claims", "rolebridge.tokens.verifier",
)

DIRECTIVES = {"language_level": 3, "binding": True, "annotation_typing": False, "embedsignature": False}


def enabled() -> bool:
    return os.environ.get("ROLEBRIDGE_COMPILED", "1").strip().lower() not in ("0", "false", "no", "off")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_of(name: str, root: Path = PACKAGE_DIR) -> Path:
    """``rolebridge.http.query`` -> ``<root>/http/query.py``."""
    return root.joinpath(*name.split(".")[1:]).with_suffix(".py")


def extension_of(name: str, root: Path = PACKAGE_DIR) -> Path:
    """``rolebridge.http.query`` -> ``<root>/compiled/extensions/rolebridge/http/query<SUFFIX>``."""
    return root.joinpath(EXTENSIONS, *name.split(".")).with_name(name.rpartition(".")[2] + SUFFIX)


def load_manifest(root: Path = PACKAGE_DIR) -> dict[str, Any]:
    """``manifest.json`` as written by ``build`` ({} when there is none or it is unreadable)."""
    try:
        data = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_manifest(root: Path = PACKAGE_DIR) -> dict[str, str]:
    """Module name -> digest of the source its extension was built from ({} when there is no build
    for this interpreter)."""
    data = load_manifest(root)
    modules = data.get("modules") if data.get("suffix") == SUFFIX else None
    return {k: v for k, v in modules.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(
        modules, dict) else {}


def state_of(name: str, manifest: dict[str, str], root: Path = PACKAGE_DIR) -> str:
    """``compiled`` (its build is of the source there now), ``stale`` (of another source) or ``source``
    (never built, or the build is missing)."""
    expected = manifest.get(name)
    if expected is None or not extension_of(name, root).is_file():
        return "source"
    return "compiled" if expected == digest(source_of(name, root)) else "stale"


class Guard(importlib.abc.MetaPathFinder):
    """For ``rolebridge.*``: a module's extension is imported only when built from its current source."""

    def __init__(self, root: Path = PACKAGE_DIR) -> None:
        self.root = root
        self._manifest: dict[str, str] | None = None

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> Any:
        if not fullname.startswith("rolebridge.") or not path or not enabled():
            return None
        if self._manifest is None:
            self._manifest = read_manifest(self.root)
        if fullname not in self._manifest:
            return None  # never built: the usual import (its source)
        source = source_of(fullname, self.root)
        if not source.is_file() or source.parent not in {Path(entry).resolve() for entry in path}:
            return None  # not the source the manifest speaks of: the usual import decides
        if state_of(fullname, self._manifest, self.root) != "compiled":
            return None  # stale or missing: its source
        return importlib.util.spec_from_file_location(fullname, extension_of(fullname, self.root))


def install(root: Path = PACKAGE_DIR) -> Guard:
    """Put the guard first on ``sys.meta_path`` (once)."""
    for finder in sys.meta_path:
        if isinstance(finder, Guard):
            return finder
    guard = Guard(root)
    sys.meta_path.insert(0, guard)
    return guard


def status(root: Path = PACKAGE_DIR) -> dict[str, str]:
    """Each hot module's ``state_of``; ``compiled`` reads otherwise when ``ROLEBRIDGE_COMPILED=0``."""
    manifest = read_manifest(root)
    out = {name: state_of(name, manifest, root) for name in HOT_MODULES}
    if not enabled():
        out = {k: "source (ROLEBRIDGE_COMPILED=0)" if v == "compiled" else v for k, v in out.items()}
    return out


def summary(root: Path = PACKAGE_DIR) -> str:
    """One line for logs and benchmark reports."""
    states = status(root)
    n = sum(1 for s in states.values() if s == "compiled")
    if n == len(states):
        return f"compiled request path: all {n} hot modules (Cython)"
    if not enabled():
        return "interpreted request path (ROLEBRIDGE_COMPILED=0)"
    return f"compiled request path: {n} of {len(states)} hot modules (run `make` to build the rest)"
