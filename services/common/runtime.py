"""The loaded model of one service: what a servicer asks for predictions.

Loading happens once per process, in BentoML's startup hook (or the
in-process server's), before health reports SERVING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from clinpred.pilots.common.errors import ModelUnavailable
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.common import model_store
from clinpred.services.common.settings import ServiceSettings

logger = logging.getLogger("clinpred.runtime")


class LoadablePredictor(Protocol):
    @classmethod
    def load(cls, package: ModelPackage) -> LoadablePredictor: ...


P = TypeVar("P")


class ModelRuntime(Generic[P]):
    """Holds one pilot's predictor, loaded from the BentoML model store."""

    def __init__(
        self,
        pilot: str,
        settings: ServiceSettings,
        predictor_type: type[P],
        load: Callable[[ModelPackage], P] | None = None,
    ) -> None:
        """`load` builds the predictor from its package (default: `predictor_type.load`)."""
        self.pilot = pilot
        self.settings = settings
        self.predictor_type = predictor_type
        self._load = load
        self._predictor: P | None = None

    def load(self) -> P:
        package = model_store.load_package(self.pilot, self.settings.model_name, self.settings.model_version)
        predictor: P = self._load(package) if self._load else self.predictor_type.load(package)  # type: ignore[attr-defined]
        self._predictor = predictor
        identity = package.identity
        logger.info("%s model %s %s loaded (sha256 %s)", self.pilot, identity.name, identity.version, identity.sha256)
        return predictor

    @property
    def predictor(self) -> P:
        if self._predictor is None:
            raise ModelUnavailable(f"the {self.pilot} model is not loaded yet")
        return self._predictor
