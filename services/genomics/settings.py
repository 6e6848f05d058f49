"""Settings of the genomic risk service (environment prefix CLINPRED_GENOMICS_)."""

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from clinpred.services.common.settings import ServiceSettings


class GenomicsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLINPRED_GENOMICS_", extra="ignore", protected_namespaces=())

    # One model package per cancer: `model_name` at `model_version`, and each of `additional_models` at the
    # version it names, e.g. CLINPRED_GENOMICS_ADDITIONAL_MODELS='["prostate-pgs000662:1.0.0"]'.
    model_name: str = "breast-pgs000004"
    model_version: str = "1.2.0"
    additional_models: list[str] = Field(
        default_factory=list,
        description="Further model packages to serve, one per cancer, each as `NAME:VERSION` (pinned like"
        ' `model_version`), as a JSON list, e.g. `["prostate-pgs000662:1.0.0"]`.',
    )
    # PGS Catalog scoring files (plain or gzipped) that add builds, allele frequencies (imputation) or
    # override a model package's own score layout, matched on their #pgs_id header. None: the packages'
    # own layouts only, which is enough to score in the build each model was trained in.
    scoring_dir: Path | None = None
    # Largest VCF accepted, as sent (compressed or not): AssessVcfUpload is refused beyond it.
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    # Largest VCF once decompressed.
    max_vcf_bytes: int = Field(default=4 * 1024 * 1024 * 1024, ge=1)
    # Largest public CKKS context and ciphertext accepted by ScoreEncrypted.
    max_context_bytes: int = Field(default=128 * 1024 * 1024, ge=1)
    max_ciphertext_bytes: int = Field(default=16 * 1024 * 1024, ge=1, description="Largest ciphertext ScoreEncrypted accepts.")
    private_scores: list[str] = Field(
        default_factory=list,
        description="Scores (cancer or PGS id) whose weights the service keeps: GetScoreLayout publishes their variants"
        ' and effect alleles only, and ScoreEncrypted answers the encrypted total only, e.g. `["breast"]`.',
    )
    evaluation_keys_ttl_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="A registered public CKKS context (RegisterEvaluationKeys) is dropped after this long unused.",
    )
    max_evaluation_keys_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=1,
        description="Most bytes of registered public contexts one replica holds (about 35 MB each at degree 8192);"
        " past it registrations are refused RESOURCE_EXHAUSTED.",
    )
    max_evaluation_keys_bytes_per_tenant: int = Field(
        default=256 * 1024 * 1024,
        ge=1,
        description="Most bytes of registered public contexts one tenant holds on a replica; a larger context is"
        " refused INVALID_ARGUMENT, one that does not fit beside the tenant's others RESOURCE_EXHAUSTED.",
    )
    # pgsc_calc's --min_overlap: fewer matched variants refuse the score.
    min_overlap: float = Field(default=0.75, ge=0.0, le=1.0)
    max_top_variants: int = Field(default=100, ge=1, description="Most top-contributing variants one assessment may ask for.")
    # Size of the chunks the service streams ciphertexts back in.
    response_chunk_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Uploads of large VCFs and CKKS contexts take minutes; a recycled
    # connection lets them finish before it is cut.
    max_connection_age_grace_seconds: float = Field(default=900.0, ge=0)

    @field_validator("additional_models")
    @classmethod
    def _pinned(cls, models: list[str]) -> list[str]:
        unpinned = [m for m in models if len(m.split(":")) != 2 or not all(m.split(":"))]
        if unpinned:
            raise ValueError(f"each additional model is NAME:VERSION (a pinned version), not {', '.join(unpinned)}")
        return models

    def pinned_models(self) -> list[tuple[str, str]]:
        """(name, version) of every model package to serve, `model_name`'s first, in configured order."""
        pinned = [(self.model_name, self.model_version)]
        for entry in self.additional_models:
            name, version = entry.split(":")
            if name != self.model_name:
                pinned.append((name, version))
        return pinned
