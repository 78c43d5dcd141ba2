"""Job runs: the record, the supervisor that executes one, cancellation, logs, limits.

A run is recorded before anything starts (``pending``), takes a slot under its cluster's
concurrency limit (``running``), makes the job's first assume itself (the preflight: the same
AssumeRoleWithWebIdentity the SDK will make, with the same token), then starts the process and
ends ``succeeded``, ``failed`` or ``cancelled``. The outcome of that first assume is kept with the
run: who the job became, or the AWS error plus the explanation from ``preflight.explain_refusal``.

The supervisor is whoever calls ``execute``: the CLI for `rolebridge run` / `job run`, or a thread of
the server for runs submitted through the platform API. Cancellation goes through the store
(``cancel_requested``), which every supervisor polls, so `runs cancel` works from any process; if
the supervisor is gone, ``cancel`` kills the job's process group and deletes its token itself.
Logs (stdout and stderr, interleaved as they arrive) go to ``DATA_DIR/runs/<id>/output.log``, capped
at ``ROLEBRIDGE_RUN_LOG_MAX`` bytes (default 10 MiB); the job keeps running past the cap.

A run sent to Kubernetes (``k8s.runner.execute_on_kubernetes``) is the same record with a
``placement`` (context, namespace, Job): its supervisor is still the command that submitted it, and
when that is gone, ``cancel`` and the orphan reaper delete its Job and service account instead of
killing a process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select, update

from rolebridge import errors
from rolebridge.platform import preflight as pf
from rolebridge.platform.clusters import get_cluster, mint_token
from rolebridge.platform.projects import ensure_environment, ensure_project
from rolebridge.platform.roles import new_service_account, resolve_role_arn, session_name
from rolebridge.platform.runner import JobSpec
from rolebridge.platform.supervise import (  # noqa: F401 - signals_cancel re-exported for cli/run.py
    POLL,
    Attempts,
    LogSink,
    Supervision,
    log_max,
    remove_secrets,
    run_attempts,
    signals_cancel,
)
from rolebridge.services import Services
from rolebridge.store.schema import Run, Setting

STATUSES = ("pending", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
LOG_NAME = "output.log"
DEFAULT_RUN_LIMIT = 8
LIMIT_KEY = "run_limit:"


@dataclass
class RunRequest:
    """Everything needed to start a run; ``aws_role`` is already chosen (explicit > job > project)."""

    cluster: str
    project: str
    environment: str
    command: list[str]
    aws_role: str | None = None
    job: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    retry_backoff: float = 1.0
    region: str = "us-east-1"
    preflight: bool = True
    cwd: str | None = None


def run_to_dict(row: Run) -> dict[str, Any]:
    return {"id": row.id, "cluster": row.cluster, "account_id": row.account_id, "project": row.project,
            "environment": row.environment, "namespace": row.environment, "job": row.job,
            "service_account": row.service_account, "subject":
            f"system:serviceaccount:{row.environment}:{row.service_account}", "role_arn": row.role_arn or None,
            "command": list(row.command), "status": row.status, "attempts": row.attempts,
            "max_attempts": row.max_attempts,
            "retry_backoff": row.retry_backoff, "created_at": row.created_at, "started_at": row.started_at,
            "ended_at": row.ended_at, "exit_code": row.exit_code, "assume": row.assume,
            "message": row.message, "cancel_requested": bool(row.cancel_requested),
            "runner": (row.placement or {}).get("runner", "local"), "placement": row.placement}


def run_dir(services: Services, run_id: str) -> Path:
    return services.store.paths.runs_dir / run_id


def secrets_dir(services: Services, run_id: str) -> Path:
    return run_dir(services, run_id) / "identity"


# -- records --------------------------------------------------------------------------------
def create_run(services: Services, req: RunRequest) -> dict[str, Any]:
    """Validate, resolve the role ARN and record the run as ``pending``."""
    info = get_cluster(services, req.cluster)
    if not req.command:
        raise errors.ValidationError("A run needs a command.")
    now = services.clock()
    ensure_project(services, req.project, now=now)
    ensure_environment(services, req.environment, req.cluster, now=now)
    role_arn = resolve_role_arn(req.aws_role, info.account_id) if req.aws_role else ""
    run_id = str(uuid.uuid4())
    directory = run_dir(services, run_id)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    log = directory / LOG_NAME
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    row = Run(id=run_id, cluster=req.cluster, account_id=info.account_id, project=req.project,
              environment=req.environment, job=req.job, service_account=new_service_account(req.project),
              role_arn=role_arn, command=list(req.command), status="pending", attempts=0,
              max_attempts=1 + max(0, req.retries), retry_backoff=req.retry_backoff, created_at=now,
              log_path=str(log), cancel_requested=0)
    with services.store.tx() as s:
        s.add(row)
    return run_to_dict(row)


def get_run(services: Services, run_id: str) -> dict[str, Any]:
    with services.store.read() as s:
        row = s.get(Run, run_id)
        if row is None:
            raise errors.NoSuchEntity(f"Run {run_id} does not exist.")
        return run_to_dict(row)


def list_runs(services: Services, *, account_id: str | None = None, cluster: str | None = None,
              project: str | None = None, environment: str | None = None, status: str | None = None,
              limit: int = 100) -> list[dict[str, Any]]:
    reap_orphans(services)
    q = select(Run).order_by(Run.created_at.desc()).limit(max(1, min(limit, 1000)))
    for column, value in ((Run.account_id, account_id), (Run.cluster, cluster), (Run.project, project),
                          (Run.environment, environment), (Run.status, status)):
        if value is not None:
            q = q.where(column == value)
    with services.store.read() as s:
        return [run_to_dict(r) for r in s.execute(q).scalars()]


def run_accounts(services: Services) -> list[str]:
    """The accounts that have runs."""
    with services.store.read() as s:
        return list(s.execute(select(Run.account_id).distinct().order_by(Run.account_id)).scalars())


def _update(services: Services, run_id: str, **values: Any) -> None:
    with services.store.tx() as s:
        s.execute(update(Run).where(Run.id == run_id).values(**values))


def mark(services: Services, run_id: str, **values: Any) -> None:
    """Update a run's record (for runners that supervise elsewhere, e.g. Kubernetes)."""
    unknown = set(values) - {"status", "started_at", "ended_at", "exit_code", "message", "assume", "attempts",
                             "placement"}
    if unknown or values.get("status", "pending") not in STATUSES:
        raise errors.ValidationError(f"cannot set {sorted(unknown) or values.get('status')} on a run")
    _update(services, run_id, **values)


