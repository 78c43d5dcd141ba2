"""Submitting a run to Kubernetes with the official client, and reading status and logs back.

The run is recorded in the store like a local one (``platform.runs``); here it becomes a
ServiceAccount + Job (``manifests``), both validated offline before they are sent. ``wait``
maps the Job's conditions to the run's status; ``cancel`` deletes the Job with foreground
propagation (its pods go too) and the service account, so no credential outlives the run.

``execute_on_kubernetes`` is the supervisor `rolebridge run --runner kubernetes` and
`rolebridge job run` use: it takes a slot under the cluster's concurrency limit, records where the
run went (``placement``: context, namespace, Job), submits, polls the Job while watching for a
cancel (Ctrl-C, `rolebridge runs cancel`), then reads the pods' logs and the container's exit code
back into the run's record. If the supervisor dies, ``release_placement`` lets `runs cancel` and the
orphan reaper delete the Job and service account without it.

No token is minted here and no preflight assume is made: the pod's token comes from the Kubernetes
API server (the cluster's issuer), so the first assume happens in the pod and the run's ``assume``
outcome stays empty; its identity is the service account and role recorded with the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolebridge import errors
from rolebridge.k8s import manifests

INSTALL_HINT = "pip install 'rolebridge[kubernetes]'"
REQUEST_TIMEOUT = (10, 60)  # connect, read (seconds) for every API call: a dead cluster must not hang a run
MAX_POLL_ERRORS = 5  # consecutive failed status reads before the supervisor gives up on the Job


@dataclass
class JobState:
    status: str  # pending | running | succeeded | failed
    active: int
    succeeded: int
    failed: int
    message: str | None = None


def require_client() -> None:
    """The ``kubernetes`` package is an optional extra: say how to get it, in one line."""
    try:
        import kubernetes  # noqa: F401
    except ImportError as exc:
        raise errors.ValidationError(
            f"the Kubernetes runner needs the official kubernetes client, which is not installed: {INSTALL_HINT}"
        ) from exc


def kubeconfig_paths() -> list[Path]:
    """Where kubectl looks: ``$KUBECONFIG`` (a path list) or ``~/.kube/config``."""
    raw = os.environ.get("KUBECONFIG") or "~/.kube/config"
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]


def _kubeconfig_contexts(files: list[Path]) -> tuple[list[str], str | None]:
    """Context names and the current context of the merged files (first file wins, as kubectl merges).

    Read here rather than with ``config.list_kube_config_contexts``, which fails outright on a file
    without ``current-context`` even when the user names a context."""
    import yaml

    names: list[str] = []
    current: str | None = None
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise errors.ValidationError(f"kubeconfig {path} cannot be read: {exc}") from exc
        if not isinstance(data, dict):
            raise errors.ValidationError(f"kubeconfig {path} is not a kubeconfig (expected a mapping)")
        for ctx in data.get("contexts") or []:
            if isinstance(ctx, dict) and isinstance(ctx.get("name"), str) and ctx["name"] not in names:
                names.append(ctx["name"])
        if current is None and data.get("current-context"):
            current = str(data["current-context"])
    return names, current


class KubernetesRunner:
    """``api_client`` is a ``kubernetes.client.ApiClient`` (from kubeconfig, in-cluster, or a test server)."""

    def __init__(self, api_client: Any, context: str | None = None) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.context = context  # the kubeconfig context it came from, recorded with the run
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)

    @classmethod
    def connect(cls, context: str | None = None) -> KubernetesRunner:
        """The runner for ``context`` of the user's kubeconfig (default: its current context), or the
        in-cluster config inside a pod. Every way this goes wrong is one ``ValidationError`` line that
        names the file and the fix: no client installed, no kubeconfig, an unknown context."""
        require_client()
        from kubernetes import config
        from kubernetes.client import ApiClient

        paths = kubeconfig_paths()
        files = [p for p in paths if p.is_file()]
        if not files and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
            return cls(ApiClient(), "in-cluster")
        if not files:
            raise errors.ValidationError(
                f"no kubeconfig found at {os.pathsep.join(map(str, paths))}: set KUBECONFIG, or create one "
                "(`kind create cluster`, `aws eks update-kubeconfig --name CLUSTER`)")
        names, current = _kubeconfig_contexts(files)
        where = os.pathsep.join(map(str, files))
        chosen = context or current
        if chosen is None:
            raise errors.ValidationError(
                f"kubeconfig {where} has no current-context: pass --kube-context "
                f"(contexts: {', '.join(names) or 'none'})")
        if chosen not in names:
            raise errors.ValidationError(
                f"context {chosen!r} is not in kubeconfig {where} (contexts: {', '.join(names) or 'none'})")
        try:
            api = config.new_client_from_config(config_file=where, context=chosen, persist_config=False)
        except (config.ConfigException, ValueError, KeyError, TypeError) as exc:
            raise errors.ValidationError(f"kubeconfig {where}, context {chosen!r}: {exc}") from exc
        return cls(api, chosen)

    def submit(self, spec: manifests.PodSpecInput) -> str:
        """Create the service account and the Job; returns the Job's name."""
        sa, job = manifests.service_account(spec), manifests.job(spec)
        problems = manifests.validate(sa, "V1ServiceAccount") + manifests.validate(job, "V1Job")
        if problems:
            raise errors.ValidationError("invalid Kubernetes manifest: " + "; ".join(problems))
        self.core.create_namespaced_service_account(spec.environment, sa, _request_timeout=REQUEST_TIMEOUT)
        try:
            self.batch.create_namespaced_job(spec.environment, job, _request_timeout=REQUEST_TIMEOUT)
        except Exception:
            self.core.delete_namespaced_service_account(spec.service_account, spec.environment,
                                                        _request_timeout=REQUEST_TIMEOUT)
            raise
        return job["metadata"]["name"]

    def state(self, namespace: str, name: str) -> JobState:
        job = self.batch.read_namespaced_job_status(name, namespace, _request_timeout=REQUEST_TIMEOUT)
        st = job.status
        active, ok, bad = st.active or 0, st.succeeded or 0, st.failed or 0
        for cond in st.conditions or []:
            if cond.status == "True" and cond.type == "Complete":
                return JobState("succeeded", active, ok, bad)
            if cond.status == "True" and cond.type == "Failed":
                return JobState("failed", active, ok, bad, cond.message or cond.reason)
        if ok:
            return JobState("succeeded", active, ok, bad)
        return JobState("running" if active else "pending", active, ok, bad)

    def wait(self, namespace: str, name: str, *, timeout: float = 3600, poll: float = 1.0) -> JobState:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(namespace, name)
            if state.status in ("succeeded", "failed") or time.monotonic() > deadline:
                return state
            time.sleep(poll)

    def pods(self, namespace: str, name: str) -> list[Any]:
        """The Job's pods, oldest first (one per attempt)."""
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"job-name={name}",
                                             _request_timeout=REQUEST_TIMEOUT).items
        pods.sort(key=lambda p: (str(p.metadata.creation_timestamp or ""), p.metadata.name))
        return pods

    def logs(self, namespace: str, name: str) -> str:
        """The logs of the Job's pods (oldest first), stdout and stderr interleaved as the kubelet keeps them.

        A pod whose container never started (image pull failure) has no log: that is said in a line
        rather than losing the other pods' logs."""
        from kubernetes.client import ApiException

        out = []
        for pod in self.pods(namespace, name):
            try:
                out.append(self.core.read_namespaced_pod_log(pod.metadata.name, namespace,
                                                             _request_timeout=REQUEST_TIMEOUT))
            except ApiException as exc:
                out.append(f"[rolebridge] no log from pod {pod.metadata.name}: {describe_api_error(exc)}\n")
        return "".join(out)

    def exit_code(self, namespace: str, name: str) -> int | None:
        """The exit code of the job container in the newest pod that has ended (the attempt that decided
        the run); None when no container ran to an end (image never pulled, pod deleted)."""
        for pod in reversed(self.pods(namespace, name)):
            statuses = (pod.status.container_statuses if pod.status else None) or []
            for cs in statuses:
                if cs.name == "job" and cs.state is not None and cs.state.terminated is not None:
                    return int(cs.state.terminated.exit_code)
        return None

    def cancel(self, namespace: str, name: str, service_account: str) -> None:
        self.delete_job(namespace, name)
        self.delete_service_account(namespace, service_account)

    def cleanup(self, namespace: str, service_account: str) -> None:
        """After the Job ended: the run's service account goes (the Job has a TTL)."""
        self.delete_service_account(namespace, service_account)

    def delete_job(self, namespace: str, name: str) -> None:
        """The Job and, before it is gone, its pods (foreground propagation)."""
        from kubernetes.client import V1DeleteOptions

        self.batch.delete_namespaced_job(name, namespace, body=V1DeleteOptions(propagation_policy="Foreground"),
                                         _request_timeout=REQUEST_TIMEOUT)

    def delete_service_account(self, namespace: str, service_account: str) -> None:
        self.core.delete_namespaced_service_account(service_account, namespace, _request_timeout=REQUEST_TIMEOUT)


