"""The tumour service answers real cases: calibrated, explained, confident, and naming its model."""

from __future__ import annotations

import json
import math

import grpc
import numpy as np
import onnxruntime as ort
import pytest
import xgboost
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.tumor.settings import TumorSettings

Stub = tumor_pb2_grpc.TumorClassificationServiceStub


def request(features: dict[str, float], case_id: str = "c1") -> tumor_pb2.ClassifyRequest:
    return tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(case_id=case_id, features=features))


async def test_health_reports_serving_for_the_service(tumor_target: str) -> None:
    async with grpc.aio.insecure_channel(tumor_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(
            health_pb2.HealthCheckRequest(service="clinpred.tumor.v1.TumorClassificationService")
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_malignant_case_is_classified_and_explained(
    tumor_stub: Stub, wdbc_cases: list[tuple[dict[str, float], str]], tumor_package: ModelPackage
) -> None:
    features, truth = next(c for c in wdbc_cases if c[1] == "malignant")
    answer = (await tumor_stub.Classify(request(features, "case-42"))).classification
    assert answer.case_id == "case-42"
    assert answer.label == truth
    probabilities = {p.class_name: p.probability for p in answer.probabilities}
    assert set(probabilities) == {"benign", "malignant"}
    assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-9)
    assert answer.positive_probability == pytest.approx(probabilities["malignant"])
    assert answer.positive_probability > 0.5
    # Identity names the exact package.
    assert answer.model.sha256 == tumor_package.identity.sha256
    assert answer.model.version == tumor_package.identity.version
    # Confidence: a conformal set at a stated coverage, verified on held-out data.
    assert answer.confidence.coverage == pytest.approx(0.95)
    assert answer.label in answer.confidence.prediction_set
    assert answer.confidence.verified_coverage >= answer.confidence.coverage - 0.03
    assert "95%" in answer.confidence.statement
    # Explanation: one SHAP value per feature and additivity with the booster's margin.
    explanation = answer.explanation
    assert {c.feature for c in explanation.contributions} == set(features)
    total = explanation.base_value + sum(c.shap_value for c in explanation.contributions)
    assert total == pytest.approx(explanation.margin, abs=1e-4)
    assert len(explanation.top_reasons) == 3
    assert all(r.text and r.feature in features for r in explanation.top_reasons)


def test_the_default_package_is_the_nested_evaluations_winner_on_log_loss(
    tumor_package: ModelPackage, booster_package: ModelPackage
) -> None:
    # The rule: the reference package is the one with the lower nested-CV log loss.
    nested = tumor_package.read_json("metrics.json")["nested_cv"]
    assert nested["winner_log_loss"] == "logistic_regression"
    assert tumor_package.identity.name == TumorSettings().model_name == "wdbc-logistic"
    assert tumor_package.metadata["algorithm"] == "logistic"
    assert booster_package.read_json("metrics.json")["nested_cv"]["winner_log_loss"] == "logistic_regression"


async def test_explanation_margin_is_the_regressions_margin(
    tumor_stub: Stub, wdbc_cases: list[tuple[dict[str, float], str]], tumor_package: ModelPackage
) -> None:
    # Computed here from the published weights and from the ONNX model, not by the service's own code.
    linear = tumor_package.read_json("linear.json")
    features, _ = wdbc_cases[7]
    names = [f["name"] for f in tumor_package.read_json("schema.json")["features"]]
    row = np.array([features[n] for n in names])
    z = (row - np.asarray(linear["mean"])) / np.asarray(linear["scale"])
    margin = float(z @ np.ravel(linear["coef"]) + float(np.ravel(linear["intercept"])[0]))
    session = ort.InferenceSession(str(tumor_package.file("model.onnx")), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(["probabilities"], {"features": row[None, :].astype(np.float32)})
    onnx_malignant = float(np.asarray(probabilities)[0, 1])
    answer = (await tumor_stub.Classify(request(features))).classification
    assert answer.explanation.explained_class == "malignant"
    assert answer.explanation.method.startswith("Linear SHAP")
    assert answer.explanation.margin == pytest.approx(margin, abs=1e-4)
    # No calibration map (declined at training) and no prevalence set: P(malignant) is the regression's own.
    assert answer.positive_probability == pytest.approx(1.0 / (1.0 + math.exp(-margin)), abs=1e-5)
    assert answer.positive_probability == pytest.approx(onnx_malignant, abs=1e-5)


async def test_explanation_margin_is_the_native_boosters_margin(
    booster_stub: Stub, wdbc_cases: list[tuple[dict[str, float], str]], booster_package: ModelPackage
) -> None:
    booster_file = next(n for n in booster_package.manifest["files"] if n.startswith("booster"))
    booster = xgboost.Booster()
    booster.load_model(str(booster_package.file(booster_file)))
    features, _ = wdbc_cases[7]
    names = [f["name"] for f in booster_package.read_json("schema.json")["features"]]
    row = np.array([[features[n] for n in names]])
    margin = float(booster.predict(xgboost.DMatrix(row), output_margin=True)[0])
    answer = (await booster_stub.Classify(request(features))).classification
    assert answer.explanation.explained_class == "malignant"
    assert answer.explanation.method.startswith("TreeSHAP")
    assert answer.explanation.margin == pytest.approx(margin, abs=1e-4)


async def test_the_boosted_stumps_stay_selectable_by_name(booster_stub: Stub, booster_package: ModelPackage) -> None:
    info = await booster_stub.GetModelInfo(tumor_pb2.GetModelInfoRequest())
    assert (info.model.name, info.model.version) == ("wdbc-xgboost", booster_package.identity.version)
    assert info.model.sha256 == booster_package.identity.sha256
    assert info.metrics["auroc"] >= 0.99 and info.metrics["accuracy"] >= 0.97


async def test_a_batch_is_answered_in_request_order(
    tumor_stub: Stub, wdbc_cases: list[tuple[dict[str, float], str]]
) -> None:
    chosen = wdbc_cases[:40]
    batch = tumor_pb2.ClassifyBatchRequest(
        cases=[tumor_pb2.TumorCase(case_id=f"b{i}", features=f) for i, (f, _) in enumerate(chosen)]
    )
    answers = (await tumor_stub.ClassifyBatch(batch)).classifications
    assert [a.case_id for a in answers] == [f"b{i}" for i in range(len(chosen))]
    correct = sum(a.label == truth for a, (_, truth) in zip(answers, chosen))
    assert correct >= 38  # training cases; the model must fit them


async def test_batch_answers_equal_single_answers(
    tumor_stub: Stub, wdbc_cases: list[tuple[dict[str, float], str]]
) -> None:
    features = [f for f, _ in wdbc_cases[100:105]]
    batch = tumor_pb2.ClassifyBatchRequest(cases=[tumor_pb2.TumorCase(features=f) for f in features])
    in_batch = (await tumor_stub.ClassifyBatch(batch)).classifications
    for f, from_batch in zip(features, in_batch):
        single = (await tumor_stub.Classify(request(f))).classification
        assert single.positive_probability == pytest.approx(from_batch.positive_probability, abs=1e-12)


async def test_the_stream_answers_in_order_with_case_ids(
    tumor_stub: Stub, wdbc_cases: list[tuple[dict[str, float], str]]
) -> None:
    async def cases():  # type: ignore[no-untyped-def]
        for i, (features, _) in enumerate(wdbc_cases[200:230]):
            yield tumor_pb2.ClassifyStreamRequest(tumor_case=tumor_pb2.TumorCase(case_id=f"s{i}", features=features))

    answers = [r.classification async for r in tumor_stub.ClassifyStream(cases())]
    assert [a.case_id for a in answers] == [f"s{i}" for i in range(30)]
    assert all(a.model.sha256 for a in answers)


async def test_values_outside_the_training_range_are_flagged(
    tumor_stub: Stub, wdbc_cases: list[tuple[dict[str, float], str]], tumor_package: ModelPackage
) -> None:
    features = dict(wdbc_cases[0][0])
    spec = next(f for f in tumor_package.read_json("schema.json")["features"] if f["name"] == "mean_radius")
    features["mean_radius"] = spec["training_max"] * 1.5
    answer = (await tumor_stub.Classify(request(features))).classification
    assert [f.feature for f in answer.out_of_range] == ["mean_radius"]
    assert answer.out_of_range[0].training_max == pytest.approx(spec["training_max"])
    inside = (await tumor_stub.Classify(request(wdbc_cases[1][0]))).classification
    assert not inside.out_of_range


async def test_model_info_describes_the_serving_model(tumor_stub: Stub, tumor_package: ModelPackage) -> None:
    info = await tumor_stub.GetModelInfo(tumor_pb2.GetModelInfoRequest())
    assert info.model.sha256 == tumor_package.identity.sha256
    assert len(info.features) == 30
    assert info.features[0].unit
    radius = next(f for f in info.features if f.name == "mean_radius")
    assert radius.HasField("valid_min") and radius.valid_min == 0
    assert list(info.classes) == ["benign", "malignant"] and info.positive_class == "malignant"
    assert info.metrics["auroc"] >= 0.99 and info.metrics["accuracy"] >= 0.97
    assert info.conformal_coverage == pytest.approx(0.95)
    assert info.max_batch_size > 0
    # No prevalence set for this deployment: answers are at the training data's 212 of 569 malignant.
    assert info.training_prevalence == info.clinical_prevalence == pytest.approx(212 / 569)
    transparency = json.loads(info.transparency_json)
    assert transparency["model"]["version"] == tumor_package.identity.version
    assert transparency["attributes"]["intended_decision_making_role"].startswith("informs")
    assert transparency == tumor_package.read_json("transparency.json")
