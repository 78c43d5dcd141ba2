"""What a new user copies from the README's walkthrough works as written.

`cluster list` (human output) shows the full OIDC URL and thumbprint even when stdout is not a
terminal (rich used to truncate them to 80 columns: `https://127.0.0.1:8443/oi…`); the README's
IAM step sets a region, without which the AWS CLI refuses to run ("You must specify a region").
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import Server, rb

ROOT = Path(__file__).resolve().parents[2]


def test_cluster_list_prints_whole_url_and_thumbprint(server: Server) -> None:
    name = "breaker-walkthrough-cluster-with-a-long-name"
    info = server.cluster(name, "696969696969")
    out = rb("cluster", "list", data_dir=server.data_dir, env={"COLUMNS": "40"}).stdout
    line = next(line for line in out.splitlines() if line.startswith(name + " "))
    assert line.split() == [name, "696969696969", info["oidc_url"], info["thumbprint"]]
    assert "…" not in out
    assert json.loads(rb("cluster", "list", "--json", data_dir=server.data_dir).stdout)


def test_readme_iam_step_sets_a_region() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("export AWS_ENDPOINT_URL_IAM"):readme.index("aws iam create-open-id-connect-provider")]
    assert re.search(r"\bAWS_DEFAULT_REGION=us-east-1\b", block), block
