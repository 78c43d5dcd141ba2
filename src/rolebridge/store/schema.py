"""The tables. One row type per IAM entity; JSON columns for small lists (client IDs, tags)."""

from __future__ import annotations

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Setting(Base):
    """Server-wide fixed points, e.g. the public URL chosen at first start."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AuditEvent(Base):
    """One CloudTrail-shaped event per IAM/STS call (``audit/``). The event itself is the JSON ``body``;
    the columns beside it exist only to filter on (account, name, time) without parsing JSON."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_recipient_time", "recipient_account_id", "event_time"),
                      Index("ix_audit_events_caller_time", "caller_account_id", "event_time"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_time: Mapped[float] = mapped_column(Float, index=True)
    event_name: Mapped[str] = mapped_column(String(128), index=True)
    event_source: Mapped[str] = mapped_column(String(64))
    recipient_account_id: Mapped[str | None] = mapped_column(String(12), nullable=True)
    caller_account_id: Mapped[str | None] = mapped_column(String(12), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(128), nullable=True)
    body: Mapped[str] = mapped_column(Text)


class AuditJournalProgress(Base):
    """How far ``audit.ingest`` has moved one journal segment into ``audit_events``: written in the
    same transaction as the rows, so every journal line lands in the table exactly once."""

    __tablename__ = "audit_journal_progress"
    segment: Mapped[str] = mapped_column(String(200), primary_key=True)
    done_bytes: Mapped[int] = mapped_column(Integer)


class Account(Base):
    __tablename__ = "accounts"
    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)


class AccessKey(Base):
    """Long-term keys. The secret is stored sealed with the server key, never in plaintext."""

    __tablename__ = "access_keys"
    access_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    secret_sealed: Mapped[str] = mapped_column(Text)
    principal_arn: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16), default="Active")
    created_at: Mapped[float] = mapped_column(Float)


