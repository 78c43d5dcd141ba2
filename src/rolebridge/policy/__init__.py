"""The IAM policy language: parse + validate, wildcard/ARN matching, condition operators,
variables, and evaluation with an explanation. Pure: no I/O, no HTTP, no database.

Modules: ``model`` (public data types), ``document`` (validation rules and AWS messages),
``patterns`` (globs, ARN matching, policy variables), ``conditions`` (operators),
``principals`` (Principal element), ``compiled`` (compile + cache), ``evaluation`` (combiner,
nearest miss).
"""

from rolebridge.policy.compiled import CompiledPolicy, CompiledStatement, compile_policy, validate_policy
from rolebridge.policy.evaluation import evaluate, evaluate_trust, explain_statement, nearest_miss
from rolebridge.policy.model import (
    Decision,
    EvaluationResult,
    Miss,
    PolicyKind,
    PolicyProblem,
    Principal,
    Reason,
    Request,
)

# A valid policy that matches no real action: what a policy reference that no longer resolves (a
# dangling boundary or session policy ARN, a stored guardrail the engine no longer accepts) becomes,
# so a missing policy never lifts a limit.
ALLOW_NOTHING = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rolebridge:NoSuchAction",'
                 '"Resource":"*"}]}')

__all__ = [
    "ALLOW_NOTHING",
    "CompiledPolicy",
    "CompiledStatement",
    "Decision",
    "EvaluationResult",
    "Miss",
    "PolicyKind",
    "PolicyProblem",
    "Principal",
    "Reason",
    "Request",
    "compile_policy",
    "evaluate",
    "evaluate_trust",
    "explain_statement",
    "nearest_miss",
    "validate_policy",
]
