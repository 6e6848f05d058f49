"""clinpred.tumor.v1 messages <-> tumour domain objects. Every stateless input check of the service is here.

One codec per loaded model: the schema it checks features against, the batch
limit and the model's verified coverage are fixed when it is built, so a
request costs only its own checks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clinpred.pilots.common.calibration import Calibrator
from clinpred.pilots.common.ckks import MAX_SCALE_BITS, MIN_SCALE_BITS
from clinpred.pilots.common.conformal import SplitConformal
from clinpred.pilots.common.errors import FailedPrecondition, InvalidInput, ViolationCollector
from clinpred.pilots.common.explanation import ExplanationDetail
from clinpred.pilots.common.model_package import ModelIdentity
from clinpred.pilots.common.schema import ModelSchema
from clinpred.pilots.tumor.classifier import ClassifiedCase, TumorCases, TumorClassification, TumorModelInfo
from clinpred.pilots.tumor.encrypted import (
    LAYOUT_FORMATS,
    SUPPORTED_POLY_MODULUS_DEGREES,
    EncryptedTumorAnswer,
    EncryptedTumorLayout,
    EncryptedTumorModel,
    EncryptedTumorRequest,
)
from clinpred.pilots.tumor.prevalence import PriorShift
from clinpred.services.api.tumor.v1 import tumor_pb2
from clinpred.services.common import codec as common

# Longest case id: the caller's own identifier (an accession or UUID), echoed back in every answer.
MAX_CASE_ID_LENGTH = 128
# A keyless context is under 100 bytes; one with a secret key (70 KB at degree 4096) still loads, so that its
# refusal says why; one with Galois keys (megabytes) is refused by size.
MAX_PUBLIC_CONTEXT_BYTES = 256 * 1024
# A fresh vector at degree 8192 with the largest modulus 128-bit security allows is about 0.5 MB.
MAX_CIPHERTEXT_BYTES = 1024 * 1024
# Not set means full: an explained answer is the default.
EXPLANATION_DETAILS: dict[int, ExplanationDetail] = {
    tumor_pb2.EXPLANATION_DETAIL_UNSPECIFIED: ExplanationDetail.FULL,
    tumor_pb2.EXPLANATION_DETAIL_FULL: ExplanationDetail.FULL,
    tumor_pb2.EXPLANATION_DETAIL_TOP_REASONS: ExplanationDetail.TOP_REASONS,
    tumor_pb2.EXPLANATION_DETAIL_NONE: ExplanationDetail.NONE,
}
_DETAIL_NAMES = ", ".join(tumor_pb2.ExplanationDetail.Name(v) for v in EXPLANATION_DETAILS if v)


def _decode_detail(value: int, path: str, violations: ViolationCollector) -> ExplanationDetail:
    detail = EXPLANATION_DETAILS.get(value)
    if detail is None:
        # An open proto3 enum keeps numbers this version does not know; the value itself is not echoed.
        violations.add(path, f"is not a known explanation detail; one of {_DETAIL_NAMES}, or unset for full")
        return ExplanationDetail.FULL
    return detail


class TumorCodec:
    def __init__(
        self, schema: ModelSchema, max_batch_size: int, verified_coverage: float, max_encrypted_ciphertexts: int
    ) -> None:
        self.schema = schema
        self.max_batch_size = max_batch_size
        self.verified_coverage = verified_coverage
        self.max_encrypted_ciphertexts = max_encrypted_ciphertexts
        self.contributions = common.ContributionsEncoder(schema.feature_names)

    @classmethod
    def for_model(cls, info: TumorModelInfo, max_batch_size: int, max_encrypted_ciphertexts: int) -> TumorCodec:
        return cls(info.schema, max_batch_size, info.verified_coverage, max_encrypted_ciphertexts)

    # Requests -> TumorCases

    def _decode_cases(
        self,
        cases: Sequence[tumor_pb2.TumorCase],
        paths: Sequence[str],
        violations: ViolationCollector,
        detail: ExplanationDetail = ExplanationDetail.FULL,
    ) -> TumorCases:
        specs = self.schema.features
        rows = []
        for case, path in zip(cases, paths, strict=True):
            common.check_text(case.case_id, f"{path}.case_id", violations, max_length=MAX_CASE_ID_LENGTH)
            rows.append(common.check_feature_map(case.features, specs, path, violations))
        violations.raise_if_any()
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(specs))
        return TumorCases(tuple(c.case_id for c in cases), matrix, detail)

    def decode_cases(self, cases: Sequence[tumor_pb2.TumorCase], paths: Sequence[str]) -> TumorCases:
        """Cases checked as Classify checks them (a client that encrypts them checks them first, the same way)."""
        return self._decode_cases(cases, paths, ViolationCollector())

    def _decode_one(self, request: tumor_pb2.ClassifyRequest | tumor_pb2.ClassifyStreamRequest, path: str) -> TumorCases:
        violations = ViolationCollector()
        common.check_unknown_fields(request, path, violations)
        case_path = f"{path}.tumor_case" if path else "tumor_case"
        detail = _decode_detail(request.detail, f"{path}.detail" if path else "detail", violations)
        if not request.HasField("tumor_case"):
            violations.add(case_path, "is required")
            violations.raise_if_any()
        return self._decode_cases([request.tumor_case], [case_path], violations, detail)

    def decode_classify(self, request: tumor_pb2.ClassifyRequest) -> TumorCases:
        return self._decode_one(request, "")

    def decode_batch(self, request: tumor_pb2.ClassifyBatchRequest) -> TumorCases:
        violations = ViolationCollector()
        common.check_batch_size(len(request.cases), self.max_batch_size, "cases", violations)
        # A batch over the limit is refused before its cases are read.
        violations.raise_if_any()
        common.check_unknown_fields(request, "", violations)
        detail = _decode_detail(request.detail, "detail", violations)
        paths = [f"cases[{i}]" for i in range(len(request.cases))]
        return self._decode_cases(list(request.cases), paths, violations, detail)

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
            explanation=(
                common.encode_explanation(result.explanation, self.contributions) if result.explanation is not None else None
            ),
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
            conformal_class_coverage=info.class_coverage,
            training_prevalence=info.prior_shift.training_prevalence if info.prior_shift else 0.0,
            clinical_prevalence=info.prior_shift.clinical_prevalence if info.prior_shift else 0.0,
            transparency_json=info.transparency_json,
        )

    # Encrypted classification

    def decode_encryption_layout(self, request: tumor_pb2.GetEncryptionLayoutRequest) -> None:
        violations = ViolationCollector()
        common.check_unknown_fields(request, "", violations)
        violations.raise_if_any()

    def encode_encryption_layout(self, model: EncryptedTumorModel) -> tumor_pb2.GetEncryptionLayoutResponse:
        layout, conformal = model.layout, model.conformal
        return tumor_pb2.GetEncryptionLayoutResponse(
            format=layout.format,
            model=common.encode_identity(model.identity),
            feature_names=list(layout.feature_names),
            split_features=list(layout.split_features),
            thresholds=list(layout.thresholds),
            weights=list(layout.weights),
            base_value=layout.base_value,
            shap_offsets=list(layout.shap_offsets),
            explained_class=layout.explained_class,
            output_space=layout.output_space,
            feature_means=list(layout.feature_means),
            feature_scales=list(layout.feature_scales),
            explanation_method=model.explanation_method,
            classes=list(model.schema.classes),
            calibration=tumor_pb2.PlattCalibration(slope=model.calibrator.slope, intercept=model.calibrator.intercept),
            conformal=tumor_pb2.ConformalThreshold(
                q_hat=conformal.q_hat,
                coverage=conformal.coverage,
                verified_coverage=model.verified_coverage,
                calibration_cases=conformal.n_calibration,
                method=conformal.method,
                class_q_hat=list(conformal.class_q_hat or ()),
            ),
            poly_modulus_degrees=list(SUPPORTED_POLY_MODULUS_DEGREES),
            min_scale_bits=MIN_SCALE_BITS,
            max_scale_bits=MAX_SCALE_BITS,
            max_ciphertexts=self.max_encrypted_ciphertexts,
            max_ciphertext_bytes=MAX_CIPHERTEXT_BYTES,
            training_prevalence=model.prior_shift.training_prevalence if model.prior_shift else 0.0,
            clinical_prevalence=model.prior_shift.clinical_prevalence if model.prior_shift else 0.0,
        )

    def decode_classify_encrypted(self, request: tumor_pb2.ClassifyEncryptedRequest) -> EncryptedTumorRequest:
        """Sizes only: whether the bytes are a keyless CKKS context and vectors of the layout is the pilot's check."""
        violations = ViolationCollector()
        common.check_unknown_fields(request, "", violations)
        context_bytes = len(request.public_context)
        if context_bytes == 0:
            violations.add("public_context", "is required: the serialised TenSEAL CKKS context, without keys")
        elif context_bytes > MAX_PUBLIC_CONTEXT_BYTES:
            violations.add(
                "public_context",
                f"{context_bytes} bytes is over {MAX_PUBLIC_CONTEXT_BYTES}; send the parameters only, without secret,"
                " public, relinearisation or Galois keys (under 100 bytes)",
            )
        count = len(request.ciphertexts)
        if count == 0:
            violations.add("ciphertexts", "at least one is needed")
        elif count > self.max_encrypted_ciphertexts:
            violations.add(
                "ciphertexts",
                f"{count} ciphertexts; at most {self.max_encrypted_ciphertexts} per call, send the rest in more calls",
            )
        else:
            for number, blob in enumerate(request.ciphertexts):
                if len(blob) > MAX_CIPHERTEXT_BYTES:
                    violations.add(f"ciphertexts[{number}]", f"{len(blob)} bytes; at most {MAX_CIPHERTEXT_BYTES}")
                elif not blob:
                    violations.add(f"ciphertexts[{number}]", "is empty")
        violations.raise_if_any()
        return EncryptedTumorRequest(bytes(request.public_context), tuple(bytes(b) for b in request.ciphertexts))

    def encode_classify_encrypted(self, answer: EncryptedTumorAnswer) -> tumor_pb2.ClassifyEncryptedResponse:
        return tumor_pb2.ClassifyEncryptedResponse(products=list(answer.products), model=common.encode_identity(answer.model))


