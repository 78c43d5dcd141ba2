"""GetAccountSummary: the caller's account's entity counts and quotas, in AWS's SummaryMap keys.

Counts come from this account's rows only. Entities rolebridge does not have (users, groups,
instance profiles, certificates, MFA devices) are 0; the quotas are AWS's defaults, and the ones we
enforce are the same numbers the handlers use.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from rolebridge.context import CallContext
from rolebridge.iam import managed_policies
from rolebridge.iam.aws_policies import AWS_POLICY_PREFIX
from rolebridge.iam.documents import INLINE_ROLE_POLICY_QUOTA, MANAGED_POLICY_QUOTA, TRUST_POLICY_QUOTA
from rolebridge.iam.registry import operation
from rolebridge.store.schema import AccessKey, ManagedPolicy, OIDCProvider, PolicyVersion, Role, RolePolicyAttachment


def _count(session: Any, query: Any) -> int:
    return int(session.scalar(query) or 0)


@operation("iam", "GetAccountSummary")
def get_account_summary(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    account = ctx.require_caller().account_id
    with ctx.store.read() as s:
        roles = _count(s, select(func.count()).select_from(Role).where(Role.account_id == account))
        policies = _count(s, select(func.count()).select_from(ManagedPolicy).where(
            ManagedPolicy.account_id == account))
        versions = _count(s, select(func.count()).select_from(PolicyVersion).join(
            ManagedPolicy, PolicyVersion.policy_pk == ManagedPolicy.id).where(
            ManagedPolicy.account_id == account))
        aws_attached = _count(s, select(func.count(func.distinct(RolePolicyAttachment.policy_arn))).where(
            RolePolicyAttachment.account_id == account,
            RolePolicyAttachment.policy_arn.startswith(AWS_POLICY_PREFIX)))
        providers = _count(s, select(func.count()).select_from(OIDCProvider).where(
            OIDCProvider.account_id == account))
        root_keys = _count(s, select(func.count()).select_from(AccessKey).where(
            AccessKey.account_id == account, AccessKey.status == "Active"))
    summary = {
        "Users": 0, "UsersQuota": 5000, "Groups": 0, "GroupsQuota": 300,
        "ServerCertificates": 0, "ServerCertificatesQuota": 20,
        "UserPolicySizeQuota": 2048, "GroupPolicySizeQuota": 5120, "GroupsPerUserQuota": 10,
        "SigningCertificatesPerUserQuota": 2, "AccessKeysPerUserQuota": 2,
        "MFADevices": 0, "MFADevicesInUse": 0, "AccountMFAEnabled": 0,
        "AccountAccessKeysPresent": 1 if root_keys else 0, "AccountPasswordPresent": 0,
        "AccountSigningCertificatesPresent": 0,
        "AttachedPoliciesPerGroupQuota": 10,
        "AttachedPoliciesPerRoleQuota": managed_policies.MAX_ATTACHED_PER_ROLE,
        "AttachedPoliciesPerUserQuota": 10,
        "Policies": policies, "PoliciesQuota": managed_policies.MAX_POLICIES,
        "PolicySizeQuota": MANAGED_POLICY_QUOTA,
        "PolicyVersionsInUse": versions + aws_attached, "PolicyVersionsInUseQuota": 10000,
        "VersionsPerPolicyQuota": managed_policies.MAX_VERSIONS,
        "GlobalEndpointTokenVersion": 1,
        "AssumeRolePolicySizeQuota": TRUST_POLICY_QUOTA,
        "InstanceProfiles": 0, "InstanceProfilesQuota": 1000,
        "Providers": providers,
        "RolePolicySizeQuota": INLINE_ROLE_POLICY_QUOTA,
        "Roles": roles, "RolesQuota": ctx.services.role_quota,
    }
    return {"SummaryMap": summary}
