"""Building the compiled request path: Cython, in place, only what is not current (see ``__init__``)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from rolebridge.compiled import DIRECTIVES, HOT_MODULES, MANIFEST, PACKAGE_DIR, SUFFIX, digest, read_manifest, source_of


def build(root: Path = PACKAGE_DIR, modules: Sequence[str] = HOT_MODULES, *, jobs: int | None = None,
          build_dir: Path | None = None, quiet: bool = True) -> list[str]:
    """Compile what is not current in place and write the manifest; returns the modules (re)built.

    ``root`` is the package directory (``src/rolebridge``); tests build a copy of it.
    """
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    manifest = read_manifest(root)
    # an extension the manifest does not vouch for (an interrupted build, a module no longer hot) goes
    for leftover in root.rglob("*" + SUFFIX):
        name = "rolebridge." + ".".join(leftover.relative_to(root).with_name(
            leftover.name.removesuffix(SUFFIX)).parts)
        if name not in modules:
            leftover.unlink()
            manifest.pop(name, None)
    wanted = {name: digest(source_of(name, root)) for name in modules}
    todo = [name for name, sha in wanted.items()
            if manifest.get(name) != sha or not source_of(name, root).with_name(
                source_of(name, root).stem + SUFFIX).exists()]
    if todo:
        for name in todo:  # out of the manifest first: an interrupted build leaves these as source
            manifest.pop(name, None)
        _write_manifest(root, {k: v for k, v in manifest.items() if k in wanted})
        src_root = root.parent
        build_dir = build_dir or src_root.parent / "build" / "compiled"
        # Cython's generated C draws compiler warnings that say nothing about our code: silenced unless asked
        flags = [] if not quiet else ["-w"]
        extensions = [Extension(name, [str(source_of(name, root))], extra_compile_args=flags) for name in todo]
        cwd = os.getcwd()
        os.chdir(src_root)  # setuptools resolves package_dir and the in-place targets from here
        try:
            ext_modules = cythonize(extensions, build_dir=str(build_dir / "c"), compiler_directives=DIRECTIVES,
                                    quiet=quiet, nthreads=0, force=True)
            dist = Distribution({"name": "rolebridge-compiled", "ext_modules": ext_modules,
                                 "package_dir": {"": "."}, "script_name": "rolebridge.compiled"})
            command = dist.get_command_obj("build_ext")
            command.inplace = True
            command.build_temp = str(build_dir / "tmp")
            command.parallel = jobs or os.cpu_count() or 1
            if quiet:
                logging.getLogger().setLevel(logging.WARNING)  # setuptools logs every gcc command at INFO
            dist.run_command("build_ext")
        finally:
            os.chdir(cwd)
        for name in todo:
            manifest[name] = wanted[name]
    _write_manifest(root, {k: v for k, v in manifest.items() if k in wanted})
    return todo


def _write_manifest(root: Path, modules: dict[str, str]) -> None:
    path = root / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"suffix": SUFFIX, "modules": dict(sorted(modules.items()))}, indent=1) + "\n")
    tmp.replace(path)


def clean(root: Path = PACKAGE_DIR) -> None:
    for built in root.rglob("*" + SUFFIX):
        built.unlink()
    (root / MANIFEST).unlink(missing_ok=True)
