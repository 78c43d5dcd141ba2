"""Running a job as a local process with its own short-lived identity.

What a Kubernetes pod gets from EKS's pod-identity webhook, a local process gets here: a service
account of its own, a projected token in a file (mode 0600, rewritten at 80% of its lifetime by
atomic rename, as the kubelet does), and the standard AWS SDK variables, so plain boto3 or the AWS
CLI inside the job assumes the role with no code or config. Static keys in the parent's
environment are removed so the SDK's web-identity provider is the one that answers.

A job that outlives its token keeps working because botocore's web-identity provider re-reads
``AWS_WEB_IDENTITY_TOKEN_FILE`` each time it refreshes credentials; the file must therefore always
hold a valid token, which ``TokenFile`` guarantees. Time is injected (``clock``), so the refresh
schedule is tested with a fixed clock instead of waiting for the 600 s minimum token lifetime.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rolebridge.clock import Clock, system_clock
from rolebridge.config import write_private

# The kubelet's schedule (tokens.projected.REFRESH_FRACTION, asserted equal in the tests). Not imported:
# the tokens package loads the issuer's cryptography, ~60 ms on `rolebridge run`'s path to the job.
REFRESH_FRACTION = 0.8

SCRUBBED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
            "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CREDENTIAL_EXPIRATION", "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME")
# Hidden test/bench seam: refresh the token file every N seconds whatever its lifetime.
REFRESH_OVERRIDE_ENV = "ROLEBRIDGE_TOKEN_REFRESH_SECONDS"
POLL_SECONDS = 1.0


def write_token_file(path: Path, token: str) -> None:
    """Replace ``path`` with ``token`` atomically, 0600 from its first byte; no fsync: the file only has
    to be whole for readers, never to survive a crash, and it is deleted after the run."""
    write_private(path, token.encode("ascii"), durable=False)


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
    """The job's token file; rewritten atomically once 80% of the current token's lifetime has passed.

    ``mint(now)`` returns a fresh token. ``tick()`` rewrites the file if it is due and is what the
    background thread calls; tests call it directly with a ``FixedClock``.
    """

    def __init__(self, directory: Path, mint: Callable[[float], str], lifetime: float, *,
                 clock: Clock = system_clock, refresh_every: float | None = None) -> None:
        self.path = Path(directory) / "token"
        self._mint = mint
        self._clock = clock
        override = os.environ.get(REFRESH_OVERRIDE_ENV)
        if refresh_every is None and override:
            refresh_every = max(0.2, float(override))
        self.refresh_every = refresh_every if refresh_every is not None else lifetime * REFRESH_FRACTION
        self.written_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshes = 0

    def write(self, token: str | None = None) -> None:
        now = self._clock()
        write_token_file(self.path, token if token is not None else self._mint(now))
        self.written_at = now

    def due(self) -> bool:
        return self.written_at is None or self._clock() >= self.written_at + self.refresh_every

    def tick(self) -> bool:
        if self._stop.is_set() or not self.due():
            return False
        self.write()
        self.refreshes += 1
        return True

    def start_refresh(self) -> None:
        def loop() -> None:
            while not self._stop.wait(min(POLL_SECONDS, self.refresh_every / 4)):
                try:
                    self.tick()
                except Exception:  # noqa: S112 - a failed refresh is retried on the next poll
                    continue

        self._thread = threading.Thread(target=loop, name="token-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def job_environment(spec: JobSpec, token_path: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for name in SCRUBBED:
        env.pop(name, None)
    env.update(spec.env)
    sdk = {
        "AWS_ENDPOINT_URL_STS": spec.sts_url,
        "AWS_ENDPOINT_URL_IAM": spec.sts_url,
        "AWS_ENDPOINT_URL_S3": spec.sts_url,  # the same server serves the S3-compatible store
        "AWS_CA_BUNDLE": spec.ca_bundle,
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
    }
    if spec.role_arn:
        sdk.update({"AWS_ROLE_ARN": spec.role_arn, "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_path),
                    "AWS_ROLE_SESSION_NAME": spec.session_name})
    env.update(sdk)
    return env


@dataclass
class RunningJob:
    process: subprocess.Popen[bytes]
    token: TokenFile
    workdir: Path

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self, grace: float = 5.0) -> int:
        """SIGTERM the job's whole process group, SIGKILL after ``grace``; leaves no process behind."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        try:  # stragglers the job started in its group, even if the leader already exited
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.process.wait()

    def cleanup(self) -> None:
        """Stop refreshing and delete the token: nothing of the identity outlives the job."""
        self.token.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def make_workdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def start_job(spec: JobSpec, token: TokenFile, workdir: Path, *, stdin: int | None = None,
              stdout: int | None = None, stderr: int | None = None) -> RunningJob:
    """Start the job in its own session (process group) with the token file already written."""
    if token.written_at is None:
        token.write()
    token.start_refresh()
    try:
        process = subprocess.Popen(list(spec.command), env=job_environment(spec, token.path), cwd=spec.cwd,
                                   stdin=stdin, stdout=stdout, stderr=stderr,
                                   start_new_session=True)
    except OSError:
        token.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return RunningJob(process, token, workdir)
