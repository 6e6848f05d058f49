"""The audit secret: one file, from which HKDF-SHA256 derives the pseudonym key and the chain key.

Two derived keys rather than one secret used twice: a pseudonym never helps forge a chain
hash, and a key file can be rotated as a whole. The file is raw bytes (at least 32); it may
be group-readable (a Kubernetes Secret mounted with an fsGroup is 0440) but never readable
or writable by everyone.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clinpred.services.common.audit.errors import AuditKeyError
from clinpred.services.common.audit.records import canonical_json

MIN_SECRET_BYTES = 32
MAX_SECRET_BYTES = 4096
NEW_SECRET_BYTES = 64
_PSEUDONYM_INFO = b"clinpred audit v1 patient pseudonym"
_CHAIN_INFO = b"clinpred audit v1 chain"


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


class AuditKeys:
    """The two audit keys. Build with `from_file` (or `from_secret` in tests)."""

    def __init__(self, pseudonym_key: bytes, chain_key: bytes) -> None:
        self._pseudonym_key = pseudonym_key
        self._chain_key = chain_key

    def __repr__(self) -> str:
        return "AuditKeys(<secret>)"

    @classmethod
    def from_secret(cls, secret: bytes) -> AuditKeys:
        if len(secret) < MIN_SECRET_BYTES:
            raise AuditKeyError(f"audit secret has {len(secret)} bytes; at least {MIN_SECRET_BYTES} are needed")
        return cls(_derive(secret, _PSEUDONYM_INFO), _derive(secret, _CHAIN_INFO))

    @classmethod
    def from_file(cls, path: Path) -> AuditKeys:
        """Reads the secret; refuses a missing, too short, too long or world-accessible file."""
        try:
            mode = os.stat(path).st_mode
        except OSError as error:
            raise AuditKeyError(f"audit key file {path}: {error.strerror}; `clinpred audit keygen FILE` makes one") from None
        if not stat.S_ISREG(mode):
            raise AuditKeyError(f"audit key file {path} is not a regular file")
        if mode & (stat.S_IROTH | stat.S_IWOTH):
            raise AuditKeyError(
                f"audit key file {path} is accessible to every user (mode {stat.S_IMODE(mode):04o}); "
                f"restrict it with `chmod 600 {path}` (or 0400/0440)"
            )
        try:
            secret = Path(path).read_bytes()
        except OSError as error:
            raise AuditKeyError(f"audit key file {path}: {error.strerror}") from None
        if len(secret) < MIN_SECRET_BYTES:
            raise AuditKeyError(
                f"audit key file {path} holds {len(secret)} bytes; at least {MIN_SECRET_BYTES} random bytes are needed "
                "(`clinpred audit keygen FILE` makes one)"
            )
        if len(secret) > MAX_SECRET_BYTES:
            raise AuditKeyError(f"audit key file {path} holds more than {MAX_SECRET_BYTES} bytes; is it the right file?")
        return cls.from_secret(secret)

    def pseudonym(self, tenant: str, patient_id: str) -> str:
        """HMAC-SHA256 hex of (tenant, patient id): stable per key, different across tenants; "" for no patient."""
        if not patient_id:
            return ""
        # A JSON array keeps ("ab", "c") and ("a", "bc") apart.
        message = canonical_json({"tenant": tenant, "patient_id": patient_id})
        return hmac.new(self._pseudonym_key, message, hashlib.sha256).hexdigest()

    def chain_hash(self, previous_hash: str, record_without_hash: Mapping[str, Any]) -> str:
        """HMAC(chain key, previous_hash || canonical JSON of every field but `hash`)."""
        message = previous_hash.encode("ascii") + canonical_json(dict(record_without_hash))
        return hmac.new(self._chain_key, message, hashlib.sha256).hexdigest()

    def genesis_hash(self, writer_id: str) -> str:
        """The `previous_hash` of a writer's first record."""
        return hmac.new(self._chain_key, b"genesis:" + writer_id.encode("ascii"), hashlib.sha256).hexdigest()


def write_key_file(path: Path) -> None:
    """A new random secret in a new file, mode 0600; refuses to overwrite an existing file."""
    secret = secrets.token_bytes(NEW_SECRET_BYTES)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AuditKeyError(f"{path} exists; a key file is never overwritten (records sealed with it need it)") from None
    except OSError as error:
        raise AuditKeyError(f"cannot create audit key file {path}: {error.strerror}") from None
    try:
        os.fchmod(descriptor, 0o600)  # the umask may have taken bits away, never added: make it exact
        os.write(descriptor, secret)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
