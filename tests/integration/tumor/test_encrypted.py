"""Encrypted classification over real gRPC: the plain service's answer, a server that cannot decrypt,
and unsupported parameters refused with the field and the reason."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
import tenseal as ts

from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.tumor.encrypted import (
    create_client_context,
    decrypt_cases,
    encode_cases,
    encrypt_cases,
    load_public_context,
    public_context_bytes,
)
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.tumor.client import TumorClient
from clinpred.services.tumor.codec import decode_encrypted_model
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.settings import TumorSettings
from tests.support import field_violations

Stub = tumor_pb2_grpc.TumorClassificationServiceStub
Cases = list[tuple[dict[str, float], str]]
# CKKS at the default parameters errs by about 4e-5 per SHAP value and 3e-4 per margin (measured on WDBC);
# a probability's error is at most a quarter of its margin's.
TOLERANCE = 1e-3


def _shap(answer: tumor_pb2.Classification) -> dict[str, float]:
    return {c.feature: c.shap_value for c in answer.explanation.contributions}


async def _both(target: str, cases: list[tuple[str, dict[str, float]]]) -> tuple[list[tumor_pb2.Classification], ...]:
    def call() -> tuple[list[tumor_pb2.Classification], list[tumor_pb2.Classification]]:
        with TumorClient(target, timeout=120) as client:
            plain: list[tumor_pb2.Classification] = []
            for start in range(0, len(cases), 64):
                plain.extend(client.classify_batch(cases[start : start + 64]))
            return plain, client.classify_encrypted_batch(cases)

    return await asyncio.to_thread(call)


def assert_same_answer(encrypted: tumor_pb2.Classification, plain: tumor_pb2.Classification) -> None:
    """Equal up to CKKS error: labels, sets, reasons' features and every text exact; numbers within TOLERANCE."""
    assert encrypted.case_id == plain.case_id
    assert encrypted.label == plain.label
    assert encrypted.positive_probability == pytest.approx(plain.positive_probability, abs=TOLERANCE)
    assert [p.class_name for p in encrypted.probabilities] == [p.class_name for p in plain.probabilities]
    for mine, theirs in zip(encrypted.probabilities, plain.probabilities, strict=True):
        assert mine.probability == pytest.approx(theirs.probability, abs=TOLERANCE)
    assert encrypted.confidence == plain.confidence
    mine_shap, their_shap = _shap(encrypted), _shap(plain)
    assert mine_shap.keys() == their_shap.keys()
    for feature, value in their_shap.items():
        assert mine_shap[feature] == pytest.approx(value, abs=TOLERANCE), feature
    assert encrypted.explanation.base_value == pytest.approx(plain.explanation.base_value, abs=1e-9)
    assert encrypted.explanation.margin == pytest.approx(plain.explanation.margin, abs=TOLERANCE)
    for field in ("explained_class", "output_space", "method"):
        assert getattr(encrypted.explanation, field) == getattr(plain.explanation, field)
    assert list(encrypted.out_of_range) == list(plain.out_of_range)
    assert encrypted.model == plain.model


async def test_all_wdbc_cases_decrypt_to_the_plain_services_answers(tumor_target: str, wdbc_cases: Cases) -> None:
    cases = [(f"wdbc-{i}", features) for i, (features, _) in enumerate(wdbc_cases)]
    plain, encrypted = await _both(tumor_target, cases)
    assert len(encrypted) == len(plain) == 569
    for mine, theirs in zip(encrypted, plain, strict=True):
        mine_reasons = [(r.feature, r.direction) for r in mine.explanation.top_reasons]
        their_reasons = [(r.feature, r.direction) for r in theirs.explanation.top_reasons]
        if mine_reasons != their_reasons:
            # Two SHAP values nearer than the CKKS error may swap ranks; then they must be that near.
            values = _shap(theirs)
            ranked = sorted(abs(v) for v in values.values())
            assert min(np.diff(ranked)) < 2 * TOLERANCE, (mine_reasons, their_reasons)
        else:
            assert [r.text for r in mine.explanation.top_reasons] == [r.text for r in theirs.explanation.top_reasons]
        assert_same_answer(mine, theirs)


async def test_a_case_outside_the_training_range_is_flagged_by_the_client(tumor_target: str, wdbc_cases: Cases) -> None:
    features = dict(wdbc_cases[0][0]) | {"mean_radius": 40.0}
    plain, encrypted = await _both(tumor_target, [("wide", features)])
    assert [f.feature for f in encrypted[0].out_of_range] == ["mean_radius"]
    assert_same_answer(encrypted[0], plain[0])


