"""Settings of the deterioration service (environment prefix CLINPRED_DETERIORATION_)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from clinpred.services.common.settings import ServiceSettings, default_models_root


def default_database_url() -> str:
    return f"sqlite:///{default_models_root().parent / 'var' / 'deterioration' / 'risk.db'}"


def secrets_dir() -> Path | None:
    """CLINPRED_SECRETS_DIR: a folder of files named like the variables, e.g.
    CLINPRED_DETERIORATION_DATABASE_URL (a mounted Kubernetes Secret), so that a
    secret need not sit in the environment. Unset: none. Environment variables win."""
    value = os.environ.get("CLINPRED_SECRETS_DIR", "")
    return Path(value) if value else None


class DeteriorationSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLINPRED_DETERIORATION_", extra="ignore", protected_namespaces=(), secrets_dir=secrets_dir()
    )

    model_name: str = "home-deterioration"
    model_version: str = "1.2.0"
    max_batch_size: int = Field(default=500, ge=1)
    # sqlite:///path/risk.db (embedded) or postgresql://user@host:port/db (shared by replicas).
    database_url: str = Field(default_factory=default_database_url)
    migrate_on_start: bool = Field(
        default=True,
        description="Migrate the database's schema at start (yoyo's lock keeps replicas starting together safe)."
        " False: only check that the schema is current and refuse to start if not; a release's migration step"
        " (`clinpred db migrate`, a Kubernetes Job) migrates, once.",
    )
    # Observations older than this before the newest one are not needed to score.
    lookback_days: float = Field(default=14.0, gt=0)
    # How often a WatchRisk stream looks for scores written by any replica.
    watch_poll_seconds: float = Field(default=0.5, gt=0)
    max_page_size: int = Field(default=100, ge=1, description="Most scores one ListRiskHistory page may hold.")
    # WatchRisk streams live for hours; a recycled connection lets them run this
    # long before they are cut (clients resume with their resume_token).
    max_connection_age_grace_seconds: float = Field(default=3600.0, ge=0)

    @model_validator(mode="after")
    def _audit_in_the_store(self) -> DeteriorationSettings:
        # The audit trail lives beside the data it records, in one database to back up and secure.
        if self.audit_database_url is None:
            self.audit_database_url = self.database_url
        return self
