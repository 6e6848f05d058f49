"""Every snippet of the README, run as written against `clinpred serve all` on the README's ports.

Each fenced block is matched by exactly one rule below (a new snippet without a rule fails
`test_every_snippet_has_exactly_one_rule`). Blocks run in README order in one working folder,
as a person copying them would: later snippets use files earlier ones wrote (`patient.vcf`).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import RunningServe, start_clinpred_serve, stop

README = REPO / "README.md"
BIN = Path(sys.executable).parent
README_PORTS = (50051, 50052, 50053, 9101, 9102, 9103)


@dataclass(frozen=True)
class Snippet:
    line: int
    language: str
    text: str

    @property
    def name(self) -> str:
        return f"README.md:{self.line}"


def snippets() -> list[Snippet]:
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```$", README.read_text(), flags=re.MULTILINE | re.DOTALL):
        line = README.read_text()[: match.start()].count("\n") + 1
        found.append(Snippet(line, match.group(1), match.group(2)))
    return found


@dataclass
class Workspace:
    """Where snippets run: a fresh folder with the checkout's `node_modules` and `models`, as in a clone."""

    folder: Path
    env: dict[str, str]
    serving: RunningServe

    def run(self, command: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=timeout)

    def bash(self, script: str, timeout: float = 300) -> str:
        done = self.run(["bash", "-euo", "pipefail", "-c", script], timeout)
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr
        return done.stdout

    def python(self, code: str) -> str:
        done = self.run([sys.executable, "-c", code], 300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    busy = [port for port in README_PORTS if _port_in_use(port)]
    if busy:
        pytest.fail(f"the README's ports {busy} are in use here; the README's snippets name them, so they must be free")
    folder = tmp_path_factory.mktemp("readme")
    for name in ("node_modules", "models"):
        (folder / name).symlink_to(REPO / name)
    state = tmp_path_factory.mktemp("state")
    # Training snippets write new package versions: into a copy, never into the checkout's models/.
    models = tmp_path_factory.mktemp("models-copy") / "models"
    shutil.copytree(REPO / "models", models)
    database = {"CLINPRED_DETERIORATION_DATABASE_URL": f"sqlite:///{state / 'risk.db'}"}
    serving = start_clinpred_serve("all", state, api_workers=1, port=50051, env_extra=database, metrics_port=9101)
    # As in a clone: the snippets' `var/tls/...` is the folder `make run` made in the checkout's `var/`.
    (folder / "var").symlink_to(state)
    env = dict(
        os.environ,
        PATH=f"{BIN}:{os.environ['PATH']}",
        CLINPRED_MODELS_ROOT=str(models),
        CLINPRED_STATE_DIR=str(folder / "var"),
        **database,  # `clinpred db` works on the database the served deterioration service uses
    )
    yield Workspace(folder, env, serving)
    stop(serving)


def _commented_output(snippet: str) -> tuple[str, list[str]]:
    """A block of one command followed by `# ...` lines showing what it prints."""
    command, *shown = snippet.strip().splitlines()
    return command, [line.removeprefix("#").strip() for line in shown]


def _assert_shown_lines_printed(shown: list[str], printed: str) -> None:
    """Each shown line, in order, matches a printed line; `...` in a line matches anything, a lone `...` any lines."""
    lines = [line.strip() for line in printed.splitlines()]
    position = 0
    for expected in shown:
        if expected == "...":
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in expected.split("...")) + "$")
        while position < len(lines) and not pattern.match(lines[position]):
            position += 1
        assert position < len(lines), f"the README shows {expected!r}; printed:\n{printed}"
        position += 1


