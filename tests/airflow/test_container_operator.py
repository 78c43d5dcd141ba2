"""A real Airflow 3 `dag.test()` on SQLite runs a ContainerOperator task as a rolebridge job.

Airflow lives in its own venv (`.venv-airflow`, made by `make airflow-venv`; created here on
demand when missing). The DAG runs in that venv as a subprocess against the session's live
server; the task's `arguments=["--date", "{{ ds }}"]` and its cross-account `aws_role` are
templated, and the task log must show the assumed-role ARN.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import Server, rb

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_PY = ROOT / ".venv-airflow" / "bin" / "python"
CLUSTER_ACCOUNT = "340000000001"
DATA_ACCOUNT = "340000000002"
CLUSTER = "airflowc"

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    if not (ROOT / ".venv-airflow" / ".installed").exists():
        subprocess.run(["make", "-C", str(ROOT), "airflow-venv"], check=True, timeout=900)
    assert AIRFLOW_PY.exists()
    return AIRFLOW_PY


def test_dag_test_runs_cross_account_job(server: Server, airflow_python: Path, tmp_path: Path) -> None:
    cluster = server.cluster(CLUSTER, CLUSTER_ACCOUNT)
    iam = server.client("iam", DATA_ACCOUNT)
    provider = iam.create_open_id_connect_provider(
        Url=cluster["oidc_url"], ClientIDList=["sts.amazonaws.com"], ThumbprintList=[cluster["thumbprint"]])
    iam.create_role(RoleName="cross-account-sample-dev", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
            "Principal": {"Federated": provider["OpenIDConnectProviderArn"]},
            "Condition": {"StringLike": {f"{cluster['provider_url']}:sub":
                          "system:serviceaccount:dev:cross.account.sample-????????-????-????-????-????????????"}}}]}))
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    job = ("import sys, boto3; print('job args', sys.argv[1:]); "
           "print('job identity', boto3.client('sts').get_caller_identity()['Arn'])")
    dag_file = home / "dags" / "rolebridge_dag.py"
    dag_file.write_text(textwrap.dedent(f"""
        import pendulum
        from airflow.sdk import DAG
        from rolebridge.airflow import ContainerOperator

        with DAG("rolebridge_cross_account", start_date=pendulum.datetime(2026, 11, 30, tz="UTC"),
                 schedule=None, catchup=False) as dag:
            ContainerOperator(
                task_id="whoami",
                project="cross_account_sample",
                environment="dev",
                cluster="{CLUSTER}",
                cmds=[{sys.executable!r}, "-c", {job!r}],
                arguments=["--date", "{{{{ ds }}}}"],
                aws_role="arn:aws:iam::{DATA_ACCOUNT}:role/cross-account-sample-{{{{ env }}}}",
            )

        if __name__ == "__main__":
            run = dag.test(logical_date=pendulum.datetime(2026, 12, 1, tz="UTC"))
            print("DAGRUN_STATE", run.state)
    """))
    env = {k: v for k, v in server.env().items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
               AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
               AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"))
    airflow = str(airflow_python.parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    proc = subprocess.run([str(airflow_python), str(dag_file)], env=env, capture_output=True, text=True,
                          timeout=300)
    output = proc.stdout + proc.stderr
    logs = "".join(p.read_text(errors="replace") for p in (home / "logs").rglob("*") if p.is_file())
    assert proc.returncode == 0, output[-5000:]
    assert "DAGRUN_STATE success" in output, output[-5000:]
    task_log = output + logs
    assert "job args ['--date', '2026-12-01']" in task_log
    prefix = f"arn:aws:sts::{DATA_ACCOUNT}:assumed-role/cross-account-sample-dev/cross.account.sample-"
    assert f"job identity {prefix}" in task_log
    assert f"assumed {prefix}" in task_log
    runs = json.loads(rb("runs", "list", "--json", "--project", "cross_account_sample", data_dir=server.data_dir,
                         env=server.env()).stdout)
    mine = [r for r in runs if r["cluster"] == CLUSTER]
    assert mine and mine[0]["status"] == "succeeded"
    assert mine[0]["command"][-2:] == ["--date", "2026-12-01"]
    assert os.path.basename(mine[0]["assume"]["assumed_arn"]).startswith("cross.account.sample-")
