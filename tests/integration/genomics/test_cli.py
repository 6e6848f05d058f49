"""`clinpred genomics score` (offline batch scoring), `example-vcf` and `clinpred train genomics`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clinpred.cli.errors import ExitCode
from clinpred.cli.main import app
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.genomics.registry import BREAST
from clinpred.pilots.genomics.scoring import score_vcf
from clinpred.pilots.genomics.scoring_file import ScoringFile
from tests.integration.genomics.conftest import vcf_text

runner = CliRunner()


def test_score_prints_every_sample_as_the_domain_scores_it(
    tmp_path: Path, pgs_file: Path, pgs37: ScoringFile, bgzip: Callable[[bytes], bytes]
) -> None:
    vcf = tmp_path / "cohort.vcf.gz"
    vcf.write_bytes(bgzip(vcf_text(pgs37, 4, seed=21, missing=0.02)))
    result = runner.invoke(app, ["genomics", "score", "--vcf", str(vcf), "--pgs", str(pgs_file), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)["scores"]
    expected = score_vcf(vcf, pgs_file)
    assert [p["sample"] for p in printed] == [e.sample for e in expected]
    assert [p["score_sum"] for p in printed] == [e.score_sum for e in expected]
    assert [p["variants_imputed"] for p in printed] == [e.variants_imputed for e in expected]
    table = runner.invoke(app, ["genomics", "score", "--vcf", str(vcf), "--pgs", str(pgs_file), "--build", "GRCh37"])
    assert table.exit_code == 0 and table.stdout.splitlines()[0].startswith("sample\tpgs_id\tscore_sum")
    assert len(table.stdout.splitlines()) == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda text: text.replace("\teffect_weight\t", "\tweight\t"), "no effect_weight column"),
        (lambda text: text.replace("#variants_number=313", "#variants_number=314") + text.splitlines(keepends=True)[-1],
         "duplicate variant"),
    ],
)
def test_score_names_what_is_wrong_with_a_scoring_file(
    tmp_path: Path, pgs_file: Path, pgs37: ScoringFile, change: Callable[[str], str], message: str
) -> None:
    vcf = tmp_path / "one.vcf"
    vcf.write_bytes(vcf_text(pgs37, 1, seed=1))
    broken = tmp_path / "broken.txt"
    broken.write_text(change(pgs_file.read_text()))
    result = runner.invoke(app, ["genomics", "score", "--vcf", str(vcf), "--pgs", str(broken)])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.stderr.startswith("INVALID_ARGUMENT: ") and message in result.stderr
    assert result.stdout == ""


def test_score_refuses_a_vcf_in_another_build(tmp_path: Path, pgs_file: Path, pgs38: ScoringFile) -> None:
    vcf = tmp_path / "b38.vcf"
    vcf.write_bytes(vcf_text(pgs38, 1, seed=1, build="GRCh38"))
    result = runner.invoke(app, ["genomics", "score", "--vcf", str(vcf), "--pgs", str(pgs_file), "--build", "GRCh37"])
    assert result.exit_code == ExitCode.FAILED_PRECONDITION
    assert result.stderr.startswith("FAILED_PRECONDITION: ")
    assert "in GRCh38 (by its contig lengths) but GRCh37 was declared" in result.stderr
    # without --build the VCF's header decides, and the harmonized GRCh38 positions are used
    result = runner.invoke(app, ["genomics", "score", "--vcf", str(vcf), "--pgs", str(pgs_file), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scores"][0]["variants_matched"] == 282


def test_example_vcf_is_scored_by_the_package_score(tmp_path: Path, pgs_file: Path) -> None:
    vcf = tmp_path / "example.vcf"
    result = runner.invoke(app, ["genomics", "example-vcf", str(vcf), "--samples", "2"])
    assert result.exit_code == 0, result.output
    scored = score_vcf(vcf, pgs_file, build="GRCh37")
    assert [s.sample for s in scored] == ["example-1", "example-2"] and scored[0].variants_matched == 282


def test_train_genomics_writes_a_package_with_a_progress_bar(
    tmp_path: Path, synthetic_scoring_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLINPRED_MODELS_ROOT", str(tmp_path / "models"))
    command = ["train", "genomics", "--pgs", str(synthetic_scoring_file), "--cancer", "colorectal", "--cohort-size",
               "2000", "--reference-size", "500", "--no-register"]
    # only breast cancer's registry figures are built in; another cancer brings its published figures
    refused = runner.invoke(app, command)
    assert refused.exit_code == ExitCode.FAILED_PRECONDITION and "--calibration" in refused.stderr
    figures = tmp_path / "colorectal-figures.json"
    figures.write_text(json.dumps({**BREAST.to_json(), "cancer": "colorectal"}))  # a test's stand-in figures
    result = runner.invoke(app, [*command, "--calibration", str(figures)])
    assert result.exit_code == 0, result.output
    assert "pipeline check" in result.output and "calibration_max_relative_error" in result.output
    package = ModelPackage.open(tmp_path / "models" / "genomics" / "colorectal-pgs900001" / "1.0.0")
    assert package.metadata["pgs_id"] == "PGS900001" and package.metadata["cancer"] == "colorectal"
