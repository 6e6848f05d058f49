"""Settings of the tumour classification service (environment prefix CLINPRED_TUMOR_)."""

from pydantic_settings import SettingsConfigDict

from clinpred.services.common.settings import ServiceSettings


class TumorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLINPRED_TUMOR_", extra="ignore", protected_namespaces=())

    model_name: str = "wdbc-xgboost"
