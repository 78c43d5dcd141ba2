"""Every third-party module imported at top level under src/ is a declared dependency.

A fresh clone's `make demo` installs only what pyproject.toml lists: an import that works in a
long-lived dev venv (someone pip-installed it by hand) but is not declared breaks new users.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# import name -> distribution name, where they differ
DIST_OF = {"yaml": "pyyaml", "jose": "joserfc", "joserfc": "joserfc"}
# modules imported only lazily (inside functions) on paths that need an extra, by design
OPTIONAL = {"airflow", "boto3", "kubernetes", "psycopg", "uvloop", "httptools"}
# guaranteed by a declared dependency's own requirements
TRANSITIVE = {"pydantic": "fastapi", "anyio": "starlette"}


def _declared() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set()
    for spec in meta["dependencies"]:
        names.add(re.split(r"[\[<>=!~ ;]", spec, maxsplit=1)[0].lower())
    return names


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in tree.body:  # module level only: lazy imports inside functions may be optional
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_top_level_third_party_imports_are_declared() -> None:
    declared = _declared()
    stdlib = set(sys.stdlib_module_names)
    missing = {}
    for path in sorted((ROOT / "src" / "rolebridge").rglob("*.py")):
        if "airflow" in path.relative_to(ROOT / "src" / "rolebridge").parts:
            continue  # the Airflow operator lives in its own venv (`airflow` extra)
        for mod in _top_level_imports(path) - stdlib - {"rolebridge", "__future__"} - OPTIONAL:
            dist = TRANSITIVE.get(mod) or DIST_OF.get(mod, mod)
            if dist.lower().replace("_", "-") not in declared:
                missing.setdefault(mod, []).append(str(path.relative_to(ROOT)))
    assert missing == {}, f"imported at module level but not in [project].dependencies: {missing}"
