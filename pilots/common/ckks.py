"""CKKS (TenSEAL) checks every encrypted computation makes on what a client sends: the context's
degree and scale, and each ciphertext's shape, level and scale, read before TenSEAL trusts them.

Shared by encrypted genomics scoring and encrypted tumour classification; refusals are raised by
the caller's `refused` function, so each names its own request field.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tenseal as ts

from clinpred.pilots.common.errors import InvalidInput

MIN_SCALE_BITS = 30
# SEAL's primes have at most 60 bits: a larger scale cannot be rescaled away after the multiplication.
MAX_SCALE_BITS = 60


def poly_modulus_degree(context: ts.Context) -> int:
    return int(context.seal_context().data.key_context_data().parms().poly_modulus_degree())


def scale_problem(scale: float) -> str | None:
    """Why a CKKS scale cannot serve the scoring, or None when it can."""
    if not math.isfinite(scale) or scale <= 0:
        return f"must be a positive finite number, 2^{MIN_SCALE_BITS} to 2^{MAX_SCALE_BITS}"
    if scale < 2.0**MIN_SCALE_BITS:
        return f"2^{math.log2(scale):.0f} is too small; at least 2^{MIN_SCALE_BITS}"
    if scale > 2.0**MAX_SCALE_BITS:
        return f"2^{math.log2(scale):.0f} is too large; at most 2^{MAX_SCALE_BITS}"
    return None


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def vector_fields(blob: bytes) -> tuple[list[int], int, float] | None:
    """The sizes, ciphertext count and encoding scale of a serialised CKKS vector (TenSEAL's CKKSVectorProto:
    1 repeated uint32 sizes, 2 repeated bytes ciphertexts, 3 double scale), or None if it is not one.

    TenSEAL's Python API does not expose them, and a vector whose sizes do not match its ciphertexts
    makes TenSEAL read out of bounds, so they are read from the bytes before TenSEAL loads them.
    """
    sizes: list[int] = []
    count, scale, at = 0, math.nan, 0
    try:
        while at < len(blob):
            tag, at = _varint(blob, at)
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                value, at = _varint(blob, at)
                if number == 1:
                    sizes.append(value)
            elif wire == 1:
                if at + 8 > len(blob):
                    return None
                if number == 3:
                    (scale,) = struct.unpack_from("<d", blob, at)
                at += 8
            elif wire == 2:
                length, at = _varint(blob, at)
                if at + length > len(blob):
                    return None
                if number == 1:
                    end, inner = at + length, at
                    while inner < end:
                        value, inner = _varint(blob, inner)
                        sizes.append(value)
                elif number == 2:
                    count += 1
                at += length
            elif wire == 5:
                at += 4
            else:
                return None
    except ValueError:
        return None
    return sizes, count, scale


@dataclass(frozen=True)
class CkksOperand:
    """A loaded ciphertext and what the scoring needs to know about it."""

    vector: ts.CKKSVector
    level: int
    scale: float
    encoding_scale: float


def check_ciphertext(
    context: ts.Context, vector: ts.CKKSVector, ciphertext: Any, encoding_scale: float,
    refused: Callable[[str], InvalidInput],
) -> CkksOperand:
    if ciphertext.size() != 2:
        raise refused(f"has {ciphertext.size()} polynomials; a fresh encryption (2) is needed, relinearise first")
    if not ciphertext.is_ntt_form():
        raise refused("is not in NTT form, as CKKS ciphertexts are")
    level_data = context.seal_context().data.get_context_data(ciphertext.parms_id())
    if level_data is None:
        raise refused("its parameters are not those of the context")
    level = int(level_data.chain_index())
    if level < 1:
        raise refused("is at the last coefficient modulus level; multiplying by the weights needs one level more")
    scale = float(ciphertext.scale)
    for what, value in (("scale", scale), ("encoding scale", encoding_scale)):
        problem = scale_problem(value)
        if problem:
            raise refused(f"{what} {problem}")
    # SEAL refuses a product whose scale does not fit in the level's coefficient modulus.
    if math.log2(scale) + math.log2(encoding_scale) >= level_data.total_coeff_modulus_bit_count():
        raise refused(
            f"scale 2^{math.log2(scale):.0f} times the weights' scale 2^{math.log2(encoding_scale):.0f} exceeds the"
            f" {level_data.total_coeff_modulus_bit_count()}-bit coefficient modulus left at its level"
        )
    return CkksOperand(vector, level, scale, encoding_scale)


def check_public_context(
    context: ts.Context, refused: Callable[[str], InvalidInput], supported_degrees: tuple[int, ...]
) -> None:
    """A client's context the server may and can compute with: CKKS, no secret key, a supported degree,
    a usable global scale and one coefficient modulus level left for the multiplication."""
    parms = context.seal_context().data.key_context_data().parms()
    if parms.scheme().name != "CKKS":
        raise refused(f"scheme {parms.scheme().name} is not supported; use CKKS")
    if context.is_private() or context.has_secret_key():
        raise refused("carries a secret key; send the public context only")
    degree = int(parms.poly_modulus_degree())
    if degree not in supported_degrees:
        raise refused(f"poly_modulus_degree {degree} is not supported; use one of {supported_degrees}")
    try:
        scale = float(context.global_scale)
    except Exception:
        raise refused(f"has no global scale; set one of 2^{MIN_SCALE_BITS} to 2^{MAX_SCALE_BITS}") from None
    problem = scale_problem(scale)
    if problem:
        raise refused(f"global scale {problem}")
    if context.seal_context().data.first_context_data().chain_index() < 1:
        raise refused("no coefficient modulus level left for one multiplication")
