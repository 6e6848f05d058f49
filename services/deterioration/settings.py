"""Settings of the deterioration service (environment prefix CLINPRED_DETERIORATION_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clinpred.services.common.settings import ServiceSettings, default_models_root


def default_database_url() -> str:
    return f"sqlite:///{default_models_root().parent / 'var' / 'deterioration' / 'risk.db'}"


class DeteriorationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLINPRED_DETERIORATION_", extra="ignore", protected_namespaces=())

    model_name: str = "home-deterioration"
    max_batch_size: int = Field(default=500, ge=1)
    # sqlite:///path/risk.db (embedded) or postgresql://user@host:port/db (shared by replicas).
    database_url: str = Field(default_factory=default_database_url)
    # Every record carries its tenant; one tenant until callers are authenticated.
    tenant: str = "default"
    # Observations older than this before the newest one are not needed to score.
    lookback_days: float = Field(default=14.0, gt=0)
    # How often a WatchRisk stream looks for scores written by any replica.
    watch_poll_seconds: float = Field(default=0.5, gt=0)
    max_page_size: int = Field(default=100, ge=1)
