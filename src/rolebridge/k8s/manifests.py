"""The objects one run becomes on Kubernetes, as EKS IRSA shapes them (conveyor-semantics.md §2.7, §6.1).

- a ServiceAccount per run, ``<project with _ as .>-<uuid>`` in the environment's namespace,
  annotated ``eks.amazonaws.com/role-arn`` (and ``audience``/``token-expiration``), so on EKS the
  pod-identity webhook would inject the same things we write out explicitly below;
- a Job whose pod uses that service account, with a projected service-account token volume
  (audience ``sts.amazonaws.com``, ``expirationSeconds``) mounted where the webhook mounts it, and
  ``AWS_ROLE_ARN`` / ``AWS_WEB_IDENTITY_TOKEN_FILE`` / ``AWS_ROLE_SESSION_NAME`` in the container.

Writing the volume and variables ourselves makes the Job work on any cluster (kind, k3s) whose
API server issuer is registered as an OIDC provider, with or without the webhook. The kubelet
refreshes the projected token at 80% of its lifetime, and the SDK re-reads the file.

``validate`` checks a manifest against the Kubernetes OpenAPI schema offline, using the official
client's generated models (field names, nesting and types, required fields).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rolebridge import errors

TOKEN_DIR = "/var/run/secrets/eks.amazonaws.com/serviceaccount"  # noqa: S105 - a path
TOKEN_FILE = "token"  # noqa: S105 - a file name
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
AUDIENCE_ANNOTATION = "eks.amazonaws.com/audience"
EXPIRATION_ANNOTATION = "eks.amazonaws.com/token-expiration"
MIN_EXPIRATION = 600  # the kubelet's floor for projected tokens
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass
class PodSpecInput:
    run_id: str
    project: str
    environment: str
    service_account: str
    role_arn: str
    image: str
    command: list[str]
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    audience: str = "sts.amazonaws.com"
    expiration_seconds: int = 86400
    region: str = "us-east-1"
    sts_endpoint: str | None = None
    backoff_limit: int = 0
    job: str | None = None


def job_name(run_id: str) -> str:
    return f"rb-{run_id}"[:63]


def labels(spec: PodSpecInput) -> dict[str, str]:
    out = {"app.kubernetes.io/managed-by": "rolebridge", "rolebridge.dev/run-id": spec.run_id,
           "rolebridge.dev/project": spec.project}
    if spec.job:
        out["rolebridge.dev/job"] = spec.job
    return {k: v for k, v in out.items() if len(v) <= 63 and LABEL_VALUE.match(v)}


def service_account(spec: PodSpecInput) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": spec.service_account, "namespace": spec.environment, "labels": labels(spec),
                     "annotations": {ROLE_ANNOTATION: spec.role_arn, AUDIENCE_ANNOTATION: spec.audience,
                                     EXPIRATION_ANNOTATION: str(spec.expiration_seconds)}},
        "automountServiceAccountToken": False,
    }


def job(spec: PodSpecInput) -> dict[str, Any]:
    if spec.expiration_seconds < MIN_EXPIRATION:
        raise errors.ValidationError(f"expirationSeconds must be at least {MIN_EXPIRATION} (the kubelet's minimum).")
    env = [{"name": k, "value": v} for k, v in spec.env.items()]
    env += [{"name": "AWS_ROLE_ARN", "value": spec.role_arn},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": f"{TOKEN_DIR}/{TOKEN_FILE}"},
            {"name": "AWS_ROLE_SESSION_NAME", "value": spec.service_account[:64]},
            {"name": "AWS_REGION", "value": spec.region},
            {"name": "AWS_DEFAULT_REGION", "value": spec.region},
            {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}]
    if spec.sts_endpoint:
        env.append({"name": "AWS_ENDPOINT_URL_STS", "value": spec.sts_endpoint})
    meta_labels = labels(spec)
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job_name(spec.run_id), "namespace": spec.environment, "labels": meta_labels},
        "spec": {
            "backoffLimit": spec.backoff_limit,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": meta_labels},
                "spec": {
                    "serviceAccountName": spec.service_account,
                    "automountServiceAccountToken": False,
                    "restartPolicy": "Never",
                    "securityContext": {"fsGroup": 65534},  # non-root containers can read the token
                    "containers": [{
                        "name": "job",
                        "image": spec.image,
                        "command": list(spec.command),
                        "args": list(spec.args),
                        "env": env,
                        "volumeMounts": [{"name": "aws-iam-token", "mountPath": TOKEN_DIR, "readOnly": True}],
                    }],
                    "volumes": [{"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {
                        "audience": spec.audience, "expirationSeconds": spec.expiration_seconds,
                        "path": TOKEN_FILE}}]}}],
                },
            },
        },
    }


# -- offline validation against the OpenAPI schema, via the official client's models -------------
def _model(name: str) -> Any:
    import kubernetes.client as k8s

    return getattr(k8s, name, None)


def validate(manifest: Any, type_name: str, path: str = "$") -> list[str]:
    """Problems of ``manifest`` as a ``type_name`` (e.g. "V1Job"); empty when it is valid."""
    problems: list[str] = []
    if type_name.startswith(("list[", "List[")):
        if not isinstance(manifest, list):
            return [f"{path}: expected a list"]
        inner = type_name[5:-1]
        for i, item in enumerate(manifest):
            problems += validate(item, inner, f"{path}[{i}]")
        return problems
    if type_name.startswith(("dict(", "Dict[")):
        if not isinstance(manifest, dict):
            return [f"{path}: expected an object"]
        inner = type_name.split(",", 1)[1].strip().rstrip(")]")
        for k, v in manifest.items():
            problems += validate(v, inner, f"{path}.{k}")
        return problems
    simple = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}
    if type_name in simple:
        ok = isinstance(manifest, simple[type_name]) and not (type_name == "int" and isinstance(manifest, bool))
        return [] if ok else [f"{path}: expected {type_name}, got {type(manifest).__name__}"]
    model = _model(type_name)
    if model is None:
        return [f"{path}: unknown type {type_name}"]
    if not isinstance(manifest, dict):
        return [f"{path}: expected an object ({type_name})"]
    by_json = {json_name: attr for attr, json_name in model.attribute_map.items()}
    for key, value in manifest.items():
        attr = by_json.get(key)
        if attr is None:
            problems.append(f"{path}.{key}: unknown field of {type_name}")
            continue
        problems += validate(value, model.openapi_types[attr], f"{path}.{key}")
    if not problems:
        try:  # required fields and enums, as the generated models check them
            from kubernetes.client import ApiClient

            ApiClient()._ApiClient__deserialize(manifest, type_name)
        except (ValueError, TypeError) as exc:
            problems.append(f"{path}: {exc}")
    return problems
