"""Tumour requests, decoded, to the loaded classifier and back as domain results, timed per domain stage."""

from __future__ import annotations

from clinpred.pilots.common.call import Call
from clinpred.pilots.tumor.classifier import ClassifiedCase, TumorCases, TumorClassifier, TumorModelInfo
from clinpred.pilots.tumor.encrypted import (
    EncryptedTumorAnswer,
    EncryptedTumorModel,
    EncryptedTumorRequest,
    encrypted_tumor_model,
    score_encrypted_case,
)
from clinpred.pilots.tumor.package_format import PILOT
from clinpred.services.common.metrics import stage
from clinpred.services.common.runtime import ModelRuntime
from clinpred.services.tumor.settings import TumorSettings

SERVICE = PILOT


class TumorHandler:
    def __init__(self, settings: TumorSettings) -> None:
        self.runtime: ModelRuntime[TumorClassifier] = ModelRuntime(SERVICE, settings, TumorClassifier)
        self.clinical_prevalence = settings.clinical_prevalence
        self._encrypted: EncryptedTumorModel | None = None
        self._loaded: tuple[TumorClassifier, TumorClassifier] | None = None  # (as loaded, at the clinic's prevalence)

    def load(self) -> TumorClassifier:
        self.runtime.load()
        return self.classifier

    @property
    def classifier(self) -> TumorClassifier:
        """The loaded classifier at this deployment's prevalence; ModelUnavailable before `load`."""
        loaded = self.runtime.predictor
        if self._loaded is None or self._loaded[0] is not loaded:
            self._loaded = (loaded, loaded.at_prevalence(self.clinical_prevalence))
        return self._loaded[1]

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

    def encryption_layout(self, _: None, call: Call) -> EncryptedTumorModel:
        """The published layout of the loaded model, built once (FailedPrecondition for a model that has none)."""
        classifier = self.classifier
        encrypted = self._encrypted
        if encrypted is None or encrypted.identity != classifier.identity:
            encrypted = self._encrypted = encrypted_tumor_model(classifier)
        return encrypted

    def classify_encrypted(self, request: EncryptedTumorRequest, call: Call) -> EncryptedTumorAnswer:
        """Products of the client's ciphertexts and the weights; nothing here can decrypt, nothing is kept."""
        model = self.encryption_layout(None, call)
        call.answered_by(model.identity)
        with stage(SERVICE, "encrypted_classify"):
            products = score_encrypted_case(
                request.public_context,
                request.ciphertexts,
                model.layout,
                context_field="public_context",
                ciphertexts_field="ciphertexts",
                deadline=call.deadline,
            )
        return EncryptedTumorAnswer(products, model.identity)
