"""clinpred.tumor.v1 messages <-> tumour domain objects. Every input check of the service is here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from clinpred.pilots.common.errors import ViolationCollector
from clinpred.pilots.common.model_package import ModelIdentity
from clinpred.pilots.common.schema import ModelSchema
from clinpred.pilots.tumor.classifier import TumorClassification
from clinpred.services.api.tumor.v1 import tumor_pb2
from clinpred.services.common import codec as common


class TumorCodec:
    def __init__(self, schema: ModelSchema, max_batch_size: int, verified_coverage: float) -> None:
        self.schema = schema
        self.max_batch_size = max_batch_size
        self.verified_coverage = verified_coverage

    def _decode_cases(
        self, cases: Sequence[tumor_pb2.TumorCase], paths: Sequence[str], violations: ViolationCollector
    ) -> tuple[list[str], np.ndarray]:
        rows = [common.check_feature_map(c.features, self.schema.features, p, violations) for c, p in zip(cases, paths)]
        violations.raise_if_any()
        return [c.case_id for c in cases], np.asarray(rows, dtype=np.float64).reshape(len(rows), len(self.schema.features))

    def decode_classify(self, request: tumor_pb2.ClassifyRequest) -> tuple[list[str], np.ndarray]:
        violations = ViolationCollector()
        common.check_unknown_fields(request, "", violations)
        if not request.HasField("tumor_case"):
            violations.add("tumor_case", "is required")
            violations.raise_if_any()
        return self._decode_cases([request.tumor_case], ["tumor_case"], violations)

    def decode_batch(self, request: tumor_pb2.ClassifyBatchRequest) -> tuple[list[str], np.ndarray]:
        violations = ViolationCollector()
        common.check_batch_size(len(request.cases), self.max_batch_size, "cases", violations)
        violations.raise_if_any()
        common.check_unknown_fields(request, "", violations)
        paths = [f"cases[{i}]" for i in range(len(request.cases))]
        return self._decode_cases(list(request.cases), paths, violations)

    def decode_stream_item(self, request: tumor_pb2.ClassifyStreamRequest, index: int) -> tuple[list[str], np.ndarray]:
        violations = ViolationCollector()
        path = f"stream[{index}]"
        common.check_unknown_fields(request, path, violations)
        if not request.HasField("tumor_case"):
            violations.add(f"{path}.tumor_case", "is required")
            violations.raise_if_any()
        return self._decode_cases([request.tumor_case], [f"{path}.tumor_case"], violations)

    def encode(self, case_id: str, result: TumorClassification) -> tumor_pb2.Classification:
        return tumor_pb2.Classification(
            case_id=case_id,
            label=result.label,
            probabilities=common.encode_probabilities(result.probabilities),
            positive_probability=result.probabilities[self.schema.positive_class],
            confidence=common.encode_conformal_set(result.confidence, self.verified_coverage),
            explanation=common.encode_explanation(result.explanation),
            out_of_range=common.encode_range_flags(result.out_of_range),
            model=common.encode_identity(result.model),
        )

    def encode_model_info(
        self, identity: ModelIdentity, metrics: dict[str, Any], coverage: float
    ) -> tumor_pb2.GetModelInfoResponse:
        return tumor_pb2.GetModelInfoResponse(
            model=common.encode_identity(identity),
            features=[common.encode_feature_spec(spec) for spec in self.schema.features],
            classes=list(self.schema.classes),
            positive_class=self.schema.positive_class,
            metrics=common.encode_metrics(metrics),
            conformal_coverage=coverage,
            max_batch_size=self.max_batch_size,
        )
