"""Sealed payloads: a whole request sealed to the service's public key, its answer sealed back to the caller.

The shape of Oblivious HTTP (RFC 9458) with HPKE (RFC 9180), suite ML-KEM-768+X25519 / HKDF-SHA256 /
AES-256-GCM, from `cryptography`. Integers are big-endian.

Request envelope, version 1:

    version u8 = 1 | key_id 8 bytes | kem_id u16 | kdf_id u16 | aead_id u16 | enc (1120 bytes) | ciphertext

    The HPKE `info` is "clinpred sealed request" 0x00 followed by the 15 header bytes, so the key id, the
    version and the suite are bound into the key schedule: changing any of them fails to open (RFC 9458 §4.3).
    The plaintext is

    created_at u64 (milliseconds since the Unix epoch, UTC) | response_secret 32 bytes
    | method_length u16 | method (ASCII, "/package.Service/Method") | request bytes (the inner request message)

Response envelope, version 1:

    version u8 = 1 | response_nonce 32 bytes | AES-256-GCM ciphertext and tag of the response bytes

    key, nonce = HKDF-SHA256(salt = enc || response_nonce, secret = response_secret, info = "key" / "nonce"),
    AAD = "clinpred sealed response" 0x00 | version | key_id. RFC 9458 §4.4 takes the secret from the
    request context's HPKE export; `cryptography` offers single-shot HPKE without the export interface, so
    the caller draws the secret and sends it inside the sealed request: it is just as known to only the
    caller and the holder of the private key, and the derivation still binds each answer to its request's
    encapsulation.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
import struct
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clinpred.pilots.common.errors import FieldViolation, InvalidInput, ResourceExhausted
from clinpred.services.common.sealing_keys import AEAD_NAME, KDF_NAME, KEM_NAME, KEY_ID_BYTES, Keyring, SealingKey

VERSION = 1
# IANA HPKE registry: KEM MLKEM768-X25519 0x647A, KDF HKDF-SHA256 0x0001, AEAD AES-256-GCM 0x0002.
KEM_ID, KDF_ID, AEAD_ID = 0x647A, 0x0001, 0x0002
SUITE_NAMES = {KEM_NAME: KEM_ID, KDF_NAME: KDF_ID, AEAD_NAME: AEAD_ID}
ENC_BYTES = hpke.KEM.MLKEM768_X25519.enc_length()
RESPONSE_SECRET_BYTES = 32
RESPONSE_NONCE_BYTES = 32
_HEADER = struct.Struct(f">B{KEY_ID_BYTES}sHHH")
HEADER_BYTES = _HEADER.size
_PLAIN_HEADER = struct.Struct(f">Q{RESPONSE_SECRET_BYTES}sH")
_TAG_BYTES = 16
_REQUEST_INFO = b"clinpred sealed request\x00"
_RESPONSE_AAD = b"clinpred sealed response\x00"
MAX_METHOD_BYTES = 256
_METHOD = re.compile(r"/[A-Za-z_][A-Za-z0-9_.]*/[A-Za-z_][A-Za-z0-9_]*")
_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
DEFAULT_WINDOW = timedelta(minutes=5)
FIELD = "sealed"


def _invalid(description: str) -> InvalidInput:
    return InvalidInput.of([FieldViolation(FIELD, description)])


def _milliseconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("times must carry a time zone")
    return round(moment.timestamp() * 1000)


def _response_key_and_nonce(secret: bytes, enc: bytes, response_nonce: bytes) -> tuple[bytes, bytes]:
    salt = enc + response_nonce
    key = HKDF(hashes.SHA256(), 32, salt, b"key").derive(secret)
    nonce = HKDF(hashes.SHA256(), 12, salt, b"nonce").derive(secret)
    return key, nonce


@dataclass(frozen=True)
class _ResponseKeys:
    secret: bytes = field(repr=False)
    enc: bytes
    aad: bytes


@dataclass(frozen=True)
class ResponseSealer:
    """Server side: seals the answer to one opened request so that only its caller can open it."""

    _keys: _ResponseKeys

    def seal(self, response: bytes) -> bytes:
        response_nonce = os.urandom(RESPONSE_NONCE_BYTES)
        key, nonce = _response_key_and_nonce(self._keys.secret, self._keys.enc, response_nonce)
        return bytes([VERSION]) + response_nonce + AESGCM(key).encrypt(nonce, response, self._keys.aad)


@dataclass(frozen=True)
class ResponseOpener:
    """Caller side: opens the answer to the request `seal_request` sealed; InvalidInput ("sealed") otherwise."""

    _keys: _ResponseKeys

    def open(self, envelope: bytes) -> bytes:
        envelope = bytes(envelope)
        if len(envelope) < 1 + RESPONSE_NONCE_BYTES + _TAG_BYTES:
            raise _invalid("the sealed response is truncated")
        if envelope[0] != VERSION:
            raise _invalid(f"the sealed response has version {envelope[0]}; this client reads version {VERSION}")
        response_nonce = envelope[1 : 1 + RESPONSE_NONCE_BYTES]
        key, nonce = _response_key_and_nonce(self._keys.secret, self._keys.enc, response_nonce)
        try:
            return AESGCM(key).decrypt(nonce, envelope[1 + RESPONSE_NONCE_BYTES :], self._keys.aad)
        except InvalidTag:
            raise _invalid("the sealed response cannot be opened: tampered with, or not the answer to this request") from None


@dataclass(frozen=True)
class OpenedRequest:
    method: str
    request: bytes
    created_at: datetime
    key_id: str
    response_sealer: ResponseSealer


class ReplayGuard(Protocol):
    """Remembers the digests of opened envelopes until they expire, so each opens once.

    A SQL implementation: `INSERT digest, expires_at` with the digest as primary key (a conflict means seen;
    an expired row counts as unseen and is replaced), and `DELETE WHERE expires_at <= now` now and then."""

    def seen(self, digest: bytes, expires_at: datetime, now: datetime) -> bool:
        """Records `digest` until `expires_at`; True if it was recorded before and has not expired. Atomic."""
        ...


class InMemoryReplayGuard:
    """A replica-local ReplayGuard: memory holds the digests of one window, at most `max_entries` of them."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._max_entries = max_entries
        self._expiry: dict[bytes, datetime] = {}
        self._queue: list[tuple[datetime, bytes]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, digest: bytes, expires_at: datetime, now: datetime) -> bool:
        with self._lock:
            while self._queue and self._queue[0][0] <= now:
                expired_at, expired = heapq.heappop(self._queue)
                if self._expiry.get(expired) == expired_at:
                    del self._expiry[expired]
            known = self._expiry.get(digest)
            if known is not None and known > now:
                return True
            if len(self._expiry) >= self._max_entries:
                # Forgetting a digest early would let its envelope be replayed: refuse instead.
                raise ResourceExhausted("sealed: too many sealed requests within the replay window; retry later")
            self._expiry[digest] = expires_at
            heapq.heappush(self._queue, (expires_at, digest))
            return False


