"""Sealing keys: the HPKE key pairs a service opens sealed requests with, kept as a folder on disk.

One file per key, `<key id>.json`, mode 0600 (it holds the private key):

    {"key_id": "9f2c...", "kem": "MLKEM768_X25519", "kdf": "HKDF_SHA256", "aead": "AES_256_GCM",
     "not_before": ISO-8601, "not_after": ISO-8601 | null,
     "mlkem_seed": base64 (64 bytes), "x25519_private": base64 (32 bytes)}

The current key is the newest whose validity has begun. `rotate_keyring` makes a new one and gives the old
ones a `not_after` of now plus a grace period, so requests sealed to them still open until then.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from clinpred.pilots.common.errors import FailedPrecondition

KEM_NAME = "MLKEM768_X25519"
KDF_NAME = "HKDF_SHA256"
AEAD_NAME = "AES_256_GCM"
KEY_ID_BYTES = 8
MLKEM768_PUBLIC_BYTES = 1184
X25519_PUBLIC_BYTES = 32
PUBLIC_KEY_BYTES = MLKEM768_PUBLIC_BYTES + X25519_PUBLIC_BYTES
DEFAULT_GRACE = timedelta(hours=24)
_SUFFIX = ".json"


class KeyringError(Exception):
    """A keyring folder is missing, empty or holds a file that is not a sealing key; the message says which."""


@dataclass(frozen=True)
class SealingKey:
    """A public key configuration: what a caller needs to seal a request (and what a key-configuration RPC serves).

    `public_key` is the ML-KEM-768 encapsulation key (1184 bytes) followed by the X25519 public key (32 bytes)."""

    key_id: str
    kem: str
    kdf: str
    aead: str
    public_key: bytes
    not_before: datetime
    not_after: datetime | None

    @property
    def key_id_bytes(self) -> bytes:
        return bytes.fromhex(self.key_id)

    def hpke_public_key(self) -> hpke.MLKEM768X25519PublicKey:
        if len(self.public_key) != PUBLIC_KEY_BYTES:
            raise ValueError(f"public key must be {PUBLIC_KEY_BYTES} bytes, not {len(self.public_key)}")
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(self.public_key[:MLKEM768_PUBLIC_BYTES]),
            x25519.X25519PublicKey.from_public_bytes(self.public_key[MLKEM768_PUBLIC_BYTES:]),
        )

    def is_valid_at(self, now: datetime) -> bool:
        return self.not_before <= now and (self.not_after is None or now < self.not_after)

    def as_json(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "kem": self.kem,
            "kdf": self.kdf,
            "aead": self.aead,
            "public_key": base64.b64encode(self.public_key).decode("ascii"),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat() if self.not_after else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SealingKey:
        """The inverse of `as_json` (a client reads what `clinpred keys list --json` or the RPC gives)."""
        not_after = data.get("not_after")
        return cls(
            key_id=str(data["key_id"]),
            kem=str(data["kem"]),
            kdf=str(data["kdf"]),
            aead=str(data["aead"]),
            public_key=base64.b64decode(str(data["public_key"])),
            not_before=datetime.fromisoformat(str(data["not_before"])),
            not_after=datetime.fromisoformat(str(not_after)) if not_after else None,
        )


@dataclass(frozen=True)
class PrivateSealingKey:
    config: SealingKey
    mlkem_seed: bytes = field(repr=False)
    x25519_private: bytes = field(repr=False)

    def hpke_private_key(self) -> hpke.MLKEM768X25519PrivateKey:
        return hpke.MLKEM768X25519PrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(self.mlkem_seed),
            x25519.X25519PrivateKey.from_private_bytes(self.x25519_private),
        )


def generate_key(now: datetime) -> PrivateSealingKey:
    """A new key pair valid from `now`, with a random key id."""
    mlkem_key = mlkem.MLKEM768PrivateKey.generate()
    x25519_key = x25519.X25519PrivateKey.generate()
    public = mlkem_key.public_key().public_bytes_raw() + x25519_key.public_key().public_bytes_raw()
    config = SealingKey(secrets.token_hex(KEY_ID_BYTES), KEM_NAME, KDF_NAME, AEAD_NAME, public, now, None)
    return PrivateSealingKey(config, mlkem_key.private_bytes_raw(), x25519_key.private_bytes_raw())


class Keyring:
    """The keys a service opens sealed requests with; the private keys never leave it."""

    def __init__(self, keys: list[PrivateSealingKey]) -> None:
        if not keys:
            raise KeyringError("a keyring needs at least one key")
        self._keys = sorted(keys, key=lambda key: key.config.not_before)
        self._by_id = {key.config.key_id_bytes: key for key in self._keys}
        # Parsing an ML-KEM seed expands the whole key; do it once per key, not per request.
        self._private = {key_id: key.hpke_private_key() for key_id, key in self._by_id.items()}

    @classmethod
    def load(cls, folder: Path) -> Keyring:
        return cls(read_keys(folder))

    def current(self, now: datetime) -> SealingKey:
        """The newest key valid at `now`: the one callers should seal to."""
        valid = [key.config for key in self._keys if key.config.is_valid_at(now)]
        if not valid:
            raise FailedPrecondition("sealed: no sealing key is valid now; run `clinpred keys rotate`")
        return valid[-1]

    def configurations(self) -> list[SealingKey]:
        """Every key's public configuration, oldest first."""
        return [key.config for key in self._keys]

    def private_key_for(self, key_id: bytes, now: datetime) -> tuple[SealingKey, hpke.MLKEM768X25519PrivateKey]:
        """The key named by an envelope; FailedPrecondition naming the current key id if unknown or not valid now."""
        key = self._by_id.get(key_id)
        if key is None or not key.config.is_valid_at(now):
            state = "unknown" if key is None else "not valid now"
            current = self.current(now)
            raise FailedPrecondition(f"sealed: the key id is {state}; seal to the current key id {current.key_id}")
        return key.config, self._private[key_id]


