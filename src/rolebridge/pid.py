"""This process's id, read without a system call.

Why: several per-request checks ask "am I still the process that made this?" (random blocks, the
audit writer, the lookup cache's connection), so a forked child never reuses its parent's state.
``os.getpid()`` is a real system call on current glibc, and there were seven of them per
AssumeRoleWithWebIdentity, each costing far more under load than its ~0.1 µs in isolation. The id
is kept here and renewed by Python's at-fork hook in the child (the hook CPython's own ``random``
module relies on to reseed a child), so the checks compare two integers.
"""

from __future__ import annotations

import os

_pid = os.getpid()


def _renew() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_renew)


def current() -> int:
    """``os.getpid()`` as of the last fork."""
    return _pid
