"""The Bentos: `clinpred bento build all` in a fresh BentoML home, the image definition each one
generates, its SBOM, and the proof that a Bento is self-contained where no container runtime
exists: one fresh virtual environment made from the Bentos' own requirements only (the three
lock the same packages, which a test asserts), and `bentoml serve-grpc` on each built Bento,
imported alone into a BentoML home of its own, called once over mutual TLS."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.utils import canonicalize_name

import clinpred
from clinpred.cli.bento import PILOTS
from clinpred.cli.bento_build import project_requirements
from clinpred.cli.services import SERVICES, TlsDir, bentoml_env
from clinpred.cli.settings import CliSettings
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.common.channel import is_serving
from tests.conftest import REPO
from tests.support import free_port

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
README = REPO / "README.md"


@dataclass(frozen=True)
class Built:
    service: str
    tag: str
    path: Path

    @property
    def dockerfile(self) -> str:
        return (self.path / "env" / "docker" / "Dockerfile").read_text()

    @property
    def requirements(self) -> list[str]:
        return (self.path / "env" / "python" / "requirements.txt").read_text().split()

    def pinned(self) -> dict[str, str]:
        return dict(line.split("==") for line in self.requirements)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bentoml-home")


@pytest.fixture(scope="module")
def bentos(home: Path) -> dict[str, Built]:
    env = dict(os.environ, BENTOML_HOME=str(home), BENTOML_DO_NOT_TRACK="true")
    done = subprocess.run(
        [str(BIN / "clinpred"), "bento", "build", "all", "--json"], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    built = json.loads(done.stdout)["bentos"]
    return {b["service"]: Built(b["service"], b["tag"], Path(b["path"])) for b in built}


def test_every_service_has_a_bento_named_as_its_image(bentos: dict[str, Built]) -> None:
    # `bentoml containerize clinpred-<service>:<version>` tags the image with the Bento's tag.
    assert {s: b.tag for s, b in bentos.items()} == {p: f"clinpred-{p}:{clinpred.__version__}" for p in PILOTS}
    for service, bento in bentos.items():
        manifest = yaml.safe_load((bento.path / "bento.yaml").read_text())
        assert manifest["service"] == SERVICES[service].import_path
        assert (bento.path / "env" / "python" / "wheels" / f"clinpred-{clinpred.__version__}-py3-none-any.whl").is_file()


def test_each_bento_holds_the_models_its_bentofile_lists_as_registered_from_models(
    bentos: dict[str, Built], home: Path
) -> None:
    for service, bento in bentos.items():
        listed = yaml.safe_load((REPO / "bento" / service / "bentofile.yaml").read_text())["models"]
        manifest = yaml.safe_load((bento.path / "bento.yaml").read_text())
        assert [m["tag"] for m in manifest["models"]] == listed
        for tag in listed:
            name, version = tag.split(":")
            package = ModelPackage.open(REPO / "models" / service / name.removeprefix(f"{service}-") / version)
            stored = yaml.safe_load((home / "models" / name / version / "model.yaml").read_text())
            assert stored["labels"]["sha256"] == package.identity.sha256


def test_requirements_are_pyproject_pins_and_the_same_for_every_bento(bentos: dict[str, Built]) -> None:
    tumor = bentos["tumor"].requirements
    assert all(re.fullmatch(r"[a-z0-9._-]+==[^=\s]+", line) for line in tumor), "every package at one exact version"
    assert bentos["deterioration"].requirements == tumor and bentos["genomics"].requirements == tumor
    pinned = bentos["tumor"].pinned()
    for requirement in project_requirements():
        version = pinned[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), f"{requirement} locked at {version}"
        for spec in requirement.specifier:
            if spec.operator == "==":
                assert version == spec.version, requirement
    # Only what serving needs: none of the development tools.
    assert not {"pytest", "mypy", "ruff", "hypothesis", "cyclonedx-bom"} & set(pinned)


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _readme_base_image() -> str:
    (named,) = re.findall(r"base image is `(python:[^`]+)`", README.read_text())
    return named


def test_the_image_definition_is_pinned_non_root_without_build_tools_and_health_checked(bentos: dict[str, Built]) -> None:
    base = _readme_base_image()
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), "a pinned tag, not a moving one"
    for service, bento in bentos.items():
        steps = _instructions(bento.dockerfile)
        assert [args for op, args in steps if op == "FROM"] == [f"{base} as base-container"]
        users = [args for op, args in steps if op == "USER"]
        assert users and users[-1] == "bentoml", "the server runs as the image's non-root user"
        runs = " ".join(args for op, args in steps if op == "RUN")
        for tool in ("build-essential", "gcc", "g++", "make ", "curl", "wget", "apt-get install", "pip install uv", "uv "):
            assert tool not in runs, f"{service}: the image installs {tool.strip()}"
        (healthcheck,) = [args for op, args in steps if op == "HEALTHCHECK"]
        assert '"-m", "clinpred.services.common.health_probe"' in healthcheck
        env = dict(args.split("=", 1) for op, args in steps if op == "ENV" and "=" in args)
        assert env["GRPC_PROBE_PORT"] == "$GRPC_PROBE_PORT"
        port = dict(args.split("=", 1) for op, args in steps if op == "ARG" and "=" in args)["GRPC_PROBE_PORT"]
        assert port == str(SERVICES[service].port)
        assert (
            "ARG",
            f"GRPC_PROBE_SERVICE={SERVICES[service].grpc_service}",
        ) in steps
        (command,) = [json.loads(args) for op, args in steps if op == "CMD"]
        assert command[:1] == ["serve-grpc"] and command[command.index("--port") + 1] == port


def test_each_bento_has_a_cyclonedx_sbom_of_its_requirements(bentos: dict[str, Built]) -> None:
    for service, bento in bentos.items():
        sbom = json.loads((bento.path / "src" / "sbom.cdx.json").read_text())
        assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"].startswith("1.")
        root = sbom["metadata"]["component"]
        assert (root["name"], root["version"]) == ("clinpred", clinpred.__version__)
        components = {canonicalize_name(c["name"]): c["version"] for c in sbom["components"]}
        assert components == bento.pinned(), service
        pins = {canonicalize_name(r.name): str(next(iter(r.specifier))).removeprefix("==") for r in project_requirements()}
        for name in ("bentoml", "grpcio", "protobuf", "onnxruntime", "cryptography"):
            assert components[name] == pins[name], name
        assert all(c["purl"] == f"pkg:pypi/{canonicalize_name(c['name'])}@{c['version']}" for c in sbom["components"])


# --- self-contained: a fresh virtual environment from the Bento's requirements, the Bento served ---


@pytest.fixture(scope="module")
def bento_python(bentos: dict[str, Built], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only what the Bento's own install script installs (as the image's build does)."""
    venv = tmp_path_factory.mktemp("bento-venv") / "venv"
    subprocess.run([_system_python(), "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["VIRTUAL_ENV"] = str(venv)
    # Bytecode is written as modules are imported instead: what is installed stays the same, in half the time.
    env["PIP_NO_COMPILE"] = "1"
    done = subprocess.run(
        ["bash", str(bentos["tumor"].path / "env" / "python" / "install.sh")],
        env=env, capture_output=True, text=True, timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin" / "python"


def _system_python() -> str:
    # The interpreter the checkout's venv was made from: the one the image's base tag names.
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return str(Path(sys.base_prefix) / "bin" / f"python{version}")


@dataclass
class ServedBento:
    service: str
    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log: Path


def _serve_bento(bento: Built, python: Path, tls_dir: Path, work: Path, home_store: Path) -> ServedBento:
    home = home_store / bento.service
    exported = work / f"{bento.service}.bento"
    store_env = dict(os.environ, BENTOML_HOME=str(bento.path.parents[2]), BENTOML_DO_NOT_TRACK="true")
    subprocess.run([str(BIN / "bentoml"), "export", bento.tag, str(exported)], env=store_env, check=True,
                   capture_output=True, timeout=300)
    port, metrics_port = free_port(), free_port()
    state = work / f"state-{bento.service}"
    env = bentoml_env(CliSettings(state_dir=state), bento.service, metrics_port, tls=TlsDir(tls_dir))
    env = {k: v for k, v in env.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CLINPRED_MODELS_ROOT"))}
    env.update(BENTOML_HOME=str(home), VIRTUAL_ENV=str(python.parents[1]), PATH=f"{python.parent}:{os.environ['PATH']}")
    bentoml = str(python.parent / "bentoml")
    subprocess.run([bentoml, "import", str(exported)], env=env, cwd=work, check=True, capture_output=True, timeout=300)
    # Only the Bento and its models: nothing else in this home.
    assert sorted(p.name for p in (home / "bentos").iterdir()) == [bento.tag.split(":")[0]]
    log = work / f"{bento.service}.log"
    command = [bentoml, "serve-grpc", bento.tag, "--host", "127.0.0.1", "--port", str(port), "--api-workers", "1",
               "--ssl-certfile", f"{tls_dir.name}/server.crt", "--ssl-keyfile", f"{tls_dir.name}/server.key",
               "--ssl-ca-certs", f"{tls_dir.name}/ca.crt"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, cwd=tls_dir.parent, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return ServedBento(bento.service, process, port, env, log)


@pytest.fixture(scope="module")
def served(
    bentos: dict[str, Built], bento_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServedBento]]:
    from clinpred.cli.certificates import write_mutual_tls_folder
    from clinpred.cli.main import _stop

    work = tmp_path_factory.mktemp("served")
    tls_dir = work / "tls"
    write_mutual_tls_folder(tls_dir, hosts=["localhost", "127.0.0.1"])
    homes = work / "homes"
    running = {s: _serve_bento(b, bento_python, tls_dir, work, homes) for s, b in bentos.items()}
    try:
        deadline = time.monotonic() + 300
        for service, server in running.items():
            while not is_serving(f"127.0.0.1:{server.port}", SERVICES[service].grpc_service, 1.0, TlsDir(tls_dir).client()):
                assert server.process.poll() is None, server.log.read_text()[-3000:]
                assert time.monotonic() < deadline, f"{service} did not report SERVING:\n{server.log.read_text()[-3000:]}"
                time.sleep(0.5)
        yield running
    finally:
        _stop([s.process for s in running.values()])


def _call(served: ServedBento, tls_dir: Path, *words: str) -> dict[str, object]:
    command = [str(BIN / "clinpred"), "call", served.service, *words, "--json",
               "--target", f"127.0.0.1:{served.port}", "--tls-dir", str(tls_dir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def _served_listed(service: str) -> tuple[str, str]:
    """The package the service's settings pin by default, which its Bento must ship."""
    from clinpred.services.deterioration.settings import DeteriorationSettings
    from clinpred.services.genomics.settings import GenomicsSettings
    from clinpred.services.tumor.settings import TumorSettings

    settings = {"tumor": TumorSettings, "deterioration": DeteriorationSettings, "genomics": GenomicsSettings}[service]()
    listed = yaml.safe_load((REPO / "bento" / service / "bentofile.yaml").read_text())["models"]
    assert f"{service}-{settings.model_name}:{settings.model_version}" in listed
    return settings.model_name, settings.model_version


def test_each_bento_serves_from_its_own_environment_over_mutual_tls(served: dict[str, ServedBento]) -> None:
    for service, server in served.items():
        tls_dir = Path(server.env[f"CLINPRED_{service.upper()}_CA_FILE"]).parent
        # The packages come from the fresh venv and the code from the Bento's wheel, not the checkout.
        where = subprocess.run([server.env["PATH"].split(":")[0] + "/python", "-c", "import clinpred; print(clinpred.__file__)"],
                               env=server.env, capture_output=True, text=True, timeout=60, cwd="/")
        assert "site-packages" in where.stdout and str(REPO) not in where.stdout
        if service == "tumor":
            answer = _call(server, tls_dir, "classify", "--example")
            classification = answer["classification"]
            assert isinstance(classification, dict) and classification["label"] in ("benign", "malignant")
            model = classification["model"]
        elif service == "deterioration":
            model = _call(server, tls_dir, "info")["model"]
        else:
            # One model per cancer; this release has the breast cancer model only.
            (breast,) = _call(server, tls_dir, "info")["models"]
            model = breast["model"]
        assert isinstance(model, dict)
        name, version = _served_listed(service)
        package = ModelPackage.open(REPO / "models" / service / name / version)
        assert (model["name"], model["version"], model["sha256"]) == (name, version, package.identity.sha256)


def test_the_image_health_check_command_works_from_the_bento_environment(served: dict[str, ServedBento]) -> None:
    server = served["tumor"]
    tls_dir = Path(server.env["CLINPRED_TUMOR_CA_FILE"]).parent
    python = server.env["PATH"].split(":")[0] + "/python"
    probe = [python, "-m", "clinpred.services.common.health_probe", "--tls-dir", str(tls_dir)]
    env = dict(server.env, GRPC_PROBE_PORT=str(server.port), GRPC_PROBE_SERVICE=SERVICES["tumor"].grpc_service)
    assert subprocess.run(probe, env=env, capture_output=True, timeout=60, cwd="/").returncode == 0
    # Another service's name is not served here: the probe must say so.
    wrong = dict(env, GRPC_PROBE_SERVICE=SERVICES["genomics"].grpc_service)
    failed = subprocess.run(probe, env=wrong, capture_output=True, text=True, timeout=60, cwd="/")
    assert failed.returncode == 1 and "NOT_FOUND" in failed.stderr

