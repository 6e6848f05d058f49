"""Tumour classification on CKKS-encrypted split indicators (TenSEAL): the server sees neither case nor answer.

The reference model is an ensemble of depth-1 trees, so its margin is additive
in the split indicators: `margin = base + sum_f shap_f` with, per feature f,
`shap_f = offset_f + sum_{j on f} w_j * [x_f < t_j]` (the exact TreeSHAP value:
`offset_f` is minus the cover-weighted expectation of f's indicator terms).

1. The server publishes the `EncryptedTumorLayout`: the distinct split points
   (feature, float32 threshold), their summed leaf differences `w_j`, the SHAP
   base value and per-feature offsets (all public: they are the model).
2. The client encodes a case as its indicators (`encode_cases`), encrypts
   them with its own context (`create_client_context`, `encrypt_cases`; one
   ciphertext holds `slots // splits` cases) and sends
   `public_context_bytes(context)`: parameters only, no secret, public,
   relinearisation or Galois keys.
3. The server (`score_encrypted_case`) multiplies each ciphertext by the plain
   weights, slot by slot, and returns the products. Summing per feature is
   left to the client, so the server needs no rotations and no Galois keys
   (megabytes per context); the products reveal nothing beyond the public weights.
4. The client decrypts (`decrypt_cases`): the per-feature sums are the SHAP
   values, their total plus the base the margin; `classifications_from_decrypted`
   applies the published calibration and conformal threshold
   (`EncryptedTumorModel`, no model package needed) with the functions the
   classifier itself answers with, so the answer is the plain one.

The server refuses (InvalidInput) a context with a secret key, another scheme
than CKKS, a degree outside `SUPPORTED_POLY_MODULUS_DEGREES`, a scale outside
2^30..2^60 (coarser loses the 1e-3 accuracy), no level left for the product;
and ciphertexts that do not load or do not fit the layout, as genomics does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import tenseal as ts

from clinpred.pilots.common.calibration import Calibrator, binary_probabilities_from_margins
from clinpred.pilots.common.cancellation import Deadline, check_deadline
from clinpred.pilots.common.ckks import (
    check_ciphertext,
    check_public_context,
    poly_modulus_degree,
    vector_fields,
)
from clinpred.pilots.common.conformal import SplitConformal
from clinpred.pilots.common.errors import FailedPrecondition, InputOrigin, InvalidInput
from clinpred.pilots.common.explanation import LOG_ODDS, TreeShap
from clinpred.pilots.common.model_package import ModelIdentity
from clinpred.pilots.common.schema import FeatureBounds, ModelSchema
from clinpred.pilots.tumor.classifier import (
    TumorClassification,
    TumorClassifier,
    classifications,
    explanations_from_shap,
    predictions_from_probabilities,
)
from clinpred.pilots.tumor.linear import LinearTumorModel
from clinpred.pilots.tumor.package_format import VERIFIED_COVERAGE_METRIC
from clinpred.pilots.tumor.prevalence import PriorShift

# 4096 holds one case (360 splits) in 2048 slots with 109 bits of modulus; 8192 batches 11 cases.
SUPPORTED_POLY_MODULUS_DEGREES = (4096, 8192)
DEFAULT_POLY_MODULUS_DEGREE = 4096
# A 38-bit first prime, one 33-bit level for the product's rescale and a 38-bit special prime: 109 bits,
# the most 128-bit security allows at 4096. Scale 2^33 leaves products up to |16| room after the rescale and
# measured errors on WDBC of 4e-5 per SHAP value, 3e-4 per margin (2^30 gave 1.4e-3 per margin).
DEFAULT_COEFF_MOD_BIT_SIZES = (38, 33, 38)
DEFAULT_SCALE_BITS = 33
LAYOUT_FORMAT = "clinpred-encrypted-stumps/1"
# The linear form: the client encrypts its standardised features z = (x - mean) / scale, one slot per
# feature, and the server multiplies them by the regression's weights; shap_f = w_f * z_f + offset_f.
LINEAR_LAYOUT_FORMAT = "clinpred-encrypted-linear/1"
LAYOUT_FORMATS = (LAYOUT_FORMAT, LINEAR_LAYOUT_FORMAT)


@dataclass(frozen=True)
class EncryptedTumorLayout:
    """What the server publishes: the slots clients encode, and what turns the sums into answers.

    Stump form: slot j is the indicator `x[split_features[j]] < thresholds[j]` in float32, as XGBoost
    tests it. Linear form (`feature_means` given, no thresholds): slot f is the standardised feature
    `(x_f - feature_means[f]) / feature_scales[f]`.
    """

    model: str  # name@version of the package the layout comes from
    feature_names: tuple[str, ...]  # schema feature order
    split_features: tuple[int, ...]  # per split: index into feature_names
    thresholds: tuple[float, ...]  # per split: a float32 value
    weights: tuple[float, ...]  # per split: sum over its trees of (left leaf - right leaf)
    base_value: float  # the SHAP base value (expected margin over the training cover)
    shap_offsets: tuple[float, ...]  # per feature: -sum over its trees of w * E[x < t]
    explained_class: str
    output_space: str = LOG_ODDS
    feature_means: tuple[float, ...] = ()  # linear form only
    feature_scales: tuple[float, ...] = ()  # linear form only

    def __len__(self) -> int:
        return len(self.weights)

    @property
    def linear(self) -> bool:
        return bool(self.feature_means)

    @property
    def format(self) -> str:
        return LINEAR_LAYOUT_FORMAT if self.linear else LAYOUT_FORMAT

    def cases_per_ciphertext(self, poly_modulus_degree: int) -> int:
        return (poly_modulus_degree // 2) // len(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "model": self.model,
            "feature_names": list(self.feature_names),
            "split_features": list(self.split_features),
            "thresholds": list(self.thresholds),
            "weights": list(self.weights),
            "base_value": self.base_value,
            "shap_offsets": list(self.shap_offsets),
            "explained_class": self.explained_class,
            "output_space": self.output_space,
            **({"feature_means": list(self.feature_means), "feature_scales": list(self.feature_scales)} if self.linear else {}),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> EncryptedTumorLayout:
        if obj.get("format") not in LAYOUT_FORMATS:
            raise InvalidInput(f"encrypted tumour layout format {obj.get('format')!r} is not one of {', '.join(LAYOUT_FORMATS)}")
        linear = obj["format"] == LINEAR_LAYOUT_FORMAT
        return cls(
            model=str(obj["model"]),
            feature_names=tuple(str(n) for n in obj["feature_names"]),
            split_features=tuple(int(f) for f in obj["split_features"]),
            thresholds=tuple(float(t) for t in obj["thresholds"]),
            weights=tuple(float(w) for w in obj["weights"]),
            base_value=float(obj["base_value"]),
            shap_offsets=tuple(float(o) for o in obj["shap_offsets"]),
            explained_class=str(obj["explained_class"]),
            output_space=str(obj.get("output_space", LOG_ODDS)),
            feature_means=tuple(float(m) for m in obj["feature_means"]) if linear else (),
            feature_scales=tuple(float(v) for v in obj["feature_scales"]) if linear else (),
        ).checked()

    def checked(self) -> EncryptedTumorLayout:
        """This layout, once its parts are seen to line up (InvalidInput otherwise)."""
        d = len(self.feature_names)
        if self.linear or self.feature_scales:
            if (
                self.thresholds
                or self.split_features != tuple(range(d))
                or len(self.feature_means) != d
                or len(self.feature_scales) != d
                or len(self.weights) != d
            ):
                raise InvalidInput("encrypted tumour layout: the linear form needs one mean, scale and weight per feature")
            if not all(np.isfinite((*self.feature_means, *self.feature_scales))) or min(self.feature_scales) <= 0:
                raise InvalidInput("encrypted tumour layout: feature means and scales must be finite, scales positive")
        lengths = {len(self.split_features), len(self.weights)} | (set() if self.linear else {len(self.thresholds)})
        if len(lengths) != 1 or not len(self) or len(self.shap_offsets) != d or any(not 0 <= f < d for f in self.split_features):
            raise InvalidInput("encrypted tumour layout: split points, weights and offsets do not line up")
        values = (*self.thresholds, *self.weights, *self.shap_offsets, self.base_value)
        if not all(np.isfinite(values)):
            raise InvalidInput("encrypted tumour layout: thresholds, weights and offsets must be finite numbers")
        return self


def _linear_layout(classifier: TumorClassifier, linear: LinearTumorModel) -> EncryptedTumorLayout:
    if linear.coef.shape[0] != 1:
        raise FailedPrecondition(f"model {classifier.identity.name}: encrypted classification needs a binary model")
    weights = linear.coef[0]
    return EncryptedTumorLayout(
        model=f"{classifier.identity.name}@{classifier.identity.version}",
        feature_names=classifier.schema.feature_names,
        split_features=tuple(range(weights.size)),
        thresholds=(),
        weights=tuple(weights.tolist()),
        # The explainer's base (margin at the training mean); offsets centre each feature's term on it.
        base_value=float(linear.intercept[0] + weights @ linear.z_mean),
        shap_offsets=tuple((-weights * linear.z_mean).tolist()),
        explained_class=classifier.schema.positive_class,
        feature_means=tuple(linear.mean.tolist()),
        feature_scales=tuple(linear.scale.tolist()),
    )


def tumor_layout(classifier: TumorClassifier) -> EncryptedTumorLayout:
    """The layout of a loaded binary model: its standardised linear form for the logistic regression,
    else the explainer's verified step-function form of boosted stumps."""
    if classifier.linear_model is not None:
        return _linear_layout(classifier, classifier.linear_model)
    stumps = classifier.stump_shap
    if stumps is None or stumps.base.size != 1:
        raise FailedPrecondition(
            f"model {classifier.identity.name}: encrypted classification needs a binary ensemble of depth-1 trees "
            "or a binary logistic regression"
        )
    thresholds, deltas = stumps.thresholds[0], stumps.deltas[0]  # [d, m], padded with +inf / 0
    split_features: list[int] = []
    split_thresholds: list[float] = []
    weights: list[float] = []
    for feature in range(thresholds.shape[0]):
        real = np.isfinite(thresholds[feature])
        distinct, inverse = np.unique(thresholds[feature][real], return_inverse=True)
        summed = np.zeros(distinct.size)
        np.add.at(summed, inverse, deltas[feature][real])
        split_features.extend([feature] * distinct.size)
        split_thresholds.extend(distinct.astype(np.float64).tolist())
        weights.extend(summed.tolist())
    return EncryptedTumorLayout(
        model=f"{classifier.identity.name}@{classifier.identity.version}",
        feature_names=classifier.schema.feature_names,
        split_features=tuple(split_features),
        thresholds=tuple(split_thresholds),
        weights=tuple(weights),
        base_value=float(stumps.base[0]),
        shap_offsets=tuple(stumps.offsets[0].tolist()),
        explained_class=classifier.schema.positive_class,
    )


