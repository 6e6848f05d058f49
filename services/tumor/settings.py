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
    batch_window_ms: float = Field(
        default=1.0,
        ge=0.0,
        le=100.0,
        description="Classify calls arriving together are classified in one vectorised batch. A call arriving more"
        " than this many milliseconds after the last batch ended finds the server idle and goes at once, alone; one"
        " arriving sooner (under load) waits at most this long for others. 0: no batching, each call alone.",
    )
    batch_max_cases: int = Field(
        default=64, ge=1, le=1000, description="Most Classify calls one cross-call batch holds."
    )
    onnx_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="ONNX Runtime intra-op threads per API worker. 1 suits a 2-core machine: a case, or a batch"
        " of a hundred, is predicted faster than threads start, and the other core serves gRPC (or a second API"
        " worker: `clinpred serve --api-workers 2` on a machine of its own, 1 when all three services share it).",
    )
