"""Cost of one encrypted PGS000004 score (313 variants): server time and bytes on the wire, before and after
registered evaluation keys, and for a private score.

    .venv/bin/python -m bench.encrypted_genomics [--calls 20]

Times `score_encrypted` as the service runs it per call: with the public context sent inline it loads and
checks that context (35 MB with its Galois keys) on every call, as before registration existed; with a
registered context it starts from the context loaded once at registration (also timed, once per client
and replica). Bytes are the serialised context and ciphertexts up and the answer's ciphertexts down (the
gRPC framing adds a few dozen bytes). Times are this machine's; nothing asserts them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.stats import timed_ms
from clinpred.pilots.genomics.encrypted import (
    EncryptedScore,
    EncryptedScoreLayout,
    create_client_context,
    decrypt_score,
    encrypt_dosages,
    public_context_bytes,
    score_encrypted,
)
from clinpred.pilots.genomics.evaluation_keys import EvaluationKeys

MODEL = Path(__file__).resolve().parent.parent / "models" / "genomics" / "breast-pgs000004"
DIGEST_BYTES = 64  # the registered context's SHA-256, in hexadecimal, in the header


def _layout_file() -> Path:
    """The layout of the highest version of the reference model package."""
    versions = [p for p in MODEL.iterdir() if (p / "score_layout.json").is_file()]
    return max(versions, key=lambda p: tuple(int(part) for part in p.name.split("."))) / "score_layout.json"


def _row(name: str, samples: list[float], up: int, down: int) -> str:
    p95 = sorted(samples)[int(0.95 * (len(samples) - 1))]
    return f"| {name} | {statistics.median(samples):.1f} | {p95:.1f} | {up:,} | {down:,} | {up + down:,} |"


def _down(answer: EncryptedScore) -> int:
    return len(answer.score) + sum(map(len, answer.contributions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    layout = EncryptedScoreLayout.from_json(json.loads(_layout_file().read_text()))
    private = replace(layout, private=True)
    context = create_client_context()
    public = public_context_bytes(context)
    dosages = np.random.default_rng(0).integers(0, 3, len(layout)).astype(float)
    ciphertexts = encrypt_dosages(context, dosages, layout).ciphertexts
    up = sum(map(len, ciphertexts))
    plain = float(dosages @ np.asarray(layout.weights))

    keys = EvaluationKeys(3600, 1 << 31, 1 << 31)
    start = time.perf_counter()
    digest = keys.register("bench", public).sha256
    register_ms = (time.perf_counter() - start) * 1e3
    loaded = keys.context("bench", digest)

    print(f"{layout.pgs_id}: {len(layout)} variants, {len(ciphertexts)} ciphertext(s); {args.calls} calls each\n")
    print("| per call | server ms (median) | server ms (p95) | bytes up | bytes down | bytes per call |")
    print("|---|---:|---:|---:|---:|---:|")
    answers: dict[str, EncryptedScore] = {}
    rows = [
        ("public context inline (before)", lambda: score_encrypted(public, ciphertexts, layout), len(public) + up),
        ("registered context, public score", lambda: score_encrypted(loaded, ciphertexts, layout), up + DIGEST_BYTES),
        ("registered context, private score", lambda: score_encrypted(loaded, ciphertexts, private), up + DIGEST_BYTES),
    ]
    for name, score, sent in rows:
        calls = max(3, args.calls // 4) if "inline" in name else args.calls

        def call(name: str = name, score: Callable[[], EncryptedScore] = score) -> None:
            answers[name] = score()

        samples = timed_ms(call, calls)
        print(_row(name, samples, sent, _down(answers[name])))
    print(f"\nonce per client and replica: RegisterEvaluationKeys, {len(public):,} bytes up,"
          f" {register_ms:.0f} ms to load and check")
    errors = [abs(decrypt_score(context, a, layout.published() if a.contributions else private).score_sum - plain)
              for a in answers.values()]
    print(f"decrypted minus plaintext score: at most {max(errors):.1e}")


if __name__ == "__main__":
    main()