@dataclass(frozen=True)
class EncryptedTumorModel:
    """Everything public a client needs to finish an answer it decrypted, without the model package:
    the layout, the schema (ranges and medians for range flags and reasons), the calibration and
    conformal sets, the explanation method's name and the identity that pins the package."""

    layout: EncryptedTumorLayout
    identity: ModelIdentity
    schema: ModelSchema
    calibrator: Calibrator
    conformal: SplitConformal
    verified_coverage: float
    explanation_method: str
    prior_shift: PriorShift | None = None

    def __post_init__(self) -> None:
        if self.layout.feature_names != self.schema.feature_names:
            raise InvalidInput("encrypted tumour layout: its feature order is not the schema's")
        if len(self.schema.classes) != 2 or self.layout.explained_class != self.schema.positive_class:
            raise InvalidInput("encrypted tumour layout: it must explain the positive class of a binary model")
        if self.calibrator.method != "platt" or self.calibrator.n_classes != 2:
            raise InvalidInput("encrypted tumour layout: its calibration must be Platt scaling of two classes")
        if self.conformal.classes != self.schema.classes:
            raise InvalidInput("encrypted tumour layout: its conformal classes are not the schema's")


def encrypted_tumor_model(classifier: TumorClassifier) -> EncryptedTumorModel:
    """What the server publishes for encrypted classification with a loaded binary stump model."""
    layout = tumor_layout(classifier)
    calibrator = classifier.calibrator
    if calibrator.method == "identity":
        # The identity map of a binary model is Platt scaling with slope 1 and intercept 0.
        calibrator = Calibrator("platt", 2, slope=1.0, intercept=0.0, n_fitted=calibrator.n_fitted)
    if calibrator.method != "platt":
        raise FailedPrecondition(f"model {classifier.identity.name}: encrypted classification needs Platt calibration")
    try:
        return EncryptedTumorModel(
            layout=layout,
            identity=classifier.identity,
            schema=classifier.schema,
            calibrator=calibrator,
            conformal=classifier.conformal,
            verified_coverage=float(classifier.metrics.get(VERIFIED_COVERAGE_METRIC, 0.0)),
            explanation_method=classifier.explanation_method,
            prior_shift=classifier.prior_shift,
        )
    except InvalidInput as error:  # the served package's fault, not the caller's
        raise FailedPrecondition(f"model {classifier.identity.name}: {error.message}") from None


