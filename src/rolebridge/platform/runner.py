"""Running a job as a local process with its own short-lived identity.

What a Kubernetes pod gets from EKS's pod-identity webhook, a local process gets here: a service
account of its own, a projected token in a file (mode 0600, refreshed at 80% of its lifetime, as
the kubelet does, by atomic rename), and the standard AWS SDK variables, so plain boto3 or the AWS
CLI inside the job assumes the role with no code or config. Static keys in the parent's
environment are removed so the SDK's web-identity provider is the one that answers.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rolebridge.config import write_private

SCRUBBED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
            "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CREDENTIAL_EXPIRATION")
REFRESH_FRACTION = 0.8


@dataclass
class JobSpec:
    command: Sequence[str]
    role_arn: str
    session_name: str
    sts_url: str
    ca_bundle: str
    region: str = "us-east-1"
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None


class TokenFile:
    """The job's token file; rewritten atomically before the token expires."""

    def __init__(self, directory: Path, mint: Callable[[], str], lifetime: int) -> None:
        self.path = directory / "token"
        self._mint = mint
        self._lifetime = lifetime
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshes = 0

    def write(self) -> None:
        write_private(self.path, self._mint().encode())

    def start_refresh(self) -> None:
        def loop() -> None:
            while not self._stop.wait(max(1.0, self._lifetime * REFRESH_FRACTION)):
                self.write()
                self.refreshes += 1

        self._thread = threading.Thread(target=loop, name="token-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def job_environment(spec: JobSpec, token_path: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for name in SCRUBBED:
        env.pop(name, None)
    env.update(spec.env)
    env.update({
        "AWS_ROLE_ARN": spec.role_arn,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_path),
        "AWS_ROLE_SESSION_NAME": spec.session_name,
        "AWS_ENDPOINT_URL_STS": spec.sts_url,
        "AWS_ENDPOINT_URL_IAM": spec.sts_url,
        "AWS_CA_BUNDLE": spec.ca_bundle,
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
    })
    return env


@dataclass
class RunningJob:
    process: subprocess.Popen[bytes]
    token: TokenFile
    workdir: Path

    def wait(self) -> int:
        try:
            return self.process.wait()
        finally:
            self.cleanup()

    def cancel(self, grace: float = 5.0) -> int:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.cleanup()
        return self.process.returncode

    def cleanup(self) -> None:
        self.token.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_job(spec: JobSpec, mint: Callable[[], str], lifetime: int, *, runs_dir: Path,
              stdout: int | None = None, stderr: int | None = None) -> RunningJob:
    runs_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="job-", dir=runs_dir))
    workdir.chmod(0o700)
    token = TokenFile(workdir, mint, lifetime)
    token.write()
    token.start_refresh()
    try:
        process = subprocess.Popen(list(spec.command), env=job_environment(spec, token.path), cwd=spec.cwd,
                                   stdout=stdout, stderr=stderr, start_new_session=True)
    except OSError:
        token.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return RunningJob(process, token, workdir)


def wait_forwarding_signals(job: RunningJob) -> int:
    """Wait for the job; SIGINT/SIGTERM to us cancel it (no orphan, no token left behind)."""
    def forward(signum: int, _frame: object) -> None:
        job.cancel()

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                return job.wait()
            except InterruptedError:  # pragma: no cover - retried by Python already
                time.sleep(0.01)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
