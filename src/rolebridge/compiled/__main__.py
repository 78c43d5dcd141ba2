"""``python -m rolebridge.compiled [build [--strict] [-v] | status | clean]``."""

from __future__ import annotations

import sys

from rolebridge.compiled import status, summary
from rolebridge.compiled.build import build, clean


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "status"
    if command == "build":
        try:
            built = build(quiet="-v" not in args)
        except Exception as exc:  # no Cython, no compiler: rolebridge still runs, interpreted
            print(f"rolebridge.compiled: build failed ({exc}); the request path stays interpreted", file=sys.stderr)
            return 0 if "--strict" not in args else 1
        print(f"rolebridge.compiled: {'built ' + str(len(built)) + ' module(s)' if built else 'up to date'}; "
              f"{summary()}", file=sys.stderr)
        return 0
    if command == "clean":
        clean()
        return 0
    if command == "status":
        for name, state in status().items():
            print(f"{state:9} {name}")
        print(summary())
        return 0
    print("usage: python -m rolebridge.compiled [build [--strict] [-v] | status | clean]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
