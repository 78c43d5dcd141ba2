"""`rolebridge demo` (what `make demo` runs) passes on a fresh data dir and shows what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROLEBRIDGE = str(Path(sys.executable).parent / "rolebridge")


def test_demo_end_to_end(tmp_path: Path) -> None:
    out = subprocess.run([ROLEBRIDGE, "demo", "--keep", str(tmp_path / "demo")], capture_output=True, text=True,
                         timeout=300, env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
                                           "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "arn:aws:sts::222222222222:assumed-role/cross-account-sample-dev/cross.account.sample-" in text
    assert "wrote sum=5050 to results/sum.txt" in text
    assert "write to input/ refused: AccessDenied" in text
    assert "sub-namespace-mismatch" in text
    assert "needs its full ARN" in text
    assert text.rstrip().endswith("== demo passed")
    assert not (tmp_path / "demo" / "server.json").exists(), "the demo stops its server"
