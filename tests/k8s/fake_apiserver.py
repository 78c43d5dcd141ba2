"""A fake kube-apiserver for the Kubernetes runner's tests: no control plane can run on these machines.

No kube-apiserver installs here (reference/ecosystem-recipes.md §1: not in Debian, PyPI or npm, and
no Docker for kind), so the tests point the official ``kubernetes`` client (in-process, or the
`rolebridge` CLI through a kubeconfig) at this small loopback HTTP server. It speaks the recorded
protocol of the few endpoints the runner uses (paths, verbs, JSON shapes of ServiceAccount, Job,
JobStatus, PodList, pod log, Status) and records every request (with its Authorization header, so
a test can tell which kubeconfig user was used) for the assertions.

What a real cluster would do with the Job is played, not run: ``outcome`` says how the Job ends
("succeeded", "failed" with ``exit_code``, or "running" until deleted), the Job reports ``active``
on its first status read and its end on the next one, and the pod's log is what the container
would print: the assumed-role ARN built from the Job's own ``AWS_ROLE_ARN`` and
``AWS_ROLE_SESSION_NAME`` (as ``aws sts get-caller-identity`` prints it when IRSA works), or
``fail_log`` for a failing pod.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NOT_FOUND = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
T0, T1, T2 = "2026-12-03T10:00:00Z", "2026-12-03T10:00:01Z", "2026-12-03T10:00:05Z"


def assumed_role_line(job: dict[str, Any]) -> str:
    """What the pod's ``aws sts get-caller-identity --query Arn`` prints, from the Job's variables."""
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    role_arn, session = env.get("AWS_ROLE_ARN", ""), env.get("AWS_ROLE_SESSION_NAME", "")
    account, _, role_path = role_arn.removeprefix("arn:aws:iam::").partition(":role/")
    return f"arn:aws:sts::{account}:assumed-role/{role_path.rsplit('/', 1)[-1]}/{session}\n"


class FakeApiServer:
    """The few kube-apiserver endpoints the runner uses, with recorded response shapes."""

    def __init__(self, outcome: str = "succeeded", exit_code: int = 0,
                 fail_log: str = "Traceback (most recent call last):\nRuntimeError: boom\n",
                 namespaces: frozenset[str] | None = None) -> None:
        self.namespaces = namespaces  # None: every namespace exists
        self.requests: list[tuple[str, str, Any]] = []
        self.auth: list[str | None] = []
        self.objects: dict[str, dict[str, Any]] = {}
        self.status_reads = 0
        self.outcome, self.exit_code, self.fail_log = outcome, exit_code, fail_log
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any, ctype: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n)) if n else None

            def _record(self, method: str, body: Any) -> None:
                with fake.lock:
                    fake.requests.append((method, self.path, body))
                    fake.auth.append(self.headers.get("Authorization"))

            def do_POST(self) -> None:
                body = self._body()
                self._record("POST", body)
                m = re.fullmatch(r"/(?:api/v1|apis/batch/v1)/namespaces/([^/]+)/(serviceaccounts|jobs)", self.path)
                if not m:
                    return self._send(404, NOT_FOUND)
                if fake.namespaces is not None and m.group(1) not in fake.namespaces:
                    return self._send(404, {**NOT_FOUND, "message": f'namespaces "{m.group(1)}" not found',
                                            "details": {"name": m.group(1), "kind": "namespaces"}})
                key = f"{m.group(2)}/{m.group(1)}/{body['metadata']['name']}"
                if key in fake.objects:
                    return self._send(409, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                            "reason": "AlreadyExists", "code": 409})
                stored = json.loads(json.dumps(body))
                stored["metadata"].update(uid="5f0e-uid", creationTimestamp=T0, resourceVersion="1")
                if m.group(2) == "jobs":
                    stored["status"] = {}
                fake.objects[key] = stored
                self._send(201, stored)

            def do_GET(self) -> None:
                self._record("GET", None)
                path, _, query = self.path.partition("?")
                m = re.fullmatch(r"/apis/batch/v1/namespaces/([^/]+)/jobs/([^/]+)/status", path)
                if m:
                    job = fake.objects.get(f"jobs/{m.group(1)}/{m.group(2)}")
                    if job is None:
                        return self._send(404, NOT_FOUND)
                    fake.status_reads += 1
                    job["status"] = fake.job_status()
                    return self._send(200, job)
                m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", path)
                if m:
                    name = re.search(r"labelSelector=job-name%3D([^&]+)", query)
                    job = None if name is None else fake.objects.get(f"jobs/{m.group(1)}/{name.group(1)}")
                    items = [] if job is None or name is None else [fake.pod(m.group(1), name.group(1), job)]
                    return self._send(200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})
                m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)-x7k2p/log", path)
                if m:
                    job = fake.objects.get(f"jobs/{m.group(1)}/{m.group(2)}")
                    if job is None:
                        return self._send(404, NOT_FOUND)
                    return self._send(200, fake.log(job), "text/plain")
                self._send(404, NOT_FOUND)

            def do_DELETE(self) -> None:
                self._record("DELETE", self._body())
                m = re.fullmatch(r"/(?:api/v1|apis/batch/v1)/namespaces/([^/]+)/(serviceaccounts|jobs)/([^/]+)",
                                 self.path)
                if not m or fake.objects.pop(f"{m.group(2)}/{m.group(1)}/{m.group(3)}", None) is None:
                    return self._send(404, NOT_FOUND)
                self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def ended(self) -> bool:
        return self.outcome != "running" and self.status_reads >= 2

    def job_status(self) -> dict[str, Any]:
        if not self.ended():
            return {"active": 1, "startTime": T1}
        if self.outcome == "succeeded":
            return {"succeeded": 1, "startTime": T1, "completionTime": T2,
                    "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": T2}]}
        return {"failed": 1, "startTime": T1,
                "conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": T2,
                                "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}

    def pod(self, namespace: str, job_name: str, job: dict[str, Any]) -> dict[str, Any]:
        image = job["spec"]["template"]["spec"]["containers"][0]["image"]
        if not self.ended():
            phase, state = "Running", {"running": {"startedAt": T1}}
        else:
            code = 0 if self.outcome == "succeeded" else self.exit_code
            phase = "Succeeded" if code == 0 else "Failed"
            state = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                    "startedAt": T1, "finishedAt": T2}}
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{job_name}-x7k2p", "namespace": namespace, "labels": {"job-name": job_name},
                             "creationTimestamp": T0},
                "spec": {"containers": [{"name": "job", "image": image}]},
                "status": {"phase": phase, "containerStatuses": [{
                    "name": "job", "image": image, "imageID": f"{image}@sha256:0", "ready": False,
                    "restartCount": 0, "state": state}]}}

    def log(self, job: dict[str, Any]) -> str:
        failed = self.ended() and self.outcome == "failed"
        return assumed_role_line(job) + (self.fail_log if failed else "")

    def sent(self, method: str, kind: str) -> list[tuple[str, Any]]:
        """(path, body) of the requests of one verb on one kind ("serviceaccounts" or "jobs")."""
        with self.lock:
            return [(p, b) for m, p, b in self.requests if m == method and f"/{kind}" in p and "/status" not in p]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