def read_log(services: Services, run_id: str, offset: int = 0, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
    """Up to ``max_bytes`` of the log from ``offset``; returns the data and the next offset."""
    get_run(services, run_id)  # NoSuchEntity for an unknown id
    path = run_dir(services, run_id) / LOG_NAME
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, offset))
            data = fh.read(max(0, max_bytes))
    except FileNotFoundError:
        return b"", offset
    return data, max(0, offset) + len(data)


# -- concurrency limit ------------------------------------------------------------------------
def run_limit(services: Services, cluster: str) -> int:
    value = services.store.get_setting(LIMIT_KEY + cluster)
    return int(value) if value else int(os.environ.get("ROLEBRIDGE_RUN_LIMIT", DEFAULT_RUN_LIMIT))


def set_run_limit(services: Services, cluster: str, limit: int) -> int:
    get_cluster(services, cluster)
    if not 1 <= limit <= 10_000:
        raise errors.ValidationError("The concurrency limit must be between 1 and 10000.")
    with services.store.tx() as s:
        row = s.get(Setting, LIMIT_KEY + cluster)
        if row is None:
            s.add(Setting(key=LIMIT_KEY + cluster, value=str(limit)))
        else:
            row.value = str(limit)
    return limit


def _try_acquire(services: Services, run_id: str, cluster: str, limit: int, supervisor_pid: int | None = None) -> bool:
    """pending -> running in one statement, only while fewer than ``limit`` runs of the cluster run."""
    running = (select(func.count()).select_from(Run)
               .where(and_(Run.cluster == cluster, Run.status == "running")).scalar_subquery())
    with services.store.tx() as s:
        if s.bind is not None and s.bind.dialect.name != "sqlite":  # serialize per cluster elsewhere
            from rolebridge.store.schema import Cluster

            s.execute(select(Cluster).where(Cluster.name == cluster).with_for_update())
        result = s.execute(update(Run).where(Run.id == run_id, Run.status == "pending", Run.cancel_requested == 0,
                                             running < limit)
                           .values(status="running", started_at=services.clock(),
                                   supervisor_pid=supervisor_pid or os.getpid(), supervisor_host=socket.gethostname()))
        return bool(result.rowcount)


# -- orphans and cancellation -------------------------------------------------------------------
def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pid: int | None) -> None:
    if not pid:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.2)


