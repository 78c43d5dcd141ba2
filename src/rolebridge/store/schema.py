"""The tables. One row type per IAM entity; JSON columns for small lists (client IDs, tags)."""

from __future__ import annotations

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Setting(Base):
    """Server-wide fixed points, e.g. the public URL chosen at first start."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


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
    """A job cluster and its issuer. Public keys live here so every server can verify; private keys are files."""

    __tablename__ = "clusters"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    issuer_url: Mapped[str] = mapped_column(String(1024))
    audience: Mapped[str] = mapped_column(String(255), default="sts.amazonaws.com")
    token_lifetime: Mapped[int] = mapped_column(Integer, default=86400)
    jwks: Mapped[dict] = mapped_column(JSON)
    key_dir: Mapped[str] = mapped_column(String(4096))
    created_at: Mapped[float] = mapped_column(Float)