class OIDCProvider(Base):
    __tablename__ = "oidc_providers"
    __table_args__ = (UniqueConstraint("account_id", "url", name="uq_provider_account_url"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    url: Mapped[str] = mapped_column(String(255))  # without scheme, as AWS stores it
    arn: Mapped[str] = mapped_column(String(2048), index=True)
    client_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    thumbprints: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float)


class Role(Base):
    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("account_id", "name_lower", name="uq_role_account_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    name_lower: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512), default="/")
    role_id: Mapped[str] = mapped_column(String(32), unique=True)
    arn: Mapped[str] = mapped_column(String(2048))
    trust_policy: Mapped[str] = mapped_column(Text)
    # The unique ID of each role the trust policy names by ARN, fixed when it was saved
    # (iam/trust_principals.py): {ARN as written: AROA...}. NULL: none.
    trust_principal_ids: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    max_session_duration: Mapped[int] = mapped_column(Integer, default=3600)
    permissions_boundary: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    tags: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float)


class RolePolicy(Base):
    """Inline policies embedded in a role."""

    __tablename__ = "role_policies"
    __table_args__ = (UniqueConstraint("role_pk", "name", name="uq_role_policy_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    role_pk: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    document: Mapped[str] = mapped_column(Text)


class Cluster(Base):
    """A job cluster and its issuer.

    Public keys live here so every server can verify; private keys are files in the creator's data dir."""

    __tablename__ = "clusters"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    issuer_url: Mapped[str] = mapped_column(String(1024))
    audience: Mapped[str] = mapped_column(String(255), default="sts.amazonaws.com")
    token_lifetime: Mapped[int] = mapped_column(Integer, default=86400)
    jwks: Mapped[dict] = mapped_column(JSON)
    key_dir: Mapped[str] = mapped_column(String(4096))
    created_at: Mapped[float] = mapped_column(Float)


# -- job platform (platform/): projects, environments, job definitions, runs ------------------
class Project(Base):
    """A project: a name (may contain `_`) and the default `aws_role`, a Jinja template over `env`."""

    __tablename__ = "projects"
    name: Mapped[str] = mapped_column(String(52), primary_key=True)
    default_aws_role: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)  # the project file it came from
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # where its jobs run unless a job or the command line says otherwise: {"runner", "image",
    # "kube_context"} as the project file gives them; None: a local process (platform/projects.py)
    runner_settings: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class Environment(Base):
    """An environment is a namespace on a cluster (conveyor-semantics.md §1.1); made on first use."""

    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("cluster", "name", name="uq_environment_cluster_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), index=True)
    cluster: Mapped[str] = mapped_column(ForeignKey("clusters.name"), index=True)
    created_at: Mapped[float] = mapped_column(Float)


class JobDefinition(Base):
    """One job of a project file: command, arguments, env vars, aws_role, retry policy."""

    __tablename__ = "job_definitions"
    __table_args__ = (UniqueConstraint("project", "name", name="uq_job_project_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    command: Mapped[list[str]] = mapped_column(JSON, default=list)
    args: Mapped[list[str]] = mapped_column(JSON, default=list)
    env: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    aws_role: Mapped[str | None] = mapped_column(Text, nullable=True)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    retry_backoff: Mapped[float] = mapped_column(Float, default=1.0)
    runner_settings: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # overrides the project's, per key


class Run(Base):
    """One job run: identity, lifecycle, exit code, log file and the outcome of its first assume."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    cluster: Mapped[str] = mapped_column(String(63), index=True)
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    project: Mapped[str] = mapped_column(String(52), index=True)
    environment: Mapped[str] = mapped_column(String(63))
    job: Mapped[str | None] = mapped_column(String(63), nullable=True)
    service_account: Mapped[str] = mapped_column(String(253))
    role_arn: Mapped[str] = mapped_column(String(2048), default="")
    command: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    retry_backoff: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    assume: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    log_path: Mapped[str] = mapped_column(String(4096))
    supervisor_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    supervisor_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancel_requested: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # where the run executes when not as a local process: {"runner": "kubernetes", "context", "namespace",
    # "job", "image"}, so `runs cancel` can delete its Job and service account even without its supervisor
    placement: Mapped[dict | None] = mapped_column(JSON, nullable=True)


# -- S3 (``s3/``): buckets, objects, multipart uploads and their parts ----------------------------
# Object bytes live in files under DATA_DIR/s3/blobs (``s3/storage.py``); a row names its file.
# A row is written only after its file is complete, fsynced and renamed, so a row never points at
# a partial object; a file without a row is garbage that ``s3/storage.py`` may sweep.
from sqlalchemy import BigInteger  # noqa: E402 - kept with the S3 tables appended here


class S3Bucket(Base):
    """A bucket: names are global (one namespace for every account), the owner is one account."""

    __tablename__ = "s3_buckets"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    region: Mapped[str] = mapped_column(String(32), default="us-east-1")
    policy: Mapped[str | None] = mapped_column(Text, nullable=True)
    tags: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float)


class S3Object(Base):
    """The current version of one key. ``blob`` is the file's name under the blob dir."""

    __tablename__ = "s3_objects"
    __table_args__ = (UniqueConstraint("bucket", "key", name="uq_s3_object_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(ForeignKey("s3_buckets.name", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str] = mapped_column(String(64))
    blob: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # Content-Encoding & co.
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    tags: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    checksums: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # e.g. {"CRC32": "base64"}
    parts_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_modified: Mapped[float] = mapped_column(Float)


class S3Upload(Base):
    """A multipart upload in progress: what CreateMultipartUpload fixed for the final object."""

    __tablename__ = "s3_uploads"
    upload_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    bucket: Mapped[str] = mapped_column(ForeignKey("s3_buckets.name", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(1024))
    initiator_arn: Mapped[str] = mapped_column(String(2048))
    content_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    tags: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    checksum_algorithm: Mapped[str | None] = mapped_column(String(16), nullable=True)
    initiated: Mapped[float] = mapped_column(Float)


class S3Part(Base):
    """One uploaded part; a re-upload of the same number replaces the row (and its file)."""

    __tablename__ = "s3_parts"
    __table_args__ = (UniqueConstraint("upload_id", "part_number", name="uq_s3_part_number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    upload_id: Mapped[str] = mapped_column(ForeignKey("s3_uploads.upload_id", ondelete="CASCADE"), index=True)
    part_number: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str] = mapped_column(String(64))
    blob: Mapped[str] = mapped_column(String(64))
    checksums: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    last_modified: Mapped[float] = mapped_column(Float)


class ManagedPolicy(Base):
    """A customer managed policy. AWS managed policies are not rows: ``iam/aws_policies.py`` holds them."""

    __tablename__ = "managed_policies"
    __table_args__ = (UniqueConstraint("account_id", "name_lower", name="uq_policy_account_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    name_lower: Mapped[str] = mapped_column(String(128))
    path: Mapped[str] = mapped_column(String(512), default="/")
    policy_id: Mapped[str] = mapped_column(String(32), unique=True)
    arn: Mapped[str] = mapped_column(String(2048), index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    default_version: Mapped[str] = mapped_column(String(16), default="v1")
    next_version: Mapped[int] = mapped_column(Integer, default=2)  # AWS never reuses a version number
    tags: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class PolicyVersion(Base):
    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("policy_pk", "version_id", name="uq_policy_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_pk: Mapped[int] = mapped_column(ForeignKey("managed_policies.id", ondelete="CASCADE"), index=True)
    version_id: Mapped[str] = mapped_column(String(16))
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class RolePolicyAttachment(Base):
    """A managed policy attached to a role, by ARN (customer managed in the role's account, or AWS managed)."""

    __tablename__ = "role_policy_attachments"
    __table_args__ = (UniqueConstraint("role_pk", "policy_arn", name="uq_role_attachment"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    role_pk: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    policy_arn: Mapped[str] = mapped_column(String(2048), index=True)


class AccountGuardrail(Base):
    """An account-wide guardrail policy (SCP style, ``iam/guardrails.py``): every principal of the
    account, its root included, is limited to what some guardrail allows, and any guardrail Deny wins.

    Set by the operator (`rolebridge account guardrail put`), not through the IAM API: in AWS an SCP
    is attached from the organization's management account, never by the account it limits.
    """

    __tablename__ = "account_guardrails"
    __table_args__ = (UniqueConstraint("account_id", "name", name="uq_guardrail_account_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # no index of its own: the unique (account_id, name) index leads with it and serves every lookup
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    name: Mapped[str] = mapped_column(String(128))
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
