"""Fuzzing authentication of the three services over mutual TLS: hostile `authorization` metadata and certificates.

Garbage, huge and repeated `authorization` values, `Bearer` with random or crafted JWTs, tokens signed with the
right key but hostile claims, binary `-bin` keys, random `x-request-id`; client certificates of other tenants,
of clients the policy does not know, without a SAN or with random URI SANs, revoked. Property: the status is
UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND or INVALID_ARGUMENT (OK only for an identity the policy grants),
never INTERNAL or UNKNOWN, and an authorized call succeeds afterwards. Metadata over gRPC's 8 KiB header limit is
refused by the transport itself with RESOURCE_EXHAUSTED, before any service code runs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinpred.cli.certificates import issue_client_certificate, revoke_certificate
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.api.deterioration.v1 import deterioration_pb2 as dpb
from clinpred.services.api.deterioration.v1 import deterioration_pb2_grpc as dpb_grpc
from clinpred.services.api.genomics.v1 import genomics_pb2 as gpb
from clinpred.services.api.genomics.v1 import genomics_pb2_grpc as gpb_grpc
from clinpred.services.api.tumor.v1 import tumor_pb2 as tpb
from clinpred.services.api.tumor.v1 import tumor_pb2_grpc as tpb_grpc
from clinpred.services.common.identity import NAME_RULE
from tests.fuzz.outcomes import TALLY, examples, print_tally
from tests.integration.deterioration.conftest import deterioration_package  # noqa: F401  (fixture)
from tests.integration.deterioration.test_service import patient
from tests.integration.mutual_tls_services import (
    AUDIENCE,
    CLIENT,
    ISSUER,
    OTHER_TENANT,
    READER,
    TENANT,
    ClientIdentity,
    ThreeServices,
    serve_three_services,
)

TALLIED = "access."
TIMEOUT = 30.0
# A patient of TENANT: another tenant asking for it must get NOT_FOUND, as for a patient nobody has.
PATIENT = "child-17"
# Refusals of access; NOT_FOUND for a patient of another tenant, INVALID_ARGUMENT never expected but harmless.
REFUSED = {
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
}
# gRPC's default limit of received metadata; above it the transport answers RESOURCE_EXHAUSTED on its own. It
# counts the headers gRPC itself sends too (:path, :authority, user-agent, grpc-timeout...: some 600 bytes).
METADATA_SOFT_LIMIT = 8192
GRPC_OWN_HEADERS = 1024
GRANTED = {(TENANT, CLIENT), (OTHER_TENANT, CLIENT)}


@pytest.fixture(scope="module", autouse=True)
def tally() -> Iterator[None]:
    yield
    print_tally(TALLIED)


@pytest.fixture(scope="module")
async def services(
    tmp_path_factory: pytest.TempPathFactory,
    tumor_package: ModelPackage,
    breast_package: ModelPackage,
    deterioration_package: ModelPackage,  # noqa: F811
) -> AsyncIterator[ThreeServices]:
    folder = tmp_path_factory.mktemp("access-fuzz")
    async with serve_three_services(folder, tumor_package, breast_package, deterioration_package) as served:
        with served.channel("deterioration") as channel:
            request = dpb.RegisterPatientRequest(patient=patient(PATIENT, "onc-a"))
            await asyncio.to_thread(lambda: dpb_grpc.DeteriorationServiceStub(channel).RegisterPatient(request, timeout=TIMEOUT))
        yield served


@dataclass(frozen=True)
class Probe:
    """One RPC with a valid request: `granted` is the status a caller the policy grants gets."""

    service: str
    name: str
    invoke: Callable[[grpc.Channel, tuple[tuple[str, str | bytes], ...]], object]
    granted: grpc.StatusCode = grpc.StatusCode.OK

    def grants(self, tenant: str, client: str) -> bool:
        """Whether the policy lets `client` of `tenant` call this RPC (READER only reads model information)."""
        return (tenant, client) in GRANTED or (
            tenant == TENANT and client == READER and self.name in ("GetModelInfo", "ListScores")
        )


def _classify_stream(channel: grpc.Channel, metadata: Any) -> object:
    requests = [tpb.ClassifyStreamRequest(tumor_case=tpb.TumorCase(case_id="c", features={"mean_radius": 14.0}))]
    return list(
        tpb_grpc.TumorClassificationServiceStub(channel).ClassifyStream(iter(requests), metadata=metadata, timeout=TIMEOUT)
    )


PROBES = (
    Probe(
        "tumor",
        "GetModelInfo",
        lambda c, m: tpb_grpc.TumorClassificationServiceStub(c).GetModelInfo(
            tpb.GetModelInfoRequest(), metadata=m, timeout=TIMEOUT
        ),
    ),
    # An incomplete case: a caller who gets this far is told INVALID_ARGUMENT.
    Probe("tumor", "ClassifyStream", _classify_stream, grpc.StatusCode.INVALID_ARGUMENT),
    Probe(
        "deterioration",
        "GetLatestRisk",
        lambda c, m: dpb_grpc.DeteriorationServiceStub(c).GetLatestRisk(
            dpb.GetLatestRiskRequest(patient_id=PATIENT), metadata=m, timeout=TIMEOUT
        ),
        grpc.StatusCode.NOT_FOUND,
    ),  # registered, never scored
    Probe(
        "deterioration",
        "GetModelInfo",
        lambda c, m: dpb_grpc.DeteriorationServiceStub(c).GetModelInfo(dpb.GetModelInfoRequest(), metadata=m, timeout=TIMEOUT),
    ),
    Probe(
        "genomics",
        "ListScores",
        lambda c, m: gpb_grpc.GenomicRiskServiceStub(c).ListScores(gpb.ListScoresRequest(), metadata=m, timeout=TIMEOUT),
    ),
    Probe(
        "genomics",
        "GetScoreLayout",
        lambda c, m: gpb_grpc.GenomicRiskServiceStub(c).GetScoreLayout(
            gpb.GetScoreLayoutRequest(score="breast"), metadata=m, timeout=TIMEOUT
        ),
    ),
)


def attempt(
    services: ThreeServices,
    probe: Probe,
    metadata: tuple[tuple[str, str | bytes], ...] = (),
    identity: ClientIdentity | None = None,
) -> grpc.StatusCode:
    with services.channel(probe.service, identity) as channel:
        try:
            probe.invoke(channel, metadata)
        except grpc.RpcError as error:
            code = error.code()
            assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (probe.name, code, error.details())
        else:
            code = grpc.StatusCode.OK
    TALLY[f"{TALLIED}{probe.service}.{probe.name}"][code.name] += 1
    return code


async def authorized_call_succeeds(services: ThreeServices, probe: Probe) -> None:
    code = await asyncio.to_thread(attempt, services, probe)
    assert code == probe.granted, (probe.name, code)


# --- strategies -----------------------------------------------------------------------------------

# What a metadata value (not -bin) may hold on the wire.
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)
base64url = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), min_size=1, max_size=80)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | printable,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(printable, inner, max_size=3),
    max_leaves=8,
)
CLAIMS = ("iss", "aud", "exp", "nbf", "iat", "tenant", "client_id", "scope", "sub")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def crafted_tokens(draw: st.DrawFn) -> str:
    """A compact JWS whose header and claims are JSON we choose, with a signature that cannot verify."""
    header = draw(
        st.fixed_dictionaries(
            {"alg": st.sampled_from(["none", "HS256", "RS256", "ES256", "ES512", "PS256", ""])},
            optional={"kid": st.one_of(st.just("k1"), printable), "typ": printable, "jku": printable, "crit": json_values},
        )
    )
    claims = draw(st.dictionaries(st.sampled_from(CLAIMS), json_values, max_size=6))
    signature = draw(st.one_of(st.just(""), base64url))
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{signature}"


names = st.one_of(st.sampled_from([TENANT, OTHER_TENANT, CLIENT, READER]), st.from_regex(NAME_RULE, fullmatch=True), printable)


@st.composite
def signed_claims(draw: st.DrawFn) -> dict[str, Any]:
    """Claims for a token signed with the JWK set's key: each may be right, wrong, or of the wrong type."""
    now = int(time.time())
    return draw(
        st.fixed_dictionaries(
            {},
            optional={
                "tenant": st.one_of(names, json_values),
                "client_id": st.one_of(names, json_values),
                "scope": st.one_of(
                    st.sampled_from(["clinpred/*", "system/*.read", "clinpred/model.read", ""]), printable, json_values
                ),
                "exp": st.one_of(st.just(now - 3600), st.just(now + 600), st.integers(-(2**40), 2**40), printable),
                "nbf": st.one_of(st.just(now + 3600), st.integers(-(2**40), 2**40)),
                "aud": st.one_of(st.just(AUDIENCE), st.just([AUDIENCE, "x"]), printable, json_values),
                "iss": st.one_of(st.just(ISSUER), printable),
            },
        )
    )