def seal_request(config: SealingKey, method: str, request: bytes, now: datetime) -> tuple[bytes, ResponseOpener]:
    """The envelope of `method` with its serialized `request`, sealed to `config`, and what opens its answer."""
    if (config.kem, config.kdf, config.aead) != (KEM_NAME, KDF_NAME, AEAD_NAME):
        raise ValueError(f"unsupported suite {config.kem}/{config.kdf}/{config.aead}")
    method_bytes = method.encode("ascii")
    if len(method_bytes) > MAX_METHOD_BYTES or not _METHOD.fullmatch(method):
        raise ValueError("method must be a full method name such as /package.Service/Method")
    if len(config.key_id_bytes) != KEY_ID_BYTES:
        raise ValueError(f"a key id is {KEY_ID_BYTES * 2} hex digits")
    header = _HEADER.pack(VERSION, config.key_id_bytes, KEM_ID, KDF_ID, AEAD_ID)
    secret = os.urandom(RESPONSE_SECRET_BYTES)
    plaintext = _PLAIN_HEADER.pack(_milliseconds(now), secret, len(method_bytes)) + method_bytes + bytes(request)
    sealed = _SUITE.encrypt(plaintext, config.hpke_public_key(), info=_REQUEST_INFO + header)
    opener = ResponseOpener(_ResponseKeys(secret, sealed[:ENC_BYTES], _RESPONSE_AAD + header[: 1 + KEY_ID_BYTES]))
    return header + sealed, opener


