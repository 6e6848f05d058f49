"""Polygenic scores on CKKS-encrypted genotypes (TenSEAL): the server never holds a secret key.

The exchange:

1. The server publishes each score's `EncryptedScoreLayout`: the variant
   order, effect alleles and weights (public, they come from the PGS Catalog),
   or, for a score configured private, the variant order and effect alleles only.
2. The client matches its own VCF locally (`score_vcf`), turns it into one
   effect-allele dosage per published variant (`dosages_for_layout`, 0 for
   unmatched variants, imputed as in plaintext scoring), builds a CKKS
   context (`create_client_context`), encrypts the dosages
   (`encrypt_dosages`, several ciphertexts when the score has more
   variants than one ciphertext has slots, poly_modulus_degree / 2) and
   sends `public_context_bytes(context)`, which has no secret key: once, to
   register it (`evaluation_keys`), then only its SHA-256 with each call.
3. The server (`score_encrypted`) multiplies each ciphertext by the plain
   weights (the per-variant contributions) and sums the slots (the score),
   and returns ciphertexts only. For a private score it returns the score
   alone, every slot but the first multiplied by 0: the rotations that sum
   the slots leave partial sums in the others, whose differences would be
   the per-variant products, and so the weights.
4. The client decrypts (`decrypt_score`) and turns the score into a
   percentile and an absolute risk with the model package, locally.

The server refuses (InvalidInput, naming the request field) anything that is
not what it can compute on safely: a context carrying a secret key, another
scheme than CKKS, a poly modulus degree outside 8192/16384, a global scale
that is not a number between 2^30 (coarser loses the 1e-3 accuracy for
weights of 1e-2) and 2^60 (SEAL's largest prime: it could not be rescaled),
no rescaling level left (two for a private score: the weights and the
mask), no Galois keys for the rotations the sum needs;
ciphertexts that do not load, hold several ciphertexts, are not of size 2
(not relinearised), sit at the last modulus level, have a scale out of that
range or too large for their level, differ in level or scale from each
other, or whose count or length does not fit the layout. Anything else
TenSEAL raises on crafted bytes is refused the same way, never an internal error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import tenseal as ts

from clinpred.pilots.common.cancellation import Deadline, check_deadline
from clinpred.pilots.common.ckks import (
    CkksOperand,
    check_ciphertext,
    check_public_context,
    poly_modulus_degree,
    vector_fields,
)
from clinpred.pilots.common.errors import InvalidInput
from clinpred.pilots.common.model_package import ModelIdentity
from clinpred.pilots.genomics.score_layout import EncryptedScoreLayout as EncryptedScoreLayout
from clinpred.pilots.genomics.score_layout import layout_scoring_file as layout_scoring_file
from clinpred.pilots.genomics.score_layout import layout_scoring_text as layout_scoring_text
from clinpred.pilots.genomics.score_layout import score_layout as score_layout
from clinpred.pilots.genomics.scoring import EffectDosages, SampleScore
from clinpred.pilots.genomics.text_stream import InputOrigin

SUPPORTED_POLY_MODULUS_DEGREES = (8192, 16384)
DEFAULT_POLY_MODULUS_DEGREE = 8192
DEFAULT_COEFF_MOD_BIT_SIZES = (60, 40, 40, 60)
DEFAULT_SCALE_BITS = 40


@dataclass(frozen=True)
class EncryptedDosages:
    pgs_id: str
    ciphertexts: tuple[bytes, ...]


@dataclass(frozen=True)
class EncryptedScore:
    """The server's answer: ciphertexts only. Slot 0 of `score` holds the score sum."""

    pgs_id: str
    score: bytes
    # One per input ciphertext, slot i = weight x dosage of variant i; none for a private score.
    contributions: tuple[bytes, ...]


@dataclass(frozen=True)
class EncryptedFields:
    """The request fields that carried the public context, the ciphertexts and their declared lengths.

    Handed in by the caller so that a refusal names the field it is about.
    """

    context: str
    ciphertexts: str
    lengths: str