@st.composite
def authorization_metadata(draw: st.DrawFn, services: ThreeServices) -> tuple[tuple[str, str | bytes], ...]:
    kind = draw(st.sampled_from(["garbage", "huge", "bearer random", "bearer crafted", "signed", "repeated", "binary", "none"]))
    entries: list[tuple[str, str | bytes]] = []
    if kind == "garbage":
        entries.append(("authorization", draw(printable)))
    elif kind == "huge":
        size = draw(st.integers(4000, 12000))
        entries.append(("authorization", draw(st.sampled_from(["Bearer ", "", "Basic "])) + "A" * size))
    elif kind == "bearer random":
        scheme = draw(st.sampled_from(["Bearer", "bearer", "BEARER", "Bearer ", "DPoP", "Bearer  "]))
        token = draw(st.one_of(printable, st.builds(lambda *p: ".".join(p), base64url, base64url, base64url)))
        entries.append(("authorization", f"{scheme} {token}"))
    elif kind == "bearer crafted":
        entries.append(("authorization", "Bearer " + draw(crafted_tokens())))
    elif kind == "signed":
        token = services.bearer_token(**draw(signed_claims()))
        entries.append(("authorization", draw(st.sampled_from(["", " ", "x"])) + token if draw(st.booleans()) else token))
    elif kind == "repeated":
        valid = services.bearer_token(scope="clinpred/*")
        entries += [("authorization", draw(st.sampled_from([valid, "Bearer x.y.z"]))) for _ in range(draw(st.integers(2, 4)))]
    elif kind == "binary":
        key = draw(st.sampled_from(["authorization-bin", "x-clinpred-bin", "grpc-trace-bin-x-bin"]))
        entries.append((key, draw(st.binary(max_size=200))))
    if draw(st.booleans()):
        request_ids = draw(
            st.lists(
                st.one_of(printable, st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=400)),
                min_size=1,
                max_size=3,
            )
        )
        entries += [("x-request-id", value) for value in request_ids]
    return tuple(draw(st.permutations(entries)))


