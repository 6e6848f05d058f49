"""Settings of the tumour classification service (environment prefix CLINPRED_TUMOR_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clinpred.services.common.settings import ServiceSettings


class TumorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLINPRED_TUMOR_", extra="ignore", protected_namespaces=())

    # The nested evaluation's winner on log loss; the boosted stumps stay selectable (wdbc-xgboost).
    model_name: str = "wdbc-logistic"
    model_version: str = "1.1.0"
    max_encrypted_ciphertexts: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Most ciphertexts one ClassifyEncrypted takes (a ciphertext holds 5 cases at CKKS degree 4096, "
        "11 at 8192); clients split larger batches into several calls.",
    )
    clinical_prevalence: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Share of malignant tumours among the cases this deployment sees (0 < p < 1); answers are "
        "recalibrated for it by shifting the log-odds by logit(p) - logit(training share). Unset: the training "
        "data's share (37% for wdbc).",
    )
