"""Building the compiled request path: Cython, into ``compiled/extensions``, only what is not current
(see ``__init__``)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from rolebridge.compiled import (
    DIRECTIVES,
    EXTENSIONS,
    HOT_MODULES,
    MANIFEST,
    PACKAGE_DIR,
    SUFFIX,
    digest,
    extension_of,
    load_manifest,
    read_manifest,
    source_of,
)


def build(root: Path = PACKAGE_DIR, modules: Sequence[str] = HOT_MODULES, *, jobs: int | None = None,
          build_dir: Path | None = None, quiet: bool = True) -> list[str]:
    """Compile what is not current into ``<root>/compiled/extensions`` and write the manifest; returns the
    modules (re)built. ``root`` is the package directory (``src/rolebridge``); tests build a copy of it."""
    from Cython import __version__ as cython_version
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    _remove_in_place_builds(root)
    stamp = {"cython": cython_version, "directives": DIRECTIVES}
    data = load_manifest(root)
    manifest = read_manifest(root) if all(data.get(k) == v for k, v in stamp.items()) else {}
    extensions_dir = root / EXTENSIONS
    for built in extensions_dir.rglob("*" + SUFFIX) if extensions_dir.exists() else ():
        name = ".".join(built.relative_to(extensions_dir).with_name(built.name.removesuffix(SUFFIX)).parts)
        if name not in modules:  # no longer hot: nothing may import it
            built.unlink()
    wanted = {name: digest(source_of(name, root)) for name in modules}
    todo = [name for name, sha in wanted.items() if manifest.get(name) != sha or not extension_of(name, root).is_file()]
    if todo:
        kept = {k: v for k, v in manifest.items() if k in wanted and k not in todo}
        _write_manifest(root, kept, stamp)  # what is being rebuilt is out of it until it is built
        build_dir = build_dir or root.parent.parent / "build" / "compiled"
        # Cython's generated C draws compiler warnings that say nothing about our code: silenced unless asked
        flags = [] if not quiet else ["-w"]
        sources = [Extension(name, [str(source_of(name, root))], extra_compile_args=flags) for name in todo]
        ext_modules = cythonize(sources, build_dir=str(build_dir / "c"), compiler_directives=DIRECTIVES,
                                quiet=quiet, nthreads=0, force=True)
        dist = Distribution({"name": "rolebridge-compiled", "ext_modules": ext_modules,
                             "script_name": "rolebridge.compiled"})
        command = dist.get_command_obj("build_ext")
        command.build_lib = str(extensions_dir)  # <extensions>/rolebridge/http/query<SUFFIX>: see extension_of
        command.build_temp = str(build_dir / "tmp")
        command.parallel = jobs or os.cpu_count() or 1
        if quiet:
            logging.getLogger().setLevel(logging.WARNING)  # setuptools logs every gcc command at INFO
        dist.run_command("build_ext")
        kept.update({name: wanted[name] for name in todo})
        manifest = kept
    _write_manifest(root, {k: v for k, v in manifest.items() if k in wanted}, stamp)
    return todo


def _remove_in_place_builds(root: Path) -> None:
    """Extensions beside the sources (this package's first layout) would shadow them for any importer
    without the guard: they go."""
    extensions_dir = (root / EXTENSIONS).resolve()
    for built in root.rglob("*" + SUFFIX):
        if extensions_dir not in built.resolve().parents:
            built.unlink()


def _write_manifest(root: Path, modules: dict[str, str], stamp: dict[str, object]) -> None:
    path = root / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"suffix": SUFFIX, **stamp, "modules": dict(sorted(modules.items()))}, indent=1) + "\n")
    tmp.replace(path)


def clean(root: Path = PACKAGE_DIR) -> None:
    _remove_in_place_builds(root)
    shutil.rmtree(root / EXTENSIONS, ignore_errors=True)
    (root / MANIFEST).unlink(missing_ok=True)
