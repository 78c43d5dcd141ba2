"""`rolebridge run --runner kubernetes` and `rolebridge job run` (project file `runner: kubernetes`),
end to end through the CLI, against a fake Kubernetes API server.

It is a fake because no Kubernetes control plane can run on these machines (no kube-apiserver in
Debian, PyPI or npm, and no Docker for kind: reference/ecosystem-recipes.md §1). ``fake_apiserver``
is the recorded-protocol server ``test_k8s_runner.py`` uses; the CLI reaches it as it would reach a
real cluster, through a kubeconfig (``KUBECONFIG``) and the official ``kubernetes`` client. So these
tests check what is sent (ServiceAccount + Job, validated against the Kubernetes models), what is
recorded (the runs table: status, identity, logs, exit code) and what cancel deletes; they do not
check that a real kubelet runs the pod or that a real STS accepts its projected token (docs/kubernetes.md
gives the kind and EKS procedure for that).

Accounts 370000000001 (the cluster's) and 370000000002 (a data account) belong to this module only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_apiserver import FakeApiServer

from conftest import ROLEBRIDGE, rb
from rolebridge.k8s import manifests

CLUSTER_ACCOUNT = "370000000001"
DATA_ACCOUNT = "370000000002"
CLUSTER = "kube"
PROJECT = "cross_account_sample"
ROLE = f"arn:aws:iam::{DATA_ACCOUNT}:role/cross-account-sample-dev"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TOKEN = "fake-user-token"  # the kubeconfig user of context "fake": every request must carry it
WHOAMI = ["aws", "sts", "get-caller-identity", "--query", "Arn", "--output", "text"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the cluster's account and cluster (no rolebridge server: a Kubernetes run needs none)."""
    path = tmp_path_factory.mktemp("k8s-cli") / "data"
    rb("account", "create", CLUSTER_ACCOUNT, "--json", data_dir=path)
    rb("cluster", "create", CLUSTER, "--account", CLUSTER_ACCOUNT, "--json", data_dir=path)
    return path


def write_kubeconfig(path: Path, url: str, current: str = "elsewhere") -> Path:
    """Two contexts: ``fake`` (the fake API server, user token ``TOKEN``) and ``elsewhere`` (a closed
    loopback port): a run that used the wrong one would fail to connect."""
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "fake", "cluster": {"server": url}},
                     {"name": "elsewhere", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "fake", "user": {"token": TOKEN}}, {"name": "nobody", "user": {"token": "wrong"}}],
        "contexts": [{"name": "elsewhere", "context": {"cluster": "elsewhere", "user": "nobody"}},
                     {"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}))
    return path


class Kube:
    """One fake API server and a kubeconfig pointing at it, for one test."""

    def __init__(self, fake: FakeApiServer, kubeconfig: Path) -> None:
        self.fake, self.kubeconfig = fake, kubeconfig

    def env(self, **extra: str) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig), **extra}


@pytest.fixture
def kube(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kube]:
    options = getattr(request, "param", {})
    fake = FakeApiServer(namespaces=frozenset({"dev"}), **options)
    try:
        yield Kube(fake, write_kubeconfig(tmp_path / "kubeconfig", fake.url))
    finally:
        fake.close()


def k8s_run(data_dir: Path, kube: Kube, *command: str, extra: tuple[str, ...] = (), environment: str = "dev",
            aws_role: str = ROLE, check: bool = True) -> subprocess.CompletedProcess[str]:
    return rb("run", "--runner", "kubernetes", "--image", "amazon/aws-cli:2.17.0", "--kube-context", "fake",
              "--cluster", CLUSTER, "--project", PROJECT, "--environment", environment, "--aws-role", aws_role,
              *extra, "--", *(command or WHOAMI), data_dir=data_dir, env=kube.env(), check=check)


def run_json(data_dir: Path, run_id: str, kube: Kube) -> dict[str, Any]:
    return json.loads(rb("runs", "show", run_id, "--json", data_dir=data_dir, env=kube.env()).stdout)


