"""Sealed requests and answers: round trips, and every way an envelope can be wrong ends in a domain error."""

from __future__ import annotations

import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clinpred.pilots.common.errors import FailedPrecondition, InvalidInput, ResourceExhausted
from clinpred.services.common.sealed import (
    ENC_BYTES,
    InMemoryReplayGuard,
    OpenedRequest,
    ResponseOpener,
    open_request,
    open_response,
    seal_request,
    seal_response,
)
from clinpred.services.common.sealing_keys import Keyring, generate_key, init_keyring, rotate_keyring

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
METHOD = "/clinpred.tumor.v1.TumorClassificationService/Classify"
REQUEST = b"\x0a\x05case1\x12\x00 inner request bytes"
HEADER = 15


@pytest.fixture(scope="module")
def keyring() -> Keyring:
    return Keyring([generate_key(NOW - timedelta(days=1))])


def sealed(keyring: Keyring, when: datetime = NOW, request: bytes = REQUEST) -> tuple[bytes, ResponseOpener]:
    return seal_request(keyring.current(NOW), METHOD, request, when)


def opened(keyring: Keyring, envelope: bytes, now: datetime = NOW) -> OpenedRequest:
    return open_request(keyring, envelope, now, guard=InMemoryReplayGuard())


def violation(error: InvalidInput) -> tuple[str, str]:
    (only,) = error.violations
    return only.field, only.description


def test_a_request_and_its_answer_travel_sealed_and_open_intact(keyring: Keyring) -> None:
    envelope, opener = sealed(keyring)
    assert (
        envelope[:9] == b"\x01" + keyring.current(NOW).key_id_bytes
        and len(envelope) == HEADER + ENC_BYTES + 42 + len(METHOD) + len(REQUEST) + 16
    )
    assert REQUEST not in envelope and METHOD.encode() not in envelope
    request = opened(keyring, envelope, NOW + timedelta(seconds=3))
    assert (request.method, request.request, request.key_id) == (METHOD, REQUEST, keyring.current(NOW).key_id)
    assert request.created_at == NOW
    answer = seal_response(request, b"the inner response")
    assert b"the inner response" not in answer and repr(opener._keys.secret) not in repr(opener) + repr(request)
    assert open_response(opener, answer) == b"the inner response"


def test_an_empty_request_and_an_empty_answer_round_trip(keyring: Keyring) -> None:
    envelope, opener = sealed(keyring, request=b"")
    request = opened(keyring, envelope)
    assert request.request == b""
    assert open_response(opener, seal_response(request, b"")) == b""


def test_an_answer_opens_only_for_the_caller_of_its_request(keyring: Keyring) -> None:
    envelope, _caller = sealed(keyring)
    _other_envelope, third_party = sealed(keyring)
    answer = seal_response(opened(keyring, envelope), b"the inner response")
    with pytest.raises(InvalidInput) as refused:
        open_response(third_party, answer)
    assert violation(refused.value)[0] == "sealed"


def test_every_tampered_byte_of_an_answer_is_refused(keyring: Keyring) -> None:
    envelope, opener = sealed(keyring)
    answer = seal_response(opened(keyring, envelope), b"result")
    for position in range(len(answer)):
        tampered = bytearray(answer)
        tampered[position] ^= 0x01
        with pytest.raises(InvalidInput):
            open_response(opener, bytes(tampered))
    for length in range(len(answer)):
        with pytest.raises(InvalidInput):
            open_response(opener, answer[:length])


def test_every_tampered_byte_of_a_request_is_refused(keyring: Keyring) -> None:
    envelope, _ = sealed(keyring)
    for position in range(len(envelope)):
        for flip in (0x01, 0x80):
            tampered = bytearray(envelope)
            tampered[position] ^= flip
            # Flipping the key id names an unknown key (FailedPrecondition); anything else cannot be opened.
            expected = FailedPrecondition if 1 <= position < 9 else InvalidInput
            with pytest.raises(expected) as refused:
                opened(keyring, bytes(tampered))
            if expected is InvalidInput:
                assert violation(refused.value)[0] == "sealed"  # type: ignore[arg-type]


def test_each_part_of_the_header_is_bound_to_the_ciphertext(keyring: Keyring) -> None:
    envelope, _ = sealed(keyring)
    with pytest.raises(InvalidInput, match="version 2"):
        opened(keyring, b"\x02" + envelope[1:])
    with pytest.raises(InvalidInput, match="suite"):
        opened(keyring, envelope[:9] + struct.pack(">H", 0x0020) + envelope[11:])
    with pytest.raises(InvalidInput, match="sealed to another key"):
        opened(keyring, envelope[:HEADER] + envelope[HEADER + 1 :] + envelope[HEADER : HEADER + 1])


