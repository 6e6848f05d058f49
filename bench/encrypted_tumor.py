"""Cost of one encrypted tumour classification: server time and bytes on the wire, per CKKS setting and over gRPC.

    .venv/bin/python -m bench.encrypted_tumor [--calls 200] [--out bench/reports/<UTC date>]

Part 1, the pilot alone: for each setting it encrypts one WDBC case, times `score_encrypted_case` (which loads
and checks the public context and the ciphertext, as a server does on every call) and counts the bytes up
(public context + ciphertext) and down (the answer). The last row is the road not taken: the server sums the
products itself (margin only), which needs Galois keys in the context.

Part 2, the service over real gRPC (an in-process server on a loopback socket, the `TumorClient` of
`clinpred call tumor classify --encrypted`): per call of one case and of a full call (16 ciphertexts,
80 cases), the server's time from its own metrics (the `encrypted_classify` stage, and the whole call as
the metrics interceptor times it), the protobuf message bytes each way, and the client's encode + encrypt
and decrypt + finish times. Times are this machine's; nothing asserts them. Writes `encrypted_tumor.md`
to the report folder.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import tenseal as ts

from bench.stats import timed_ms
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.tumor.classifier import TumorClassifier
from clinpred.pilots.tumor.data import load_wdbc
from clinpred.pilots.tumor.encrypted import (
    EncryptedTumorLayout,
    create_client_context,
    encode_cases,
    encrypt_cases,
    public_context_bytes,
    score_encrypted_case,
    tumor_layout,
)
from clinpred.services.tumor.client import TumorClient

REFERENCE = Path(__file__).resolve().parent.parent / "models" / "tumor" / "wdbc-xgboost" / "1.0.0"
REPORTS = Path(__file__).resolve().parent / "reports"
STAGE_SUM = "clinpred_stage_duration_seconds_sum"
CALL_SUM = "clinpred_grpc_request_duration_seconds_sum"
CALL_COUNT = "clinpred_grpc_request_duration_seconds_count"
SETTINGS = [
    ("4096, (38, 33, 38), 2^33 (default)", 4096, (38, 33, 38), 33),
    ("8192, (60, 40, 60), 2^40", 8192, (60, 40, 60), 40),
]


def _row(name: str, samples: list[float], up: int, down: int) -> str:
    p95 = sorted(samples)[int(0.95 * (len(samples) - 1))]
    return f"| {name} | {statistics.median(samples):.2f} | {p95:.2f} | {up:,} | {down:,} | {up + down:,} |"


def _galois_variant(layout: EncryptedTumorLayout, row: np.ndarray, calls: int) -> str:
    context = create_client_context(8192, (60, 40, 40, 60), 40)
    context.generate_galois_keys()
    public = bytes(context.serialize(save_secret_key=False, save_galois_keys=True, save_relin_keys=True))
    blob = bytes(ts.ckks_vector(context, encode_cases(layout, row)[0].tolist()).serialize())
    weights = list(layout.weights)
    answer: list[bytes] = []

    def call() -> None:
        server = ts.context_from(public)
        answer[:] = [bytes(ts.ckks_vector_from(server, blob).dot(weights).serialize())]

    samples = timed_ms(call, calls)
    return _row("8192, Galois keys, server sums the margin (no SHAP)", samples, len(public) + len(blob), len(answer[0]))


def pilot_rows(layout: EncryptedTumorLayout, calls: int) -> list[str]:
    row = load_wdbc().x[:1]
    lines = [
        "| CKKS setting | server ms (median) | server ms (p95) | bytes up | bytes down | bytes per call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, degree, coeff, scale_bits in SETTINGS:
        context = create_client_context(degree, coeff, scale_bits)
        public = public_context_bytes(context)
        encrypted = encrypt_cases(context, layout, encode_cases(layout, row))
        answer: list[bytes] = []

        def call(
            public: bytes = public, ciphertexts: tuple[bytes, ...] = encrypted.ciphertexts, answer: list[bytes] = answer
        ) -> None:
            answer[:] = score_encrypted_case(public, ciphertexts, layout)

        samples = timed_ms(call, calls)
        up = len(public) + sum(map(len, encrypted.ciphertexts))
        lines.append(_row(name, samples, up, sum(map(len, answer))))
    lines.append(_galois_variant(layout, row, max(10, calls // 10)))
    return lines


@contextmanager
def tumor_server() -> Iterator[str]:
    """The tumour service in this process, on its own event loop in a thread, at a loopback port."""
    from clinpred.services.common.model_store import register_package
    from clinpred.services.common.serving import start_inprocess_server
    from clinpred.services.tumor.service import tumor_mount
    from clinpred.services.tumor.settings import TumorSettings

    register_package(ModelPackage.open(REFERENCE))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    settings = TumorSettings(development_plaintext=True, model_name="wdbc-xgboost", model_version="1.0.0")
    server, port = asyncio.run_coroutine_threadsafe(start_inprocess_server(tumor_mount(settings)), loop).result(120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(grace=None), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _metric(name: str, labels: dict[str, str]) -> float:
    from prometheus_client import REGISTRY

    return float(REGISTRY.get_sample_value(name, labels) or 0.0)


def _stats(samples: list[float]) -> str:
    p95 = sorted(samples)[int(0.95 * (len(samples) - 1))]
    return f"{statistics.median(samples):.2f} | {p95:.2f}"


def grpc_rows(calls: int) -> list[str]:
    """Per call over gRPC: server stage and call time from the service's metrics, bytes, client costs."""
    from clinpred.pilots.tumor.encrypted import classifications_from_decrypted, decrypt_cases
    from clinpred.services.api.tumor.v1 import tumor_pb2

    data = load_wdbc()
    stage = {"service": "tumor", "stage": "encrypted_classify"}
    whole = {"service": "tumor", "method": "ClassifyEncrypted"}
    lines = [
        "| call | cases | ciphertexts | server handler ms (median) | (p95) | server call ms (median) | (p95) "
        "| client encode + encrypt ms | client decrypt + finish ms | round trip ms | bytes up | bytes down |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    with tumor_server() as target, TumorClient(target, timeout=120) as client:
        session = client.encryption_session()
        layout = session.model.layout
        for cases in (1, session.cases_per_call):
            rows = data.x[:cases]
            samples: dict[str, list[float]] = {k: [] for k in ("handler", "call", "encrypt", "decrypt", "trip")}
            up = down = ciphertexts = 0
            for number in range(calls + 1):
                start = time.perf_counter()
                encrypted = encrypt_cases(session.context, layout, encode_cases(layout, rows))
                request = tumor_pb2.ClassifyEncryptedRequest(
                    public_context=session.public_context, ciphertexts=encrypted.ciphertexts
                )
                encrypted_at = time.perf_counter()
                before = (_metric(STAGE_SUM, stage), _metric(CALL_SUM, whole), _metric(CALL_COUNT, whole))
                response = client.stub.ClassifyEncrypted(request, timeout=120)
                answered_at = time.perf_counter()
                decrypted = decrypt_cases(session.context, layout, list(response.products))
                classifications_from_decrypted(session.model, rows, decrypted)
                finished_at = time.perf_counter()
                # The interceptor records the call as it ends, which may be just after the answer arrives.
                while _metric(CALL_COUNT, whole) < before[2] + 1:
                    time.sleep(0.001)
                after = (_metric(STAGE_SUM, stage), _metric(CALL_SUM, whole))
                if number == 0:
                    continue  # warm-up: the first call of a context builds its NTT tables
                samples["handler"].append((after[0] - before[0]) * 1e3)
                samples["call"].append((after[1] - before[1]) * 1e3)
                samples["encrypt"].append((encrypted_at - start) * 1e3)
                samples["trip"].append((answered_at - encrypted_at) * 1e3)
                samples["decrypt"].append((finished_at - answered_at) * 1e3)
                up, down, ciphertexts = request.ByteSize(), response.ByteSize(), len(encrypted.ciphertexts)
            lines.append(
                f"| ClassifyEncrypted | {cases} | {ciphertexts} | {_stats(samples['handler'])} | {_stats(samples['call'])} "
                f"| {statistics.median(samples['encrypt']):.2f} | {statistics.median(samples['decrypt']):.2f} "
                f"| {statistics.median(samples['trip']):.2f} | {up:,} | {down:,} |"
            )
        lines.append(_plain_row(client, data.x[0], calls))
        lines += ["", _agreement(client, data.x)]
    return lines


def _agreement(client: TumorClient, rows: np.ndarray) -> str:
    """How far the encrypted answers are from the plain ones, over all of WDBC."""
    names = client.encryption_session().model.schema.feature_names
    cases = [(f"wdbc-{i}", dict(zip(names, row.tolist(), strict=True))) for i, row in enumerate(rows)]
    plain = [answer for start in range(0, len(cases), 64) for answer in client.classify_batch(cases[start : start + 64])]
    encrypted = client.classify_encrypted_batch(cases)
    pairs = list(zip(encrypted, plain, strict=True))
    probability = max(abs(a.positive_probability - b.positive_probability) for a, b in pairs)
    shap = max(
        abs(x.shap_value - y.shap_value)
        for a, b in pairs
        for x, y in zip(a.explanation.contributions, b.explanation.contributions, strict=True)
    )
    labels = sum(a.label != b.label or a.confidence != b.confidence for a, b in pairs)
    reasons = sum([r.text for r in a.explanation.top_reasons] != [r.text for r in b.explanation.top_reasons] for a, b in pairs)
    return (
        f"Agreement with the plain service on all {len(pairs)} WDBC cases: largest difference {probability:.1e} in"
        f" P(positive), {shap:.1e} in a SHAP value; {labels} cases with another label or set, {reasons} with other reasons."
    )


def _plain_row(client: TumorClient, row: np.ndarray, calls: int) -> str:
    """The same case in clear (Classify), for what the service costs around any call."""
    from clinpred.services.api.tumor.v1 import tumor_pb2

    names = client.encryption_session().model.schema.feature_names
    request = tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(features=dict(zip(names, row.tolist(), strict=True))))
    labels = {"service": "tumor", "method": "Classify"}
    trips, served = [], []
    response = client.stub.Classify(request, timeout=60)
    for _ in range(calls):
        before = (_metric(CALL_SUM, labels), _metric(CALL_COUNT, labels))
        start = time.perf_counter()
        response = client.stub.Classify(request, timeout=60)
        trips.append((time.perf_counter() - start) * 1e3)
        while _metric(CALL_COUNT, labels) < before[1] + 1:
            time.sleep(0.001)
        served.append((_metric(CALL_SUM, labels) - before[0]) * 1e3)
    return (
        f"| Classify (in clear, for comparison) | 1 | - | - | - | {_stats(served)} | - | - "
        f"| {statistics.median(trips):.2f} | {request.ByteSize():,} | {response.ByteSize():,} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPORTS / datetime.now(UTC).strftime("%Y-%m-%d"))
    args = parser.parse_args()
    classifier = TumorClassifier.load(ModelPackage.open(REFERENCE))
    layout = tumor_layout(classifier)
    report = [
        "# Encrypted tumour classification: cost per call",
        "",
        f"`python -m bench.encrypted_tumor --calls {args.calls}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, this machine.",
        "",
        f"## The pilot alone ({len(layout)} split points; {args.calls} calls of one case each)",
        "",
        *pilot_rows(layout, args.calls),
        "",
        f"## Over gRPC (default CKKS setting; {args.calls} calls per row after one warm-up call)",
        "",
        "Server handler: the `encrypted_classify` stage (load and check context and ciphertexts, multiply);",
        "server call: the whole call as the metrics interceptor times it (decode, authorization, audit, encode).",
        "Bytes: protobuf message sizes (gRPC adds 5 bytes of framing and HTTP/2 headers).",
        "",
        *grpc_rows(args.calls),
        "",
    ]
    text = "\n".join(report)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "encrypted_tumor.md").write_text(text)
    print(f"written to {args.out / 'encrypted_tumor.md'}")


if __name__ == "__main__":
    main()
