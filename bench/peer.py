"""The peer: MLServer 1.7 with mlserver-xgboost serving the same booster.json over V2 gRPC.

MLServer lives in its own virtual environment (its protobuf 6 and grpcio 1.8x
cannot share one with BentoML's protobuf 5 pins). The load generator runs in
the project's venv and speaks the V2 inference protocol with message classes
built at run time from the descriptor that the installed MLServer itself
serves, so both sides agree on the protocol without a copied .proto file.

    python -m bench.peer install     # create .bench/venv-mlserver from bench/peer-requirements.txt
    python -m bench.peer versions    # what is installed there
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from bench.processes import LOOPBACK, ManagedServer

REPO = Path(__file__).resolve().parent.parent
BENCH_STATE = REPO / ".bench"
PEER_VENV = BENCH_STATE / "venv-mlserver"
REQUIREMENTS = Path(__file__).resolve().parent / "peer-requirements.txt"
MODEL_NAME = "wdbc-xgboost"
MODEL_VERSION = "1.0.0"
V2_SERVICE = "inference.GRPCInferenceService"
PEER_PACKAGES = ("mlserver", "mlserver-xgboost", "xgboost", "grpcio", "protobuf", "uvloop", "numpy")


def python_of(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def installed(venv_dir: Path = PEER_VENV) -> bool:
    return (venv_dir / "bin" / "mlserver").is_file()


def install(venv_dir: Path = PEER_VENV, requirements: Path = REQUIREMENTS) -> None:
    """Create the peer's venv with the Python running this and install the pinned peer."""
    if not python_of(venv_dir).is_file():
        venv.EnvBuilder(with_pip=True, clear=False).create(venv_dir)
    pip = [str(python_of(venv_dir)), "-m", "pip"]
    subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "--quiet", "-r", str(requirements)], check=True)
    subprocess.run([*pip, "check"], check=True)


def _run_in_peer(venv_dir: Path, code: str) -> bytes:
    return subprocess.run([str(python_of(venv_dir)), "-c", code], check=True, capture_output=True).stdout


def versions(venv_dir: Path = PEER_VENV) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m, platform\n"
        f"names = {list(PEER_PACKAGES)!r}\n"
        "out = {'python': platform.python_version()}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = 'absent'\n"
        "print(json.dumps(out))\n"
    )
    return dict(json.loads(_run_in_peer(venv_dir, code)))


def v2_descriptor(venv_dir: Path = PEER_VENV) -> bytes:
    """The serialized FileDescriptorProto of MLServer's dataplane.proto (package `inference`)."""
    code = (
        "import sys\nfrom mlserver.grpc import dataplane_pb2\nsys.stdout.buffer.write(dataplane_pb2.DESCRIPTOR.serialized_pb)\n"
    )
    return _run_in_peer(venv_dir, code)


class V2Messages:
    """ModelInferRequest/ModelInferResponse classes for this process's protobuf runtime."""

    def __init__(self, serialized_descriptor: bytes) -> None:
        proto = descriptor_pb2.FileDescriptorProto.FromString(serialized_descriptor)
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        package = proto.package
        self.ModelInferRequest: Any = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.ModelInferRequest"))
        self.ModelInferResponse: Any = message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"{package}.ModelInferResponse")
        )

    def infer_request(self, rows: Any, model_name: str = MODEL_NAME, model_version: str = MODEL_VERSION) -> Any:
        """One FP64 input tensor `[n, 30]`, as MLServer's NumpyRequestCodec decodes by default."""
        request = self.ModelInferRequest(model_name=model_name, model_version=model_version)
        tensor = request.inputs.add()
        tensor.name = "input-0"
        tensor.datatype = "FP64"
        tensor.shape.extend(list(rows.shape))
        tensor.contents.fp64_contents.extend(rows.ravel().tolist())
        return request

    @staticmethod
    def predictions(response: Any) -> list[float]:
        """The `predict` output: P(positive class) per row for this binary:logistic booster."""
        output = response.outputs[0]
        if output.contents.fp32_contents:
            return list(output.contents.fp32_contents)
        return list(output.contents.fp64_contents)


@dataclass(frozen=True)
class PeerConfig:
    grpc_port: int
    http_port: int
    metrics_port: int
    parallel_workers: int
    booster: Path
    # OpenMP threads per XGBoost call (OMP_NUM_THREADS); None keeps XGBoost's default of every core.
    threads: int | None = 1


def write_repository(folder: Path, config: PeerConfig) -> None:
    """MLServer's settings.json and one model folder whose model-settings.json points at our booster."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "debug": False,
        "host": LOOPBACK,
        "grpc_port": config.grpc_port,
        "http_port": config.http_port,
        "metrics_port": config.metrics_port,
        "parallel_workers": config.parallel_workers,
    }
    (folder / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    model_dir = folder / MODEL_NAME
    model_dir.mkdir(exist_ok=True)
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_xgboost.XGBoostModel",
        "parameters": {"uri": str(config.booster.resolve()), "version": MODEL_VERSION},
    }
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings, indent=2) + "\n")


def mlserver_server(folder: Path, config: PeerConfig, log_path: Path, venv_dir: Path = PEER_VENV) -> ManagedServer:
    write_repository(folder, config)
    argv = [str(venv_dir / "bin" / "mlserver"), "start", str(folder)]
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if config.threads is not None:
        env["OMP_NUM_THREADS"] = str(config.threads)
    return ManagedServer("MLServer", argv, log_path, env=env, cwd=folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["install", "versions"])
    parser.add_argument("--venv", type=Path, default=PEER_VENV, help="the peer's virtual environment")
    args = parser.parse_args(argv)
    if args.action == "install":
        install(args.venv)
    print(json.dumps(versions(args.venv), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