def describe_api_error(exc: BaseException) -> str:
    """One line for an API failure: HTTP status, the Status object's reason and message when there is one."""
    status = getattr(exc, "status", None)
    if status is None:  # no HTTP answer at all (connection refused, DNS, TLS)
        return f"cannot reach the Kubernetes API server: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    try:
        body = json.loads(getattr(exc, "body", None) or "{}")
    except ValueError:
        body = {}
    reason = body.get("reason") or getattr(exc, "reason", "") or ""
    message = body.get("message") or ""
    return " ".join(str(p) for p in (status, reason) if p) + (f": {message}" if message else "")


def _hint(exc: BaseException, namespace: str) -> str:
    """The fix for the refusals users meet first on a new cluster."""
    status = getattr(exc, "status", None)
    if status == 404:
        return f" (does namespace {namespace} exist? `kubectl create namespace {namespace}`)"
    if status == 403:
        return f" (the kubeconfig's user needs create/get/delete on serviceaccounts and jobs in {namespace})"
    return ""


def _gone(exc: BaseException) -> bool:
    return getattr(exc, "status", None) == 404


@dataclass
class KubernetesTarget:
    """How a run goes to Kubernetes: the image, and what the run itself does not say."""

    image: str
    sts_endpoint: str | None = None  # for rolebridge's own STS; None: the SDK's regional AWS endpoint
    expiration_seconds: int | None = None  # the projected token's lifetime; None: the cluster's (>= 600 s)
    env: dict[str, str] = field(default_factory=dict)
    region: str = "us-east-1"


