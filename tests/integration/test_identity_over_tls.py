"""Caller identity over real mutual TLS: a grpc.aio server on 127.0.0.1 asks the Authenticator who is calling.

Certificates are the ones `clinpred tls init/client/revoke` make; the server's generic handler answers
bytes, so no protobuf is involved.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clinpred.cli.certificates import issue_client_certificate, revoke_certificate, write_mutual_tls_folder
from clinpred.pilots.common.errors import Unauthenticated
from clinpred.services.common.identity import Authenticator, BearerTokenVerifier, RevocationList, read_trust_domain

METHOD = "/clinpred.test.Identity/WhoAmI"
ISSUER = "https://auth.hospital.example"
AUDIENCE = "clinpred"


@dataclass(frozen=True)
class Client:
    certificate: bytes
    key: bytes


@dataclass(frozen=True)
class Setup:
    folder: Path
    target: str
    token_key: ec.EllipticCurvePrivateKey
    seen_auth_context_keys: list[str]


def _read(certificate: Path, key: Path) -> Client:
    return Client(certificate.read_bytes(), key.read_bytes())


@pytest.fixture(scope="module")
async def setup(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Setup]:
    folder = tmp_path_factory.mktemp("tls")
    write_mutual_tls_folder(folder, hosts=["localhost", "127.0.0.1"])
    token_key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(token_key.public_key(), as_dict=True), "kid": "k1", "alg": "ES256"}
    (folder / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    authenticator = Authenticator(
        read_trust_domain(folder / "trust-domain"),
        RevocationList(folder / "crl.pem", folder / "ca.crt", check_interval=0.0),
        BearerTokenVerifier(folder / "jwks.json", ISSUER, AUDIENCE),
    )
    seen: list[str] = []

    async def who_am_i(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        seen[:] = sorted(context.auth_context())
        try:
            caller = authenticator.authenticate(context.auth_context(), context.invocation_metadata() or ())
        except Unauthenticated as error:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, error.message)
        return f"{caller.tenant}/{caller.client}/{caller.authenticated_by}".encode()

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "clinpred.test.Identity", {"WhoAmI": grpc.unary_unary_rpc_method_handler(who_am_i)}
            ),
        )
    )
    credentials = grpc.ssl_server_credentials(
        [((folder / "server.key").read_bytes(), (folder / "server.crt").read_bytes())],
        root_certificates=(folder / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    yield Setup(folder, f"127.0.0.1:{port}", token_key, seen)
    await server.stop(grace=None)


async def call(setup: Setup, client: Client, metadata: tuple[tuple[str, str], ...] = ()) -> str:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(setup.folder / "ca.crt").read_bytes(), private_key=client.key, certificate_chain=client.certificate
    )
    async with grpc.aio.secure_channel(setup.target, credentials) as channel:
        answer: bytes = await channel.unary_unary(METHOD)(b"", metadata=metadata, timeout=10)
    return answer.decode()


async def refused(setup: Setup, client: Client, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(setup, client, metadata)
    return caught.value


def token(setup: Setup, tenant: str) -> tuple[tuple[str, str], ...]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now + 300,
        "tenant": tenant,
        "client_id": "scheduler",
        "scope": "system/*.read",
    }
    return (("authorization", "Bearer " + jwt.encode(claims, setup.token_key, algorithm="ES256", headers={"kid": "k1"})),)


def ca_signed_without_identity(folder: Path) -> Client:
    """A certificate the CA signed for client auth, naming only a CN: TLS accepts it, identity does not."""
    ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anyone-at-all")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return Client(certificate.public_bytes(serialization.Encoding.PEM), private)


async def test_the_identity_of_a_tls_client_certificate_comes_back(setup: Setup) -> None:
    issued = issue_client_certificate(setup.folder, "north-hospital", "ward-app")
    assert await call(setup, _read(issued.certificate, issued.key)) == "north-hospital/ward-app/certificate"
    assert await call(setup, _read(setup.folder / "client.crt", setup.folder / "client.key")) == "demo/cli/certificate"
    # What grpc.aio hands the servicer under mutual TLS (the wiring relies on these keys).
    assert {"transport_security_type", "x509_pem_cert"} <= set(setup.seen_auth_context_keys)


async def test_a_ca_signed_certificate_without_the_san_is_unauthenticated(setup: Setup) -> None:
    error = await refused(setup, ca_signed_without_identity(setup.folder))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no SPIFFE ID" in (error.details() or "")


async def test_a_revoked_certificate_is_unauthenticated_from_the_next_call_on(setup: Setup) -> None:
    issued = issue_client_certificate(setup.folder, "north-hospital", "lost-tablet")
    client = _read(issued.certificate, issued.key)
    assert await call(setup, client) == "north-hospital/lost-tablet/certificate"
    revoke_certificate(setup.folder, issued.certificate)
    error = await refused(setup, client)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (error.details() or "")


async def test_a_certificate_of_another_ca_is_refused_in_the_handshake(setup: Setup, tmp_path: Path) -> None:
    write_mutual_tls_folder(tmp_path / "other", hosts=["localhost"])
    error = await refused(setup, _read(tmp_path / "other" / "client.crt", tmp_path / "other" / "client.key"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_bearer_token_over_tls_with_a_certificate_of_its_tenant(setup: Setup) -> None:
    issued = issue_client_certificate(setup.folder, "north-hospital", "gateway")
    client = _read(issued.certificate, issued.key)
    assert await call(setup, client, token(setup, "north-hospital")) == "north-hospital/scheduler/token"
    error = await refused(setup, client, token(setup, "south-hospital"))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "tenant is not the client certificate's" in (error.details() or "")