@dataclass(frozen=True)
class EncryptedScoreRequest:
    """One encrypted-scoring request as the server received it."""

    score: str  # a configured cancer or PGS id
    public_context: bytes  # empty when the request names a registered context
    ciphertexts: tuple[bytes, ...]
    fields: EncryptedFields | None = None
    context_sha256: str = ""  # hex SHA-256 of a registered public context, or ""


@dataclass(frozen=True)
class EncryptedScoreAnswer:
    """The server's answer and what it was computed with: how many variants, which model's layout."""

    result: EncryptedScore
    variants: int
    model: ModelIdentity


@dataclass(frozen=True)
class DecryptedScore:
    pgs_id: str
    score_sum: float
    contributions: npt.NDArray[np.float64]  # in layout order; empty for a private score


# --- client side -----------------------------------------------------------------------------------


def create_client_context(
    poly_modulus_degree: int = DEFAULT_POLY_MODULUS_DEGREE,
    coeff_mod_bit_sizes: Sequence[int] = DEFAULT_COEFF_MOD_BIT_SIZES,
    scale_bits: int = DEFAULT_SCALE_BITS,
) -> ts.Context:
    """A private CKKS context with the Galois keys the server needs to sum slots."""
    context = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree, coeff_mod_bit_sizes=list(coeff_mod_bit_sizes))
    context.global_scale = 2.0**scale_bits
    context.generate_galois_keys()
    return context


def public_context_bytes(context: ts.Context) -> bytes:
    """The context to send: public, relinearisation and Galois keys; never the secret key."""
    return bytes(context.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=True,
                                   save_relin_keys=True))


def dosages_for_layout(
    scored: EffectDosages | SampleScore, layout: EncryptedScoreLayout, sample: int = 0
) -> npt.NDArray[np.float64]:
    """One sample's effect-allele dosage per published variant; unmatched variants are 0 and add nothing.

    Accepts the matrix of a whole VCF (`sample` picks the column) or one `SampleScore` from `score_vcf`.
    """
    vector = np.zeros(len(layout))
    if isinstance(scored, SampleScore):
        if scored.pgs_id != layout.pgs_id or scored.variants_total != len(layout):
            raise InvalidInput(f"a score of {scored.pgs_id} does not fit the published layout of {layout.pgs_id}")
        if scored.variants_matched and not scored.contributions:
            raise InvalidInput("the sample score was computed without per-variant contributions")
        position = {variant_id: i for i, variant_id in enumerate(layout.variant_ids)}
        for contribution in scored.contributions:
            vector[position[contribution.variant_id]] = contribution.dosage
        return vector
    scoring_file = scored.match.scoring_file
    if scoring_file.pgs_id != layout.pgs_id or len(scoring_file) != len(layout):
        raise InvalidInput(f"dosages of {scoring_file.pgs_id} do not fit the published layout of {layout.pgs_id}")
    for row, match in enumerate(scored.match.matches):
        vector[match.score_index] = scored.dosages[row, sample]
    return vector


def encrypt_dosages(context: ts.Context, dosages: npt.NDArray[np.float64], layout: EncryptedScoreLayout) -> EncryptedDosages:
    if dosages.shape != (len(layout),):
        raise InvalidInput(f"expected {len(layout)} dosages in the layout's order, got shape {dosages.shape}")
    degree = poly_modulus_degree(context)
    ciphertexts = tuple(
        bytes(ts.ckks_vector(context, dosages[chunk].tolist()).serialize()) for chunk in layout.chunks(degree)
    )
    return EncryptedDosages(layout.pgs_id, ciphertexts)


