"""Tumour inference behind the servicer: the loaded classifier, its codec, and per-stage timing."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from clinpred.pilots.tumor.classifier import TumorClassification, TumorClassifier
from clinpred.services.common.metrics import stage
from clinpred.services.common.runtime import ModelRuntime
from clinpred.services.tumor.codec import TumorCodec
from clinpred.services.tumor.settings import TumorSettings

SERVICE = "tumor"
VERIFIED_COVERAGE_METRIC = "conformal_coverage_heldout"


class TumorInference:
    def __init__(self, settings: TumorSettings) -> None:
        self.settings = settings
        self.runtime: ModelRuntime[TumorClassifier] = ModelRuntime(SERVICE, settings, TumorClassifier)

    def load(self) -> None:
        self.runtime.load()
        self.__dict__.pop("codec", None)

    @property
    def classifier(self) -> TumorClassifier:
        return self.runtime.predictor

    @cached_property
    def codec(self) -> TumorCodec:
        classifier = self.classifier
        verified = float(classifier.metrics.get(VERIFIED_COVERAGE_METRIC, 0.0))
        return TumorCodec(classifier.schema, self.settings.max_batch_size, verified)

    def classify(self, rows: np.ndarray) -> list[TumorClassification]:
        classifier = self.classifier
        with stage(SERVICE, "predict"):
            predictions = classifier.predict(rows)
        with stage(SERVICE, "explain"):
            explanations = classifier.explain(rows, predictions)
        return classifier.combine(predictions, explanations)
