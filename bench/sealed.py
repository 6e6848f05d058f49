"""Cost of one sealed call: the client's and the server's HPKE time, and the bytes sealing adds.

    .venv/bin/python -m bench.sealed [--calls 500]

For a real tumour Classify request (one WDBC case) and a real answer of the reference model it times each
step a sealed call adds, as the library runs it: the client seals the request (`seal_request`: ML-KEM-768 +
X25519 encapsulation, AES-256-GCM), the server opens it (`open_request`: decapsulation, the replay guard) and
seals its answer (the `google.rpc.Status` holding it), the client opens that. Bytes: the `SealedRequest` and
`SealedResponse` messages against the plain request and response messages. Times are this machine's;
nothing asserts them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf import any_pb2
from google.rpc import status_pb2

from bench.stats import timed_ms
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.tumor.classifier import ClassifiedCase, TumorClassifier
from clinpred.pilots.tumor.data import load_wdbc
from clinpred.services.api.tumor.v1 import tumor_pb2
from clinpred.services.common.sealed import InMemoryReplayGuard, open_request, open_response, seal_request
from clinpred.services.common.sealing_keys import Keyring, init_keyring
from clinpred.services.tumor.codec import TumorCodec

REFERENCE = Path(__file__).resolve().parent.parent / "models" / "tumor" / "wdbc-xgboost" / "1.0.0"
METHOD = "/clinpred.tumor.v1.TumorClassificationService/Classify"


def _row(name: str, samples: list[float]) -> str:
    p95 = sorted(samples)[int(0.95 * (len(samples) - 1))]
    return f"| {name} | {statistics.median(samples):.3f} | {p95:.3f} |"


def _messages() -> tuple[tumor_pb2.ClassifyRequest, tumor_pb2.ClassifyResponse]:
    classifier = TumorClassifier.load(ModelPackage.open(REFERENCE))
    dataset = load_wdbc()
    features = {spec.name: float(value) for spec, value in zip(dataset.features, dataset.x[0])}
    request = tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(case_id="wdbc-1", features=features))
    codec = TumorCodec.for_model(classifier.info, 100, max_encrypted_ciphertexts=16)
    cases = codec.decode_classify(request)
    predictions = classifier.predict(cases.rows)
    results = classifier.combine(predictions, classifier.explain(cases.rows, predictions))
    answer = codec.encode_classify([ClassifiedCase(case_id, result) for case_id, result in zip(cases.case_ids, results)])
    return request, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()

    request, response = _messages()
    request_bytes, response_bytes = request.SerializeToString(), response.SerializeToString()
    with tempfile.TemporaryDirectory() as folder:
        key = init_keyring(Path(folder) / "keys", datetime.now(UTC))
        keyring = Keyring.load(Path(folder) / "keys")
    guard = InMemoryReplayGuard(max_entries=10 * args.calls + 10)

    def sealed_request() -> tuple[bytes, object]:
        return seal_request(key, METHOD, request_bytes, datetime.now(UTC))

    envelope, opener = seal_request(key, METHOD, request_bytes, datetime.now(UTC))
    opened = open_request(keyring, envelope, datetime.now(UTC), guard=guard)
    packed = any_pb2.Any()
    packed.Pack(response)
    status_bytes = status_pb2.Status(code=0, details=[packed]).SerializeToString()
    answer = opened.response_sealer.seal(status_bytes)
    fresh = [seal_request(key, METHOD, request_bytes, datetime.now(UTC))[0] for _ in range(args.calls + 1)]

    def server_open() -> object:
        return open_request(keyring, fresh.pop(), datetime.now(UTC), guard=guard)

    def server_seal() -> object:
        any_answer = any_pb2.Any()
        any_answer.Pack(response)
        return opened.response_sealer.seal(status_pb2.Status(code=0, details=[any_answer]).SerializeToString())

    client_seal = timed_ms(sealed_request, args.calls)
    server_opening = timed_ms(server_open, args.calls)
    server_sealing = timed_ms(server_seal, args.calls)
    client_open = timed_ms(lambda: open_response(opener, answer), args.calls)  # type: ignore[arg-type]

    plain_up = len(request_bytes)
    plain_down = len(response_bytes)
    sealed_up = tumor_pb2.SealedRequest(envelope=envelope).ByteSize()
    sealed_down = tumor_pb2.SealedResponse(envelope=answer).ByteSize()
    print(f"Sealed tumour Classify, {args.calls} calls per step (ML-KEM-768+X25519, HKDF-SHA256, AES-256-GCM)")
    print()
    print("| step | median ms | p95 ms |")
    print("| --- | ---: | ---: |")
    print(_row("client: seal the request", client_seal))
    print(_row("server: open it (and the replay guard)", server_opening))
    print(_row("server: seal the answer", server_sealing))
    print(_row("client: open the answer", client_open))
    client = statistics.median(client_seal) + statistics.median(client_open)
    server = statistics.median(server_opening) + statistics.median(server_sealing)
    print(f"| per call: client {client:.3f} ms, server {server:.3f} ms | | |")
    print()
    print("| bytes | plain | sealed | added |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| request | {plain_up:,} | {sealed_up:,} | {sealed_up - plain_up:,} |")
    print(f"| response | {plain_down:,} | {sealed_down:,} | {sealed_down - plain_down:,} |")
    added = sealed_up - plain_up + sealed_down - plain_down
    print(f"| per call | {plain_up + plain_down:,} | {sealed_up + sealed_down:,} | {added:,} |")
    print()
    print("The first call of a client also fetches the key configurations once (GetKeyConfigurations).")


if __name__ == "__main__":
    main()