def _metadata_size(metadata: tuple[tuple[str, str | bytes], ...]) -> int:
    return sum(len(key) + len(value) + 32 for key, value in metadata)


@examples(60)
@given(data=st.data())
async def test_fuzz_authorization_metadata(services: ThreeServices, data: st.DataObject) -> None:
    probe = data.draw(st.sampled_from(PROBES))
    metadata = data.draw(authorization_metadata(services))
    code = await asyncio.to_thread(attempt, services, probe, metadata)
    authorizations = [value for key, value in metadata if key == "authorization"]
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        assert _metadata_size(metadata) + GRPC_OWN_HEADERS > METADATA_SOFT_LIMIT, (probe.name, metadata)
    elif not authorizations:
        # Only the certificate speaks: binary keys and request ids change nothing.
        assert code == probe.granted, (probe.name, code)
    elif code != probe.granted:
        assert code in REFUSED, (probe.name, code)
    else:
        # Let through only with one token the JWK set verifies.
        assert len(authorizations) == 1 and str(authorizations[0]).startswith("Bearer ey"), metadata
    await authorized_call_succeeds(services, probe)


uri_sans = st.one_of(
    st.builds(lambda tenant, client: f"spiffe://clinpred.local/tenant/{tenant}/client/{client}", names, names),
    st.builds(
        lambda domain, path: f"spiffe://{domain}/{path}",
        st.sampled_from(["clinpred.local", "evil.local", "", "CLINPRED.LOCAL"]),
        printable,
    ),
    st.builds(lambda scheme, rest: f"{scheme}://{rest}", st.sampled_from(["https", "SPIFFE", "urn", "spiffe"]), printable),
    printable.filter(bool),
)


