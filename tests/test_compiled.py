"""The compiled request path (rolebridge/compiled): a build is imported only while it matches its source.

A copy of the package is built (one small module, by the project's own build) and imported in
fresh interpreters, so the guard is tested as every process meets it: at import time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rolebridge
from rolebridge import compiled

pytest.importorskip("Cython")

SRC = Path(rolebridge.__file__).resolve().parent


def _copy_package(dest: Path) -> Path:
    root = dest / "src" / "rolebridge"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__", "*.so", "manifest.json", "extensions"))
    return root


def _imported_from(root: Path, module: str, **env: str) -> str:
    code = f"import {module} as m, sys; print(m.__file__)"
    full_env = {**{k: v for k, v in os.environ.items() if k != "ROLEBRIDGE_COMPILED"},
                "PYTHONPATH": str(root.parent), **env}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, check=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rolebridge.compiled.build import build

    root = _copy_package(tmp_path_factory.mktemp("compiled"))
    assert build(root, ("rolebridge.clock", "rolebridge.memo"), build_dir=root.parent.parent / "build") == [
        "rolebridge.clock", "rolebridge.memo"]
    return root


def test_a_current_build_is_imported_and_a_rebuild_is_a_no_op(built: Path) -> None:
    from rolebridge.compiled.build import build

    assert _imported_from(built, "rolebridge.clock").endswith(compiled.SUFFIX)
    assert _imported_from(built, "rolebridge.memo").endswith(compiled.SUFFIX)
    assert _imported_from(built, "rolebridge.randomness").endswith("randomness.py")  # not built
    assert build(built, ("rolebridge.clock", "rolebridge.memo")) == []
    manifest = json.loads((built / compiled.MANIFEST).read_text())
    assert set(manifest["modules"]) == {"rolebridge.clock", "rolebridge.memo"}


def test_an_edited_source_is_imported_as_source_until_rebuilt(built: Path) -> None:
    source = built / "clock.py"
    original = source.read_text()
    try:
        source.write_text(original + "\nEDITED = True\n")
        assert _imported_from(built, "rolebridge.clock").endswith("clock.py")
        assert compiled.status(built)["rolebridge.clock"] == "stale"
        out = subprocess.run([sys.executable, "-c", "import rolebridge.clock as m; print(m.EDITED)"],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(built.parent)})
        assert out.stdout.strip() == "True"  # the edit runs, not the stale build
        assert _imported_from(built, "rolebridge.memo").endswith(compiled.SUFFIX)  # the others stay compiled
    finally:
        source.write_text(original)
    assert _imported_from(built, "rolebridge.clock").endswith(compiled.SUFFIX)  # the same source again


def test_no_manifest_or_compiled_off_means_source(built: Path) -> None:
    assert _imported_from(built, "rolebridge.clock", ROLEBRIDGE_COMPILED="0").endswith("clock.py")
    manifest = built / compiled.MANIFEST
    saved = manifest.read_text()
    try:
        manifest.unlink()  # extensions nobody vouches for (an interrupted build) are not imported
        assert _imported_from(built, "rolebridge.clock").endswith("clock.py")
        manifest.write_text(saved.replace(compiled.SUFFIX, ".cpython-99-other.so"))  # built by another Python
        assert _imported_from(built, "rolebridge.clock").endswith("clock.py")
    finally:
        manifest.write_text(saved)


def test_only_the_guard_imports_a_build_and_never_one_without_its_source(built: Path) -> None:
    """An importer without the guard (an older checkout, a bisect) never meets an extension: they are
    not beside the sources. And a module whose source is gone is not imported from its old build."""
    assert not list(built.glob("*" + compiled.SUFFIX))
    unguarded = ("import sys, rolebridge, rolebridge.compiled as c; "
                 "sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, c.Guard)]; "
                 "import rolebridge.clock as m; print(m.__file__)")
    env = {**os.environ, "PYTHONPATH": str(built.parent)}
    out = subprocess.run([sys.executable, "-c", unguarded], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip().endswith("clock.py")
    source = built / "memo.py"
    saved = source.read_text()
    try:
        source.unlink()
        gone = subprocess.run([sys.executable, "-c", "import rolebridge.memo"], capture_output=True, text=True,
                              env=env)
        assert gone.returncode != 0 and "ModuleNotFoundError" in gone.stderr
    finally:
        source.write_text(saved)


def test_every_hot_module_has_its_source() -> None:
    missing = [name for name in compiled.HOT_MODULES if not compiled.source_of(name).exists()]
    assert not missing
    assert "rolebridge.compiled" not in compiled.HOT_MODULES  # the guard itself always runs as source
