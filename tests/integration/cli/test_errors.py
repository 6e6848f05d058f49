"""Failures as a person and a script see them: one line per problem, every violation, a distinct exit code."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

import clinpred
from clinpred.cli.errors import ExitCode
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from tests.integration.cli.conftest import run_cli
from tests.support import field_violations, free_port

Cases = list[tuple[dict[str, float], str]]


def bad_features(cases: Cases) -> dict[str, float]:
    """Three problems at once: a feature missing, an unknown one, an impossible value."""
    features = dict(cases[0][0], tumour_colour=3.0, mean_radius=-4.0)
    del features["worst_area"]
    return features


async def violations_the_server_reports(target: str, features: dict[str, float]) -> dict[str, str]:
    request = tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(case_id="x", features=features))
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await tumor_pb2_grpc.TumorClassificationServiceStub(channel).Classify(request)
    return field_violations(caught.value)


async def test_version_prints_the_package_version() -> None:
    done = await run_cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"clinpred {clinpred.__version__}"


async def test_help_documents_every_exit_code() -> None:
    done = await run_cli("--help", env={"COLUMNS": "200"})
    assert done.returncode == 0
    for code in ExitCode:
        assert f"{int(code):>3}  {code.meaning}" in done.stdout


async def test_every_field_violation_is_printed_without_a_traceback(
    tumor_target: str, wdbc_cases: Cases, tmp_path: Path
) -> None:
    features = bad_features(wdbc_cases)
    expected = await violations_the_server_reports(tumor_target, features)
    assert len(expected) >= 3
    path = tmp_path / "case.json"
    path.write_text(json.dumps(features))
    done = await run_cli("call", "tumor", "classify", "--features", str(path), "--target", tumor_target, "--insecure-development")
    assert done.returncode == ExitCode.INVALID_INPUT == 3
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0].startswith("INVALID_ARGUMENT: ")
    assert lines[1:] == [f"  {field}: {description}" for field, description in expected.items()]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("debug", [["--debug"], []], ids=["option", "environment"])
async def test_debug_adds_the_traceback_and_keeps_the_exit_code(
    tumor_target: str, wdbc_cases: Cases, tmp_path: Path, debug: list[str]
) -> None:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(bad_features(wdbc_cases)))
    env = {} if debug else {"CLINPRED_DEBUG": "1"}
    done = await run_cli(
        *debug, "call", "tumor", "classify", "--features", str(path), "--target", tumor_target, "--insecure-development", env=env,
    )
    assert done.returncode == ExitCode.INVALID_INPUT
    assert "Traceback (most recent call last)" in done.stderr and "_InactiveRpcError" in done.stderr
    assert "\nINVALID_ARGUMENT: " in done.stderr


async def test_nobody_listening_is_unavailable() -> None:
    done = await run_cli("call", "tumor", "info", "--target", f"127.0.0.1:{free_port()}", "--insecure-development")
    assert done.returncode == ExitCode.UNAVAILABLE == 5
    assert done.stderr.startswith("UNAVAILABLE: ") and "Connection refused" in done.stderr
    assert "Traceback" not in done.stderr


async def test_an_unknown_patient_is_not_found(deterioration_target: str) -> None:
    done = await run_cli(
        "call", "deterioration", "latest", "--patient-id", "nobody-here",
        "--target", deterioration_target, "--insecure-development",
    )
    assert done.returncode == ExitCode.NOT_FOUND == 4
    assert done.stderr.startswith("NOT_FOUND: ") and len(done.stderr.splitlines()) == 1


async def test_a_bad_csv_is_invalid_input_found_before_any_call(tmp_path: Path) -> None:
    data = tmp_path / "cases.csv"
    data.write_text("case_id,mean_radius,mean_texture\na,14.1,19.2\nb,large,19.0\nc,13.0,\nd,12.0,soft\n")
    # Nothing listens at the target: the CSV's own problems come first, all of them.
    done = await run_cli(
        "call", "tumor", "batch", "--csv", str(data), "--target", f"127.0.0.1:{free_port()}", "--insecure-development",
    )
    assert done.returncode == ExitCode.INVALID_INPUT
    assert done.stderr.splitlines()[1:] == [
        "  cases.csv:3:mean_radius: is not a number",
        "  cases.csv:5:mean_texture: is not a number",
    ]
    assert "large" not in done.stderr and "soft" not in done.stderr  # values are never echoed


async def test_unknown_keys_in_a_json_file_are_named(tmp_path: Path) -> None:
    observations = tmp_path / "observations.json"
    observations.write_text(json.dumps([
        {"observationId": "o-1", "observedAt": "2025-05-01T08:00:00Z", "heartRate": 120},
        {"observationId": "o-2", "observedAt": "2025-05-01T09:00:00Z", "heart_rte": 130, "pulse": 1},
    ]))
    done = await run_cli(
        "call", "deterioration", "record", "--patient-id", "p-1", "--observations", str(observations),
        "--target", f"127.0.0.1:{free_port()}", "--insecure-development",
    )
    assert done.returncode == ExitCode.INVALID_INPUT
    assert done.stderr.splitlines()[1:] == [
        "  --observations[1].heart_rte: is not a field of Observation",
        "  --observations[1].pulse: is not a field of Observation",
    ]


async def test_a_file_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    features = tmp_path / "case.json"
    features.write_text('{"mean_radius": 14.1,\n "mean_texture": }\n')
    done = await run_cli(
        "call", "tumor", "classify", "--features", str(features),
        "--target", f"127.0.0.1:{free_port()}", "--insecure-development",
    )
    assert done.returncode == ExitCode.INVALID_INPUT
    assert done.stderr.strip() == "INVALID_ARGUMENT: --features: is not JSON (line 2, column 18)"


@pytest.mark.parametrize(
    "args",
    [
        ["call", "tumor", "batch"],  # --csv is required
        ["call", "tumor", "batch", "--csv", "/no/such/file.csv"],
        ["call", "deterioration", "score", "--patient", "-", "--observations", "-", "--at", "2025-05-01T08:00:00"],
        ["call", "genomics", "assess"],  # neither --vcf nor --example
        ["serve", "tumor", "--log-level", "loud"],
    ],
    ids=["missing-option", "missing-file", "time-without-offset", "no-vcf", "bad-log-level"],
)
async def test_usage_errors_exit_2(args: list[str]) -> None:
    done = await run_cli(*args, stdin="{}")
    assert done.returncode == ExitCode.USAGE == 2, done.stderr
    assert "Traceback" not in done.stderr
