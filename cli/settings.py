"""Settings of the command line (environment prefix CLINPRED_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clinpred.services.common.settings import default_models_root


def _default_state_dir() -> Path:
    return default_models_root().parent / "var"


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLINPRED_", extra="ignore")

    models_root: Path = Field(
        default_factory=default_models_root,
        description="Folder of the model packages (`<pilot>/<name>/<version>/`): where `clinpred train` writes "
        "them and where `clinpred models` and `clinpred serve` find them to register.",
    )
    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Per-service BentoML homes live here (model store and metrics files), and `tls/`: the mutual "
        "TLS folder `clinpred serve` makes on first use and `clinpred call` uses unless told otherwise.",
    )

    def bentoml_home(self, pilot: str) -> Path:
        # One home per service: `bentoml serve-grpc` wipes its home's Prometheus
        # multiprocess folder at start, so services sharing a home would erase
        # each other's metrics. It also mirrors one container per service.
        return self.state_dir / "bentoml" / pilot

    @property
    def tls_dir(self) -> Path:
        """The default mutual TLS folder of `clinpred serve` and `clinpred call`."""
        return self.state_dir / "tls"