def placement_of(runner: KubernetesRunner, spec: manifests.PodSpecInput) -> dict[str, Any]:
    return {"runner": "kubernetes", "context": runner.context, "namespace": spec.environment,
            "job": manifests.job_name(spec.run_id), "image": spec.image}


def release_placement(placement: dict[str, Any], service_account: str) -> str | None:
    """Delete a run's Job and service account when its supervisor is gone (``runs.cancel_run``, the
    orphan reaper). Best effort by design: the record is ended either way, and what could not be deleted
    is returned as a note with the kubectl commands to finish the job, instead of an error."""
    namespace, job = str(placement.get("namespace")), str(placement.get("job"))
    manual = (f"delete them with `kubectl delete job {job} -n {namespace}` and "
              f"`kubectl delete serviceaccount {service_account} -n {namespace}`")
    context = placement.get("context")
    try:
        runner = KubernetesRunner.connect(None if context == "in-cluster" else context)
    except errors.AWSError as exc:
        return f"Job {namespace}/{job} not deleted ({exc.message}); {manual}"
    failures = []
    for what, call in (("Job", lambda: runner.delete_job(namespace, job)),
                       ("service account", lambda: runner.delete_service_account(namespace, service_account))):
        try:
            call()
        except Exception as exc:  # any failure is reported, none may stop the record from ending
            if not _gone(exc):
                failures.append(f"{what}: {describe_api_error(exc)}")
    return f"not deleted on Kubernetes ({'; '.join(failures)}); {manual}" if failures else None


class _Echo:
    """The supervisor's own lines (``[rolebridge] ...``) in the run's log, and on stderr in the foreground."""

    def __init__(self, sink: Any, echo: bool) -> None:
        self.sink, self.echo = sink, echo

    def note(self, text: str) -> None:
        self.sink.note(text)
        if self.echo:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(f"[rolebridge] {text}\n")
                sys.stderr.flush()

    def output(self, data: str) -> None:
        self.sink.write(data.encode())
        if self.echo and data:
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.write(data)
                sys.stdout.flush()


