"""Typed settings shared by every service; each service subclasses with its own env prefix."""

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

    model_name: str
    # None serves the highest version of `model_name` in the BentoML model store.
    model_version: str | None = None
    # Packages under this folder are registered in the BentoML model store at start.
    models_root: Path = Field(default_factory=default_models_root)
    max_batch_size: int = Field(default=1000, ge=1)
    # Connections end after this long (in-flight calls get the grace period), so
    # clients re-resolve a headless Service and reach replicas started since.
    max_connection_age_seconds: float = Field(default=300.0, gt=0)
    max_connection_age_grace_seconds: float = Field(default=30.0, ge=0)