@dataclass(frozen=True)
class EncryptedTumorCases:
    """Encrypted indicator encodings: ciphertext i holds `counts[i]` cases, one after another."""

    ciphertexts: tuple[bytes, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class EncryptedTumorRequest:
    """A ClassifyEncrypted call as the server takes it: the client's keyless context and its ciphertexts."""

    public_context: bytes
    ciphertexts: tuple[bytes, ...]


@dataclass(frozen=True)
class EncryptedTumorAnswer:
    """Per ciphertext, the encrypted products; and the model that computed them."""

    products: tuple[bytes, ...]
    model: ModelIdentity


@dataclass(frozen=True)
class DecryptedTumorCase:
    """One case as the client decrypts it: margin (log-odds of `explained_class`) and SHAP per feature."""

    margin: float
    base_value: float
    shap_values: npt.NDArray[np.float64]  # layout feature order


# --- client side -----------------------------------------------------------------------------------


def create_client_context(
    poly_modulus_degree: int = DEFAULT_POLY_MODULUS_DEGREE,
    coeff_mod_bit_sizes: Sequence[int] = DEFAULT_COEFF_MOD_BIT_SIZES,
    scale_bits: int = DEFAULT_SCALE_BITS,
) -> ts.Context:
    """A private CKKS context; the server's work (a plain multiplication) needs no evaluation keys."""
    context = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree, coeff_mod_bit_sizes=list(coeff_mod_bit_sizes))
    context.global_scale = 2.0**scale_bits
    return context


