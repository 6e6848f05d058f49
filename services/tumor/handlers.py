"""Tumour requests, decoded, to the loaded classifier and back as domain results, timed per domain stage."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

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
from clinpred.services.common.metrics import observe_stage, stage
from clinpred.services.common.runtime import ModelRuntime
from clinpred.services.tumor.settings import TumorSettings

SERVICE = PILOT


class TumorHandler:
    def __init__(self, settings: TumorSettings) -> None:
        threads = settings.onnx_threads
        self.runtime: ModelRuntime[TumorClassifier] = ModelRuntime(
            SERVICE, settings, TumorClassifier, lambda package: TumorClassifier.load(package, onnx_threads=threads)
        )
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
            explanations = classifier.explain(cases.rows, predictions, [cases.detail] * len(cases))
        results = classifier.combine(predictions, explanations)
        return [ClassifiedCase(case_id, result) for case_id, result in zip(cases.case_ids, results, strict=True)]

    def classify_together(self, calls: Sequence[tuple[TumorCases, Call]]) -> list[list[ClassifiedCase] | Exception]:
        """The cases of several calls predicted and explained in one vectorised step, answered per call.

        Each call records the batch's predict and explain times as its own (what it waited for); a call
        whose deadline passed after the prediction fails alone with DeadlineExceeded."""
        classifier = self.classifier
        for _, call in calls:
            call.answered_by(classifier.identity)
        rows = np.vstack([cases.rows for cases, _ in calls])
        details = [cases.detail for cases, _ in calls for _ in range(len(cases))]
        start = time.perf_counter()
        predictions = classifier.predict(rows)
        predicted = time.perf_counter()
        observe_stage(SERVICE, "predict", predicted - start, len(calls))
        expired: dict[int, Exception] = {}
        for number, (_, call) in enumerate(calls):
            try:
                call.check()
            except Exception as error:
                expired[number] = error
        explanations = classifier.explain(rows, predictions, details)
        observe_stage(SERVICE, "explain", time.perf_counter() - predicted, len(calls))
        results = classifier.combine(predictions, explanations)
        outcomes: list[list[ClassifiedCase] | Exception] = []
        first = 0
        for number, (cases, _) in enumerate(calls):
            answers = results[first : first + len(cases)]
            first += len(cases)
            if number in expired:
                outcomes.append(expired[number])
            else:
                outcomes.append([ClassifiedCase(i, r) for i, r in zip(cases.case_ids, answers, strict=True)])
        return outcomes

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