def _release_placement(row: Run) -> str | None:
    """A run placed on Kubernetes whose supervisor is gone: delete its Job and service account, as the
    supervisor would have. Returns what could not be deleted (with the command to do it), else None."""
    placement = row.placement or {}
    if placement.get("runner") != "kubernetes":
        return None
    from rolebridge.k8s.runner import release_placement

    return release_placement(placement, row.service_account)


def _abandon(services: Services, row: Run, status: str, message: str) -> None:
    _kill_group(row.pid)
    shutil.rmtree(secrets_dir(services, row.id), ignore_errors=True)
    left = _release_placement(row)
    if left:
        message = f"{message}; {left}"
    with services.store.tx() as s:
        s.execute(update(Run).where(Run.id == row.id, Run.status.in_(("pending", "running")))
                  .values(status=status, ended_at=services.clock(), message=message))


def reap_orphans(services: Services) -> int:
    """Runs whose supervisor (on this host) died: end them, kill the job, delete the token."""
    host = socket.gethostname()
    with services.store.read() as s:
        rows = list(s.execute(select(Run).where(Run.status.in_(("pending", "running")),
                                                Run.supervisor_host == host)).scalars())
    dead = [r for r in rows if not _alive(r.supervisor_pid)]
    for row in dead:
        if row.cancel_requested:
            _abandon(services, row, "cancelled", "cancelled (its supervisor had exited)")
        else:
            _abandon(services, row, "failed", f"its supervisor (pid {row.supervisor_pid}) exited")
    return len(dead)


def cancel_run(services: Services, run_id: str, *, wait: float = 10.0) -> dict[str, Any]:
    """Ask the run's supervisor to stop it; wait until it has (or do it ourselves if none is left)."""
    with services.store.tx() as s:
        row = s.get(Run, run_id)
        if row is None:
            raise errors.NoSuchEntity(f"Run {run_id} does not exist.")
        if row.status in TERMINAL:
            return run_to_dict(row)
        row.cancel_requested = 1
        if row.status == "pending" and row.supervisor_pid is None:
            row.status, row.ended_at, row.message = "cancelled", services.clock(), "cancelled before it started"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        current = get_run(services, run_id)
        if current["status"] in TERMINAL:
            return current
        with services.store.read() as s:
            row = s.get(Run, run_id)
            assert row is not None
            if not _alive(row.supervisor_pid) and row.supervisor_host == socket.gethostname():
                _abandon(services, row, "cancelled", "cancelled (its supervisor had exited)")
        time.sleep(POLL)
    return get_run(services, run_id)


def cancel_requested(services: Services, run_id: str) -> bool:
    """Whether someone asked to cancel the run (`runs cancel`, the API): polled by every supervisor."""
    with services.store.read() as s:
        return bool(s.execute(select(Run.cancel_requested).where(Run.id == run_id)).scalar_one_or_none())


# -- logs -------------------------------------------------------------------------------------
def follow_log(services: Services, run_id: str, *, poll: float = 0.2) -> Iterator[bytes]:
    """Yield log chunks until the run has ended and the log is drained."""
    offset = 0
    while True:
        data, offset = read_log(services, run_id, offset)
        if data:
            yield data
            continue
        if get_run(services, run_id)["status"] in TERMINAL:
            data, offset = read_log(services, run_id, offset)
            if data:
                yield data
            return
        time.sleep(poll)


# -- the supervisor -----------------------------------------------------------------------------
class LocalLedger:
    """A supervisor's view of its run in this process's store (see ``supervise.Ledger``)."""

    def __init__(self, services: Services, run_id: str, mint: Callable[[float], str]) -> None:
        self.services, self.run_id, self.mint = services, run_id, mint

    def started(self, pid: int, attempt: int) -> None:
        _update(self.services, self.run_id, pid=pid, attempts=attempt)

    def cancel_requested(self) -> bool:
        return cancel_requested(self.services, self.run_id)

    def finish(self, status: str, exit_code: int | None, message: str | None) -> None:
        _finish(self.services, self.run_id, status, exit_code, message)


def _mint_for(services: Services, row: dict[str, Any], lifetime: int | None) -> Callable[[float], str]:
    def mint(now: float) -> str:
        return mint_token(services, row["cluster"], namespace=row["environment"],
                          service_account=row["service_account"], expires_in=lifetime, now=now)
    return mint


def _finish(services: Services, run_id: str, status: str, exit_code: int | None, message: str | None) -> None:
    _update(services, run_id, status=status, exit_code=exit_code, ended_at=services.clock(), message=message,
            pid=None)