def _spiffe_names(uris: list[str]) -> tuple[str, str]:
    """(tenant, client) of a certificate with one SPIFFE ID among its URI SANs, well formed and of the trust
    domain (other URIs do not count), else ("", "")."""
    prefix = "spiffe://clinpred.local/tenant/"
    spiffe_ids = [uri for uri in uris if uri[:9].lower() == "spiffe://"]
    if len(spiffe_ids) != 1 or not spiffe_ids[0].startswith(prefix):
        return "", ""
    parts = spiffe_ids[0].removeprefix(prefix).split("/")
    if len(parts) != 3 or parts[1] != "client" or not all(re.fullmatch(NAME_RULE, name) for name in parts[::2]):
        return "", ""
    return parts[0], parts[2]


@examples(40)
@given(data=st.data())
async def test_fuzz_client_certificates(services: ThreeServices, data: st.DataObject) -> None:
    probe = data.draw(st.sampled_from(PROBES))
    kind = data.draw(st.sampled_from(["issued", "uris", "no san"]))
    if kind == "issued":
        tenant = data.draw(st.one_of(st.sampled_from([TENANT, OTHER_TENANT]), st.from_regex(NAME_RULE, fullmatch=True)))
        client = data.draw(st.one_of(st.sampled_from([CLIENT, READER]), st.from_regex(NAME_RULE, fullmatch=True)))
        identity = await asyncio.to_thread(services.identity, tenant, client)
    else:
        uris = data.draw(st.lists(uri_sans, min_size=1, max_size=3)) if kind == "uris" else []
        identity = await asyncio.to_thread(services.signed_client, uris)
        tenant, client = _spiffe_names(uris)
    code = await asyncio.to_thread(attempt, services, probe, (), identity)
    if probe.grants(tenant, client):
        # For another tenant, TENANT's patient is NOT_FOUND: what GetLatestRisk answers TENANT too (never scored).
        assert code == probe.granted, (probe.name, code)
    else:
        # Another tenant's patient is NOT_FOUND, as a patient nobody has; anyone else is refused.
        assert code in REFUSED, (probe.name, code)
    await authorized_call_succeeds(services, probe)


async def test_certificates_of_another_tenant_unknown_clients_and_revoked_ones(services: ThreeServices, tmp_path: Path) -> None:
    latest = PROBES[2]
    assert (
        await asyncio.to_thread(attempt, services, latest, (), services.identity(OTHER_TENANT, CLIENT))
        == grpc.StatusCode.NOT_FOUND
    )
    for tenant, client in ((TENANT, "unknown-app"), ("unknown-hospital", CLIENT)):
        code = await asyncio.to_thread(attempt, services, latest, (), services.identity(tenant, client))
        assert code == grpc.StatusCode.PERMISSION_DENIED
    assert await asyncio.to_thread(attempt, services, latest, (), services.signed_client([])) == grpc.StatusCode.UNAUTHENTICATED
    lost = issue_client_certificate(services.tls, TENANT, CLIENT, out=tmp_path / "lost-tablet")
    identity = ClientIdentity(lost.certificate.read_bytes(), lost.key.read_bytes())
    assert await asyncio.to_thread(attempt, services, latest, (), identity) == latest.granted
    revoke_certificate(services.tls, lost.certificate)
    for probe in PROBES:
        # Each service looks at the revocation list again within a second of its change.
        for _ in range(100):
            code = await asyncio.to_thread(attempt, services, probe, (), identity)
            if code != probe.granted:
                break
            await asyncio.sleep(0.05)
        assert code == grpc.StatusCode.UNAUTHENTICATED, (probe.name, code)
        await authorized_call_succeeds(services, probe)
