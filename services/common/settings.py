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
    model_version: str | None = Field(
        default=None, description="Version of `model_name` to serve; unset: the highest version in the BentoML model store."
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
    # Rows written before callers were identified carry "default"; they stay that tenant's.
    development_tenant: str = Field(
        default="default",
        description="Tenant of every call when the service runs without caller identities (development only).",
    )
