"""Cost of one encrypted tumour classification: server time and bytes on the wire, per CKKS setting.

    .venv/bin/python -m bench.encrypted_tumor [--calls 200]

For each setting it encrypts one WDBC case, times `score_encrypted_case` (which loads and checks the
public context and the ciphertext, as a server does on every call) and counts the bytes up (public context +
ciphertext) and down (the answer). The last row is the road not taken: the server sums the products itself
(margin only), which needs Galois keys in the context. Times are this machine's; nothing asserts them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tenseal as ts

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

REFERENCE = Path(__file__).resolve().parent.parent / "models" / "tumor" / "wdbc-xgboost" / "1.0.0"
SETTINGS = [
    ("4096, (38, 33, 38), 2^33 (default)", 4096, (38, 33, 38), 33),
    ("8192, (60, 40, 60), 2^40", 8192, (60, 40, 60), 40),
]


def _timed(call: Callable[[], object], calls: int) -> list[float]:
    call()  # warm-up
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


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

    samples = _timed(call, calls)
    return _row("8192, Galois keys, server sums the margin (no SHAP)", samples, len(public) + len(blob), len(answer[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    classifier = TumorClassifier.load(ModelPackage.open(REFERENCE))
    layout = tumor_layout(classifier)
    row = load_wdbc().x[:1]
    print(f"{len(layout)} split points; {args.calls} calls of one case each\n")
    print("| CKKS setting | server ms (median) | server ms (p95) | bytes up | bytes down | bytes per call |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, degree, coeff, scale_bits in SETTINGS:
        context = create_client_context(degree, coeff, scale_bits)
        public = public_context_bytes(context)
        encrypted = encrypt_cases(context, layout, encode_cases(layout, row))
        answer: list[bytes] = []

        def call(
            public: bytes = public, ciphertexts: tuple[bytes, ...] = encrypted.ciphertexts, answer: list[bytes] = answer
        ) -> None:
            answer[:] = score_encrypted_case(public, ciphertexts, layout)

        samples = _timed(call, args.calls)
        up = len(public) + sum(map(len, encrypted.ciphertexts))
        print(_row(name, samples, up, sum(map(len, answer))))
    print(_galois_variant(layout, row, max(10, args.calls // 10)))


if __name__ == "__main__":
    main()
