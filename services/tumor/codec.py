"""clinpred.tumor.v1 messages <-> tumour domain objects. Every stateless input check of the service is here.

One codec per loaded model: the schema it checks features against, the batch
limit and the model's verified coverage are fixed when it is built, so a
request costs only its own checks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clinpred.pilots.common.errors import ViolationCollector
from clinpred.pilots.common.schema import ModelSchema
from clinpred.pilots.tumor.classifier import ClassifiedCase, TumorCases, TumorClassification, TumorModelInfo
from clinpred.services.api.tumor.v1 import tumor_pb2
from clinpred.services.common import codec as common

# Longest case id: the caller's own identifier (an accession or UUID), echoed back in every answer.
MAX_CASE_ID_LENGTH = 128


class TumorCodec:
    def __init__(self, schema: ModelSchema, max_batch_size: int, verified_coverage: float) -> None:
        self.schema = schema
        self.max_batch_size = max_batch_size
        self.verified_coverage = verified_coverage

    @classmethod
    def for_model(cls, info: TumorModelInfo, max_batch_size: int) -> TumorCodec:
        return cls(info.schema, max_batch_size, info.verified_coverage)

    # Requests -> TumorCases

    def _decode_cases(
        self, cases: Sequence[tumor_pb2.TumorCase], paths: Sequence[str], violations: ViolationCollector
    ) -> TumorCases:
        specs = self.schema.features
        rows = []
        for case, path in zip(cases, paths, strict=True):
            common.check_text(case.case_id, f"{path}.case_id", violations, max_length=MAX_CASE_ID_LENGTH)
            rows.append(common.check_feature_map(case.features, specs, path, violations))
        violations.raise_if_any()
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(specs))
        return TumorCases(tuple(c.case_id for c in cases), matrix)

    def _decode_one(self, request: tumor_pb2.ClassifyRequest | tumor_pb2.ClassifyStreamRequest, path: str) -> TumorCases:
        violations = ViolationCollector()
        common.check_unknown_fields(request, path, violations)
        case_path = f"{path}.tumor_case" if path else "tumor_case"
        if not request.HasField("tumor_case"):
            violations.add(case_path, "is required")
            violations.raise_if_any()
        return self._decode_cases([request.tumor_case], [case_path], violations)

    def decode_classify(self, request: tumor_pb2.ClassifyRequest) -> TumorCases:
        return self._decode_one(request, "")

    def decode_batch(self, request: tumor_pb2.ClassifyBatchRequest) -> TumorCases:
        violations = ViolationCollector()
        common.check_batch_size(len(request.cases), self.max_batch_size, "cases", violations)
        # A batch over the limit is refused before its cases are read.
        violations.raise_if_any()
        common.check_unknown_fields(request, "", violations)
        paths = [f"cases[{i}]" for i in range(len(request.cases))]
        return self._decode_cases(list(request.cases), paths, violations)

    def decode_stream_item(self, request: tumor_pb2.ClassifyStreamRequest, index: int) -> TumorCases:
        return self._decode_one(request, f"stream[{index}]")

    # Domain results -> responses

    def encode_classification(self, case: ClassifiedCase) -> tumor_pb2.Classification:
        result: TumorClassification = case.classification
        return tumor_pb2.Classification(
            case_id=case.case_id,
            label=result.label,
            probabilities=common.encode_probabilities(result.probabilities),
            positive_probability=result.probabilities[self.schema.positive_class],
            confidence=common.encode_conformal_set(result.confidence, self.verified_coverage),
            explanation=common.encode_explanation(result.explanation),
            out_of_range=common.encode_range_flags(result.out_of_range),
            model=common.encode_identity(result.model),
        )

    def encode_classify(self, cases: Sequence[ClassifiedCase]) -> tumor_pb2.ClassifyResponse:
        (case,) = cases
        return tumor_pb2.ClassifyResponse(classification=self.encode_classification(case))

    def encode_batch(self, cases: Sequence[ClassifiedCase]) -> tumor_pb2.ClassifyBatchResponse:
        return tumor_pb2.ClassifyBatchResponse(classifications=[self.encode_classification(c) for c in cases])

    def encode_stream_item(self, cases: Sequence[ClassifiedCase]) -> tumor_pb2.ClassifyStreamResponse:
        (case,) = cases
        return tumor_pb2.ClassifyStreamResponse(classification=self.encode_classification(case))

    def decode_model_info(self, request: tumor_pb2.GetModelInfoRequest) -> None:
        """GetModelInfo takes no arguments; fields it does not know are refused, as everywhere."""
        violations = ViolationCollector()
        common.check_unknown_fields(request, "", violations)
        violations.raise_if_any()

    def encode_model_info(self, info: TumorModelInfo) -> tumor_pb2.GetModelInfoResponse:
        return tumor_pb2.GetModelInfoResponse(
            model=common.encode_identity(info.identity),
            features=[common.encode_feature_spec(spec) for spec in info.schema.features],
            classes=list(info.schema.classes),
            positive_class=info.schema.positive_class,
            metrics=common.encode_metrics(info.metrics),
            conformal_coverage=info.conformal_coverage,
            max_batch_size=self.max_batch_size,
        )
