"""The ONC HTI-1 source attributes of the tumour model, machine-readable.

The same nine groups of 45 CFR 170.315(b)(11)(iv)(A) as the deterioration model's document
(pilots/deterioration/transparency.py, format in pilots/common/transparency.py), answered for WDBC with figures
from the package's own metrics.json. It is a file of the package (`transparency.json`), so the package's
SHA-256 covers it, and GetModelInfo returns it as JSON.
"""

from __future__ import annotations

from typing import Any

from clinpred.pilots.common.transparency import FORMAT

DEVELOPER = "clinpred project, tumour classification pilot"
CONTACT = "clinpred tumour classification maintainers (models/tumor; see the repository README)"


def transparency_document(metrics: dict[str, Any], name: str, version: str, date: str) -> dict[str, Any]:
    nested = metrics.get("nested_cv", {})
    stumps = nested.get("models", {}).get("boosted_stumps", {})
    counts = metrics["details"]["class_counts"]
    class_coverage = metrics.get("conformal_class_coverage_heldout", {})
    attributes: dict[str, Any] = {
        # (1) Details and output of the intervention
        "developer_name": DEVELOPER,
        "developer_contact": CONTACT,
        "funding_source": "none declared (open pilot)",
        "output_description": (
            "calibrated probability that a breast mass sampled by fine-needle aspirate is malignant, a label, a "
            f"conformal prediction set at {metrics['conformal_coverage_target']:.0%} coverage per class, flags for "
            "values outside the training range and the top reasons (exact TreeSHAP)"
        ),
        "output_type": "classification",
        # (2) Purpose of the intervention
        "intended_use": "decision support for classifying a breast mass as benign or malignant from FNA nuclear features",
        "intended_patient_population": "adults with a breast mass sampled by fine-needle aspirate",
        "intended_users": "cytologists and pathologists, and clinicians deciding on biopsy referral",
        "intended_decision_making_role": "informs: it supports and never replaces the cytologist's or pathologist's diagnosis",
        # (3) Cautioned out-of-scope use
        "cautioned_out_of_scope_uses": (
            "screening, other organs or sampling methods, features from other image-analysis software, any use "
            "before local validation; not a certified medical device"
        ),
        "known_risks_and_limitations": (
            f"{metrics['n_samples']} cases from one centre (Wisconsin, 1990s); sizes are in image pixels; "
            "probabilities are at the training prevalence unless the deployment states its own"
        ),
        # (4) Intervention development details and input features
        "training_data_inclusion_exclusion": f"{metrics['details']['dataset_source']}; classes {counts}",
        "demographic_input_features": {
            "date_of_birth": "not used",
            "sex": "not used (the data set does not record it)",
            "race": "not used",
            "ethnicity": "not used",
            "language": "not used",
            "sexual_orientation": "not used",
            "gender_identity": "not used",
            "social_determinants_of_health": "not used",
            "health_status_assessments": f"{metrics['n_features']} quantitative features of cell nuclei",
        },
        "demographic_representativeness": "not assessable: the data set records no demographics",
        "training_data_relevance_to_deployment": "to be established on each deploying laboratory's own cases",
        # (5) Process used to ensure fairness in development
        "fairness_approach": "no demographic input; subgroup performance cannot be assessed on data without demographics",
        "bias_management": (
            "nested, repeated cross-validation (tuning and calibration inside each training fold); conformal sets "
            "fitted per class so the malignant miss rate is bounded"
        ),
        # (6) External validation process
        "external_validation_data_source": "none yet",
        "external_validation_party": "none yet",
        "external_validation_demographics": "not applicable: no external validation yet",
        "external_validation_process": "required before clinical use: re-evaluate on local cases",
        # (7) Quantitative measures of performance
        "validity_same_source": {
            "auroc_10_fold": metrics["auroc"],
            "accuracy_10_fold": metrics["accuracy"],
            "brier_10_fold": metrics["brier"],
            "log_loss_10_fold": metrics["log_loss"],
            "nested_cv": stumps.get("metrics", {}),
            "biopsy_threshold_operating_point": stumps.get("biopsy_threshold_operating_point", {}),
            "conformal_coverage_heldout_per_class": class_coverage,
        },
        "fairness_same_source": "not assessable: no demographics recorded",
        "validity_external": "not assessed",
        "fairness_external": "not assessed",
        "outcome_evaluation_references": "none: no prospective evaluation of the effect of its use on outcomes",
        # (8) Ongoing maintenance of intervention implementation and use
        "update_and_validation_schedule": "re-evaluate every quarter against confirmed diagnoses, and after any change of method",
        "monitoring_frequency": "sensitivity at the biopsy threshold and calibration by bin, quarterly (model card)",
        "validity_local_data": "to be measured by each deploying laboratory (train tumor --data accepts local data)",
        "fairness_local_data": "to be measured by each deploying laboratory where demographics are recorded",
        "local_outcome_evaluation_references": "none yet",
    }
    return {
        "format": FORMAT,
        "regulation": "ONC HTI-1, 45 CFR 170.315(b)(11)(iv)(A) source attributes",
        "model": {"name": name, "version": version},
        "date": date,
        "attributes": attributes,
    }