def test_truncated_requests_are_refused_at_every_length(keyring: Keyring) -> None:
    envelope, _ = sealed(keyring)
    for length in [*range(0, HEADER + ENC_BYTES + 40), *range(len(envelope) - 40, len(envelope))]:
        with pytest.raises(InvalidInput) as refused:
            opened(keyring, envelope[:length])
        assert violation(refused.value)[0] == "sealed"


def test_a_request_sealed_to_another_key_with_our_key_id_is_refused(keyring: Keyring) -> None:
    foreign = generate_key(NOW - timedelta(days=1))
    impostor = replace(foreign.config, key_id=keyring.current(NOW).key_id)
    envelope, _ = seal_request(impostor, METHOD, REQUEST, NOW)
    with pytest.raises(InvalidInput, match="sealed to another key"):
        opened(keyring, envelope)


def test_a_request_to_an_unknown_key_id_names_the_current_key(keyring: Keyring) -> None:
    foreign = generate_key(NOW - timedelta(days=1))
    envelope, _ = seal_request(foreign.config, METHOD, REQUEST, NOW)
    with pytest.raises(FailedPrecondition) as refused:
        opened(keyring, envelope)
    assert "unknown" in refused.value.message and keyring.current(NOW).key_id in refused.value.message


def test_after_a_rotation_the_old_key_opens_requests_until_the_grace_period_ends(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    old = init_keyring(folder, NOW - timedelta(days=10))
    new = rotate_keyring(folder, NOW, grace=timedelta(hours=1))
    keyring = Keyring.load(folder)
    assert keyring.current(NOW) == new and {k.key_id for k in keyring.configurations()} == {old.key_id, new.key_id}
    in_grace = NOW + timedelta(minutes=59)
    envelope, _ = seal_request(old, METHOD, REQUEST, in_grace)
    assert opened(keyring, envelope, in_grace).key_id == old.key_id
    after_grace = NOW + timedelta(hours=1)
    late, _ = seal_request(old, METHOD, REQUEST, after_grace)
    with pytest.raises(FailedPrecondition) as refused:
        opened(keyring, late, after_grace)
    assert "not valid now" in refused.value.message and new.key_id in refused.value.message
    fresh, _ = seal_request(keyring.current(after_grace), METHOD, REQUEST, after_grace)
    assert opened(keyring, fresh, after_grace).key_id == new.key_id


def test_a_second_rotation_keeps_the_earlier_end_of_an_old_key(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    first = init_keyring(folder, NOW - timedelta(days=10))
    rotate_keyring(folder, NOW, grace=timedelta(hours=1))
    rotate_keyring(folder, NOW + timedelta(minutes=10), grace=timedelta(hours=5))
    ends = {key.key_id: key.not_after for key in Keyring.load(folder).configurations()}
    assert ends[first.key_id] == NOW + timedelta(hours=1)
    assert sorted(end is None for end in ends.values()) == [False, False, True]


def test_key_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    key = init_keyring(folder, NOW)
    assert (folder / f"{key.key_id}.json").stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700


def test_a_replay_within_the_window_is_refused_and_other_requests_pass(keyring: Keyring) -> None:
    guard = InMemoryReplayGuard()
    envelope, _ = sealed(keyring)
    open_request(keyring, envelope, NOW, guard=guard)
    with pytest.raises(InvalidInput, match="replay"):
        open_request(keyring, envelope, NOW + timedelta(minutes=4), guard=guard)
    other, _ = sealed(keyring)
    assert open_request(keyring, other, NOW, guard=guard).request == REQUEST


def test_the_replay_guard_forgets_digests_when_their_window_ends() -> None:
    guard = InMemoryReplayGuard()
    for number in range(100):
        assert not guard.seen(bytes([number]), NOW + timedelta(seconds=number), NOW)
    assert guard.seen(bytes([50]), NOW + timedelta(seconds=50), NOW)
    assert not guard.seen(b"new", NOW + timedelta(minutes=10), NOW + timedelta(seconds=60))
    assert len(guard) == 40  # 61..99 s and "new": those ending at or before 60 s are gone
    assert not guard.seen(bytes([50]), NOW + timedelta(minutes=20), NOW + timedelta(seconds=60))


def test_a_full_replay_guard_refuses_rather_than_forgets() -> None:
    guard = InMemoryReplayGuard(max_entries=2)
    guard.seen(b"a", NOW + timedelta(minutes=5), NOW)
    guard.seen(b"b", NOW + timedelta(minutes=5), NOW)
    with pytest.raises(ResourceExhausted):
        guard.seen(b"c", NOW + timedelta(minutes=5), NOW)
    assert not guard.seen(b"c", NOW + timedelta(minutes=10), NOW + timedelta(minutes=5))


@pytest.mark.parametrize("offset", [timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1), timedelta(days=-400)])
def test_a_request_created_outside_the_window_is_refused(keyring: Keyring, offset: timedelta) -> None:
    envelope, _ = sealed(keyring, when=NOW + offset)
    with pytest.raises(InvalidInput, match="seal it again now"):
        opened(keyring, envelope)


def test_a_request_at_the_edge_of_the_window_opens(keyring: Keyring) -> None:
    for offset in (timedelta(minutes=-5), timedelta(minutes=5)):
        envelope, _ = sealed(keyring, when=NOW + offset)
        assert opened(keyring, envelope).created_at == NOW + offset


def test_the_caller_cannot_seal_a_malformed_method(keyring: Keyring) -> None:
    with pytest.raises(ValueError, match="hex digits"):
        seal_request(replace(keyring.current(NOW), key_id="abcd"), METHOD, REQUEST, NOW)
    for method in ("Classify", "/a/b/c", "/pkg.Service/", "/pkg.Service/Méthode", "/" + "a" * 300 + "/B"):
        with pytest.raises(ValueError):
            seal_request(keyring.current(NOW), method, REQUEST, NOW)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_random_bytes_never_end_in_anything_but_a_domain_error(keyring: Keyring, data: bytes) -> None:
    with pytest.raises((InvalidInput, FailedPrecondition)):
        opened(keyring, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.binary(min_size=HEADER, max_size=HEADER), tail=st.binary(max_size=1300))
def test_random_envelopes_with_a_known_key_id_never_end_in_anything_but_a_domain_error(
    keyring: Keyring, header: bytes, tail: bytes
) -> None:
    key_id = keyring.current(NOW).key_id_bytes
    envelope = b"\x01" + key_id + header[9:] + tail
    with pytest.raises((InvalidInput, FailedPrecondition)):
        opened(keyring, envelope)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)), min_size=1, max_size=8),
    cut=st.integers(min_value=0, max_value=40),
)
def test_mangled_real_envelopes_never_end_in_anything_but_a_domain_error(
    keyring: Keyring, edits: list[tuple[int, int]], cut: int
) -> None:
    envelope, _ = sealed(keyring)
    mangled = bytearray(envelope[: len(envelope) - cut])
    for position, flip in edits:
        mangled[position % len(mangled)] ^= flip
    assume(bytes(mangled) != envelope)
    with pytest.raises((InvalidInput, FailedPrecondition)):
        opened(keyring, bytes(mangled))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_random_answers_never_end_in_anything_but_invalid_input(keyring: Keyring, data: bytes) -> None:
    _, opener = sealed(keyring)
    with pytest.raises(InvalidInput):
        open_response(opener, data)