def submitted(fake: FakeApiServer) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(ServiceAccount, Job) pairs as the fake received them, each checked against the Kubernetes models."""
    sas = [b for _, b in fake.sent("POST", "serviceaccounts")]
    jobs = [b for _, b in fake.sent("POST", "jobs")]
    assert len(sas) == len(jobs)
    for sa, job in zip(sas, jobs, strict=True):
        assert manifests.validate(sa, "V1ServiceAccount") == []
        assert manifests.validate(job, "V1Job") == []
    return list(zip(sas, jobs, strict=True))


def pod_env(job: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def assert_irsa_shaped(sa: dict[str, Any], job: dict[str, Any], role_arn: str, namespace: str = "dev") -> None:
    """What EKS IRSA makes of a pod: the annotated service account, the projected token, the SDK variables."""
    name = sa["metadata"]["name"]
    assert re.fullmatch(rf"cross\.account\.sample-{UUID}", name)
    assert sa["metadata"]["namespace"] == job["metadata"]["namespace"] == namespace
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role_arn
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/audience"] == "sts.amazonaws.com"
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == name and pod["restartPolicy"] == "Never"
    projected = pod["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
    assert projected["audience"] == "sts.amazonaws.com" and projected["expirationSeconds"] >= 600
    mount = pod["containers"][0]["volumeMounts"][0]
    assert mount["name"] == pod["volumes"][0]["name"] and mount["readOnly"] is True
    env = pod_env(job)
    assert env["AWS_ROLE_ARN"] == role_arn
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == f"{mount['mountPath']}/token"
    assert env["AWS_ROLE_SESSION_NAME"] == name


def test_run_submits_an_irsa_job_and_records_the_run(data_dir: Path, kube: Kube) -> None:
    out = k8s_run(data_dir, kube)
    [(sa, job)] = submitted(kube.fake)
    assert_irsa_shaped(sa, job, ROLE)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "amazon/aws-cli:2.17.0"
    assert [*container["command"], *container["args"]] == WHOAMI
    assert set(kube.fake.auth) == {f"Bearer {TOKEN}"}  # --kube-context fake, not the current context
    run_id = job["metadata"]["labels"]["rolebridge.dev/run-id"]
    assert job["metadata"]["name"] == f"rb-{run_id}"
    # the pod's output is shown, the exit status is the container's
    assert out.stdout == f"arn:aws:sts::{DATA_ACCOUNT}:assumed-role/cross-account-sample-dev/{sa['metadata']['name']}\n"
    # the service account goes when the Job ends (the Job keeps its TTL for kubectl logs)
    assert [p for p, _ in kube.fake.sent("DELETE", "serviceaccounts")] == [
        f"/api/v1/namespaces/dev/serviceaccounts/{sa['metadata']['name']}"]
    assert kube.fake.sent("DELETE", "jobs") == []

    rows = [r for r in json.loads(rb("runs", "list", "--json", data_dir=data_dir).stdout) if r["id"] == run_id]
    [row] = rows
    assert row["runner"] == "kubernetes" and row["status"] == "succeeded" and row["exit_code"] == 0
    assert row["service_account"] == sa["metadata"]["name"] and row["role_arn"] == ROLE
    assert row["subject"] == f"system:serviceaccount:dev:{sa['metadata']['name']}"
    assert row["placement"] == {"runner": "kubernetes", "context": "fake", "namespace": "dev",
                                "job": f"rb-{run_id}", "image": "amazon/aws-cli:2.17.0"}
    assert row["started_at"] <= row["ended_at"]
    table = rb("runs", "list", data_dir=data_dir).stdout
    line = next(ln for ln in table.splitlines() if ln.startswith(run_id))
    assert "succeeded" in line and sa["metadata"]["name"] in line and ROLE in line
    assert rb("runs", "logs", run_id, data_dir=data_dir).stdout == out.stdout
    shown = rb("runs", "show", run_id, data_dir=data_dir).stdout
    assert f"runner        kubernetes: Job dev/rb-{run_id}, context fake, image amazon/aws-cli:2.17.0" in shown


def test_job_run_from_a_project_file(data_dir: Path, kube: Kube, tmp_path: Path) -> None:
    """Two jobs, one with the project's default role and image, one with its own (bare-name) role,
    image and retries; runner, image and kube_context come from the project file alone."""
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    (project_dir / "rolebridge.yaml").write_text(f"""
project: {PROJECT}
aws_role: "arn:aws:iam::{DATA_ACCOUNT}:role/cross-account-sample-{{{{ env }}}}"
runner: kubernetes
image: "registry.example/cross-account-sample:{{{{ env }}}}"
kube_context: fake
jobs:
  cross-account:
    command: [aws, sts, get-caller-identity]
    env: {{GREETING: hello}}
  same-account:
    command: [python, -m, sample.report]
    args: ["--date", "2026-12-03"]
    aws_role: "sample-{{{{ env }}}}"
    image: python:3.11-slim
    retries: 2
