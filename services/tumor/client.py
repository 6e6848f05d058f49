"""A small client of clinpred.tumor.v1 for scripts and the `clinpred call tumor` command."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.channel import ClientTls, open_channel
from clinpred.services.common.sealed_channel import SealedChannel
from clinpred.services.common.sealing_keys import SealingKey


class TumorClient:
    """`sealed=True`: every unary call travels sealed to the service's key (or the pinned `sealing_key`);
    `classify_stream` then raises SealedStreamError (use `classify_batch`)."""

    def __init__(
        self,
        target: str,
        timeout: float = 10.0,
        tls: ClientTls | None = None,
        *,
        sealed: bool = False,
        sealing_key: SealingKey | None = None,
    ) -> None:
        self.channel = open_channel(target, tls)
        service = tumor_pb2.DESCRIPTOR.services_by_name["TumorClassificationService"]
        calls = SealedChannel(self.channel, service, sealing_key) if sealed else self.channel
        self.stub = tumor_pb2_grpc.TumorClassificationServiceStub(calls)
        self.timeout = timeout

    def __enter__(self) -> TumorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.channel.close()

    def classify(self, features: Mapping[str, float], case_id: str = "") -> tumor_pb2.Classification:
        request = tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(case_id=case_id, features=features))
        return self.stub.Classify(request, timeout=self.timeout).classification

    def classify_batch(self, cases: Iterable[tuple[str, Mapping[str, float]]]) -> list[tumor_pb2.Classification]:
        request = tumor_pb2.ClassifyBatchRequest(cases=[tumor_pb2.TumorCase(case_id=case_id, features=f) for case_id, f in cases])
        return list(self.stub.ClassifyBatch(request, timeout=self.timeout).classifications)

    def classify_stream(
        self, cases: Iterable[tuple[str, Mapping[str, float]]], timeout: float | None = None
    ) -> Iterator[tumor_pb2.Classification]:
        """Answers in order as they arrive. `timeout` bounds the whole stream (default: none, as a stream
        lasts as long as its input; the per-call timeout would cut a long stream off)."""
        requests = (
            tumor_pb2.ClassifyStreamRequest(tumor_case=tumor_pb2.TumorCase(case_id=case_id, features=f)) for case_id, f in cases
        )
        for response in self.stub.ClassifyStream(requests, timeout=timeout):
            yield response.classification

    def model_info(self) -> tumor_pb2.GetModelInfoResponse:
        return self.stub.GetModelInfo(tumor_pb2.GetModelInfoRequest(), timeout=self.timeout)
