"""rolebridge: short-lived cloud identities for data jobs, runnable offline."""

from rolebridge import compiled as _compiled

__version__ = "0.1.0"

# before any other submodule: a compiled module is imported only if built from its current source
_compiled.install()