def _key_file_json(key: PrivateSealingKey) -> str:
    data = key.config.as_json()
    del data["public_key"]  # derived from the private key on reading
    data["mlkem_seed"] = base64.b64encode(key.mlkem_seed).decode("ascii")
    data["x25519_private"] = base64.b64encode(key.x25519_private).decode("ascii")
    return json.dumps(data, indent=2) + "\n"


def _write_key(folder: Path, key: PrivateSealingKey) -> None:
    path = folder / f"{key.config.key_id}{_SUFFIX}"
    temporary = path.with_suffix(".tmp")
    # Created 0600 from the start, then renamed, so the private key is never readable by others nor half written.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(_key_file_json(key))
    os.replace(temporary, path)


def _read_key(path: Path) -> PrivateSealingKey:
    try:
        data = json.loads(path.read_text())
        seed = base64.b64decode(data["mlkem_seed"], validate=True)
        private = base64.b64decode(data["x25519_private"], validate=True)
        mlkem_key = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
        x25519_key = x25519.X25519PrivateKey.from_private_bytes(private)
        public = mlkem_key.public_key().public_bytes_raw() + x25519_key.public_key().public_bytes_raw()
        not_after = data.get("not_after")
        config = SealingKey(
            key_id=bytes.fromhex(data["key_id"]).hex(),
            kem=data["kem"],
            kdf=data["kdf"],
            aead=data["aead"],
            public_key=public,
            not_before=datetime.fromisoformat(data["not_before"]),
            not_after=datetime.fromisoformat(not_after) if not_after else None,
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise KeyringError(f"{path.name} is not a sealing key file ({type(error).__name__})") from None
    if (config.kem, config.kdf, config.aead) != (KEM_NAME, KDF_NAME, AEAD_NAME):
        raise KeyringError(f"{path.name}: unsupported suite {config.kem}/{config.kdf}/{config.aead}")
    if len(config.key_id_bytes) != KEY_ID_BYTES or path.stem != config.key_id:
        raise KeyringError(f"{path.name}: the key id must be {KEY_ID_BYTES * 2} hex digits and name the file")
    return PrivateSealingKey(config, seed, private)


def read_keys(folder: Path) -> list[PrivateSealingKey]:
    if not folder.is_dir():
        raise KeyringError(f"{folder} is not a folder; `clinpred keys init {folder}` makes one")
    keys = [_read_key(path) for path in sorted(folder.glob(f"*{_SUFFIX}"))]
    if not keys:
        raise KeyringError(f"{folder} holds no sealing key; `clinpred keys init {folder}` makes one")
    return keys


def init_keyring(folder: Path, now: datetime) -> SealingKey:
    """A new keyring folder (0700) with one key; refuses a folder that already holds keys."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if any(folder.glob(f"*{_SUFFIX}")):
        raise KeyringError(f"{folder} already holds sealing keys; `clinpred keys rotate` adds one")
    key = generate_key(now)
    _write_key(folder, key)
    return key.config


def rotate_keyring(folder: Path, now: datetime, grace: timedelta = DEFAULT_GRACE) -> SealingKey:
    """A new current key; every older key still valid gets `not_after = now + grace` (sooner ones are kept)."""
    keys = read_keys(folder)
    retire_at = now + grace
    for key in keys:
        if key.config.not_after is None or key.config.not_after > retire_at:
            retired = replace(key.config, not_after=retire_at)
            _write_key(folder, PrivateSealingKey(retired, key.mlkem_seed, key.x25519_private))
    new = generate_key(now)
    _write_key(folder, new)
    return new.config