def public_context_bytes(context: ts.Context) -> bytes:
    """The context to send: parameters only (under 100 bytes); no secret, public or evaluation keys."""
    return bytes(context.serialize(save_public_key=False, save_secret_key=False, save_galois_keys=False, save_relin_keys=False))


def encode_cases(layout: EncryptedTumorLayout, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slots `[n, len(layout)]` of rows `[n, d]` (schema feature order): stump form, 1.0 where `x < threshold`
    in float32; linear form, the standardised features."""
    x = np.asarray(rows, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != len(layout.feature_names):
        raise InvalidInput(f"expected {len(layout.feature_names)} features per case in the layout's order")
    if not np.isfinite(x).all():
        raise InvalidInput("encrypted classification needs every feature as a finite number")
    if layout.linear:
        return (x - np.asarray(layout.feature_means)) / np.asarray(layout.feature_scales)
    x32 = x.astype(np.float32)
    thresholds = np.asarray(layout.thresholds, dtype=np.float32)
    return (x32[:, list(layout.split_features)] < thresholds[None, :]).astype(np.float64)


def encode_case(layout: EncryptedTumorLayout, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """One case's encoding (length `len(layout)`)."""
    return encode_cases(layout, features)[0]


def encrypt_cases(context: ts.Context, layout: EncryptedTumorLayout, encodings: npt.NDArray[np.float64]) -> EncryptedTumorCases:
    """Encodings `[n, splits]` packed into as few ciphertexts as the slots allow."""
    if encodings.ndim != 2 or encodings.shape[1] != len(layout):
        raise InvalidInput(f"expected encodings of {len(layout)} slots per case")
    per = layout.cases_per_ciphertext(poly_modulus_degree(context))
    if per < 1:
        raise InvalidInput(f"{len(layout)} slots per case do not fit one ciphertext; use a larger degree")
    blobs, counts = [], []
    for start in range(0, encodings.shape[0], per):
        block = encodings[start : start + per]
        blobs.append(bytes(ts.ckks_vector(context, block.ravel().tolist()).serialize()))
        counts.append(block.shape[0])
    return EncryptedTumorCases(tuple(blobs), tuple(counts))


def decrypt_cases(context: ts.Context, layout: EncryptedTumorLayout, answer: Sequence[bytes]) -> list[DecryptedTumorCase]:
    """Every case of the server's answer, in the order encrypted."""
    if not context.is_private():
        raise InvalidInput("decryption needs the client's private context")
    n_splits, d = len(layout), len(layout.feature_names)
    features = np.asarray(layout.split_features)
    offsets = np.asarray(layout.shap_offsets)
    cases = []
    for blob in answer:
        products = np.asarray(ts.ckks_vector_from(context, blob).decrypt(), dtype=np.float64)
        if products.size % n_splits:
            raise InvalidInput("the answer does not hold whole cases of this layout")
        for row in products.reshape(-1, n_splits):
            shap = offsets + np.bincount(features, weights=row, minlength=d).astype(np.float64)
            cases.append(DecryptedTumorCase(layout.base_value + float(shap.sum()), layout.base_value, shap))
    return cases


def classifications_from_decrypted(
    model: EncryptedTumorModel, rows: npt.NDArray[np.float64], cases: Sequence[DecryptedTumorCase]
) -> list[TumorClassification]:
    """The whole answer per case, as the plain service gives it: calibrated probabilities, conformal set,
    range flags of the client's own features `rows[n, d]` (schema order), and the explanation with every
    feature's decrypted SHAP value and the same top reasons."""
    x = np.asarray(rows, dtype=np.float64).reshape(len(cases), len(model.schema.features))
    margins = np.array([c.margin for c in cases], dtype=np.float64)
    probabilities = binary_probabilities_from_margins(margins, model.calibrator)
    flags = FeatureBounds(model.schema).flags(x)
    predictions = predictions_from_probabilities(
        probabilities, model.schema.classes, model.conformal, flags, model.prior_shift
    )
    shap = TreeShap(
        values=np.stack([c.shap_values for c in cases])[:, None, :],
        base_values=np.array([[c.base_value] for c in cases], dtype=np.float64),
        output_space=model.layout.output_space,
    )
    explanations = explanations_from_shap(shap, x, predictions, model.schema, model.explanation_method)
    return classifications(predictions, explanations, model.identity)


# --- server side -----------------------------------------------------------------------------------


def load_public_context(blob: bytes, field: str | None = None) -> ts.Context:
    """A client's context, checked to be one the server may and can multiply with."""
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
        raise refused("not a usable CKKS context (its parameters do not load)") from None
    context.auto_rescale = True
    context.auto_mod_switch = True
    return context


def _check_context(context: ts.Context, refused: Callable[[str], InvalidInput]) -> None:
    check_public_context(context, refused, SUPPORTED_POLY_MODULUS_DEGREES)


# A parameters-only context is under 100 bytes but costs about 6 ms to load (SEAL builds its NTT tables),
# most of a call; equal bytes are equal parameters, so loaded ones are kept. Contexts carrying keys are
# large and not kept, so the cache stays a few kilobytes plus the tables of at most this many parameter sets.
_CACHED_CONTEXTS = 16
_CACHEABLE_CONTEXT_BYTES = 4096


@functools.lru_cache(maxsize=_CACHED_CONTEXTS)
def _cached_context(blob: bytes, field: str | None) -> ts.Context:
    return load_public_context(blob, field)


def _server_context(blob: bytes, field: str | None) -> ts.Context:
    if len(blob) <= _CACHEABLE_CONTEXT_BYTES:
        return _cached_context(blob, field)
    return load_public_context(blob, field)


def score_encrypted_case(
    public_context: bytes,
    ciphertexts: Sequence[bytes],
    layout: EncryptedTumorLayout,
    context_field: str | None = None,
    ciphertexts_field: str | None = None,
    deadline: Deadline | None = None,
) -> tuple[bytes, ...]:
    """Per ciphertext, the slot-wise products indicator x weight; nothing here can decrypt.

    `context_field`/`ciphertexts_field`: the request fields named by refusals.
    """
    context = _server_context(public_context, context_field)
    origin = InputOrigin("ciphertexts", ciphertexts_field)
    degree = poly_modulus_degree(context)
    n_splits = len(layout)
    if not ciphertexts:
        raise origin.error(InvalidInput, "ciphertexts: at least one is needed")
    weights = np.asarray(layout.weights)
    answer = []
    first: tuple[int, float, float] | None = None
    for number, blob in enumerate(ciphertexts):
        check_deadline(deadline)

        def refused(problem: str, number: int = number) -> InvalidInput:
            return origin.error(InvalidInput, f"ciphertexts[{number}]: {problem}")

        fields = vector_fields(blob)
        if fields is None:
            raise refused("not a CKKS vector for this context")
        sizes, count, encoding_scale = fields
        if count != 1 or len(sizes) != 1:
            raise refused("must hold exactly one ciphertext")
        size = sizes[0]
        if size == 0 or size % n_splits or size > degree // 2:
            raise refused(f"holds {size} values; a whole number of cases of {n_splits} split indicators is needed")
        try:
            vector = ts.ckks_vector_from(context, blob)
            (ciphertext,) = vector.ciphertext()
            operand = check_ciphertext(context, vector, ciphertext, encoding_scale, refused)
        except InvalidInput:
            raise
        except Exception:
            raise refused("not a CKKS vector for this context") from None
        key = (operand.level, operand.scale, operand.encoding_scale)
        if first is not None and key != first:
            raise refused("level or scale differs from ciphertexts[0]; encrypt all alike")
        first = key
        try:
            product = vector.mul(np.tile(weights, size // n_splits).tolist())
        except (ValueError, RuntimeError, TypeError):
            raise refused("cannot be multiplied by the weights with this context") from None
        answer.append(bytes(product.serialize()))
    return tuple(answer)
