"""A risk score as the store keeps it: one typed object, written with its schema version.

Stored rows outlive the code that wrote them. `to_payload` writes
`{"schema_version": SCHEMA_VERSION, ...}` and `from_payload` reads every
version so far, so renaming a field here never turns stored rows into errors;
a row of a version this code does not know (written by a newer release while
replicas are being upgraded) is refused with `NewerStoredScore`, never misread.

Versions:
1. No `schema_version` key: `DeteriorationScore.to_json()` of the first release
   plus `previous_band`. Keys: `risk_band`; `confidence` with `prediction_set`
   and `verified_coverage`; `pews` with each item's points as a key of its own
   and `values` as `[item, value]` pairs (absent in the oldest rows).
2. The fields of `StoredScore` by their names; `pews.points` and `pews.values`
   map item names. `confidence.lower` and `confidence.upper` (the Venn-Abers
   interval of packages from 1.1.0) are present only when the score has them,
   so rows without them are unchanged and older readers ignore them.

A value that was not measured (NaN in a contribution or reason) is stored as null.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

from clinpred.pilots.common.conformal import ConformalSet
from clinpred.pilots.common.errors import ClinpredError, FailedPrecondition
from clinpred.pilots.common.explanation import Contribution, Explanation, Reason
from clinpred.pilots.common.model_package import ModelIdentity
from clinpred.pilots.deterioration.pews import ITEMS as PEWS_ITEMS
from clinpred.pilots.deterioration.pews import BedsidePews
from clinpred.pilots.deterioration.predictor import RISK_BANDS, DataQualityFlag, DeteriorationScore, RiskBand

SCHEMA_VERSION: Final = 2
Direction = Literal["raises", "lowers"]
_DIRECTIONS: Final[tuple[Direction, ...]] = ("raises", "lowers")


class UnreadableStoredScore(ClinpredError):
    """A stored score that is not what its schema version says (a damaged or hand-edited row)."""

    status = "INTERNAL"


class NewerStoredScore(FailedPrecondition):
    """A stored score of a schema version this release does not know: a newer release wrote it."""


@dataclass(frozen=True)
class StoredScore:
    """A patient's score as stored: the model's answer, and the band of the score before it (None: first score)."""

    probability: float
    horizon_hours: float
    band: RiskBand
    band_thresholds: tuple[float, float]
    pews: BedsidePews
    confidence: ConformalSet
    verified_coverage: float
    explanation: Explanation
    data_quality: tuple[DataQualityFlag, ...]
    model: ModelIdentity
    scored_at: datetime
    previous_band: RiskBand | None

    @classmethod
    def of(cls, score: DeteriorationScore, previous_band: RiskBand | None) -> StoredScore:
        return cls(
            probability=score.probability,
            horizon_hours=score.horizon_hours,
            band=score.risk_band,
            band_thresholds=score.band_thresholds,
            pews=score.pews,
            confidence=score.confidence,
            verified_coverage=score.verified_coverage,
            explanation=score.explanation,
            data_quality=score.data_quality,
            model=score.model,
            scored_at=score.scored_at,
            previous_band=previous_band,
        )

    def alerts(self, alert_band: RiskBand) -> bool:
        """True when this score is in `alert_band` or above and got there by rising (a first score rises from nothing).

        A score that stays high is not a new alert: whoever watches saw it rise.
        """
        rank = RISK_BANDS.index(self.band)
        rose = self.previous_band is None or RISK_BANDS.index(self.previous_band) < rank
        return rose and rank >= RISK_BANDS.index(alert_band)

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON types, in the current schema version."""
        pews = self.pews
        explanation = self.explanation
        return {
            "schema_version": SCHEMA_VERSION,
            "probability": self.probability,
            "horizon_hours": self.horizon_hours,
            "band": self.band,
            "band_thresholds": list(self.band_thresholds),
            "pews": {
                "total": pews.total,
                "age_band": pews.age_band,
                "points": pews.items(),
                "values": dict(pews.values),
                "missing_items": list(pews.missing_items),
            },
            "confidence": {
                "labels": list(self.confidence.labels),
                "coverage": self.confidence.coverage,
                "method": self.confidence.method,
                "statement": self.confidence.statement,
                **_interval(self.confidence),
            },
            "verified_coverage": self.verified_coverage,
            "explanation": {
                "explained_class": explanation.explained_class,
                "output_space": explanation.output_space,
                "base_value": explanation.base_value,
                "margin": explanation.margin,
                "method": explanation.method,
                "contributions": [
                    {"feature": c.feature, "value": _finite_or_null(c.value), "shap_value": c.shap_value}
                    for c in explanation.contributions
                ],
                "top_reasons": [
                    {
                        "feature": r.feature,
                        "value": _finite_or_null(r.value),
                        "unit": r.unit,
                        "direction": r.direction,
                        "shap_value": r.shap_value,
                        "text": r.text,
                    }
                    for r in explanation.top_reasons
                ],
            },
            "data_quality": [{"code": f.code, "signal": f.signal, "message": f.message} for f in self.data_quality],
            "model": {"name": self.model.name, "version": self.model.version, "sha256": self.model.sha256},
            "scored_at": instant_text(self.scored_at),
            "previous_band": self.previous_band,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> StoredScore:
        """Reads a payload of any schema version so far (see the module docstring)."""
        version = payload.get("schema_version", 1)
        reader = _READERS.get(version) if isinstance(version, int) and not isinstance(version, bool) else None
        if reader is None:
            shown = str(version) if isinstance(version, int) else "an unknown one"
            raise NewerStoredScore(
                f"a stored score has schema version {shown}; this release reads versions 1 to {SCHEMA_VERSION}:"
                " upgrade every replica to the release that wrote it"
            )
        try:
            return reader(payload)
        except KeyError as missing:
            raise UnreadableStoredScore(f"a stored score of schema version {version} lacks {missing}") from None
        except (TypeError, ValueError, AttributeError) as error:
            # The error's text may quote stored values (patient data), so only its type is told.
            raise UnreadableStoredScore(
                f"a stored score of schema version {version} does not read as one ({type(error).__name__})"
            ) from None


def instant_text(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as scores have always been stored (and FHIR shows them)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a stored instant has no time zone")
    return moment.astimezone(UTC)


def _finite_or_null(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _measured(value: Any) -> float:
    # math.nan is one object: containers compare items by identity before ==, so two scores
    # read from equal payloads compare equal although NaN != NaN.
    return math.nan if value is None else float(value)


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def _band(value: Any) -> RiskBand:
    if value not in RISK_BANDS:
        raise ValueError("not a risk band")
    return cast(RiskBand, value)


def _optional_band(value: Any) -> RiskBand | None:
    return None if value is None else _band(value)


def _direction(value: Any) -> Direction:
    if value not in _DIRECTIONS:
        raise ValueError("not a direction")
    return cast(Direction, value)


def _thresholds(value: Any) -> tuple[float, float]:
    medium, high = value
    return float(medium), float(high)


def _explanation(obj: Mapping[str, Any]) -> Explanation:
    return Explanation(
        explained_class=str(obj["explained_class"]),
        output_space=str(obj["output_space"]),
        base_value=float(obj["base_value"]),
        margin=float(obj["margin"]),
        contributions=tuple(
            Contribution(str(c["feature"]), _measured(c["value"]), float(c["shap_value"])) for c in obj["contributions"]
        ),
        top_reasons=tuple(
            Reason(
                feature=str(r["feature"]),
                value=_measured(r["value"]),
                unit=str(r["unit"]),
                direction=_direction(r["direction"]),
                shap_value=float(r["shap_value"]),
                text=str(r["text"]),
            )
            for r in obj["top_reasons"]
        ),
        method=str(obj["method"]),
    )


def _flags(items: Any) -> tuple[DataQualityFlag, ...]:
    return tuple(DataQualityFlag(str(f["code"]), str(f["signal"]), str(f["message"])) for f in items)


def _model(obj: Mapping[str, Any]) -> ModelIdentity:
    return ModelIdentity(str(obj["name"]), str(obj["version"]), str(obj["sha256"]))


def _pews(total: Any, age_band: Any, points: Mapping[str, Any], missing: Any, values: Any) -> BedsidePews:
    return BedsidePews(
        total=int(total),
        age_band=str(age_band),
        missing_items=tuple(str(item) for item in missing),
        values=tuple((str(item), _optional(value)) for item, value in values),
        **{item: int(points[item]) for item in PEWS_ITEMS},
    )


def _interval(confidence: ConformalSet) -> dict[str, float]:
    if confidence.lower is None or confidence.upper is None:
        return {}
    return {"lower": confidence.lower, "upper": confidence.upper}


def _version_1(payload: Mapping[str, Any]) -> StoredScore:
    pews = payload["pews"]
    confidence = payload["confidence"]
    return StoredScore(
        probability=float(payload["probability"]),
        horizon_hours=float(payload["horizon_hours"]),
        band=_band(payload["risk_band"]),
        band_thresholds=_thresholds(payload["band_thresholds"]),
        pews=_pews(pews["total"], pews["age_band"], pews, pews.get("missing_items") or (), pews.get("values") or ()),
        confidence=ConformalSet(
            labels=tuple(str(label) for label in confidence["prediction_set"]),
            coverage=float(confidence["coverage"]),
            method=str(confidence["method"]),
            statement=str(confidence["statement"]),
        ),
        verified_coverage=float(confidence["verified_coverage"]),
        explanation=_explanation(payload["explanation"]),
        data_quality=_flags(payload["data_quality"]),
        model=_model(payload["model"]),
        scored_at=_instant(payload["scored_at"]),
        previous_band=_optional_band(payload.get("previous_band")),
    )


def _version_2(payload: Mapping[str, Any]) -> StoredScore:
    pews = payload["pews"]
    confidence = payload["confidence"]
    return StoredScore(
        probability=float(payload["probability"]),
        horizon_hours=float(payload["horizon_hours"]),
        band=_band(payload["band"]),
        band_thresholds=_thresholds(payload["band_thresholds"]),
        # In item order, as bedside_pews lists them: stored JSON has its keys sorted.
        pews=_pews(
            pews["total"],
            pews["age_band"],
            pews["points"],
            pews["missing_items"],
            [(item, pews["values"][item]) for item in PEWS_ITEMS if item in pews["values"]],
        ),
        confidence=ConformalSet(
            labels=tuple(str(label) for label in confidence["labels"]),
            coverage=float(confidence["coverage"]),
            method=str(confidence["method"]),
            statement=str(confidence["statement"]),
            lower=_optional(confidence.get("lower")),
            upper=_optional(confidence.get("upper")),
        ),
        verified_coverage=float(payload["verified_coverage"]),
        explanation=_explanation(payload["explanation"]),
        data_quality=_flags(payload["data_quality"]),
        model=_model(payload["model"]),
        scored_at=_instant(payload["scored_at"]),
        previous_band=_optional_band(payload["previous_band"]),
    )


_READERS: Final[dict[int, Callable[[Mapping[str, Any]], StoredScore]]] = {1: _version_1, 2: _version_2}