""")
    synced = json.loads(rb("job", "sync", str(project_dir), "--json", data_dir=data_dir).stdout)
    assert synced["runner"] == "kubernetes" and synced["kube_context"] == "fake"
    assert {j["name"]: j["image"] for j in synced["jobs"]} == {"cross-account": None, "same-account": "python:3.11-slim"}
    for name in ("cross-account", "same-account"):
        rb("job", "run", f"{PROJECT}/{name}", "--environment", "dev", "--cluster", CLUSTER, data_dir=data_dir,
           env=kube.env())
    (sa1, job1), (sa2, job2) = submitted(kube.fake)
    same_account_role = f"arn:aws:iam::{CLUSTER_ACCOUNT}:role/sample-dev"
    assert_irsa_shaped(sa1, job1, ROLE)  # the project default role, rendered for dev
    assert_irsa_shaped(sa2, job2, same_account_role)  # a bare name: the cluster's account
    c1, c2 = (j["spec"]["template"]["spec"]["containers"][0] for j in (job1, job2))
    assert c1["image"] == "registry.example/cross-account-sample:dev" and c2["image"] == "python:3.11-slim"
    assert (c2["command"], c2["args"]) == (["python"], ["-m", "sample.report", "--date", "2026-12-03"])
    assert pod_env(job1)["GREETING"] == "hello" and "GREETING" not in pod_env(job2)
    assert (job1["spec"]["backoffLimit"], job2["spec"]["backoffLimit"]) == (0, 2)
    assert [j["metadata"]["labels"]["rolebridge.dev/job"] for j in (job1, job2)] == ["cross-account", "same-account"]
    assert set(kube.fake.auth) == {f"Bearer {TOKEN}"}

    ids = {job1["metadata"]["labels"]["rolebridge.dev/run-id"], job2["metadata"]["labels"]["rolebridge.dev/run-id"]}
    rows = {r["job"]: r for r in json.loads(rb("runs", "list", "--json", data_dir=data_dir).stdout) if r["id"] in ids}
    assert rows["cross-account"]["role_arn"] == ROLE
    assert rows["same-account"]["role_arn"] == same_account_role
    assert rows["same-account"]["max_attempts"] == 3
    for row, sa in ((rows["cross-account"], sa1), (rows["same-account"], sa2)):
        assert row["runner"] == "kubernetes" and row["status"] == "succeeded" and row["exit_code"] == 0
        assert row["service_account"] == sa["metadata"]["name"]
    # --runner local on the command line wins over the project file; --image then makes no sense
    wrong = rb("job", "run", f"{PROJECT}/same-account", "--environment", "dev", "--cluster", CLUSTER,
               "--runner", "local", "--image", "x", data_dir=data_dir, env=kube.env(), check=False)
    assert wrong.returncode == 1 and "--image and --kube-context apply to Kubernetes runs" in wrong.stderr
    # the platform API (--detach) does not submit to Kubernetes: said before anything is recorded
    detached = rb("job", "run", f"{PROJECT}/cross-account", "--environment", "dev", "--cluster", CLUSTER,
                  "--detach", data_dir=data_dir, env=kube.env(), check=False)
    assert detached.returncode == 1 and "runs on Kubernetes, which --detach" in detached.stderr


@pytest.mark.parametrize("kube", [{"outcome": "failed", "exit_code": 3}], indirect=True)
def test_failed_pod_gives_a_failed_run_with_its_exit_code(data_dir: Path, kube: Kube) -> None:
    out = k8s_run(data_dir, kube, "python", "-c", "raise RuntimeError('boom')", check=False)
    assert out.returncode == 3, out.stderr
    assert "RuntimeError: boom" in out.stdout
    [(_, job)] = submitted(kube.fake)
    row = run_json(data_dir, job["metadata"]["labels"]["rolebridge.dev/run-id"], kube)
    assert row["status"] == "failed" and row["exit_code"] == 3
    assert row["message"] == "exit 3 (Job has reached the specified backoff limit)"
    assert "RuntimeError: boom" in rb("runs", "logs", row["id"], data_dir=data_dir).stdout
    assert f"run {row['id']} failed: exit 3" in out.stderr
    assert kube.fake.sent("DELETE", "serviceaccounts")  # no identity outlives the run


def start_background_run(data_dir: Path, kube: Kube) -> tuple[subprocess.Popen[str], str]:
    """`rolebridge run --runner kubernetes` left running (the fake's Job never ends); returns it and its run id."""
    proc = subprocess.Popen(
        [ROLEBRIDGE, "run", "--runner", "kubernetes", "--image", "amazon/aws-cli:2.17.0", "--kube-context", "fake",
         "--cluster", CLUSTER, "--project", PROJECT, "--environment", "dev", "--aws-role", ROLE,
         "--data-dir", str(data_dir), "--", *WHOAMI],
        env={**os.environ, **kube.env()}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while kube.fake.status_reads < 1:  # submitted, and the supervisor polls the Job
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the Job was never submitted"
        time.sleep(0.1)
    [(_, job)] = submitted(kube.fake)
    return proc, job["metadata"]["labels"]["rolebridge.dev/run-id"]


def assert_job_and_service_account_deleted(kube: Kube, run_id: str, sa: str) -> None:
    [(job_path, body)] = kube.fake.sent("DELETE", "jobs")
    assert job_path == f"/apis/batch/v1/namespaces/dev/jobs/rb-{run_id}"
    assert body["propagationPolicy"] == "Foreground"  # its pods go too
    assert [p for p, _ in kube.fake.sent("DELETE", "serviceaccounts")] == [
        f"/api/v1/namespaces/dev/serviceaccounts/{sa}"]
    assert kube.fake.objects == {}


@pytest.mark.parametrize("kube", [{"outcome": "running"}], indirect=True)
def test_cancel_deletes_the_job_and_service_account(data_dir: Path, kube: Kube) -> None:
    proc, run_id = start_background_run(data_dir, kube)
    try:
        out = rb("runs", "cancel", run_id, data_dir=data_dir, env=kube.env())
        assert out.stdout.strip() == f"run {run_id} cancelled"
        assert proc.wait(timeout=30) == 130  # the supervisor deleted the Job and ended the run
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    row = run_json(data_dir, run_id, kube)
    assert row["status"] == "cancelled" and row["exit_code"] is None
    assert_job_and_service_account_deleted(kube, run_id, row["service_account"])
    assert "cancel requested: deleting Job" in rb("runs", "logs", run_id, data_dir=data_dir).stdout


@pytest.mark.parametrize("kube", [{"outcome": "running"}], indirect=True)
def test_cancel_without_its_supervisor_still_deletes_them(data_dir: Path, kube: Kube) -> None:
    """The submitting command was killed (-9): `runs cancel` deletes the Job and service account itself."""
    proc, run_id = start_background_run(data_dir, kube)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    out = rb("runs", "cancel", run_id, data_dir=data_dir, env=kube.env())
    assert out.stdout.strip() == f"run {run_id} cancelled"
    row = run_json(data_dir, run_id, kube)
    assert row["status"] == "cancelled" and "its supervisor had exited" in row["message"]
    assert_job_and_service_account_deleted(kube, run_id, row["service_account"])


def one_line_error(proc: subprocess.CompletedProcess[str], text: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], proc.stderr


def test_clear_errors_and_no_run_left_behind(data_dir: Path, kube: Kube, tmp_path: Path) -> None:
    before = {r["id"] for r in json.loads(rb("runs", "list", "--json", data_dir=data_dir).stdout)}
    no_image = rb("run", "--runner", "kubernetes", "--cluster", CLUSTER, "--project", PROJECT, "--environment", "dev",
                  "--", "true", data_dir=data_dir, env=kube.env(), check=False)
    one_line_error(no_image, "--runner kubernetes needs --image IMAGE")
    missing = str(tmp_path / "nowhere" / "config")
    one_line_error(k8s_run(data_dir, Kube(kube.fake, Path(missing)), check=False),
                   f"no kubeconfig found at {missing}: set KUBECONFIG")
    unknown = rb("run", "--runner", "kubernetes", "--image", "x", "--kube-context", "prod", "--cluster", CLUSTER,
                 "--project", PROJECT, "--environment", "dev", "--", "true", data_dir=data_dir, env=kube.env(),
                 check=False)
    one_line_error(unknown, f"context 'prod' is not in kubeconfig {kube.kubeconfig} (contexts: elsewhere, fake)")
    shadow = tmp_path / "shadow" / "kubernetes"  # the optional extra not installed
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named kubernetes')\n")
    without = rb("run", "--runner", "kubernetes", "--image", "x", "--cluster", CLUSTER, "--project", PROJECT,
                 "--environment", "dev", "--", "true", data_dir=data_dir,
                 env=kube.env(PYTHONPATH=str(shadow.parent)), check=False)
    one_line_error(without, "needs the official kubernetes client, which is not installed: "
                            "pip install 'rolebridge[kubernetes]'")
    assert kube.fake.requests == []
    after = {r["id"] for r in json.loads(rb("runs", "list", "--json", data_dir=data_dir).stdout)}
    assert after == before  # refused before anything was recorded

    # a namespace the cluster lacks: the run is recorded, fails, and says how to fix it
    refused = k8s_run(data_dir, kube, environment="prd", aws_role="sample-prd", check=False)
    assert refused.returncode == 1
    assert ('Kubernetes refused the run: 404 NotFound: namespaces "prd" not found '
            "(does namespace prd exist? `kubectl create namespace prd`)") in refused.stderr
    [row] = [r for r in json.loads(rb("runs", "list", "--json", data_dir=data_dir).stdout) if r["id"] not in before]
    assert row["status"] == "failed" and "kubectl create namespace prd" in row["message"]
    assert kube.fake.sent("POST", "jobs") == []  # the refused service account stopped the run: no Job tried


def test_image_without_the_kubernetes_runner_is_refused(data_dir: Path) -> None:
    """Without --runner, `rolebridge run` is DESIGN.md's local run: Kubernetes options there are a mistake."""
    out = rb("run", "--cluster", CLUSTER, "--project", PROJECT, "--environment", "dev", "--image", "x",
             "--", sys.executable, "-c", "pass", data_dir=data_dir, check=False)
    one_line_error(out, "--image and --kube-context apply to --runner kubernetes only")


def test_project_file_runner_settings_are_checked_and_layered() -> None:
    """A typo in `runner:` is refused at sync time (not a job that silently runs locally); the command
    line wins over the job, the job over the project, key by key; a Kubernetes job needs an image."""
    from rolebridge import errors
    from rolebridge.platform.projects import choose_runner, parse_project

    with pytest.raises(errors.ValidationError, match="runner must be one of local, kubernetes, not 'kubernetse'"):
        parse_project({"project": PROJECT, "runner": "kubernetse", "jobs": {"a": {"command": "true"}}})
    with pytest.raises(errors.ValidationError, match="job 'a': image must be a non-empty string"):
        parse_project({"project": PROJECT, "jobs": {"a": {"command": "true", "image": ""}}})
    pf = parse_project({"project": PROJECT, "runner": "kubernetes", "image": "app:{{ env }}", "kube_context": "kind-rb",
                        "jobs": {"a": {"command": "true"}, "b": {"command": "true", "image": "other:1"},
                                 "c": {"command": "true", "runner": "local"}}})

    def where(job: str, **cli: str | None) -> tuple[str, str | None, str | None]:
        choice = choose_runner(cli, pf.jobs[job], pf, environment="dev", project_name=PROJECT)
        return choice.runner, choice.image, choice.kube_context

    assert where("a") == ("kubernetes", "app:dev", "kind-rb")
    assert where("b") == ("kubernetes", "other:1", "kind-rb")
    assert where("c") == ("local", None, None)
    assert where("c", runner="kubernetes") == ("kubernetes", "app:dev", "kind-rb")
    assert where("a", runner="local") == ("local", None, None)
    assert where("a", kube_context="eks-prod", image="x:2") == ("kubernetes", "x:2", "eks-prod")
    bare = parse_project({"project": PROJECT, "jobs": {"a": {"command": "true", "runner": "kubernetes"}}})
    with pytest.raises(errors.ValidationError, match="job cross_account_sample/a runs on Kubernetes but names no image"):
        choose_runner({}, bare.jobs["a"], bare, environment="dev", project_name=PROJECT)


def test_release_placement_deletes_what_is_there_and_says_how_to_finish_otherwise(
        kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `runs cancel` and the orphan reaper call for a Kubernetes run whose supervisor is gone."""
    from rolebridge.k8s.runner import release_placement

    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    placement = {"runner": "kubernetes", "context": "fake", "namespace": "dev", "job": "rb-orphan"}
    kube.fake.objects["jobs/dev/rb-orphan"] = {"kind": "Job"}
    kube.fake.objects["serviceaccounts/dev/sa-orphan"] = {"kind": "ServiceAccount"}
    assert release_placement(placement, "sa-orphan") is None
    assert [p for p, _ in kube.fake.sent("DELETE", "jobs")] == ["/apis/batch/v1/namespaces/dev/jobs/rb-orphan"]
    assert [p for p, _ in kube.fake.sent("DELETE", "serviceaccounts")] == [
        "/api/v1/namespaces/dev/serviceaccounts/sa-orphan"]
    assert "jobs/dev/rb-orphan" not in kube.fake.objects and "serviceaccounts/dev/sa-orphan" not in kube.fake.objects
    assert release_placement(placement, "sa-orphan") is None  # already gone (404): nothing left to do

    note = release_placement({**placement, "context": "elsewhere"}, "sa-orphan")  # an unreachable API server
    assert note is not None and "not deleted" in note
    assert "`kubectl delete job rb-orphan -n dev`" in note and "`kubectl delete serviceaccount sa-orphan -n dev`" in note