def run_quick_start(snippet: Snippet, work: Workspace) -> None:
    # `make test` is this suite and `make run` is what the `workspace` fixture runs (`clinpred serve all`);
    # here: both targets exist and do what the block says.
    done = subprocess.run(["make", "-n", "run", "test"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "clinpred serve all" in done.stdout and "pytest" in done.stdout and "scripts/setup.sh" in done.stdout


def run_banner(snippet: Snippet, work: Workspace) -> None:
    printed = {" ".join(line.split()) for line in work.serving.output}
    for line in snippet.text.strip().splitlines():
        assert " ".join(line.split()) in printed, f"`clinpred serve all` prints no line {line!r}"
    # What the quick start says `make run` makes on first use: the folder, and a client of tenant demo named cli.
    made = [line for line in work.serving.output if line.startswith(f"made {work.serving.state_dir}/tls/")]
    assert len(made) == 1 and "spiffe://clinpred.local/tenant/demo/client/cli" in made[0]


def run_tumor_example(snippet: Snippet, work: Workspace) -> None:
    command, shown = _commented_output(snippet.text)
    _assert_shown_lines_printed(shown, work.bash(command))


def run_tumor_encrypted(snippet: Snippet, work: Workspace) -> None:
    command, shown = _commented_output(snippet.text)
    printed = work.bash(command)
    _assert_shown_lines_printed(shown, printed)
    # The answer the service never saw is the plain call's, as printed (three decimals hide CKKS error).
    assert printed == work.bash(command.replace(" --encrypted", ""))


def run_tumor_python(snippet: Snippet, work: Workspace) -> None:
    label, probability, *statement = work.python(snippet.text).split()
    assert label in ("benign", "malignant") and 0.0 <= float(probability) <= 1.0
    assert " ".join(statement).startswith("with 95% coverage")


def run_tumor_csv(snippet: Snippet, work: Workspace) -> None:
    import json

    printed = work.bash(snippet.text).splitlines()
    table = [line.split("\t") for line in printed if line.startswith("wdbc-")]
    assert [row[0] for row in table] == ["wdbc-1", "wdbc-2", "wdbc-3", "wdbc-4", "wdbc-5"]  # ClassifyBatch, in order
    streamed = [json.loads(line)["classification"] for line in printed if line.startswith("{")]
    assert [answer["caseId"] for answer in streamed] == [row[0] for row in table]
    assert [answer["label"] for answer in streamed] == [row[1] for row in table]


def run_buf_model_info(snippet: Snippet, work: Workspace) -> None:
    printed = work.bash(snippet.text)
    assert '"positiveClass": "malignant"' in printed and "meanRadius" not in printed and "mean_radius" in printed


def run_deterioration_apps(snippet: Snippet, work: Workspace) -> None:
    printed = work.bash(snippet.text)
    assert '"stored": 2' in printed and '"unchanged"' in printed


def run_deterioration_training(snippet: Snippet, work: Workspace) -> None:
    printed = work.bash(snippet.text, timeout=600)
    assert "test.auroc" in printed and "registered" in printed


def run_genomics_assess(snippet: Snippet, work: Workspace) -> None:
    printed = work.bash(snippet.text)
    assert "breast" in printed and "%" in printed


def run_genomics_score(snippet: Snippet, work: Workspace) -> None:
    import json

    printed = work.bash(snippet.text)
    scores = json.loads(printed[printed.index("{") :])["scores"]
    assert [s["sample"] for s in scores] == ["example-1", "example-2", "example-3"]
    assert all(s["variants_matched"] == 282 and s["pgs_id"] == "PGS000004" for s in scores)


def run_genomics_pgen(snippet: Snippet, work: Workspace) -> None:
    # The fileset plink2 makes of the previous block's cohort.vcf scores as that VCF does.
    rows = [line.split("\t") for line in work.bash(snippet.text).splitlines() if line.startswith("example-")]
    assert [r[0] for r in rows] == ["example-1", "example-2", "example-3"]
    assert all(r[1] == "PGS000004" and r[3] == "282" for r in rows)


def run_encrypted_python(snippet: Snippet, work: Workspace) -> None:
    score_line, risk_line = work.python(snippet.text).strip().splitlines()[-2:]
    assert 0 < float(score_line.split()[1]) < 100  # a percentile
    assert 0 < float(risk_line.split()[0]) < 1  # an absolute risk


def run_models(snippet: Snippet, work: Workspace) -> None:
    printed = work.bash(snippet.text, timeout=600)
    assert "wdbc-xgboost" in printed and "wdbc-lightgbm" in printed and "my_cases" in printed


def run_policy_example(snippet: Snippet, work: Workspace) -> None:
    # The security page's example policy is one the services accept, granting what its comments say.
    from clinpred.services.common.authorization import authorize, load_policy

    policy_file = work.folder / "example-policy.toml"
    policy_file.write_text(snippet.text)
    policy = load_policy(policy_file)
    authorize(policy, "st-olav", "home-monitoring", "/clinpred.deterioration.v1.DeteriorationService/RecordObservations")
    authorize(policy, "st-olav", "ward-dashboard", "/clinpred.deterioration.v1.DeteriorationService/WatchRisk")
    authorize(policy, "st-olav", "anyone", "/clinpred.tumor.v1.TumorClassificationService/GetModelInfo")
    from clinpred.pilots.common.errors import PermissionDenied

    try:
        authorize(policy, "st-olav", "ward-dashboard", "/clinpred.deterioration.v1.DeteriorationService/RegisterPatient")
    except PermissionDenied:
        return
    raise AssertionError("the ward dashboard must not register patients")


def run_sealed(snippet: Snippet, work: Workspace) -> None:
    lines = snippet.text.strip().splitlines()
    commands = [line for line in lines if not line.startswith("#")]
    shown = [line.removeprefix("#").strip() for line in lines if line.startswith("#")]
    printed = work.bash("\n".join(commands))
    _assert_shown_lines_printed(shown, printed)
    # The sealed answer is the plain one.
    plain = work.bash("clinpred call tumor classify --example --json")
    sealed = work.bash("clinpred call tumor classify --example --json --sealed")
    assert plain == sealed


def run_development(snippet: Snippet, work: Workspace) -> None:
    # `make lint` runs in .ci/run itself, and `make codegen` would rewrite the checkout; a test
    # checks the generated code against a fresh generation (test_generated_code.py).
    # `make fuzz` is the long documented run; the suite runs the same tests with fewer examples.
    done = subprocess.run(["make", "-n", "lint", "codegen", "fuzz"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ruff check" in done.stdout and "mypy" in done.stdout and "buf lint" in done.stdout
    assert "CLINPRED_FUZZ_EXAMPLES=10000" in done.stdout and "tests/fuzz" in done.stdout
    assert "--timeout 14400" in done.stdout  # a fuzzed RPC at 10,000 examples outruns the suite's 10-minute limit


def run_benchmark(snippet: Snippet, work: Workspace) -> None:
    # `make bench` is the documented ten-minute run (the lead's machine, once per release); the suite checks
    # what the targets run and tests/unit/bench checks the report, with a quick run of one part.
    done = subprocess.run(["make", "-n", "bench", "bench-quick"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ".venv/bin/python -m bench.suite \n" in done.stdout and "-m bench.suite --quick" in done.stdout
    chosen = subprocess.run(
        ["make", "-n", "bench", "BENCH_ARGS=--only tumor,deterioration"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert "bench.suite --only tumor,deterioration" in chosen.stdout


def _bento_env(work: Workspace) -> dict[str, str]:
    # A BentoML home of the workspace's own (the snippets' default, ~/bentoml, is the user's).
    return dict(work.env, BENTOML_HOME=str(work.folder / "bentoml-home"))


def run_bento_build(snippet: Snippet, work: Workspace) -> None:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", snippet.text],
        cwd=work.folder,
        env=_bento_env(work),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    from clinpred import __version__

    built = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("built ")]
    assert built == [f"clinpred-{s}:{__version__}" for s in ("tumor", "deterioration", "genomics")]


CONTAINER_TOOLS = ("docker ", "podman ", "buildah ", "bentoml containerize ")


def run_image_build(snippet: Snippet, work: Workspace) -> None:
    # The container runtime's lines cannot run here; every other line runs as written, after the build
    # block, and the Dockerfile and context the runtime's lines name must then exist.
    lines = [line for line in snippet.text.strip().splitlines() if not line.startswith("#")]
    runnable = [line for line in lines if not line.startswith(CONTAINER_TOOLS)]
    assert len(runnable) == 1 and len(lines) == 5
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", runnable[0]],
        cwd=work.folder,
        env=_bento_env(work),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (work.folder / "context" / "env" / "docker" / "Dockerfile").is_file()
    assert any((work.folder / "context" / "models").iterdir())
    help_text = subprocess.run([str(BIN / "bentoml"), "containerize", "--help"], capture_output=True, text=True, timeout=120)
    assert "--image-tag" in help_text.stdout and "-t," in help_text.stdout and "--backend" in help_text.stdout


def run_db_backup(snippet: Snippet, work: Workspace) -> None:
    printed = work.bash(snippet.text)
    assert "risk store: current " in printed and "backed up " in printed and "restored risk-backup.db into " in printed
    # The restored copy is a database of the current schema, holding what the served one held.
    status = work.run(["clinpred", "db", "status", "--database", f"sqlite:///{work.folder / 'restored' / 'risk.db'}"])
    assert status.returncode == 0, status.stderr
    served = work.env["CLINPRED_DETERIORATION_DATABASE_URL"].removeprefix("sqlite:///")
    count = "SELECT count(*) FROM risk_scores"
    with sqlite3.connect(served) as original, sqlite3.connect(work.folder / "restored" / "risk.db") as restored:
        assert restored.execute(count).fetchone() == original.execute(count).fetchone()


# A rule: (a line that only its block has, how to run that block).
RULES: list[tuple[str, Callable[[Snippet, Workspace], None]]] = [
    ("make run     #", run_quick_start),
    ("clinpred is serving (Ctrl-C stops):", run_banner),
    ("clinpred call tumor classify --example\n# ", run_tumor_example),
    ("clinpred call tumor classify --example --encrypted", run_tumor_encrypted),
    ("from clinpred.services.tumor.client import TumorClient", run_tumor_python),
    ("clinpred tumor example-csv cases.csv", run_tumor_csv),
    ("TumorClassificationService/GetModelInfo", run_buf_model_info),
    ("$SVC/RecordObservations", run_deterioration_apps),
    ("clinpred simulate deterioration", run_deterioration_training),
    ("clinpred call genomics assess --vcf patient.vcf", run_genomics_assess),
    ("clinpred genomics score --vcf cohort.vcf", run_genomics_score),
    ("clinpred genomics score --pgen cohort", run_genomics_pgen),
    ("client.score_encrypted(", run_encrypted_python),
    ("clinpred models list", run_models),
    ("clinpred db backup --out", run_db_backup),
    ("make lint", run_development),
    ("make bench-quick", run_benchmark),
    ("clinpred bento build all", run_bento_build),
    ("bentoml containerize clinpred-tumor", run_image_build),
    ("[[grants]]", run_policy_example),
    ("clinpred call tumor classify --example --sealed", run_sealed),
]


def _rules_of(snippet: Snippet) -> list[Callable[[Snippet, Workspace], None]]:
    return [run for marker, run in RULES if marker in snippet.text]


def test_every_snippet_has_exactly_one_rule() -> None:
    unmatched = {s.name: s.text.splitlines()[:2] for s in snippets() if len(_rules_of(s)) != 1}
    assert unmatched == {}, "give each README block one rule in RULES"
    assert len(snippets()) == len(RULES)


@pytest.mark.parametrize("snippet", snippets(), ids=lambda s: s.name)
def test_snippet_runs_as_written(snippet: Snippet, workspace: Workspace) -> None:
    (run,) = _rules_of(snippet)
    run(snippet, workspace)
