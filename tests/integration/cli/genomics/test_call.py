"""`clinpred call genomics layout|assess|encrypted` against a real server with the model package's own layout."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from clinpred.cli.errors import ExitCode
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.services.api.genomics.v1 import genomics_pb2, genomics_pb2_grpc
from tests.integration.cli.conftest import run_cli
from tests.integration.genomics.conftest import Served, vcf_text


async def test_layout_summary_and_json(layout_served: Served) -> None:
    done = await run_cli(
        "call", "genomics", "layout", "breast", "--json", "--target", layout_served.target, "--insecure-development",
    )
    assert done.returncode == 0, done.stderr
    printed = json_format.Parse(done.stdout, genomics_pb2.GetScoreLayoutResponse())
    async with grpc.aio.insecure_channel(layout_served.target) as channel:
        direct = await genomics_pb2_grpc.GenomicRiskServiceStub(channel).GetScoreLayout(
            genomics_pb2.GetScoreLayoutRequest(score="breast")
        )
    assert printed == direct
    readable = await run_cli(
        "call", "genomics", "layout", "PGS000004", "--target", layout_served.target, "--insecure-development",
    )
    assert readable.returncode == 0, readable.stderr
    lines = readable.stdout.splitlines()
    assert lines[0] == f"PGS000004 (breast): {len(direct.variant_ids)} variants in GRCh37"
    assert f"  ... and {len(direct.variant_ids) - 5} more (--json lists them all)" in lines


async def test_an_unknown_score_is_invalid_input_naming_the_field(layout_served: Served) -> None:
    done = await run_cli("call", "genomics", "layout", "PGS999999", "--target", layout_served.target, "--insecure-development")
    assert done.returncode == ExitCode.INVALID_INPUT
    assert done.stderr.startswith("INVALID_ARGUMENT: score: unknown score; configured: ")
    assert "Traceback" not in done.stderr


async def test_assess_reads_the_build_from_the_header_and_passes_every_family_history(
    layout_served: Served, pgs37: ScoringFile, tmp_path: Path
) -> None:
    vcf = tmp_path / "person.vcf"
    vcf.write_bytes(vcf_text(pgs37, 1, seed=5, names=("person-1",)))
    args = [
        "call", "genomics", "assess", "--vcf", str(vcf), "--age", "47",
        "--target", layout_served.target, "--insecure-development",
    ]
    with_history = await run_cli(*args, "--family-history", "breast", "--json")
    assert with_history.returncode == 0, with_history.stderr
    printed = json_format.Parse(with_history.stdout, genomics_pb2.AssessVcfResponse()).assessment
    assert printed.build == genomics_pb2.GENOME_BUILD_GRCH37 and printed.build_evidence == "contig lengths"
    request = genomics_pb2.AssessVcfRequest(vcf=vcf.read_bytes(), assessment=genomics_pb2.Assessment(
        build=genomics_pb2.GENOME_BUILD_GRCH37,
        patients=[genomics_pb2.Patient(age=47, sex=genomics_pb2.SEX_FEMALE, family_history={"breast": True})],
    ))
    async with grpc.aio.insecure_channel(layout_served.target) as channel:
        direct = (await genomics_pb2_grpc.GenomicRiskServiceStub(channel).AssessVcf(request)).assessment
    (risk,) = printed.samples[0].risks
    assert risk.absolute_risk == pytest.approx(direct.samples[0].risks[0].absolute_risk, abs=1e-12)

    without = await run_cli(*args)
    assert without.returncode == 0, without.stderr
    assert without.stdout.splitlines()[0] == "VCF in GRCh37 (contig lengths), 1 sample(s)"
    assert without.stdout.splitlines()[1].startswith("sample person-1: breast cancer, 10-year risk ")
    # Without an affected relative the same genotypes carry a lower risk.
    assert f"risk {risk.absolute_risk:.2%}" not in without.stdout

    # --family-history is one affected relative; --relatives counts them
    counted = await run_cli(*args, "--relatives", "breast=1", "--json")
    assert json_format.Parse(counted.stdout, genomics_pb2.AssessVcfResponse()).assessment == printed
    two = await run_cli(*args, "--relatives", "breast=2", "--json")
    (risk_two,) = json_format.Parse(two.stdout, genomics_pb2.AssessVcfResponse()).assessment.samples[0].risks
    assert risk_two.affected_first_degree_relatives == 2 and risk_two.absolute_risk > risk.absolute_risk
    malformed = await run_cli(*args, "--relatives", "breast")
    assert malformed.returncode == ExitCode.USAGE and "CANCER=N" in malformed.stderr

    unknown = await run_cli(*args, "--family-history", "breast", "--family-history", "lung")
    assert unknown.returncode == ExitCode.INVALID_INPUT
    assert "assessment.patients[0].affected_first_degree_relatives[1]: unknown cancer name" in unknown.stderr
    assert "lung" not in unknown.stderr


async def test_a_vcf_header_without_a_build_needs_build(pgs37: ScoringFile, tmp_path: Path) -> None:
    text = vcf_text(pgs37, 1, seed=2).decode()
    vcf = tmp_path / "bare.vcf"
    vcf.write_text("".join(line for line in text.splitlines(keepends=True) if not line.startswith("##contig")))
    done = await run_cli("call", "genomics", "assess", "--vcf", str(vcf), "--target", "127.0.0.1:1", "--insecure-development")
    assert done.returncode == ExitCode.USAGE
    assert "shows no build" in done.stderr and "--build" in done.stderr


async def test_encrypted_json_with_the_published_parameters(
    layout_served: Served, breast_package: ModelPackage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no local model package: the risk comes from the parameters GetModelInfo publishes
    monkeypatch.setenv("CLINPRED_MODELS_ROOT", str(tmp_path / "no-models"))
    done = await run_cli(
        "call", "genomics", "encrypted", "--example", "--relatives", "breast=1", "--json",
        "--target", layout_served.target, "--insecure-development",
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["pgs_id"] == "PGS000004" and printed["cancer"] == "breast"
    # CKKS is approximate: the decrypted sum agrees with local plaintext scoring to well under one weight.
    assert printed["score_sum"] == pytest.approx(printed["plaintext_score_sum"], abs=1e-3)
    assert printed["model"]["sha256"] == breast_package.identity.sha256 and printed["risk_problem"] is None
    low, high = printed["risk"]["risk_interval"]
    assert low < printed["risk"]["absolute_risk"] < high
    assert printed["risk"]["odds_ratio_per_sd"] == pytest.approx(1.577, abs=0.001)


async def test_encrypted_with_kept_keys_registers_them_once_across_runs(layout_served: Served, tmp_path: Path) -> None:
    keys = tmp_path / "genomics.keys"
    runs = []
    for _ in range(2):
        done = await run_cli(
            "call", "genomics", "encrypted", "--example", "--json", "--keys", str(keys),
            "--target", layout_served.target, "--insecure-development",
        )
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout))
    assert keys.stat().st_mode & 0o777 == 0o600 and keys.stat().st_size > 30_000_000
    for printed in runs:
        assert printed["score_sum"] == pytest.approx(printed["plaintext_score_sum"], abs=1e-3)
        # Ciphertexts and the keys' digest only; the 35 MB of keys went once, at registration.
        assert printed["bytes_sent"] + printed["bytes_received"] < 1_000_000
    assert runs[0]["score_sum"] == pytest.approx(runs[1]["score_sum"], abs=1e-3)
    assert [printed["registered_keys"] for printed in runs] == [True, False]


async def test_a_declared_build_the_header_contradicts_is_a_failed_precondition(
    pgs37: ScoringFile, tmp_path: Path
) -> None:
    vcf = tmp_path / "person.vcf"
    vcf.write_bytes(vcf_text(pgs37, 1, seed=3))
    # Found locally from the header, before any call: nothing listens at the target.
    done = await run_cli(
        "call", "genomics", "assess", "--vcf", str(vcf), "--build", "GRCh38", "--target", "127.0.0.1:1", "--insecure-development",
    )
    assert done.returncode == ExitCode.FAILED_PRECONDITION == 7
    assert done.stderr.strip() == (
        "FAILED_PRECONDITION: person.vcf: the VCF is in GRCh37 (by its contig lengths) but GRCh38 was declared"
    )
