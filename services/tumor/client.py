"""A small client of clinpred.tumor.v1 for scripts and the `clinpred call tumor` command.

`classify_encrypted` answers like `classify` while the service sees neither the features nor the
answer: the case is encoded and CKKS-encrypted here, the service multiplies it by the model's
weights, and the answer is decrypted and finished here with the layout the service publishes
(fetched once per client) and the same domain code the service answers with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clinpred.pilots.common.errors import FailedPrecondition
from clinpred.services.api.tumor.v1 import tumor_pb2, tumor_pb2_grpc
from clinpred.services.common.channel import ClientTls, open_channel
from clinpred.services.common.sealed_channel import SealedChannel
from clinpred.services.common.sealing_keys import SealingKey

# The encrypted path's modules (TenSEAL, the domain's answer code) load on its first use, so that
# plain calls and the command line start as fast as before.
if TYPE_CHECKING:
    import tenseal as ts

    from clinpred.pilots.tumor.encrypted import EncryptedTumorModel
    from clinpred.services.tumor.codec import TumorCodec


FULL = tumor_pb2.EXPLANATION_DETAIL_FULL


@dataclass(frozen=True)
class EncryptionSession:
    """What one client keeps between encrypted calls: the published model, its private CKKS context
    (the secret key never leaves this process) and the keyless context it sends."""

    model: EncryptedTumorModel
    codec: TumorCodec
    context: ts.Context
    public_context: bytes
    cases_per_call: int


class TumorClient:
    def __init__(
        self,
        target: str,
        timeout: float = 10.0,
        tls: ClientTls | None = None,
        pinned_model_sha256: str | None = None,
        *,
        sealed: bool = False,
        sealing_key: SealingKey | None = None,
    ) -> None:
        """`pinned_model_sha256`: encrypted calls refuse (FailedPrecondition) a service whose model is another.
        `sealed=True`: every unary call travels sealed to the service's key (or the pinned `sealing_key`);
        `classify_stream` then raises SealedStreamError (use `classify_batch`)."""
        self.channel = open_channel(target, tls)
        service = tumor_pb2.DESCRIPTOR.services_by_name["TumorClassificationService"]
        calls = SealedChannel(self.channel, service, sealing_key) if sealed else self.channel
        self.stub = tumor_pb2_grpc.TumorClassificationServiceStub(calls)
        self.timeout = timeout
        self.pinned_model_sha256 = pinned_model_sha256
        self._encryption: EncryptionSession | None = None

    def __enter__(self) -> TumorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.channel.close()

    def classify(
        self, features: Mapping[str, float], case_id: str = "", detail: tumor_pb2.ExplanationDetail = FULL
    ) -> tumor_pb2.Classification:
        """`detail`: how much explanation the answer carries (`tumor_pb2.EXPLANATION_DETAIL_*`; full by default)."""
        request = tumor_pb2.ClassifyRequest(tumor_case=tumor_pb2.TumorCase(case_id=case_id, features=features), detail=detail)
        return self.stub.Classify(request, timeout=self.timeout).classification

    def classify_batch(
        self, cases: Iterable[tuple[str, Mapping[str, float]]], detail: tumor_pb2.ExplanationDetail = FULL
    ) -> list[tumor_pb2.Classification]:
        request = tumor_pb2.ClassifyBatchRequest(
            cases=[tumor_pb2.TumorCase(case_id=case_id, features=f) for case_id, f in cases], detail=detail
        )
        return list(self.stub.ClassifyBatch(request, timeout=self.timeout).classifications)

    def classify_stream(
        self,
        cases: Iterable[tuple[str, Mapping[str, float]]],
        timeout: float | None = None,
        detail: tumor_pb2.ExplanationDetail = FULL,
    ) -> Iterator[tumor_pb2.Classification]:
        """Answers in order as they arrive. `timeout` bounds the whole stream (default: none, as a stream
        lasts as long as its input; the per-call timeout would cut a long stream off)."""
        requests = (
            tumor_pb2.ClassifyStreamRequest(tumor_case=tumor_pb2.TumorCase(case_id=case_id, features=f), detail=detail)
            for case_id, f in cases
        )
        for response in self.stub.ClassifyStream(requests, timeout=timeout):
            yield response.classification

    def model_info(self) -> tumor_pb2.GetModelInfoResponse:
        return self.stub.GetModelInfo(tumor_pb2.GetModelInfoRequest(), timeout=self.timeout)

    def encryption_layout(self) -> tumor_pb2.GetEncryptionLayoutResponse:
        return self.stub.GetEncryptionLayout(tumor_pb2.GetEncryptionLayoutRequest(), timeout=self.timeout)

    def classify_encrypted(self, features: Mapping[str, float], case_id: str = "") -> tumor_pb2.Classification:
        """One case classified on encrypted data: the same Classification as `classify`, up to CKKS error (~1e-4)."""
        (answer,) = self._classify_encrypted([(case_id, features)], ["tumor_case"])
        return answer

    def classify_encrypted_batch(self, cases: Iterable[tuple[str, Mapping[str, float]]]) -> list[tumor_pb2.Classification]:
        """Any number of cases, several per ciphertext and as many ciphertexts per call as the service takes.

        Cases are checked here as ClassifyBatch checks them (InvalidInput names `cases[i]`) before anything is sent.
        """
        listed = list(cases)
        return self._classify_encrypted(listed, [f"cases[{i}]" for i in range(len(listed))])

    def _classify_encrypted(
        self, cases: list[tuple[str, Mapping[str, float]]], paths: list[str]
    ) -> list[tumor_pb2.Classification]:
        from clinpred.pilots.tumor.classifier import ClassifiedCase
        from clinpred.pilots.tumor.encrypted import classifications_from_decrypted, decrypt_cases, encode_cases, encrypt_cases

        session = self.encryption_session()
        requests = [tumor_pb2.TumorCase(case_id=case_id, features=f) for case_id, f in cases]
        # Refusals name the fields Classify (one case) or ClassifyBatch (`cases[i]`) would name.
        decoded = session.codec.decode_cases(requests, paths)
        layout = session.model.layout
        answers: list[tumor_pb2.Classification] = []
        for start in range(0, len(decoded), session.cases_per_call):
            rows = decoded.rows[start : start + session.cases_per_call]
            encrypted = encrypt_cases(session.context, layout, encode_cases(layout, rows))
            request = tumor_pb2.ClassifyEncryptedRequest(public_context=session.public_context, ciphertexts=encrypted.ciphertexts)
            response = self.stub.ClassifyEncrypted(request, timeout=self.timeout)
            if response.model.sha256 != session.model.identity.sha256 or len(response.products) != len(encrypted.ciphertexts):
                self._encryption = None  # the service reloaded: the next call fetches the new layout
                raise FailedPrecondition("the service answered with another model than its layout's; retry")
            decrypted = decrypt_cases(session.context, layout, list(response.products))
            results = classifications_from_decrypted(session.model, rows, decrypted)
            ids = decoded.case_ids[start : start + session.cases_per_call]
            answers.extend(session.codec.encode_classification(ClassifiedCase(i, r)) for i, r in zip(ids, results, strict=True))
        return answers

    def encryption_session(self) -> EncryptionSession:
        """The published model and this client's CKKS keys, fetched and made on first use, then kept."""
        if self._encryption is None:
            from clinpred.pilots.common.ckks import poly_modulus_degree
            from clinpred.pilots.tumor.encrypted import create_client_context, public_context_bytes
            from clinpred.services.tumor.codec import TumorCodec, decode_encrypted_model

            layout = self.encryption_layout()
            info = self.model_info()
            if self.pinned_model_sha256 is not None and layout.model.sha256 != self.pinned_model_sha256:
                raise FailedPrecondition(
                    f"the service serves model {layout.model.name} {layout.model.version} sha256 {layout.model.sha256},"
                    f" not the pinned {self.pinned_model_sha256}"
                )
            model = decode_encrypted_model(layout, info)
            codec = TumorCodec(model.schema, info.max_batch_size, model.verified_coverage, layout.max_ciphertexts)
            context = create_client_context()
            per_ciphertext = model.layout.cases_per_ciphertext(poly_modulus_degree(context))
            self._encryption = EncryptionSession(
                model, codec, context, public_context_bytes(context), max(1, per_ciphertext * layout.max_ciphertexts)
            )
        return self._encryption
