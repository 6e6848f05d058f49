"""Sealed calls' names and messages that server and client share: the RPC names, key configurations."""

from __future__ import annotations

from datetime import UTC

from clinpred.services.api.common.v1 import sealed_pb2
from clinpred.services.common.sealed import AEAD_ID, KDF_ID, KEM_ID
from clinpred.services.common.sealing_keys import SealingKey

SEALED = "Sealed"
KEY_CONFIGURATIONS = "GetKeyConfigurations"


def key_configuration(config: SealingKey) -> sealed_pb2.KeyConfiguration:
    message = sealed_pb2.KeyConfiguration(
        key_id=config.key_id,
        kem_id=KEM_ID,
        kem=config.kem,
        kdf_id=KDF_ID,
        kdf=config.kdf,
        aead_id=AEAD_ID,
        aead=config.aead,
        public_key=config.public_key,
    )
    message.not_before.FromDatetime(config.not_before)
    if config.not_after is not None:
        message.not_after.FromDatetime(config.not_after)
    return message


def sealing_key_of(message: sealed_pb2.KeyConfiguration) -> SealingKey:
    """The inverse of `key_configuration`: what a client seals to."""
    return SealingKey(
        key_id=message.key_id,
        kem=message.kem,
        kdf=message.kdf,
        aead=message.aead,
        public_key=bytes(message.public_key),
        not_before=message.not_before.ToDatetime(tzinfo=UTC),
        not_after=message.not_after.ToDatetime(tzinfo=UTC) if message.HasField("not_after") else None,
    )
