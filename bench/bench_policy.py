"""Policy engine throughput, one process (pin it with `taskset -c 0` for one core).

usage: taskset -c 0 .venv/bin/python bench/bench_policy.py [--seconds 1.0] [--runs 7]

Prints JSON: evaluations per second (median of runs, with min/max) for
* trust_walkthrough: the walkthrough trust policy (Federated OIDC provider, StringEquals aud,
  StringLike sub), alternating one allowed and one denied request, requests built once
  (as perf-anchors.md section 4 measures) and, separately, built fresh each call (Request + context
  normalization included, as STS pays it);
* identity_50x10: a request against 50 identity policies with 500 statements in all;
* growth: one request against N statements that cannot match its action (N = 10 ... 10,000),
  to show the service-prefix index keeps the cost flat.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rolebridge.policy import Principal, Request, compile_policy, evaluate, evaluate_trust

PROV = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
HOST = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": PROV},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {f"{HOST}:aud": "sts.amazonaws.com"},
                "StringLike": {f"{HOST}:sub": "system:serviceaccount:team-?:app-*"},
            },
        }
    ],
}
SERVICES = ["ec2", "ecs", "lambda", "dynamodb", "sqs", "sns", "kms", "logs", "glue", "athena", "s3"]


def rate(step: Callable[[], None], per_step: int, seconds: float, runs: int) -> dict[str, float]:
    """Evaluations per second of CPU time (``process_time``: robust on a shared machine) and,
    for reference, of wall time; median/min/max over ``runs`` runs of ``seconds`` CPU seconds."""
    cpu, wall = [], []
    for _ in range(runs):
        n = 0
        c0, w0 = time.process_time(), time.perf_counter()
        while True:
            for _ in range(100):
                step()
            n += 100 * per_step
            el = time.process_time() - c0
            if el >= seconds:
                break
        cpu.append(n / el)
        wall.append(n / (time.perf_counter() - w0))
    return {
        "median": round(statistics.median(cpu)),
        "min": round(min(cpu)),
        "max": round(max(cpu)),
        "wall_median": round(statistics.median(wall)),
    }


def web_request(sub: str) -> Request:
    ctx = {f"{HOST}:aud": "sts.amazonaws.com", f"{HOST}:sub": sub}
    return Request(Principal.federated(PROV), "sts:AssumeRoleWithWebIdentity", "arn:aws:iam::123456789012:role/r", ctx)


def bench_trust(seconds: float, runs: int) -> dict[str, object]:
    trust = compile_policy(json.dumps(TRUST), kind="trust")
    ok, no = (
        web_request("system:serviceaccount:team-a:app-runner"),
        web_request("system:serviceaccount:team-ab:app-runner"),
    )
    assert evaluate_trust(trust, ok).allowed and not evaluate_trust(trust, no).allowed

    def prebuilt() -> None:
        evaluate_trust(trust, ok)
        evaluate_trust(trust, no)

    def fresh() -> None:
        evaluate_trust(trust, web_request("system:serviceaccount:team-a:app-runner"))
        evaluate_trust(trust, web_request("system:serviceaccount:team-ab:app-runner"))

    text = json.dumps(TRUST)

    def fresh_with_compile_lookup() -> None:  # STS looks the compiled policy up by its text
        evaluate_trust(compile_policy(text, kind="trust"), web_request("system:serviceaccount:team-a:app-runner"))
        evaluate_trust(compile_policy(text, kind="trust"), web_request("system:serviceaccount:team-ab:app-runner"))

    return {
        "prebuilt_requests": rate(prebuilt, 2, seconds, runs),
        "fresh_requests": rate(fresh, 2, seconds, runs),
        "fresh_requests_and_compile_cache_lookup": rate(fresh_with_compile_lookup, 2, seconds, runs),
    }


def identity_policies(n_policies: int, per_policy: int, matching: bool) -> list[object]:
    pols = []
    for p in range(n_policies):
        stmts = []
        for s in range(per_policy):
            svc = SERVICES[(p * per_policy + s) % (len(SERVICES) - 1)]  # never s3
            stmts.append(
                {
                    "Sid": f"P{p}S{s}",
                    "Effect": "Allow",
                    "Action": [f"{svc}:Get*", f"{svc}:Describe{s}*"],
                    "Resource": f"arn:aws:{svc}:*:111111111111:thing/{p}/{s}/*",
                    "Condition": {"StringEquals": {"aws:PrincipalTag/team": f"team-{s}"}},
                }
            )
        if matching and p == n_policies - 1:
            stmts[-1] = {
                "Sid": "Read",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:List*"],
                "Resource": "arn:aws:s3:::data-${aws:PrincipalTag/team}/*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            }
            stmts.append(
                {
                    "Sid": "NoSecrets",
                    "Effect": "Deny",
                    "Action": "s3:*",
                    "Resource": "arn:aws:s3:::secrets/*",
                }
            )
        pols.append(compile_policy({"Version": "2012-10-17", "Statement": stmts}, name=f"policy-{p}"))
    return pols


def s3_request() -> Request:
    return Request(
        Principal.aws("arn:aws:sts::111111111111:assumed-role/app/s"),
        "s3:GetObject",
        "arn:aws:s3:::data-team-a/k",
        {"aws:PrincipalTag/team": "team-a", "aws:SecureTransport": True},
    )


def bench_identity(seconds: float, runs: int) -> dict[str, object]:
    pols = identity_policies(50, 10, matching=True)
    n_statements = sum(len(p.statements) for p in pols)
    req = s3_request()
    assert evaluate(req, identity=pols).allowed

    def prebuilt() -> None:
        evaluate(req, identity=pols)

    def fresh() -> None:
        evaluate(s3_request(), identity=pols)

    return {
        "policies": len(pols),
        "statements": n_statements,
        "prebuilt_request": rate(prebuilt, 1, seconds, runs),
        "fresh_request": rate(fresh, 1, seconds, runs),
    }


def bench_growth(seconds: float, runs: int) -> dict[str, object]:
    out = {}
    for n in (10, 100, 1000, 10000):
        pols = identity_policies(max(1, n // 10), min(n, 10), matching=False)
        req = s3_request()
        assert not evaluate(req, identity=pols).allowed

        def step(pols: list[object] = pols, req: Request = req) -> None:
            evaluate(req, identity=pols)

        r = rate(step, 1, seconds, max(3, runs // 2))
        out[str(n)] = {"evals_per_s": r["median"], "us_per_eval": round(1e6 / r["median"], 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    result = {
        "python": sys.version.split()[0],
        "trust_walkthrough": bench_trust(args.seconds, args.runs),
        "identity_50x10": bench_identity(args.seconds, args.runs),
        "growth_non_matching_statements": bench_growth(args.seconds, args.runs),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
