"""Crafted TenSEAL contexts and CKKS vectors, as an adversarial client would send them.

TenSEAL serialises contexts (TenSEALContextProto) and vectors (CKKSVectorProto) as protobuf
messages; appending fields to the bytes overrides scalars (last one wins) and merges embedded
messages, which is how a client sets values the TenSEAL API refuses to set (a negative scale).
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass

import numpy as np
import tenseal as ts
import tenseal.sealapi as sealapi

from clinpred.pilots.genomics.encrypted import (
    EncryptedScoreLayout,
    create_client_context,
    encrypt_dosages,
    public_context_bytes,
)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def length_delimited(number: int, data: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(data)) + data


def double_field(number: int, value: float) -> bytes:
    return varint(number << 3 | 1) + struct.pack("<d", value)


def with_global_scale(context: bytes, scale: float) -> bytes:
    """The context with TenSEALPublicProto.scale (field 2.3) replaced."""
    return context + length_delimited(2, double_field(3, scale))


def with_encoding_scale(vector: bytes, scale: float) -> bytes:
    """The vector with CKKSVectorProto.scale (field 3) replaced."""
    return vector + double_field(3, scale)


def with_extra_ciphertext(vector: bytes, data: bytes) -> bytes:
    """The vector with one more entry in CKKSVectorProto.ciphertexts (field 2)."""
    return vector + length_delimited(2, data)


def with_extra_size(vector: bytes, size: int) -> bytes:
    """The vector with one more entry in CKKSVectorProto.sizes (field 1, unpacked)."""
    return vector + varint(1 << 3) + varint(size)


def _saved(obj: object) -> bytes:
    handle, path = tempfile.mkstemp()
    os.close(handle)
    try:
        obj.save(path)  # type: ignore[attr-defined]
        with open(path, "rb") as file:
            return file.read()
    finally:
        os.unlink(path)


def context_with_rotations(steps: list[int], degree: int = 8192, bits: tuple[int, ...] = (60, 40, 40, 60)) -> bytes:
    """A public CKKS context with Galois keys for `steps` only (built with SEAL directly; SEAL's binding
    may read the list as Galois elements instead of steps: either way most rotations are missing)."""
    parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(degree)
    parms.set_coeff_modulus(sealapi.CoeffModulus.Create(degree, list(bits)))
    context = sealapi.SEALContext(parms, True, sealapi.SEC_LEVEL_TYPE.TC128)
    keys = sealapi.KeyGenerator(context)
    public_key = sealapi.PublicKey()
    keys.create_public_key(public_key)
    public = length_delimited(1, _saved(public_key)) + double_field(3, 2.0**40)
    public += length_delimited(5, _saved(keys.create_galois_keys(steps)))
    return length_delimited(1, _saved(parms)) + length_delimited(2, public)


@dataclass(frozen=True)
class Crafted:
    """One crafted request: what it is, its context and ciphertexts, and words the refusal must contain."""

    name: str
    context: bytes
    ciphertexts: tuple[bytes, ...]
    reason: str


def crafted_requests(layout: EncryptedScoreLayout) -> list[Crafted]:
    """Every crafted input the adversarial probe found, for a layout of one ciphertext."""
    client = create_client_context()
    public = public_context_bytes(client)
    count = len(layout)
    (good,) = encrypt_dosages(client, np.ones(count), layout).ciphertexts
    fresh = ts.ckks_vector(client, [1.0] * count)
    last_level = fresh * ([1.0] * count) * ([1.0] * count)
    no_relin = create_client_context()
    no_relin.auto_relin = False
    squared = ts.ckks_vector(no_relin, [1.0] * count)
    size_three = squared * squared
    huge = create_client_context()
    huge.global_scale = 2.0**100
    huge_vector = bytes(ts.ckks_vector(huge, [1.0] * count).serialize())
    huge.global_scale = 2.0**40
    params_only = bytes(
        client.serialize(save_public_key=False, save_secret_key=False, save_galois_keys=False, save_relin_keys=False)
    )
    return [
        Crafted(
            "ciphertext at the last modulus level", public, (bytes(last_level.serialize()),), "last coefficient modulus level"
        ),
        Crafted("size-3 ciphertext", public_context_bytes(no_relin), (bytes(size_three.serialize()),), "has 3 polynomials"),
        Crafted("ciphertext scale 2^100", public_context_bytes(huge), (huge_vector,), "scale 2^100 is too large"),
        Crafted("encoding scale 2^100", public, (with_encoding_scale(good, 2.0**100),), "encoding scale 2^100 is too large"),
        Crafted("encoding scale NaN", public, (with_encoding_scale(good, float("nan")),), "encoding scale must be a positive"),
        Crafted("global scale 2^100", with_global_scale(public, 2.0**100), (good,), "global scale 2^100 is too large"),
        Crafted("global scale 0", with_global_scale(public, 0.0), (good,), "global scale must be a positive finite"),
        Crafted("global scale -1", with_global_scale(public, -1.0), (good,), "global scale"),
        Crafted("global scale NaN", with_global_scale(public, float("nan")), (good,), "global scale"),
        Crafted("global scale infinite", with_global_scale(public, float("inf")), (good,), "global scale must be a positive"),
        Crafted("parameters only", params_only, (good,), "no Galois keys"),
        Crafted("Galois keys for one rotation only", context_with_rotations([1]), (good,), "no Galois key for rotating by"),
        Crafted("two ciphertexts in one vector", public, (with_extra_ciphertext(good, good),), "holds 2 ciphertexts"),
        Crafted("sizes that do not match the ciphertexts", public, (with_extra_size(good, 1),), "declares 2 value counts"),
        Crafted("truncated ciphertext", public, (good[: len(good) // 2],), "not a CKKS vector"),
        Crafted("truncated context", public[: len(public) // 2], (good,), "not a serialised TenSEAL context"),
    ]


def every_slot(context: ts.Context, vector: bytes) -> np.ndarray:
    """All poly_modulus_degree / 2 slots of a one-ciphertext vector, as a client decrypting with SEAL itself
    would see them: TenSEAL decodes only the vector's declared size, so the sizes field is rewritten."""
    from clinpred.pilots.common.ckks import _varint, poly_modulus_degree

    ciphertexts: list[bytes] = []
    scale = b""
    at = 0
    while at < len(vector):
        tag, at = _varint(vector, at)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, at = _varint(vector, at)
        elif wire == 1:
            scale, at = vector[at : at + 8], at + 8
        else:
            length, at = _varint(vector, at)
            if number == 2:
                ciphertexts.append(vector[at : at + length])
            at += length
    (ciphertext,) = ciphertexts
    slots = poly_modulus_degree(context) // 2
    rebuilt = varint(1 << 3) + varint(slots) + length_delimited(2, ciphertext) + varint(3 << 3 | 1) + scale
    return np.asarray(ts.ckks_vector_from(context, rebuilt).decrypt())
