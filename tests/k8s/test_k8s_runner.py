"""The Kubernetes runner, tested without a control plane.

No kube-apiserver can run on these machines (reference/ecosystem-recipes.md §1), so:
- the manifests are validated offline against the Kubernetes OpenAPI schema through the official
  client's generated models (``rolebridge.k8s.manifests.validate``);
- submission, status and logs go through the official ``kubernetes`` client to a fake API server
  (``fake_apiserver.py``, shared with ``test_k8s_cli.py``): a small local HTTP server that speaks the
  recorded protocol of the endpoints the client uses (paths, verbs, JSON shapes of ServiceAccount,
  Job, JobStatus, PodList, pod log, Status), and records what it received for the assertions.
docs/kubernetes.md says how to run the same code against kind or EKS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_apiserver import FakeApiServer
from kubernetes import client as k8s

from rolebridge import errors
from rolebridge.bootstrap import open_services
from rolebridge.k8s import manifests
from rolebridge.k8s.runner import KubernetesRunner, run_on_kubernetes
from rolebridge.platform.clusters import create_cluster
from rolebridge.platform.runs import RunRequest, create_run, read_log

RUN_ID = "0b6c0b8e-1f2a-4c1e-9a7e-111111111111"
ROLE = "arn:aws:iam::222222222222:role/cross-account-sample-dev"


def spec(**kw: Any) -> manifests.PodSpecInput:
    base = {"run_id": RUN_ID, "project": "cross_account_sample", "environment": "dev",
            "service_account": f"cross.account.sample-{RUN_ID}", "role_arn": ROLE, "image": "python:3.11-slim",
            "command": ["python"], "args": ["-c", "print(1)"], "expiration_seconds": 3600}
    base.update(kw)
    return manifests.PodSpecInput(**base)


def test_manifests_are_irsa_shaped_and_schema_valid() -> None:
    sa, job = manifests.service_account(spec()), manifests.job(spec())
    assert manifests.validate(sa, "V1ServiceAccount") == []
    assert manifests.validate(job, "V1Job") == []
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == ROLE
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == f"cross.account.sample-{RUN_ID}"
    projection = pod["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
    assert projection == {"audience": "sts.amazonaws.com", "expirationSeconds": 3600, "path": "token"}
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    mount = pod["containers"][0]["volumeMounts"][0]
    assert env["AWS_ROLE_ARN"] == ROLE
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == mount["mountPath"] + "/token"
    assert mount["name"] == pod["volumes"][0]["name"]


def test_validation_catches_schema_errors() -> None:
    job = manifests.job(spec())
    job["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["ttl"] = 5
    job["spec"]["backoffLimit"] = "zero"
    problems = manifests.validate(job, "V1Job")
    assert any(p.endswith("serviceAccountToken.ttl: unknown field of V1ServiceAccountTokenProjection") for p in problems)
    assert "$.spec.backoffLimit: expected int, got str" in problems
    nameless = manifests.job(spec())
    del nameless["spec"]["template"]["spec"]["containers"][0]["name"]
    assert any("V1Container" in p and "name" in p for p in manifests.validate(nameless, "V1Job"))
    with pytest.raises(errors.ValidationError, match="at least 600"):
        manifests.job(spec(expiration_seconds=60))


@pytest.fixture
def fake_api() -> Any:
    fake = FakeApiServer()
    yield fake
    fake.close()


def official_client(url: str) -> k8s.ApiClient:
    config = k8s.Configuration(host=url)
    return k8s.ApiClient(config)


def test_submit_status_logs_cancel_through_the_official_client(fake_api: FakeApiServer) -> None:
    runner = KubernetesRunner(official_client(fake_api.url))
    name = runner.submit(spec())
    assert name == f"rb-{RUN_ID}"
    (m1, p1, sa), (m2, p2, job) = fake_api.requests[:2]
    assert (m1, p1) == ("POST", "/api/v1/namespaces/dev/serviceaccounts")
    assert (m2, p2) == ("POST", "/apis/batch/v1/namespaces/dev/jobs")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == ROLE
    token = job["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == "sts.amazonaws.com" and token["expirationSeconds"] == 3600
    assert runner.state("dev", name).status == "running"
    assert runner.wait("dev", name, poll=0.01).status == "succeeded"
    assert runner.logs("dev", name).startswith("arn:aws:sts::222222222222:assumed-role/cross-account-sample-dev/")
    runner.cancel("dev", name, f"cross.account.sample-{RUN_ID}")
    deletes = [(p, b) for m, p, b in fake_api.requests if m == "DELETE"]
    assert deletes[0][0] == f"/apis/batch/v1/namespaces/dev/jobs/{name}"
    assert deletes[0][1]["propagationPolicy"] == "Foreground"
    assert deletes[1][0] == f"/api/v1/namespaces/dev/serviceaccounts/cross.account.sample-{RUN_ID}"
    assert fake_api.objects == {}


def test_duplicate_submission_is_an_error(fake_api: FakeApiServer) -> None:
    runner = KubernetesRunner(official_client(fake_api.url))
    runner.submit(spec())
    with pytest.raises(k8s.ApiException) as info:
        runner.submit(spec())
    assert info.value.status == 409


def test_recorded_run_executes_on_kubernetes(fake_api: FakeApiServer, tmp_path: Path) -> None:
    services = open_services(str(tmp_path / "data"), None, fix_public_url=True)
    create_cluster(services, "kube", "370000000001", token_lifetime=600)
    row = create_run(services, RunRequest(cluster="kube", project="cross_account_sample", environment="dev",
                                          command=["python", "-c", "print(1)"], aws_role=ROLE))
    final = run_on_kubernetes(services, KubernetesRunner(official_client(fake_api.url)), row,
                              image="python:3.11-slim", poll=0.01)
    assert final["status"] == "succeeded" and final["exit_code"] == 0
    assert read_log(services, row["id"])[0].startswith(b"arn:aws:sts::222222222222:assumed-role/")
    sent_sa = fake_api.requests[0][2]
    assert sent_sa["metadata"]["name"] == row["service_account"]
    assert ("DELETE", f"/api/v1/namespaces/dev/serviceaccounts/{row['service_account']}") in \
        [(m, p) for m, p, _ in fake_api.requests]
