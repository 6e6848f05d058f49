"""The three services in this process over mutual TLS with one policy, audit key and JWK set, as production runs them.

Tumour and genomics write their audit trail to a folder each, deterioration to its SQLite database.
Clients are certificates of the folder's CA (`issue_client_certificate`), or any certificate the CA signs
(`signed_client`); bearer tokens are ES256 JWTs the JWK set verifies (`bearer_token`).
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clinpred.cli.certificates import issue_client_certificate, write_mutual_tls_folder
from clinpred.pilots.common.model_package import ModelPackage
from clinpred.services.common.audit import write_key_file
from clinpred.services.common.model_store import register_package
from clinpred.services.common.sealing_keys import init_keyring
from clinpred.services.common.serving import ServiceMount, start_inprocess_server
from clinpred.services.deterioration.service import deterioration_mount
from clinpred.services.deterioration.settings import DeteriorationSettings
from clinpred.services.genomics.service import genomics_mount
from clinpred.services.genomics.settings import GenomicsSettings
from clinpred.services.tumor.service import tumor_mount
from clinpred.services.tumor.settings import TumorSettings

TENANT = "st-olav"
OTHER_TENANT = "haukeland"
# Every scope of every service; READER may only read model information.
CLIENT = "app"
READER = "reader"
ISSUER = "https://auth.hospital.example"
AUDIENCE = "clinpred"
POLICY = f"""
version = 1
[[grants]]
tenant = "{TENANT}"
clients = ["{CLIENT}"]
scopes = ["system/*.*", "clinpred/*"]
[[grants]]
tenant = "{TENANT}"
clients = ["{READER}"]
scopes = ["clinpred/model.read"]
[[grants]]
tenant = "{OTHER_TENANT}"
clients = ["{CLIENT}"]
scopes = ["system/*.*", "clinpred/*"]
"""
SERVICES = ("tumor", "deterioration", "genomics")


@dataclass(frozen=True)
class ClientIdentity:
    certificate: bytes
    key: bytes


@dataclass(frozen=True)
class ThreeServices:
    folder: Path
    tls: Path
    targets: dict[str, str]
    audit_dirs: dict[str, Path]
    database_url: str
    key_file: Path
    token_key: ec.EllipticCurvePrivateKey

    def identity(self, tenant: str = TENANT, client: str = CLIENT) -> ClientIdentity:
        issued = self.tls / "clients" / tenant / f"{client}.crt"
        if not issued.exists():
            issue_client_certificate(self.tls, tenant, client)
        return ClientIdentity(issued.read_bytes(), issued.with_suffix(".key").read_bytes())

    def signed_client(self, uris: list[str], *, client_auth: bool = True) -> ClientIdentity:
        """A certificate the CA signs for `uris` as URI SANs (none: a CN only), so TLS accepts it and identity decides."""
        ca = x509.load_pem_x509_certificate((self.tls / "ca.crt").read_bytes())
        ca_key = serialization.load_pem_private_key((self.tls / "ca.key").read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client_auth else ExtendedKeyUsageOID.CODE_SIGNING
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzzed")]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if uris:
            names = [x509.UniformResourceIdentifier(uri) for uri in uris]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(ca_key, hashes.SHA256())
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return ClientIdentity(certificate.public_bytes(serialization.Encoding.PEM), private)

    def channel(self, service: str, identity: ClientIdentity | None = None) -> grpc.Channel:
        """A blocking channel (blocking clients report the server's status even when it refuses a stream early)."""
        identity = identity or self.identity()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(self.tls / "ca.crt").read_bytes(),
            private_key=identity.key,
            certificate_chain=identity.certificate,
        )
        return grpc.secure_channel(self.targets[service], credentials)

    def bearer_token(self, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "tenant": TENANT, "client_id": CLIENT} | claims
        return "Bearer " + jwt.encode(payload, self.token_key, algorithm="ES256", headers={"kid": "k1"})


def _access(folder: Path, tls: Path, key_file: Path) -> dict[str, Any]:
    return {
        "development_plaintext": False,
        "policy_file": folder / "policy.toml",
        "audit_key_file": key_file,
        "ca_file": tls / "ca.crt",
        "crl_file": tls / "crl.pem",
        "jwks_file": folder / "jwks.json",
        "token_issuer": ISSUER,
        "token_audience": AUDIENCE,
        # Fuzzing calls as fast as it can; the rate limit is another test's subject.
        "rate_per_second": 1e6,
        "rate_burst": 1_000_000,
    }


@asynccontextmanager
async def serve_three_services(
    folder: Path,
    tumor_package: ModelPackage,
    breast_package: ModelPackage,
    deterioration_package: ModelPackage,
    database_url: str | None = None,
) -> AsyncIterator[ThreeServices]:
    """Serves the three services until the block ends; deterioration on `database_url` (default: an SQLite file in `folder`)."""
    tls = folder / "tls"
    write_mutual_tls_folder(tls, hosts=["localhost", "127.0.0.1"])
    (folder / "policy.toml").write_text(POLICY)
    key_file = folder / "audit.key"
    write_key_file(key_file)
    token_key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(token_key.public_key(), as_dict=True), "kid": "k1", "alg": "ES256"}
    (folder / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    for package in (tumor_package, breast_package, deterioration_package):
        register_package(package)
    access: dict[str, Any] = {**_access(folder, tls, key_file), "sealing_keys_dir": folder / "sealing-keys"}
    init_keyring(folder / "sealing-keys", datetime.datetime.now(datetime.UTC))
    audit_dirs = {name: folder / "audit" / name for name in ("tumor", "genomics")}
    database_url = database_url or f"sqlite:///{folder / 'risk.db'}"
    mounts: dict[str, ServiceMount] = {
        "tumor": tumor_mount(TumorSettings(max_batch_size=16, audit_dir=audit_dirs["tumor"], **access)),
        "deterioration": deterioration_mount(
            DeteriorationSettings(database_url=database_url, watch_poll_seconds=0.05, max_batch_size=20, **access)
        ),
        "genomics": genomics_mount(
            GenomicsSettings(max_upload_bytes=4 * 1024 * 1024, max_batch_size=8, audit_dir=audit_dirs["genomics"], **access)
        ),
    }
    credentials = grpc.ssl_server_credentials(
        [((tls / "server.key").read_bytes(), (tls / "server.crt").read_bytes())],
        root_certificates=(tls / "ca.crt").read_bytes(),
        require_client_auth=True,
    )
    servers: list[grpc.aio.Server] = []
    targets: dict[str, str] = {}
    try:
        for name, mount in mounts.items():
            server, port = await start_inprocess_server(mount, credentials=credentials)
            servers.append(server)
            targets[name] = f"127.0.0.1:{port}"
        yield ThreeServices(folder, tls, targets, audit_dirs, database_url, key_file, token_key)
    finally:
        for server in servers:
            await server.stop(grace=None)
