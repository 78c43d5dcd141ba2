"""Submitting a run to Kubernetes with the official client, and reading status and logs back.

The run is recorded in the store like a local one (``platform.runs``); here it becomes a
ServiceAccount + Job (``manifests``), both validated offline before they are sent. ``wait``
maps the Job's conditions to the run's status; ``cancel`` deletes the Job with foreground
propagation (its pods go too) and the service account, so no credential outlives the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rolebridge import errors
from rolebridge.k8s import manifests


@dataclass
class JobState:
    status: str  # pending | running | succeeded | failed
    active: int
    succeeded: int
    failed: int
    message: str | None = None


class KubernetesRunner:
    """``api_client`` is a ``kubernetes.client.ApiClient`` (from kubeconfig, in-cluster, or a test server)."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)

    @classmethod
    def from_kubeconfig(cls, context: str | None = None) -> KubernetesRunner:
        from kubernetes import config
        from kubernetes.client import ApiClient

        return cls(config.new_client_from_config(context=context) if context else _default_client(config, ApiClient))

    def submit(self, spec: manifests.PodSpecInput) -> str:
        """Create the service account and the Job; returns the Job's name."""
        sa, job = manifests.service_account(spec), manifests.job(spec)
        problems = manifests.validate(sa, "V1ServiceAccount") + manifests.validate(job, "V1Job")
        if problems:
            raise errors.ValidationError("invalid Kubernetes manifest: " + "; ".join(problems))
        self.core.create_namespaced_service_account(spec.environment, sa)
        try:
            self.batch.create_namespaced_job(spec.environment, job)
        except Exception:
            self.core.delete_namespaced_service_account(spec.service_account, spec.environment)
            raise
        return job["metadata"]["name"]

    def state(self, namespace: str, name: str) -> JobState:
        job = self.batch.read_namespaced_job_status(name, namespace)
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

    def logs(self, namespace: str, name: str) -> str:
        """The logs of the Job's pods (oldest first), stdout and stderr interleaved as the kubelet keeps them."""
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
        pods.sort(key=lambda p: (p.metadata.creation_timestamp or 0, p.metadata.name))
        return "".join(self.core.read_namespaced_pod_log(p.metadata.name, namespace) for p in pods)

    def cancel(self, namespace: str, name: str, service_account: str) -> None:
        from kubernetes.client import V1DeleteOptions

        self.batch.delete_namespaced_job(name, namespace, body=V1DeleteOptions(propagation_policy="Foreground"))
        self.core.delete_namespaced_service_account(service_account, namespace)

    def cleanup(self, namespace: str, service_account: str) -> None:
        """After the Job ended: the run's service account goes (the Job has a TTL)."""
        self.core.delete_namespaced_service_account(service_account, namespace)


def _default_client(config: Any, api_client_cls: Any) -> Any:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return api_client_cls()


def run_on_kubernetes(services: Any, runner: KubernetesRunner, run: dict[str, Any], *, image: str,
                      sts_endpoint: str | None = None, expiration_seconds: int = 86400,
                      timeout: float = 3600, poll: float = 1.0) -> dict[str, Any]:
    """Execute a recorded run (``platform.runs.create_run``) on Kubernetes and record its outcome."""
    from rolebridge.platform import runs

    spec = manifests.PodSpecInput(
        run_id=run["id"], project=run["project"], environment=run["environment"],
        service_account=run["service_account"], role_arn=run["role_arn"] or "", image=image,
        command=run["command"][:1], args=run["command"][1:], expiration_seconds=expiration_seconds,
        sts_endpoint=sts_endpoint, job=run["job"])
    name = runner.submit(spec)
    runs.mark(services, run["id"], status="running", started_at=services.clock())
    state = runner.wait(spec.environment, name, timeout=timeout, poll=poll)
    log = runner.logs(spec.environment, name)
    runs.append_log(services, run["id"], log.encode())
    runner.cleanup(spec.environment, spec.service_account)
    final = state.status if state.status in ("succeeded", "failed") else "failed"
    runs.mark(services, run["id"], status=final, ended_at=services.clock(),
              exit_code=0 if final == "succeeded" else None, message=state.message)
    return runs.get_run(services, run["id"])
