"""Crafted CKKS inputs (found by an adversarial probe) are refused with a reason naming the field, never crash."""

from __future__ import annotations

import numpy as np
import pytest

from clinpred.pilots.common.cancellation import Deadline
from clinpred.pilots.common.ckks import vector_fields
from clinpred.pilots.common.errors import DeadlineExceeded, InvalidInput
from clinpred.pilots.genomics.encrypted import (
    EncryptedFields,
    EncryptedScoreLayout,
    create_client_context,
    decrypt_score,
    encrypt_dosages,
    public_context_bytes,
    score_encrypted,
)
from tests.ckks_crafting import Crafted, crafted_requests, with_encoding_scale, with_extra_size

LAYOUT = EncryptedScoreLayout("PGS_T", tuple(f"1:{i}:A:G" for i in range(1, 314)), ("G",) * 313, (0.01,) * 313)
FIELDS = EncryptedFields(
    context="stream[*].public_context_chunk",
    ciphertexts="stream[*].ciphertext_chunk",
    lengths="stream[0].header.ciphertext_lengths",
)


@pytest.fixture(scope="module")
def crafted() -> list[Crafted]:
    return crafted_requests(LAYOUT)


def test_every_crafted_input_is_refused_naming_its_field(crafted: list[Crafted]) -> None:
    assert len(crafted) == 16
    for case in crafted:
        with pytest.raises(InvalidInput) as caught:
            score_encrypted(case.context, case.ciphertexts, LAYOUT, FIELDS)
        ((violation),) = caught.value.violations
        assert case.reason in violation.description, case.name
        is_context = violation.description.startswith("encrypted context")
        assert violation.field == (FIELDS.context if is_context else FIELDS.ciphertexts), case.name


def test_the_vector_reader_agrees_with_tenseal_on_real_vectors() -> None:
    client = create_client_context()
    (blob,) = encrypt_dosages(client, np.ones(313), LAYOUT).ciphertexts
    assert vector_fields(blob) == ([313], 1, 2.0**40)
    assert vector_fields(with_encoding_scale(blob, 2.0**31)) == ([313], 1, 2.0**31)
    assert vector_fields(with_extra_size(blob, 7)) == ([313, 7], 1, 2.0**40)
    assert vector_fields(b"\x0a\xff") is None  # a length beyond the end
    assert vector_fields(b"\x0f") is None  # wire type 7 does not exist
    assert vector_fields(b"") == ([], 0, pytest.approx(float("nan"), nan_ok=True))


def test_a_ciphertext_one_level_down_still_scores() -> None:
    """Level checks refuse only what cannot be computed: one level used by the client is fine."""
    client = create_client_context()
    import tenseal as ts

    lowered = ts.ckks_vector(client, [1.0] * 313) * ([1.0] * 313)
    result = score_encrypted(public_context_bytes(client), [bytes(lowered.serialize())], LAYOUT)
    assert abs(decrypt_score(client, result, LAYOUT).score_sum - 3.13) <= 1e-2


def test_a_passed_deadline_stops_encrypted_scoring() -> None:
    client = create_client_context()
    request = encrypt_dosages(client, np.ones(313), LAYOUT)
    with pytest.raises(DeadlineExceeded):
        score_encrypted(public_context_bytes(client), request.ciphertexts, LAYOUT, deadline=Deadline(should_stop=lambda: True))