async def test_the_client_refuses_an_impossible_case_before_sending_it(tumor_target: str, wdbc_cases: Cases) -> None:
    features = dict(wdbc_cases[0][0]) | {"mean_radius": -1.0}

    def call() -> None:
        with TumorClient(tumor_target) as client:
            client.classify_encrypted(features)

    with pytest.raises(InvalidInput) as caught:
        await asyncio.to_thread(call)
    assert [v.field for v in caught.value.violations] == ["tumor_case.features['mean_radius']"]  # as Classify names it

    def batch() -> None:
        with TumorClient(tumor_target) as client:
            client.classify_encrypted_batch([("a", wdbc_cases[0][0]), ("b", features)])

    with pytest.raises(InvalidInput) as caught:
        await asyncio.to_thread(batch)
    assert [v.field for v in caught.value.violations] == ["cases[1].features['mean_radius']"]  # as ClassifyBatch does


async def test_a_pinned_client_refuses_another_model(tumor_target: str, wdbc_cases: Cases) -> None:
    from clinpred.pilots.common.errors import FailedPrecondition

    def call() -> None:
        with TumorClient(tumor_target, pinned_model_sha256="0" * 64) as client:
            client.classify_encrypted(wdbc_cases[0][0])

    with pytest.raises(FailedPrecondition, match="not the pinned"):
        await asyncio.to_thread(call)


async def test_the_layout_publishes_what_the_client_finishes_with(tumor_stub: Stub) -> None:
    layout = await tumor_stub.GetEncryptionLayout(tumor_pb2.GetEncryptionLayoutRequest())
    info = await tumor_stub.GetModelInfo(tumor_pb2.GetModelInfoRequest())
    assert layout.model == info.model and len(layout.model.sha256) == 64
    # The default package is the logistic regression: its linear form, one slot per standardised feature.
    assert layout.format == "clinpred-encrypted-linear/1"
    assert len(layout.weights) == len(layout.feature_means) == len(layout.feature_scales) == 30
    assert list(layout.split_features) == list(range(30)) and len(layout.thresholds) == 0  # slot f: feature f
    assert list(layout.feature_names) == [f.name for f in info.features]
    # Calibration was declined at training: published as the identity map.
    assert (layout.calibration.slope, layout.calibration.intercept) == (1.0, 0.0)
    assert 0 < layout.conformal.q_hat <= 1
    assert layout.conformal.coverage == pytest.approx(info.conformal_coverage)
    assert list(layout.poly_modulus_degrees) == [4096, 8192]
    assert layout.max_ciphertexts == TumorSettings().max_encrypted_ciphertexts
    assert all(f.HasField("training_median") for f in info.features)
    model = decode_encrypted_model(layout, info)
    assert model.schema.positive_class == layout.explained_class == "malignant"
    # The served package has class-conditional sets: one threshold per class, in class order, reach the client.
    assert len(layout.conformal.class_q_hat) == len(layout.classes) == 2
    assert model.conformal.class_q_hat == tuple(layout.conformal.class_q_hat)
    assert set(info.conformal_class_coverage) == {"benign", "malignant"}
    assert all(0.9 < v <= 1.0 for v in info.conformal_class_coverage.values())


async def test_the_server_side_context_cannot_decrypt_the_answer(tumor_stub: Stub, wdbc_cases: Cases) -> None:
    layout_message = await tumor_stub.GetEncryptionLayout(tumor_pb2.GetEncryptionLayoutRequest())
    model = decode_encrypted_model(layout_message, await tumor_stub.GetModelInfo(tumor_pb2.GetModelInfoRequest()))
    layout = model.layout
    client = create_client_context()
    public = public_context_bytes(client)
    rows = np.array([list(wdbc_cases[0][0].values())])
    encrypted = encrypt_cases(client, layout, encode_cases(layout, rows))
    answer = await tumor_stub.ClassifyEncrypted(
        tumor_pb2.ClassifyEncryptedRequest(public_context=public, ciphertexts=encrypted.ciphertexts)
    )
    server = load_public_context(public)  # what the server holds: parameters, no key
    assert not server.is_private() and not server.has_secret_key()
    with pytest.raises(InvalidInput, match="private context"):
        decrypt_cases(server, layout, list(answer.products))
    vector = ts.ckks_vector_from(server, answer.products[0])
    with pytest.raises(ValueError):
        vector.decrypt()
    # The client's own context decrypts the same bytes.
    (case,) = decrypt_cases(client, layout, list(answer.products))
    assert np.isfinite(case.margin)