def sealed_plaintext(keyring: Keyring, plaintext: bytes) -> bytes:
    """An authentic envelope around any plaintext, as only a caller with the public key can make one."""
    from clinpred.services.common import sealed as format_

    config = keyring.current(NOW)
    header = format_._HEADER.pack(1, config.key_id_bytes, format_.KEM_ID, format_.KDF_ID, format_.AEAD_ID)
    return header + format_._SUITE.encrypt(plaintext, config.hpke_public_key(), info=format_._REQUEST_INFO + header)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    created_ms=st.integers(min_value=0, max_value=2**64 - 1),
    method_length=st.integers(0, 2**16 - 1),
    method=st.binary(max_size=300),
    rest=st.binary(max_size=100),
)
def test_authentic_envelopes_around_malformed_plaintext_end_in_invalid_input(
    keyring: Keyring, created_ms: int, method_length: int, method: bytes, rest: bytes
) -> None:
    plaintext = struct.pack(">Q32sH", created_ms, b"s" * 32, method_length) + method + rest
    with pytest.raises(InvalidInput) as refused:
        opened(keyring, sealed_plaintext(keyring, plaintext))
    assert violation(refused.value)[0] == "sealed"


def test_a_plaintext_shorter_than_its_header_is_refused(keyring: Keyring) -> None:
    for length in (0, 1, 41):
        with pytest.raises(InvalidInput, match="truncated"):
            opened(keyring, sealed_plaintext(keyring, b"x" * length))


def test_a_creation_time_beyond_any_calendar_is_refused(keyring: Keyring) -> None:
    plaintext = struct.pack(">Q32sH", 2**64 - 1, b"s" * 32, len(METHOD)) + METHOD.encode()
    with pytest.raises(InvalidInput, match="out of range"):
        opened(keyring, sealed_plaintext(keyring, plaintext))
