"""`clinpred call tumor classify|batch|stream|info` against a real server: what people read, what scripts parse."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from tests.integration.cli.conftest import run_cli

Cases = list[tuple[dict[str, float], str]]
ROWS = 7


def write_csv(path: Path, cases: Cases, with_case_id: bool = True) -> list[str]:
    names = list(cases[0][0])
    ids = [f"wdbc-{i}" for i in range(ROWS)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow((["case_id"] if with_case_id else []) + names)
        for case_id, (features, _) in zip(ids, cases[:ROWS]):
            writer.writerow(([case_id] if with_case_id else []) + [repr(features[n]) for n in names])
    return ids if with_case_id else [str(i + 1) for i in range(ROWS)]


async def direct_batch(target: str, ids: list[str], cases: Cases) -> tumor_pb2.ClassifyBatchResponse:
    request = tumor_pb2.ClassifyBatchRequest(
        cases=[tumor_pb2.TumorCase(case_id=i, features=f) for i, (f, _) in zip(ids, cases[:ROWS])]
    )
    async with grpc.aio.insecure_channel(target) as channel:
        answer: tumor_pb2.ClassifyBatchResponse = await tumor_pb2_grpc.TumorClassificationServiceStub(channel).ClassifyBatch(
            request
        )
    return answer


async def test_classify_json_is_the_classify_response(tumor_target: str, wdbc_cases: Cases, tmp_path: Path) -> None:
    features, truth = wdbc_cases[0]
    path = tmp_path / "case.json"
    path.write_text(json.dumps(features))
    done = await run_cli("call", "tumor", "classify", "--features", str(path), "--case-id", "c-17", "--json",
                         "--target", tumor_target, "--insecure-development")
    assert done.returncode == 0, done.stderr
    answer = json_format.Parse(done.stdout, tumor_pb2.ClassifyResponse())
    assert answer.classification.case_id == "c-17" and answer.classification.label == truth
    readable = await run_cli("call", "tumor", "classify", "--features", "-", "--target", tumor_target, "--insecure-development",
                             stdin=json.dumps(features))
    assert readable.returncode == 0, readable.stderr
    assert readable.stdout.startswith(f"case example-1: {truth} (P(")
    assert f"sha256 {answer.classification.model.sha256}" in readable.stdout


@pytest.mark.parametrize("with_case_id", [True, False], ids=["case-id-column", "row-numbers"])
async def test_batch_from_a_csv_answers_like_the_api(
    tumor_target: str, wdbc_cases: Cases, tmp_path: Path, with_case_id: bool
) -> None:
    data = tmp_path / "cases.csv"
    ids = write_csv(data, wdbc_cases, with_case_id)
    done = await run_cli(
        "call", "tumor", "batch", "--csv", str(data), "--json", "--target", tumor_target, "--insecure-development",
    )
    assert done.returncode == 0, done.stderr
    printed = json_format.Parse(done.stdout, tumor_pb2.ClassifyBatchResponse())
    expected = await direct_batch(tumor_target, ids, wdbc_cases)
    assert [c.case_id for c in printed.classifications] == ids
    assert [c.label for c in printed.classifications] == [c.label for c in expected.classifications]
    # The same model on the same inputs: JSON carries doubles exactly (shortest round-trip repr).
    assert [c.positive_probability for c in printed.classifications] == pytest.approx(
        [c.positive_probability for c in expected.classifications], abs=1e-12
    )
    table = await run_cli("call", "tumor", "batch", "--csv", str(data), "--target", tumor_target, "--insecure-development")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "case_id\tlabel\tp_positive\tprediction_set" and len(lines) == ROWS + 1
    assert [line.split("\t")[:2] for line in lines[1:]] == [[c.case_id, c.label] for c in expected.classifications]


async def test_stream_prints_one_answer_per_row_as_json_lines(
    tumor_target: str, wdbc_cases: Cases, tmp_path: Path
) -> None:
    data = tmp_path / "cases.csv"
    ids = write_csv(data, wdbc_cases)
    done = await run_cli(
        "call", "tumor", "stream", "--csv", str(data), "--json", "--target", tumor_target, "--insecure-development",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == ROWS
    answers = [json_format.Parse(line, tumor_pb2.ClassifyStreamResponse()).classification for line in lines]
    assert [a.case_id for a in answers] == ids
    assert [a.label for a in answers] == [truth for _, truth in wdbc_cases[:ROWS]]
    table = await run_cli(
        "call", "tumor", "stream", "--csv", "-", "--target", tumor_target, "--insecure-development", stdin=data.read_text(),
    )
    assert table.returncode == 0, table.stderr
    assert [line.split("\t")[0] for line in table.stdout.splitlines()] == ["case_id", *ids]


async def test_info_reads_as_text_and_parses_as_json(tumor_target: str, tumor_package: ModelPackage) -> None:
    done = await run_cli("call", "tumor", "info", "--json", "--target", tumor_target, "--insecure-development")
    assert done.returncode == 0, done.stderr
    info = json_format.Parse(done.stdout, tumor_pb2.GetModelInfoResponse())
    assert info.model.sha256 == tumor_package.identity.sha256 and len(info.features) == 30
    readable = await run_cli("call", "tumor", "info", "--target", tumor_target, "--insecure-development")
    assert readable.returncode == 0, readable.stderr
    identity = tumor_package.identity
    assert readable.stdout.splitlines()[0] == f"model: {identity.name} {identity.version} sha256 {identity.sha256}"
    assert "features (30)" in readable.stdout and "mean_radius" in readable.stdout
    coverage = tumor_package.read_json("metrics.json")["conformal_class_coverage_heldout"]
    measured = f"benign {coverage['benign']:.1%}, malignant {coverage['malignant']:.1%}"
    assert f"per class on held-out folds: {measured}" in readable.stdout
    assert "malignant share: 37.3% in this deployment's answers (37.3% in the training data)" in readable.stdout


async def test_a_batch_the_server_rejects_names_rows_of_the_csv(tumor_target: str, tmp_path: Path) -> None:
    data = tmp_path / "cases.csv"
    data.write_text("case_id,mean_radius,mean_texture\na,14.1,19.2\nb,13.0,18.0\n")
    done = await run_cli("call", "tumor", "batch", "--csv", str(data), "--target", tumor_target, "--insecure-development")
    assert done.returncode == 3
    lines = done.stderr.splitlines()
    assert lines[0].startswith("INVALID_ARGUMENT: cases[0].features: expected 30 features, got 2")
    assert "  cases[1].features: expected 30 features, got 2; missing: " in "\n".join(lines)
    assert lines[-1] == "  (cases[i] is data row i+1 of the CSV: file line i+2)"


def _numbers_rounded(text: str) -> str:
    """The printed text with every decimal number at 2 places: what CKKS error (~1e-4) cannot change."""
    import re

    return re.sub(r"-?\d+\.\d+", lambda m: f"{float(m.group()):.2f}", text)


async def test_an_encrypted_example_prints_the_plain_answer(tumor_target: str) -> None:
    common = ("call", "tumor", "classify", "--example", "--target", tumor_target, "--insecure-development")
    plain_json, encrypted_json = [
        await run_cli(*common, "--json", *extra) for extra in ((), ("--encrypted",))
    ]
    assert plain_json.returncode == encrypted_json.returncode == 0, encrypted_json.stderr
    plain = json_format.Parse(plain_json.stdout, tumor_pb2.ClassifyResponse()).classification
    encrypted = json_format.Parse(encrypted_json.stdout, tumor_pb2.ClassifyResponse()).classification
    assert (encrypted.case_id, encrypted.label, encrypted.model) == (plain.case_id, plain.label, plain.model)
    assert encrypted.confidence == plain.confidence  # the conformal set and its statement, exactly
    assert encrypted.positive_probability == pytest.approx(plain.positive_probability, abs=1e-3)
    for mine, theirs in zip(encrypted.explanation.contributions, plain.explanation.contributions, strict=True):
        assert mine.feature == theirs.feature and mine.value == theirs.value
        assert mine.shap_value == pytest.approx(theirs.shap_value, abs=1e-3)
    assert [r.text for r in encrypted.explanation.top_reasons] == [r.text for r in plain.explanation.top_reasons]
    # Every other field is equal once the CKKS-perturbed numbers are set aside.
    for message in (encrypted, plain):
        message.ClearField("positive_probability")
        message.ClearField("probabilities")
        message.explanation.ClearField("margin")
        assert len(message.explanation.shap_values) == len(message.explanation.contributions)
        message.explanation.ClearField("shap_values")
        for contribution in message.explanation.contributions:
            contribution.ClearField("shap_value")
        for reason in message.explanation.top_reasons:
            reason.ClearField("shap_value")
    assert encrypted == plain

    plain_text, encrypted_text = [await run_cli(*common, *extra) for extra in ((), ("--encrypted",))]
    assert plain_text.returncode == encrypted_text.returncode == 0, encrypted_text.stderr
    assert plain_text.stdout.startswith("case example-1: malignant (P(malignant) = ")
    assert _numbers_rounded(encrypted_text.stdout) == _numbers_rounded(plain_text.stdout)


async def test_detail_chooses_how_much_explanation_the_answer_carries(
    tumor_target: str, tmp_path: Path, wdbc_cases: Cases
) -> None:
    common = ("call", "tumor", "classify", "--example", "--json", "--target", tumor_target, "--insecure-development")
    answers = {}
    for detail in ("full", "top-reasons", "none"):
        done = await run_cli(*common, "--detail", detail)
        assert done.returncode == 0, done.stderr
        answers[detail] = json_format.Parse(done.stdout, tumor_pb2.ClassifyResponse()).classification
    assert len(answers["full"].explanation.shap_values) == len(answers["full"].explanation.contributions) > 0
    assert answers["top-reasons"].explanation.top_reasons and not answers["top-reasons"].explanation.contributions
    assert not answers["none"].HasField("explanation")
    assert answers["none"].label == answers["full"].label
    ids = write_csv(tmp_path / "cases.csv", wdbc_cases)
    batch = await run_cli("call", "tumor", "batch", "--csv", str(tmp_path / "cases.csv"), "--detail", "none", "--json",
                          "--target", tumor_target, "--insecure-development")
    assert batch.returncode == 0, batch.stderr
    answered = json_format.Parse(batch.stdout, tumor_pb2.ClassifyBatchResponse()).classifications
    assert [a.case_id for a in answered] == ids and not any(a.HasField("explanation") for a in answered)
    refused = await run_cli(*common, "--detail", "everything")
    assert refused.returncode != 0 and "--detail" in refused.stderr