def decrypt_score(context: ts.Context, result: EncryptedScore, layout: EncryptedScoreLayout) -> DecryptedScore:
    if not context.is_private():
        raise InvalidInput("decryption needs the client's private context")
    degree = poly_modulus_degree(context)
    score = ts.ckks_vector_from(context, result.score).decrypt()[0]
    if not result.contributions:
        return DecryptedScore(layout.pgs_id, float(score), np.zeros(0))
    parts = [ts.ckks_vector_from(context, blob).decrypt() for blob in result.contributions]
    contributions = np.concatenate([np.asarray(p[: c.stop - c.start]) for p, c in zip(parts, layout.chunks(degree),
                                                                                       strict=True)])
    return DecryptedScore(layout.pgs_id, float(score), contributions)


# --- server side -----------------------------------------------------------------------------------


def load_public_context(blob: bytes, field: str | None = None) -> ts.Context:
    """Load a client's context and check it is one the server may and can compute with.

    `field`: the request field the context came in, named by a refusal. The checks are explicit
    so each refusal gives its reason; whatever else TenSEAL raises on crafted bytes is refused too.
    """
    origin = InputOrigin("encrypted context", field)

    def refused(problem: str) -> InvalidInput:
        return origin.error(InvalidInput, f"{origin.label}: {problem}")

    try:
        context = ts.context_from(blob)
    except Exception:
        raise refused("not a serialised TenSEAL context") from None
    try:
        _check_context(context, refused)
    except InvalidInput:
        raise
    except Exception:
        raise refused("not a usable CKKS context (its parameters or keys do not load)") from None
    # The client's automatic flags travel in the context; the scoring below relies on these.
    context.auto_rescale = True
    context.auto_relin = True
    context.auto_mod_switch = True
    return context


def _check_context(context: ts.Context, refused: Callable[[str], InvalidInput]) -> None:
    check_public_context(context, refused, SUPPORTED_POLY_MODULUS_DEGREES)
    if not context.has_galois_keys():
        raise refused("no Galois keys; they are needed to sum the encrypted contributions")


