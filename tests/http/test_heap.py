"""http/heap.py: a serving process loads the Query path's lazy parts, then freezes its heap.

Run in a child process: freezing the test process would keep every test's objects alive.
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import gc, json, time
from rolebridge.http import heap, query, xml
from rolebridge.iam.registry import OPERATIONS
import rolebridge.http.app  # registers every operation, as a server's import does
before = gc.get_freeze_count()
heap.settle()
t0 = time.perf_counter(); gc.collect(2); full_ms = (time.perf_counter() - t0) * 1000
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "full_ms": full_ms,
                  "operations": len(OPERATIONS), "plans": query._flat_plan.cache_info().currsize,
                  "writers": xml._result_writer.cache_info().currsize}))
"""


def test_settle_compiles_every_operation_and_freezes_what_is_there() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, check=True)
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts["before"] == 0
    # the service models and compiled plans are tens of thousands of objects: all frozen now
    assert facts["frozen"] > 50_000, facts
    # every registered operation has its input plan and result writer built before the first request
    assert facts["plans"] == facts["writers"] == facts["operations"] >= 40, facts
    # a full collection no longer walks them (it took 20-35 ms on the bench machine before)
    assert facts["full_ms"] < 10, facts