async def _refused(stub: Stub, request: tumor_pb2.ClassifyEncryptedRequest) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ClassifyEncrypted(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return field_violations(caught.value)


async def test_unsupported_parameters_are_refused_naming_field_and_reason(tumor_stub: Stub, wdbc_cases: Cases) -> None:
    layout_message = await tumor_stub.GetEncryptionLayout(tumor_pb2.GetEncryptionLayoutRequest())
    layout = decode_encrypted_model(layout_message, await tumor_stub.GetModelInfo(tumor_pb2.GetModelInfoRequest())).layout
    rows = np.array([list(wdbc_cases[0][0].values())])
    client = create_client_context()
    good = encrypt_cases(client, layout, encode_cases(layout, rows)).ciphertexts
    public = public_context_bytes(client)

    def request(context: bytes, ciphertexts: tuple[bytes, ...] | list[bytes] = good) -> tumor_pb2.ClassifyEncryptedRequest:
        return tumor_pb2.ClassifyEncryptedRequest(public_context=context, ciphertexts=ciphertexts)

    secret = bytes(client.serialize(save_secret_key=True, save_galois_keys=False, save_relin_keys=False))
    assert "secret key" in (await _refused(tumor_stub, request(secret)))["public_context"]

    big_degree = public_context_bytes(create_client_context(16384, (60, 40, 60), 40))
    assert "poly_modulus_degree 16384" in (await _refused(tumor_stub, request(big_degree)))["public_context"]

    coarse = create_client_context(4096, (38, 33, 38), 33)
    coarse.global_scale = 2.0**20
    assert "too small" in (await _refused(tumor_stub, request(public_context_bytes(coarse))))["public_context"]

    assert "not a serialised TenSEAL context" in (await _refused(tumor_stub, request(b"garbage bytes")))["public_context"]
    assert "not a CKKS vector" in (await _refused(tumor_stub, request(public, [b"\xff\xff\xff"])))["ciphertexts"]
    assert "is required" in (await _refused(tumor_stub, request(b"")))["public_context"]
    assert "at least one" in (await _refused(tumor_stub, request(public, [])))["ciphertexts"]
    too_many = list(good) * (TumorSettings().max_encrypted_ciphertexts + 1)
    assert "at most" in (await _refused(tumor_stub, request(public, too_many)))["ciphertexts"]
    # A vector encrypted under other parameters than the context's.
    other = encrypt_cases(create_client_context(8192, (60, 40, 60), 40), layout, encode_cases(layout, rows)).ciphertexts
    assert "ciphertexts[0]" in (await _refused(tumor_stub, request(public, other)))["ciphertexts"]
    # And the service still answers.
    answer = await tumor_stub.ClassifyEncrypted(request(public))
    assert len(answer.products) == 1


async def test_a_stated_clinical_prevalence_is_published_and_applied_by_the_encrypted_client(
    tumor_target: str, wdbc_cases: Cases
) -> None:
    settings = TumorSettings(max_batch_size=64, clinical_prevalence=0.05)
    server, port = await start_inprocess_server(tumor_mount(settings))
    try:
        target = f"127.0.0.1:{port}"
        async with grpc.aio.insecure_channel(target) as channel:
            stub = tumor_pb2_grpc.TumorClassificationServiceStub(channel)
            info = await stub.GetModelInfo(tumor_pb2.GetModelInfoRequest())
            layout = await stub.GetEncryptionLayout(tumor_pb2.GetEncryptionLayoutRequest())
        assert info.clinical_prevalence == layout.clinical_prevalence == 0.05
        assert info.training_prevalence == layout.training_prevalence == pytest.approx(212 / 569)
        cases = [(f"wdbc-{i}", features) for i, (features, _) in enumerate(wdbc_cases[:40])]
        plain, encrypted = await _both(target, cases)
        for mine, theirs in zip(encrypted, plain, strict=True):
            assert_same_answer(mine, theirs)
        unshifted, _ = await _both(tumor_target, cases[:10])
        # Fewer malignant tumours in this clinic: every probability of malignancy is lower than at 37%.
        for shifted, original in zip(plain[:10], unshifted, strict=True):
            assert shifted.positive_probability < original.positive_probability or original.positive_probability > 1 - 1e-9
    finally:
        await server.stop(grace=None)


async def test_the_boosted_stumps_layout_has_one_indicator_per_split_point(booster_stub: Stub) -> None:
    layout = await booster_stub.GetEncryptionLayout(tumor_pb2.GetEncryptionLayoutRequest())
    assert layout.format == "clinpred-encrypted-stumps/1" and layout.model.name == "wdbc-xgboost"
    # 1,500 depth-1 trees over 360 distinct split points.
    assert len(layout.thresholds) == len(layout.weights) == len(layout.split_features) == 360
    assert len(layout.feature_means) == len(layout.feature_scales) == 0
    assert layout.calibration.slope > 0 and (layout.calibration.slope, layout.calibration.intercept) != (1.0, 0.0)


async def test_the_boosted_stumps_decrypt_to_the_plain_answers_for_all_wdbc_cases(
    booster_target: str, wdbc_cases: Cases
) -> None:
    cases = [(f"wdbc-{i}", features) for i, (features, _) in enumerate(wdbc_cases)]
    plain, encrypted = await _both(booster_target, cases)
    assert len(encrypted) == len(plain) == 569
    for mine, theirs in zip(encrypted, plain, strict=True):
        assert_same_answer(mine, theirs)
        assert mine.explanation.method.startswith("TreeSHAP") and mine.model.name == "wdbc-xgboost"
