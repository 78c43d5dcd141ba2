"""A serving process's heap, settled once: what the Query path loads lazily, loaded, then frozen.

Why: CPython's full (generation 2) collection walks every tracked object. A warm server holds
~120k of them, mostly botocore's service models and the wire plans compiled from them, which live
as long as the process; each full collection took 21-34 ms on the bench machine and came every
second or two under load, stalling the event loop and every request in flight (it was most of
AssumeRoleWithWebIdentity's p99 at 64 connections). ``gc.freeze()`` moves what exists now into the
permanent generation, which collections skip; objects made later are collected as usual.

Called by the process that answers requests (``rolebridge server``, and each ``--workers`` worker)
after its app is built; never in tests that build apps in-process or CLI commands (a frozen object
is never freed, which suits only objects that live as long as the process anyway).
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("rolebridge.http")


def warm_query_path() -> None:
    """Load and compile, for every registered operation, the model, input plan and result writer."""
    from rolebridge.http import query, xml
    from rolebridge.http.models import operation_model
    from rolebridge.iam.registry import OPERATIONS

    for service, action in list(OPERATIONS):
        try:
            operation_model(service, action)
            query._flat_plan(service, action)
            xml._result_writer(service, action)
        except Exception as exc:  # a plan that cannot be built now fails its own requests, as it did before
            log.debug("warm-up of %s:%s skipped: %s", service, action, exc)


def settle() -> None:
    """Warm the Query path, collect what start-up left as garbage, freeze the rest."""
    warm_query_path()
    gc.collect()
    gc.freeze()