def _rotation_element(step: int, degree: int) -> int:
    """SEAL's Galois element for rotating CKKS slots left by `step` (GaloisTool::get_elt_from_step)."""
    return pow(3, step % (degree // 2), 2 * degree)


def _missing_rotation(context: ts.Context, degree: int, values: int) -> int | None:
    """The first power-of-two rotation that summing `values` slots needs and the Galois keys lack."""
    keys = context.galois_keys().data
    step = 1
    while step < values:
        if not keys.has_key(_rotation_element(step, degree)):
            return step
        step *= 2
    return None


def check_rotations(context: ts.Context, field: str | None = None, values: int | None = None) -> None:
    """The Galois keys rotate by every power of two that summing `values` slots needs (default: all
    of a ciphertext's slots, which any score fits), else InvalidInput naming `field`."""
    origin = InputOrigin("encrypted context", field)
    degree = poly_modulus_degree(context)
    try:
        missing = _missing_rotation(context, degree, values or degree // 2)
    except Exception:
        raise origin.error(InvalidInput, f"{origin.label}: its Galois keys do not load") from None
    if missing is not None:
        message = f"{origin.label}: no Galois key for rotating by {missing}; summing the score needs it"
        raise origin.error(InvalidInput, message)


def _load_ciphertext(
    context: ts.Context, blob: bytes, number: int, expected: int, origin: InputOrigin
) -> CkksOperand:
    def refused(problem: str) -> InvalidInput:
        return origin.error(InvalidInput, f"ciphertexts[{number}]: {problem}")

    fields = vector_fields(blob)
    if fields is None:
        raise refused("not a CKKS vector for this context")
    sizes, count, encoding_scale = fields
    if count != 1:
        raise refused(f"holds {count} ciphertexts; each must be one (at most poly_modulus_degree / 2 values)")
    if len(sizes) != 1:
        raise refused(f"declares {len(sizes)} value counts for its one ciphertext")
    if sizes[0] != expected:
        raise refused(f"holds {sizes[0]} values, the layout needs {expected}")
    try:
        vector = ts.ckks_vector_from(context, blob)
        (ciphertext,) = vector.ciphertext()
        return check_ciphertext(context, vector, ciphertext, encoding_scale, refused)
    except InvalidInput:
        raise
    except Exception:
        raise refused("not a CKKS vector for this context") from None


def score_encrypted(
    public_context: bytes | ts.Context,
    ciphertexts: Sequence[bytes],
    layout: EncryptedScoreLayout,
    fields: EncryptedFields | None = None,
    deadline: Deadline | None = None,
) -> EncryptedScore:
    """The encrypted score and per-variant contributions (the score alone if the layout is private);
    nothing here can decrypt.

    `public_context`: the client's serialised public context, or one loaded already (registered).
    `fields`: the request fields of the context, ciphertexts and their lengths, named by refusals.
    `deadline`: checked before each ciphertext, so an abandoned call stops computing.
    """
    context_origin = InputOrigin("encrypted context", fields.context if fields else None)
    if isinstance(public_context, ts.Context):
        context = public_context
    else:
        context = load_public_context(public_context, context_origin.field)
    ciphertext_origin = InputOrigin("ciphertexts", fields.ciphertexts if fields else None)
    lengths_origin = InputOrigin("ciphertexts", fields.lengths if fields else None)
    degree = poly_modulus_degree(context)
    chunks = layout.chunks(degree)
    if len(ciphertexts) != len(chunks):
        raise lengths_origin.error(
            InvalidInput,
            f"{layout.pgs_id}: {len(layout)} variants need {len(chunks)} ciphertext(s) at poly_modulus_degree {degree},"
            f" got {len(ciphertexts)}",
        )
    check_rotations(context, context_origin.field, max(chunk.stop - chunk.start for chunk in chunks))
    operands: list[CkksOperand] = []
    for number, (blob, chunk) in enumerate(zip(ciphertexts, chunks, strict=True)):
        check_deadline(deadline)
        operand = _load_ciphertext(context, blob, number, chunk.stop - chunk.start, ciphertext_origin)
        first = operands[0] if operands else operand
        if (operand.level, operand.scale, operand.encoding_scale) != (first.level, first.scale, first.encoding_scale):
            message = f"ciphertexts[{number}]: level or scale differs from ciphertexts[0]; encrypt all alike"
            raise ciphertext_origin.error(InvalidInput, message)
        if layout.private and operand.level < 2:
            message = (f"ciphertexts[{number}]: a private score needs two coefficient modulus levels left"
                       " (the weights, then the mask that keeps only the total); encrypt with one more 40-bit prime")
            raise ciphertext_origin.error(InvalidInput, message)
        operands.append(operand)
    weights = np.asarray(layout.weights)
    total: ts.CKKSVector | None = None
    contributions: list[bytes] = []
    for number, (operand, chunk) in enumerate(zip(operands, chunks, strict=True)):
        check_deadline(deadline)
        try:
            product = operand.vector.mul(weights[chunk].tolist())
            if not layout.private:
                contributions.append(bytes(product.serialize()))
            partial = product.sum()
            total = partial if total is None else total + partial
        except (ValueError, RuntimeError, TypeError):
            # The checks above cover every refusal known; this names the input if TenSEAL finds another.
            message = f"ciphertexts[{number}]: cannot be multiplied by the weights and summed with this context"
            raise ciphertext_origin.error(InvalidInput, message) from None
    assert total is not None
    if layout.private:
        try:
            # A one-value plaintext is encoded with zeros in every other slot: only the total survives.
            total = total.mul([1.0])
        except (ValueError, RuntimeError, TypeError):
            message = "ciphertexts: the summed score cannot be masked with this context (scale too large for its level)"
            raise ciphertext_origin.error(InvalidInput, message) from None
    return EncryptedScore(layout.pgs_id, bytes(total.serialize()), tuple(contributions))
