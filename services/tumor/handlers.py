"""Tumour requests, decoded, to the loaded classifier and back as domain results, timed per domain stage."""

from __future__ import annotations

from clinpred.pilots.common.call import Call
from clinpred.pilots.tumor.classifier import ClassifiedCase, TumorCases, TumorClassifier, TumorModelInfo
from clinpred.pilots.tumor.package_format import PILOT
from clinpred.services.common.metrics import stage
from clinpred.services.common.runtime import ModelRuntime
from clinpred.services.tumor.settings import TumorSettings

SERVICE = PILOT


class TumorHandler:
    def __init__(self, settings: TumorSettings) -> None:
        self.runtime: ModelRuntime[TumorClassifier] = ModelRuntime(SERVICE, settings, TumorClassifier)

    def load(self) -> TumorClassifier:
        return self.runtime.load()

    @property
    def classifier(self) -> TumorClassifier:
        """The loaded classifier; ModelUnavailable before `load`."""
        return self.runtime.predictor

    def classify(self, cases: TumorCases, call: Call) -> list[ClassifiedCase]:
        classifier = self.classifier
        call.answered_by(classifier.identity)
        with stage(SERVICE, "predict"):
            predictions = classifier.predict(cases.rows)
        call.check()
        with stage(SERVICE, "explain"):
            explanations = classifier.explain(cases.rows, predictions)
        results = classifier.combine(predictions, explanations)
        return [ClassifiedCase(case_id, result) for case_id, result in zip(cases.case_ids, results, strict=True)]

    def model_info(self, _: None, call: Call) -> TumorModelInfo:
        return self.classifier.info