def execute_on_kubernetes(services: Any, run_id: str, runner: KubernetesRunner, target: KubernetesTarget, *,
                          stop: threading.Event | None = None, echo: bool = False, poll: float = 1.0,
                          timeout: float | None = None) -> int:
    """Supervise a recorded run (``runs.create_run``) on Kubernetes to its end; returns the exit status.

    ``succeeded`` is 0; ``failed`` is the container's exit code (1 when no container ran to an end);
    ``cancelled`` (``stop`` set, or `runs cancel`) is 130, after the Job and service account are deleted;
    past ``timeout`` the Job is deleted and the run fails. Logs are read back once the Job has ended,
    so `runs logs --follow` shows them then (``kubectl logs -f job/rb-<run id>`` meanwhile)."""
    from rolebridge.platform import runs
    from rolebridge.platform.clusters import get_cluster

    stop = stop or threading.Event()
    row = runs.get_run(services, run_id)
    info = get_cluster(services, row["cluster"])
    spec = manifests.PodSpecInput(
        run_id=run_id, project=row["project"], environment=row["environment"],
        service_account=row["service_account"], role_arn=row["role_arn"] or "", image=target.image,
        command=row["command"][:1], args=row["command"][1:], env=dict(target.env), audience=info.audience,
        expiration_seconds=max(manifests.MIN_EXPIRATION, target.expiration_seconds or info.token_lifetime),
        region=target.region, sts_endpoint=target.sts_endpoint, backoff_limit=max(0, row["max_attempts"] - 1),
        job=row["job"])
    name, ns = manifests.job_name(run_id), spec.environment
    sink = runs.LogSink(runs.run_dir(services, run_id) / runs.LOG_NAME, runs.log_max())
    say = _Echo(sink, echo)

    def end(status: str, exit_code: int | None, message: str | None) -> None:
        runs.mark(services, run_id, status=status, exit_code=exit_code, ended_at=services.clock(), message=message)

    submitted = False
    try:
        if not runs.acquire_slot(services, run_id, row["cluster"], stop.is_set):
            return 130
        runs.mark(services, run_id, placement=placement_of(runner, spec), attempts=1)
        try:
            runner.submit(spec)
        except errors.AWSError:
            raise
        except Exception as exc:
            why = f"Kubernetes refused the run: {describe_api_error(exc)}{_hint(exc, ns)}"
            say.note(why)
            end("failed", None, why)
            return 1
        submitted = True
        deadline = None if timeout is None else time.monotonic() + timeout
        state, poll_errors = JobState("pending", 0, 0, 0), 0
        while True:
            if stop.is_set() or runs.cancel_requested(services, run_id):
                say.note(f"cancel requested: deleting Job {ns}/{name} and service account {spec.service_account}")
                with contextlib.suppress(Exception):  # what ran so far, before the pods go
                    say.output(runner.logs(ns, name))
                runner.cancel(ns, name, spec.service_account)
                submitted = False
                end("cancelled", None, "cancelled")
                return 130
            if deadline is not None and time.monotonic() > deadline:
                say.note(f"timed out after {timeout:g}s: deleting Job {ns}/{name}")
                runner.cancel(ns, name, spec.service_account)
                submitted = False
                end("failed", None, f"timed out after {timeout:g}s on Kubernetes")
                return 1
            try:
                state = runner.state(ns, name)
                poll_errors = 0
            except Exception as exc:
                poll_errors += 1
                if poll_errors >= MAX_POLL_ERRORS:
                    raise
                say.note(f"reading Job {ns}/{name} failed ({describe_api_error(exc)}); retrying")
            else:
                tried = min(row["max_attempts"], state.active + state.succeeded + state.failed)
                if tried > 1:
                    runs.mark(services, run_id, attempts=tried)
                if state.status in ("succeeded", "failed"):
                    break
            time.sleep(poll)
        say.output(runner.logs(ns, name))
        code = 0 if state.status == "succeeded" else runner.exit_code(ns, name)
        with contextlib.suppress(Exception):  # the Job keeps its TTL; the identity goes now
            runner.cleanup(ns, spec.service_account)
        submitted = False
        if state.status == "succeeded":
            end("succeeded", 0, None)
            return 0
        message = f"exit {code}" if code is not None else "no container exit code"
        if state.message:
            message += f" ({state.message})"
        end("failed", code, message)
        return code if code else 1
    except BaseException as exc:
        note = None
        if submitted:  # the supervisor cannot follow the Job any more: no credential may outlive the run
            note = release_placement(placement_of(runner, spec), spec.service_account)
        if runs.get_run(services, run_id)["status"] not in runs.TERMINAL:
            why = describe_api_error(exc) if getattr(exc, "status", None) else str(exc) or type(exc).__name__
            end("failed", None, f"supervisor error: {why}" + (f"; {note}" if note else ""))
        raise
    finally:
        sink.close()


def run_on_kubernetes(services: Any, runner: KubernetesRunner, run: dict[str, Any], *, image: str,
                      sts_endpoint: str | None = None, expiration_seconds: int = 86400,
                      timeout: float = 3600, poll: float = 1.0) -> dict[str, Any]:
    """Execute a recorded run (``platform.runs.create_run``) on Kubernetes and record its outcome."""
    from rolebridge.platform import runs

    target = KubernetesTarget(image=image, sts_endpoint=sts_endpoint, expiration_seconds=expiration_seconds)
    execute_on_kubernetes(services, run["id"], runner, target, timeout=timeout, poll=poll)
    return runs.get_run(services, run["id"])