def open_request(
    keyring: Keyring,
    envelope: bytes,
    now: datetime,
    *,
    guard: ReplayGuard,
    window: timedelta = DEFAULT_WINDOW,
) -> OpenedRequest:
    """The inner request of a sealed envelope, opened once.

    InvalidInput ("sealed"): not an envelope of this format, tampered with, truncated, sealed to another key,
    created outside `window` of `now`, or opened before. FailedPrecondition: the key id is unknown or no
    longer valid (the message names the current key id).
    """
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    envelope = bytes(envelope)
    if len(envelope) < _HEADER.size + ENC_BYTES + _TAG_BYTES:
        raise _invalid("not a sealed request: too short (truncated?)")
    header = envelope[: _HEADER.size]
    version, key_id, kem_id, kdf_id, aead_id = _HEADER.unpack(header)
    if version != VERSION:
        raise _invalid(f"sealed request version {version} is not supported; this service reads version {VERSION}")
    if (kem_id, kdf_id, aead_id) != (KEM_ID, KDF_ID, AEAD_ID):
        raise _invalid(f"HPKE suite {kem_id:#06x}/{kdf_id:#06x}/{aead_id:#06x} is not supported")
    config, private_key = keyring.private_key_for(key_id, now)
    sealed = envelope[_HEADER.size :]
    try:
        plaintext = _SUITE.decrypt(sealed, private_key, info=_REQUEST_INFO + header)
    except InvalidTag:
        raise _invalid("cannot be opened: tampered with, truncated or sealed to another key") from None
    if len(plaintext) < _PLAIN_HEADER.size:
        raise _invalid("the sealed plaintext is truncated")
    created_ms, secret, method_length = _PLAIN_HEADER.unpack(plaintext[: _PLAIN_HEADER.size])
    method_end = _PLAIN_HEADER.size + method_length
    method_bytes = plaintext[_PLAIN_HEADER.size : method_end]
    if len(method_bytes) != method_length or method_length > MAX_METHOD_BYTES:
        raise _invalid("the sealed method name is truncated or too long")
    method = method_bytes.decode("ascii", errors="replace")
    if not _METHOD.fullmatch(method):
        raise _invalid("the sealed method is not a full method name such as /package.Service/Method")
    try:
        created_at = datetime.fromtimestamp(created_ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise _invalid("the creation time is out of range") from None
    if abs(now - created_at) > window:
        raise _invalid(f"created more than {window.total_seconds():.0f} s from the server's clock; seal it again now")
    # Only authentic envelopes reach the guard, so garbage cannot fill its memory. A replay is InvalidInput,
    # not FailedPrecondition: that envelope can never succeed again, and the caller's remedy is to seal anew,
    # not to wait for the server's state to change.
    if guard.seen(hashlib.sha256(envelope).digest(), created_at + window, now):
        raise _invalid("this sealed request was opened before (a replay); seal each call anew")
    keys = _ResponseKeys(secret, sealed[:ENC_BYTES], _RESPONSE_AAD + header[: 1 + KEY_ID_BYTES])
    return OpenedRequest(method, plaintext[method_end:], created_at, config.key_id, ResponseSealer(keys))


def seal_response(opened: OpenedRequest, response: bytes) -> bytes:
    """The serialized inner response, sealed to the caller of `opened`."""
    return opened.response_sealer.seal(response)


def open_response(opener: ResponseOpener, envelope: bytes) -> bytes:
    """The inner response bytes of a sealed answer; InvalidInput ("sealed") if it is not this request's answer."""
    return opener.open(envelope)
