"""Project files, role precedence and templating, and the token file's refresh schedule (fixed clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolebridge import errors
from rolebridge.bootstrap import open_services
from rolebridge.clock import FixedClock
from rolebridge.platform.clusters import create_cluster, mint_token
from rolebridge.platform.projects import choose_role, load_project_file, parse_project, render
from rolebridge.platform.runner import TokenFile
from rolebridge.tokens.verifier import EXP_GRACE, parse_unverified

FILE = """
project: cross_account_sample
aws_role: "sample-{{ env }}"
jobs:
  default-role:
    command: aws sts get-caller-identity
  own-role:
    command: [python, -c, "print(1)"]
    args: ["--date", "2026-12-01"]
    env: {N: 1}
    aws_role: "arn:aws:iam::222222222222:role/x-{{ environment }}"
    retries: 2
    retry_backoff: 0.5
"""


def test_project_file_parsed(tmp_path: Path) -> None:
    (tmp_path / "rolebridge.yaml").write_text(FILE)
    pf = load_project_file(tmp_path)
    assert pf.name == "cross_account_sample" and pf.aws_role == "sample-{{ env }}"
    assert pf.jobs["default-role"].command == ["aws", "sts", "get-caller-identity"]
    own = pf.jobs["own-role"]
    assert own.args == ["--date", "2026-12-01"] and own.env == {"N": "1"}
    assert (own.retries, own.retry_backoff) == (2, 0.5)


def test_role_precedence_explicit_job_default(tmp_path: Path) -> None:
    (tmp_path / "rolebridge.yaml").write_text(FILE)
    pf = load_project_file(tmp_path)
    kw = {"environment": "prod", "project": pf.name}
    assert choose_role(None, pf.jobs["default-role"], pf.aws_role, **kw) == "sample-prod"
    assert choose_role(None, pf.jobs["own-role"], pf.aws_role, **kw) == "arn:aws:iam::222222222222:role/x-prod"
    assert choose_role("explicit", pf.jobs["own-role"], pf.aws_role, **kw) == "explicit"
    assert choose_role(None, None, None, **kw) is None


def test_template_errors_and_bad_files() -> None:
    with pytest.raises(errors.ValidationError, match="'enviroment' is undefined"):
        render("sample-{{ enviroment }}", environment="dev", project="p")
    with pytest.raises(errors.ValidationError, match="access to attribute"):  # sandboxed
        render("{{ env.__class__.__mro__ }}", environment="dev", project="p")
    with pytest.raises(errors.ValidationError, match="has no command"):
        parse_project({"project": "p", "jobs": {"j": {"args": ["x"]}}})
    with pytest.raises(errors.ValidationError, match="unknown keys"):
        parse_project({"project": "p", "jobs": {"j": {"command": "x", "retry": 1}}})
    with pytest.raises(errors.ValidationError, match="Project name"):
        parse_project({"project": "Bad Name", "jobs": {}})
    with pytest.raises(errors.ValidationError, match="retries must be"):
        parse_project({"project": "p", "jobs": {"j": {"command": "x", "retries": 99}}})


def test_token_file_refresh_schedule_keeps_a_valid_token(tmp_path: Path) -> None:
    """At 80% of the lifetime the file is rewritten; past the old token's expiry the file's token is valid."""
    services = open_services(str(tmp_path / "data"), None, fix_public_url=True)
    t0 = 1_900_000_000.0
    create_cluster(services, "refresh", "360000000001", token_lifetime=600, now=t0)
    clock = FixedClock(t0)

    def mint(now: float) -> str:
        return mint_token(services, "refresh", namespace="dev", service_account="p-1", now=now)

    tf = TokenFile(tmp_path / "identity", mint, 600, clock=clock, refresh_every=None)
    (tmp_path / "identity").mkdir()
    tf.write()
    first = tf.path.read_text()
    assert tf.path.stat().st_mode & 0o777 == 0o600
    clock.advance(479)
    assert tf.tick() is False and tf.path.read_text() == first
    clock.advance(1)  # 480 s = 80% of 600
    assert tf.tick() is True and tf.refreshes == 1
    second = tf.path.read_text()
    assert second != first
    old_exp = parse_unverified(first).claims["exp"]
    new_exp = parse_unverified(second).claims["exp"]
    assert new_exp == int(t0 + 480 + 600)
    later = old_exp + EXP_GRACE + 1  # the old token is refused from here on
    assert new_exp > later
    clock.now = later
    assert tf.tick() is False and tf.path.read_text() == second  # still valid: exp t0+1080
    clock.now = t0 + 960  # and it keeps refreshing, every 480 s
    assert tf.tick() is True
    assert parse_unverified(tf.path.read_text()).claims["exp"] == int(t0 + 960 + 600)
    tf.stop()
    assert tf.tick() is False  # stopped: no more writes
