"""Settings of the tumour classification service (environment prefix CLINPRED_TUMOR_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clinpred.services.common.settings import ServiceSettings


class TumorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLINPRED_TUMOR_", extra="ignore", protected_namespaces=())

    model_name: str = "wdbc-xgboost"
    max_encrypted_ciphertexts: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Most ciphertexts one ClassifyEncrypted takes (a ciphertext holds 5 cases at CKKS degree 4096, "
        "11 at 8192); clients split larger batches into several calls.",
    )