def decode_encrypted_model(
    layout: tumor_pb2.GetEncryptionLayoutResponse, info: tumor_pb2.GetModelInfoResponse
) -> EncryptedTumorModel:
    """The published layout and model info as the domain's `EncryptedTumorModel`, on the client.

    FailedPrecondition when the two describe different models (the service changed model between them).
    """
    if layout.format not in LAYOUT_FORMATS:
        raise FailedPrecondition(
            f"the service publishes encrypted layout {layout.format!r}; this client reads {', '.join(LAYOUT_FORMATS)}"
        )
    if layout.model != info.model:
        raise FailedPrecondition("GetEncryptionLayout and GetModelInfo name different models; the service reloaded, retry")
    identity = ModelIdentity(layout.model.name, layout.model.version, layout.model.sha256)
    schema = ModelSchema(
        features=tuple(common.decode_feature_spec(spec) for spec in info.features),
        classes=tuple(info.classes),
        positive_class=info.positive_class,
    )
    conformal = layout.conformal
    try:
        return EncryptedTumorModel(
            layout=EncryptedTumorLayout(
                model=f"{identity.name}@{identity.version}",
                feature_names=tuple(layout.feature_names),
                split_features=tuple(layout.split_features),
                thresholds=tuple(layout.thresholds),
                weights=tuple(layout.weights),
                base_value=layout.base_value,
                shap_offsets=tuple(layout.shap_offsets),
                explained_class=layout.explained_class,
                output_space=layout.output_space,
                feature_means=tuple(layout.feature_means),
                feature_scales=tuple(layout.feature_scales),
            ).checked(),
            identity=identity,
            schema=schema,
            calibrator=Calibrator("platt", 2, slope=layout.calibration.slope, intercept=layout.calibration.intercept),
            conformal=SplitConformal(
                classes=tuple(layout.classes),
                coverage=conformal.coverage,
                q_hat=conformal.q_hat,
                n_calibration=conformal.calibration_cases,
                method=conformal.method,
                class_q_hat=tuple(conformal.class_q_hat) if conformal.class_q_hat else None,
            ),
            verified_coverage=conformal.verified_coverage,
            explanation_method=layout.explanation_method,
            prior_shift=_decode_prior_shift(layout.training_prevalence, layout.clinical_prevalence),
        )
    except InvalidInput as error:
        raise FailedPrecondition(f"the service's encryption layout is unusable: {error.message}") from None


def _decode_prior_shift(training: float, clinical: float) -> PriorShift | None:
    if training == 0.0 and clinical == 0.0:
        return None
    try:
        return PriorShift(training, clinical)
    except ValueError as error:
        raise InvalidInput(str(error)) from None  # turned into FailedPrecondition with the layout's other faults
