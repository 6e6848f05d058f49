"""Typed settings shared by every service; each service subclasses with its own env prefix.

Every field has a `description`: the README's settings reference is generated from it
(`python -m clinpred.services.common.settings_reference --write README.md`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_models_root() -> Path:
    """`models/` of the checkout the package was installed from, else of the working directory."""
    checkout = Path(__file__).resolve().parents[2] / "models"
    return checkout if checkout.is_dir() else Path.cwd() / "models"


class ServiceSettings(BaseSettings):
    """Settings every clinpred service has. Subclasses set `env_prefix`, e.g. CLINPRED_TUMOR_."""

    model_config = SettingsConfigDict(extra="ignore", protected_namespaces=())

    model_name: str = Field(description="Name of the model package to serve, as registered in the BentoML model store.")
    model_version: str = Field(
        description="Version of `model_name` to serve, exactly (each service's default is its released version). A"
        " newly trained or registered version is served only once this names it: promotion is changing it."
    )
    max_batch_size: int = Field(
        default=1000,
        ge=1,
        description="Most items one request may carry: cases (tumour), observations (deterioration), patients (genomics).",
    )
    # Connections end after this long (in-flight calls get the grace period), so
    # clients re-resolve a headless Service and reach replicas started since.
    max_connection_age_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A connection is closed after this long, so clients re-resolve the service and reach new replicas.",
    )
    max_connection_age_grace_seconds: float = Field(
        default=30.0, ge=0, description="Calls in flight on a connection being closed get this long to finish."
    )
    # Access control: who may call (identity), what they may do (policy), and how much (limits).
    development_plaintext: bool = Field(
        default=False,
        description="Development only: accept callers without a client certificate or token, as `development_tenant`"
        " with every scope (unless `policy_file` is set). The service warns at start while this is on.",
    )
    # Rows written before callers were identified carry "default"; they stay that tenant's.
    development_tenant: str = Field(
        default="default", description="Tenant of callers without an identity when `development_plaintext` is on."
    )
    trust_domain: str = Field(
        default="clinpred.local",
        description="SPIFFE trust domain of client certificates: their URI SAN is"
        " `spiffe://<trust domain>/tenant/<tenant>/client/<client>`.",
    )
    policy_file: Path | None = Field(
        default=None,
        description="Access policy (TOML): which tenants and clients may use which scopes. Required unless"
        " `development_plaintext`; re-read within a second of a change, a broken file keeps the last good one.",
    )
    ca_file: Path | None = Field(default=None, description="The client CA's certificate, which signs `crl_file`.")
    crl_file: Path | None = Field(
        default=None, description="Certificate revocation list (PEM or DER) of the client CA; re-read when it changes."
    )
    jwks_file: Path | None = Field(
        default=None,
        description="JSON Web Key Set whose keys sign accepted bearer tokens (RS256, ES256); unset: tokens are refused.",
    )
    token_issuer: str = Field(default="", description="Required `iss` of bearer tokens.")
    token_audience: str = Field(default="", description="Required `aud` of bearer tokens.")
    tenant_claim: str = Field(default="tenant", description="Bearer-token claim naming the caller's tenant.")
    client_claim: str = Field(default="client_id", description="Bearer-token claim naming the calling client.")
    rate_per_second: float = Field(
        default=100.0, gt=0, description="Calls per second each tenant may make on average (a token bucket)."
    )
    rate_burst: int = Field(default=200, ge=1, description="Calls a tenant may make at once above its rate.")
    max_calls_in_progress_per_tenant: int = Field(
        default=16, ge=1, description="Unary calls one tenant may have in progress at once, so it cannot take every worker."
    )
    max_streams_per_tenant: int = Field(default=32, ge=1, description="Streams one tenant may have open at once.")
    # The audit trail: one record per call, whatever its outcome.
    audit_key_file: Path | None = Field(
        default=None,
        description="Secret (>= 32 bytes, not world-readable) keying the audit trail's patient pseudonyms and hash"
        " chain; `clinpred audit keygen FILE` makes one. Required unless `development_plaintext`, which keys"
        " with `<audit_dir>/audit.key` (made if missing).",
    )
    audit_dir: Path = Field(
        default_factory=lambda: default_models_root().parent / "var" / "audit",
        description="Folder of the append-only audit files (one per writer process), when no `audit_database_url`.",
    )
    audit_database_url: str | None = Field(
        default=None,
        description="Database of the audit trail (`sqlite:///PATH` or `postgresql://...`); unset: files in"
        " `audit_dir`. The deterioration service keeps it in its store's database.",
    )
    # Sealed calls (HPKE): the keys requests are sealed to, and how old a sealed request may be.
    sealing_keys_dir: Path | None = Field(
        default=None,
        description="Keyring folder of sealed calls (`clinpred keys init DIR` makes one, `clinpred keys rotate DIR`"
        " adds a key); re-read within a second of a change. Unset: the `Sealed` RPC answers FAILED_PRECONDITION.",
    )
    sealing_window_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A sealed request opens only within this many seconds of its creation time (either side of the"
        " server's clock), and only once: the replay guard remembers it this long.",
    )