def acquire_slot(services: Services, run_id: str, cluster: str, stop: Callable[[], bool],
                 supervisor_pid: int | None = None) -> bool:
    """Wait for a slot under the cluster's limit; False (and the run ``cancelled``) if stopped meanwhile."""
    limit = run_limit(services, cluster)
    while not _try_acquire(services, run_id, cluster, limit, supervisor_pid):
        if stop() or cancel_requested(services, run_id):
            _finish(services, run_id, "cancelled", None, "cancelled while waiting for a slot")
            return False
        reap_orphans(services)
        time.sleep(POLL)
    return True


@dataclass
class FirstAssume:
    """The run's first token and the outcome of the preflight made with it (None: no preflight)."""

    token: str
    outcome: pf.AssumeOutcome | None


def first_assume(services: Services, row: dict[str, Any], req: RunRequest, sup: Supervision,
                 sink: LogSink, *, sts: pf.StsClient | None = None) -> FirstAssume:
    """Mint the first token and, for a run with a role, make its first assume; record the outcome.

    A refusal is explained, noted in the log and ends the run ``failed``: the job is never started.
    """
    first_token = _mint_for(services, row, sup.token_lifetime)(services.clock())
    role_arn = row["role_arn"] or ""
    if not (role_arn and req.preflight):
        return FirstAssume(first_token, None)
    sess = session_name(row["service_account"])
    client = sts or pf.StsClient(sup.sts_url, sup.ca_bundle)
    try:
        outcome = client.assume(role_arn=role_arn, session_name=sess, token=first_token)
    finally:
        if sts is None:
            client.close()
    if not outcome.ok:
        pf.explain_refusal(services, outcome, role_arn=role_arn, session_name=sess, token=first_token,
                           cluster_account=row["account_id"], bare_role=not (req.aws_role or "").startswith("arn:"))
        sink.note(f"refused: {outcome.error_code}: {outcome.error_message}")
        if outcome.detail:
            sink.note(f"cause: {outcome.detail}")
        sink.note(f"fix: {outcome.fix}")
        _update(services, row["id"], assume=outcome.to_dict(), status="failed", exit_code=None,
                ended_at=services.clock(), message=f"{outcome.error_code}: {outcome.error_message}", pid=None)
    else:
        _update(services, row["id"], assume=outcome.to_dict())
    return FirstAssume(first_token, outcome)


def job_spec(row: dict[str, Any], req: RunRequest, sup: Supervision) -> JobSpec:
    return JobSpec(command=row["command"], role_arn=row["role_arn"] or "",
                   session_name=session_name(row["service_account"]), sts_url=sup.sts_url, ca_bundle=sup.ca_bundle,
                   region=req.region, env=dict(req.env), cwd=req.cwd)


def execute(services: Services, run_id: str, req: RunRequest, sup: Supervision) -> int:
    """Supervise one run to its end. Returns the job's exit status (128+N for a signal, 1 if refused)."""
    row = get_run(services, run_id)
    info = get_cluster(services, row["cluster"])
    sink = LogSink(run_dir(services, run_id) / LOG_NAME, log_max())
    try:
        if not acquire_slot(services, run_id, row["cluster"], sup.stop.is_set):
            return 130
        first = first_assume(services, row, req, sup, sink)
        if first.outcome is not None and not first.outcome.ok:
            if sup.on_refused is not None:
                sup.on_refused({**get_run(services, run_id)})
            return 1
        ledger = LocalLedger(services, run_id, _mint_for(services, row, sup.token_lifetime))
        plan = Attempts(spec=job_spec(row, req, sup), max_attempts=row["max_attempts"],
                        retry_backoff=float(row["retry_backoff"]), secrets_dir=secrets_dir(services, run_id),
                        token_lifetime=info.token_lifetime, clock=services.clock)
        return run_attempts(ledger, plan, first.token, sink, sup)
    except BaseException as exc:
        if get_run(services, run_id)["status"] not in TERMINAL:
            _finish(services, run_id, "failed", None, f"supervisor error: {exc}")
        raise
    finally:
        sink.close()
        remove_secrets(secrets_dir(services, run_id))


def start_in_background(services: Services, req: RunRequest, sup: Supervision) -> dict[str, Any]:
    """Record a run and supervise it on a thread (the platform API's submission path)."""
    row = create_run(services, req)

    def target() -> None:
        with contextlib.suppress(Exception):
            execute(services, row["id"], req, sup)

    threading.Thread(target=target, name=f"run-{row['id']}", daemon=True).start()
    return row
