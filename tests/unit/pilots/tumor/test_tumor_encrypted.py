"""Encrypted tumour classification: equal to the plaintext classifier, no secret key on the server, bad input refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tenseal as ts

from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.tumor.classifier import TumorClassification, TumorClassifier
from clinpred.pilots.tumor.data import TumorDataset
from clinpred.pilots.tumor.encrypted import (
    DecryptedTumorCase,
    EncryptedTumorLayout,
    classifications_from_decrypted,
    create_client_context,
    decrypt_cases,
    encode_case,
    encode_cases,
    encrypt_cases,
    encrypted_tumor_model,
    public_context_bytes,
    score_encrypted_case,
    tumor_layout,
)

TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def layout(reference: TumorClassifier) -> EncryptedTumorLayout:
    return tumor_layout(reference)


@pytest.fixture(scope="module")
def client_context() -> ts.Context:
    return create_client_context()


@pytest.fixture(scope="module")
def public_context(client_context: ts.Context) -> bytes:
    return public_context_bytes(client_context)


@pytest.fixture(scope="module")
def plain(reference: TumorClassifier, wdbc: TumorDataset) -> list[TumorClassification]:
    return reference.classify(wdbc.x)


def _shap(classification: TumorClassification) -> np.ndarray:
    return np.array([c.shap_value for c in classification.explanation.contributions])


def _round_trip(context: ts.Context, public: bytes, layout: EncryptedTumorLayout, rows: np.ndarray) -> list[DecryptedTumorCase]:
    encrypted = encrypt_cases(context, layout, encode_cases(layout, rows))
    return decrypt_cases(context, layout, score_encrypted_case(public, encrypted.ciphertexts, layout))


def test_layout_has_one_weight_per_distinct_split_and_survives_json(layout: EncryptedTumorLayout) -> None:
    splits = list(zip(layout.split_features, layout.thresholds, strict=True))
    assert len(splits) == len(set(splits)) == 360
    assert all(np.float32(t) == t for t in layout.thresholds)
    assert EncryptedTumorLayout.from_json(json.loads(json.dumps(layout.to_json()))) == layout


def test_layout_in_plaintext_is_the_booster_exactly(
    layout: EncryptedTumorLayout, wdbc: TumorDataset, plain: list[TumorClassification]
) -> None:
    indicators = encode_cases(layout, wdbc.x)
    d = len(layout.feature_names)
    for row, answer in zip(indicators, plain, strict=True):
        shap = np.asarray(layout.shap_offsets) + np.bincount(
            layout.split_features, weights=row * np.asarray(layout.weights), minlength=d
        )
        np.testing.assert_allclose(shap, _shap(answer), atol=1e-6)
        assert layout.base_value + shap.sum() == pytest.approx(answer.explanation.margin, abs=1e-6)


def test_decrypted_answers_equal_the_plaintext_classifier_on_all_wdbc_cases(
    reference: TumorClassifier,
    layout: EncryptedTumorLayout,
    client_context: ts.Context,
    public_context: bytes,
    wdbc: TumorDataset,
    plain: list[TumorClassification],
) -> None:
    decrypted = _round_trip(client_context, public_context, layout, wdbc.x)
    # Finished with what the server publishes, through the classifier's own answer and explanation code.
    answers = classifications_from_decrypted(encrypted_tumor_model(reference), wdbc.x, decrypted)
    assert len(decrypted) == len(answers) == len(plain) == 569
    for case, mine, answer in zip(decrypted, answers, plain, strict=True):
        np.testing.assert_allclose(case.shap_values, _shap(answer), atol=TOLERANCE)
        np.testing.assert_allclose(_shap(mine), _shap(answer), atol=TOLERANCE)
        assert case.base_value == pytest.approx(answer.explanation.base_value, abs=1e-9)
        assert case.margin == pytest.approx(answer.explanation.margin, abs=TOLERANCE)
        for label, probability in answer.probabilities.items():
            assert mine.probabilities[label] == pytest.approx(probability, abs=TOLERANCE)
        assert (mine.label, mine.confidence, mine.out_of_range, mine.model) == (
            answer.label, answer.confidence, answer.out_of_range, answer.model
        )
        assert [r.text for r in mine.explanation.top_reasons] == [r.text for r in answer.explanation.top_reasons]
        assert mine.explanation.method == answer.explanation.method


def test_a_larger_degree_batches_cases_and_gives_the_same_answers(
    layout: EncryptedTumorLayout, wdbc: TumorDataset, plain: list[TumorClassification]
) -> None:
    context = create_client_context(8192, (60, 40, 60), 40)
    rows = wdbc.x[:30]
    encrypted = encrypt_cases(context, layout, encode_cases(layout, rows))
    assert encrypted.counts == (11, 11, 8)
    decrypted = _round_trip(context, public_context_bytes(context), layout, rows)
    for case, answer in zip(decrypted, plain[:30], strict=True):
        np.testing.assert_allclose(case.shap_values, _shap(answer), atol=TOLERANCE)


def test_the_server_context_holds_no_secret_key_and_cannot_decrypt(
    layout: EncryptedTumorLayout, client_context: ts.Context, public_context: bytes, wdbc: TumorDataset
) -> None:
    encrypted = encrypt_cases(client_context, layout, encode_case(layout, wdbc.x[0])[None, :])
    (answer,) = score_encrypted_case(public_context, encrypted.ciphertexts, layout)
    server = ts.context_from(public_context)
    assert not server.has_secret_key() and not server.is_private()
    with pytest.raises(ValueError):
        ts.ckks_vector_from(server, answer).decrypt()
    with pytest.raises(InvalidInput, match="private context"):
        decrypt_cases(server, layout, [answer])


def test_a_context_with_a_secret_key_is_refused(
    layout: EncryptedTumorLayout, client_context: ts.Context, wdbc: TumorDataset
) -> None:
    encrypted = encrypt_cases(client_context, layout, encode_cases(layout, wdbc.x[:1]))
    private = bytes(client_context.serialize(save_secret_key=True))
    with pytest.raises(InvalidInput, match="secret key") as refused:
        score_encrypted_case(private, encrypted.ciphertexts, layout, context_field="public_context")
    assert refused.value.violations[0].field == "public_context"


@pytest.mark.parametrize(
    ("degree", "coeff", "scale_bits", "problem"),
    [
        (2048, (18, 18, 18), 18, "poly_modulus_degree 2048 is not supported"),
        (4096, (40, 25, 40), 25, "2\\^25 is too small"),
    ],
)
def test_unsupported_parameters_are_refused(
    layout: EncryptedTumorLayout, wdbc: TumorDataset, degree: int, coeff: tuple[int, ...], scale_bits: int, problem: str
) -> None:
    context = create_client_context(degree, coeff, scale_bits)
    blob = bytes(ts.ckks_vector(context, [1.0] * len(layout)).serialize())
    with pytest.raises(InvalidInput, match=problem):
        score_encrypted_case(public_context_bytes(context), [blob], layout)


def test_ciphertexts_that_do_not_fit_the_layout_are_refused(
    layout: EncryptedTumorLayout, client_context: ts.Context, public_context: bytes
) -> None:
    partial = bytes(ts.ckks_vector(client_context, [1.0] * (len(layout) - 1)).serialize())
    with pytest.raises(InvalidInput, match="whole number of cases") as refused:
        score_encrypted_case(public_context, [partial], layout, ciphertexts_field="ciphertexts")
    assert refused.value.violations[0].field == "ciphertexts"
    with pytest.raises(InvalidInput, match="not a CKKS vector"):
        score_encrypted_case(public_context, [b"\x00not a vector"], layout)
    with pytest.raises(InvalidInput, match="at least one"):
        score_encrypted_case(public_context, [], layout)
    with pytest.raises(InvalidInput, match="not a serialised TenSEAL context"):
        score_encrypted_case(b"garbage", [partial], layout)


def test_features_that_are_missing_or_misshapen_are_refused_before_encryption(
    layout: EncryptedTumorLayout, wdbc: TumorDataset
) -> None:
    row = wdbc.x[0].copy()
    row[3] = np.nan
    with pytest.raises(InvalidInput, match="finite"):
        encode_case(layout, row)
    with pytest.raises(InvalidInput, match="30 features"):
        encode_case(layout, wdbc.x[0][:5])


def test_work_stops_once_the_caller_stopped_waiting(
    layout: EncryptedTumorLayout, client_context: ts.Context, public_context: bytes, wdbc: TumorDataset
) -> None:
    from clinpred.pilots.common.cancellation import Deadline
    from clinpred.pilots.common.errors import DeadlineExceeded

    encrypted = encrypt_cases(client_context, layout, encode_cases(layout, wdbc.x[:20]))
    with pytest.raises(DeadlineExceeded):
        score_encrypted_case(public_context, encrypted.ciphertexts, layout, deadline=Deadline.after(-1.0))
    calls = iter([False, False, True])  # stops after two of the four ciphertexts
    with pytest.raises(DeadlineExceeded):
        score_encrypted_case(public_context, encrypted.ciphertexts, layout, deadline=Deadline(should_stop=lambda: next(calls)))


def test_the_published_model_is_refused_when_its_parts_disagree(reference: TumorClassifier) -> None:
    import dataclasses

    model = encrypted_tumor_model(reference)
    assert model.calibrator.method == "platt" and model.explanation_method == reference.explanation_method
    with pytest.raises(InvalidInput, match="feature order"):
        dataclasses.replace(model, layout=dataclasses.replace(model.layout, feature_names=model.layout.feature_names[::-1]))
    with pytest.raises(InvalidInput, match="line up"):
        dataclasses.replace(model.layout, weights=model.layout.weights[:-1]).checked()
    with pytest.raises(InvalidInput, match="finite"):
        dataclasses.replace(model.layout, base_value=float("nan")).checked()
