"""The ONC HTI-1 source attributes of the deterioration model, machine-readable.

45 CFR 170.315(b)(11)(iv)(A) lists the source attributes a predictive
decision-support intervention must make available, in nine groups (details
and output, purpose, cautioned out-of-scope use, development details and
input features, fairness in development, external validation, quantitative
measures of performance, ongoing maintenance, update schedule). This document
answers each with what the package holds; figures come from its own
metrics.json. It is a file of the package, so the package's SHA-256 covers it,
and GetModelInfo returns it as JSON.
"""

from __future__ import annotations

from typing import Any, Final

from clinpred.pilots.common.transparency import FORMAT

DEVELOPER: Final = "clinpred project, paediatric oncology telemonitoring pilot"
CONTACT: Final = "clinpred maintainers (see the repository README)"


def _figure(value: Any, digits: int = 3) -> str:
    return f"{float(value):.{digits}f}"


def transparency_document(metrics: dict[str, Any], name: str, version: str) -> dict[str, Any]:
    simulated = str(metrics.get("data_description", "")).startswith("simulated")
    any_outcome = metrics["outcomes"]["any"]
    headline = metrics["headline"]
    subgroups = metrics.get("subgroups", {})
    fairness = {
        group: {k: v for k, v in entry.items() if k in ("children", "positives", "model_auroc", "pews_auroc")}
        for group, entry in subgroups.items()
    }
    data = metrics["data"]
    source = "simulated cohort (no real patient data)" if simulated else "the hospital's own records"
    attributes: dict[str, Any] = {
        # (1) Details and output of the intervention
        "developer_name": DEVELOPER,
        "developer_contact": CONTACT,
        "funding_source": "none declared (open pilot)",
        "output_description": (
            f"calibrated probability of unplanned admission, PICU transfer or sepsis within "
            f"{metrics['horizon_hours']:g} h, a risk band (low/medium/high), a Venn-Abers probability interval, "
            "the Bedside PEWS and the top reasons (TreeSHAP)"
        ),
        "output_type": "prediction",
        # (2) Purpose of the intervention
        "intended_use": "early warning of deterioration for review of home observations by an oncology home-care team",
        "intended_patient_population": "children and adolescents (0-18 years) with cancer on chemotherapy, monitored at home",
        "intended_users": "paediatric oncology nurses and physicians of a home-care or telemedicine team",
        "intended_decision_making_role": (
            "informs: prompts clinical review; it does not replace the febrile-neutropenia pathway, which every "
            "febrile child still follows, nor clinical judgement"
        ),
        # (3) Cautioned out-of-scope use
        "cautioned_out_of_scope_uses": (
            "inpatients, intensive care, children without cancer, adults, triage of a febrile neutropenic child "
            "(who needs antibiotics within 60 minutes whatever the score), any use before local validation"
        ),
        "known_risks_and_limitations": (
            ("trained and tested on SIMULATED data only; " if simulated else "")
            + "home measurements are sparse and parent-recorded; alerts are set for a stated burden, so most "
            "alerts are false alarms (see PPV); calibration may drift with case mix"
        ),
        # (4) Intervention development details and input features
        "training_data_inclusion_exclusion": (
            f"{source}: {data['patients']} children, {data['patient_days']:.0f} patient-days; scoring times every "
            f"{metrics['scoring_interval_hours']:g} h while at home with an observation in the last 24 h; "
            "times in hospital and with unknown outcome excluded"
        ),
        "demographic_input_features": {
            "date_of_birth": "used (age in years, age-specific PEWS and Fleming centiles)",
            "sex": "not an input (recorded for fairness assessment)",
            "race": "not used",
            "ethnicity": "not used",
            "language": "not used",
            "sexual_orientation": "not used",
            "gender_identity": "not used",
            "social_determinants_of_health": "not used",
            "health_status_assessments": "diagnosis group, treatment intensity, central line, blood counts, vital signs",
        },
        "demographic_representativeness": {
            group: entry.get("children") for group, entry in subgroups.items()
        },
        "training_data_relevance_to_deployment": (
            "simulated to resemble home monitoring of children on chemotherapy (ASSUMPTIONS.md); relevance to a "
            "given service must be established on its own data"
            if simulated
            else "collected in the deploying service's own home-monitoring programme"
        ),
        # (5) Process used to ensure fairness in development
        "fairness_approach": (
            "subgroup performance (age band, sex, diagnosis group) on held-out children reported in the model card "
            "and below; no protected attribute is an input"
        ),
        "bias_management": (
            "patients split by child (never by row); PEWS computed from the same home observations; baselines "
            "evaluated on the same children; the simulator's favourable assumptions stress-tested (scenarios)"
        ),
        # (6) External validation process
        "external_validation_data_source": "none yet",
        "external_validation_party": "none yet",
        "external_validation_demographics": "not applicable: no external validation yet",
        "external_validation_process": "required before clinical use: retrain or recalibrate and re-evaluate on local data",
        # (7) Quantitative measures of performance
        "validity_same_source": {
            "auroc": any_outcome["model"]["auroc"],
            "auprc": any_outcome["model"]["auprc"],
            "best_baseline": headline["best_baseline"],
            "auroc_gain_over_best_baseline": headline["auroc_gain"],
            "calibration": metrics["calibration"]["model"],
            "summary": (
                f"AUROC {_figure(any_outcome['model']['auroc']['value'])} against "
                f"{headline['best_baseline']} {_figure(any_outcome[headline['best_baseline']]['auroc']['value'])}"
            ),
        },
        "fairness_same_source": fairness,
        "validity_external": "not assessed",
        "fairness_external": "not assessed",
        "outcome_evaluation_references": "none: no prospective evaluation of the effect of its use on outcomes",
        # (8) Ongoing maintenance of intervention implementation and use
        "update_and_validation_schedule": "recalibrate and re-evaluate every 6 months, and after any change of case mix",
        "monitoring_frequency": "alert burden and PPV weekly; calibration (observed vs predicted by band) monthly",
        "validity_local_data": "to be measured by each deploying service (train_deterioration accepts local data)",
        "fairness_local_data": "to be measured by each deploying service, by the same subgroups",
        "local_outcome_evaluation_references": "none yet",
    }
    return {
        "format": FORMAT,
        "regulation": "ONC HTI-1, 45 CFR 170.315(b)(11)(iv)(A) source attributes",
        "model": {"name": name, "version": version},
        "date": str(metrics["built_on"]),
        "attributes": attributes,
    }
