"""A private certificate authority for mutual TLS: server and client certificates, and revocation.

`write_mutual_tls_folder` writes a folder that `--tls-dir` reads:

    ca.crt ca.key           the CA (ca.key 0600: it issues client certificates and signs the CRL)
    server.crt server.key   for the hosts given
    client.crt client.key   the default client, spiffe://<trust domain>/tenant/<tenant>/client/<client>
    trust-domain            the trust domain of the client identities, one line
    crl.pem                 the certificate revocation list, signed by the CA (empty at first)
    clients/<tenant>/<client>.crt|.key   further clients (`issue_client_certificate`)
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clinpred.services.common.identity import DEFAULT_TRUST_DOMAIN, TRUST_DOMAIN_FILE, read_trust_domain, spiffe_id

CRL_FILE = "crl.pem"
# The access policy of a trial folder, granting its client every scope (`clinpred serve --tls-dir` applies it).
TRIAL_POLICY_FILE = "policy.toml"
FOLDER_FILES = (
    "ca.crt",
    "ca.key",
    "server.crt",
    "server.key",
    "client.crt",
    "client.key",
    TRUST_DOMAIN_FILE,
    CRL_FILE,
    TRIAL_POLICY_FILE,
)
_BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: Path
    key: Path
    spiffe_id: str
    serial_number: int
    not_valid_after: datetime.datetime


@dataclass(frozen=True)
class Revocation:
    crl: Path
    serial_number: int
    newly_revoked: bool
    revoked_count: int


class CertificateAuthorityError(Exception):
    """The folder's CA, its CRL, or a certificate handed in cannot be used; the message says why."""


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "clinpred"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _hosts_san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _write_private(path: Path, data: bytes) -> None:
    """Writes a key readable by its owner only, from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(data)


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers (a server reloading the CRL) see the old file or the new one, never half of one."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as file:
        file.write(data)
    os.chmod(file.name, 0o644)
    os.replace(file.name, path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    usage: x509.ObjectIdentifier,
    san: x509.SubjectAlternativeName,
    days: int,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(san, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def client_certificate(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, identity: str, common_name: str, days: int
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A client certificate (EKU clientAuth) whose one URI SAN is `identity`, and its new key."""
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)])
    subject = _name(common_name)
    return _leaf(ca, ca_key, subject, key, ExtendedKeyUsageOID.CLIENT_AUTH, san, days), key


def _signed_crl(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, entries: list[x509.RevokedCertificate], number: int
) -> x509.CertificateRevocationList:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now - _BACKDATE)
        # Signed again at every revocation; good until the CA itself expires.
        .next_update(ca.not_valid_after_utc)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    for entry in entries:
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(ca_key, hashes.SHA256())


def _issue(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    trust_domain: str,
    tenant: str,
    client: str,
    days: int,
    prefix: Path,
) -> IssuedCertificate:
    identity = spiffe_id(trust_domain, tenant, client)
    certificate, key = client_certificate(ca, ca_key, identity, client, days)
    certificate_path, key_path = prefix.with_name(prefix.name + ".crt"), prefix.with_name(prefix.name + ".key")
    certificate_path.parent.mkdir(parents=True, exist_ok=True)
    certificate_path.write_bytes(_pem(certificate))
    _write_private(key_path, _pem_key(key))
    return IssuedCertificate(certificate_path, key_path, identity, certificate.serial_number, certificate.not_valid_after_utc)


def write_mutual_tls_folder(
    folder: Path,
    hosts: list[str],
    days: int = 365,
    trust_domain: str = DEFAULT_TRUST_DOMAIN,
    tenant: str = "demo",
    client: str = "cli",
) -> IssuedCertificate:
    """A new CA with a server certificate for `hosts` and the default client; returns the client's certificate."""
    spiffe_id(trust_domain, tenant, client)  # ValueError for a bad name, before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("clinpred private CA"))
        .issuer_name(_name("clinpred private CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.crt").write_bytes(_pem(ca))
    _write_private(folder / "ca.key", _pem_key(ca_key))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _leaf(ca, ca_key, _name("clinpred server"), server_key, ExtendedKeyUsageOID.SERVER_AUTH, _hosts_san(hosts), days)
    (folder / "server.crt").write_bytes(_pem(server))
    _write_private(folder / "server.key", _pem_key(server_key))
    (folder / TRUST_DOMAIN_FILE).write_text(trust_domain + "\n", encoding="ascii")
    _write_atomically(folder / CRL_FILE, _signed_crl(ca, ca_key, [], 1).public_bytes(serialization.Encoding.PEM))
    policy = folder / TRIAL_POLICY_FILE
    if not policy.exists():
        # A trial folder's policy grants its own client everything; production writes its own grants.
        policy.write_text(
            "# Access policy of this trial folder (`clinpred serve --tls-dir` applies it): deny by default.\n"
            f'version = 1\n\n[[grants]]\ntenant = "{tenant}"\nclients = ["{client}"]\n'
            'scopes = ["system/*.*", "clinpred/*"]\n'
        )
    return _issue(ca, ca_key, trust_domain, tenant, client, days, folder / "client")


def _authority(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    missing = [name for name in ("ca.crt", "ca.key") if not (folder / name).is_file()]
    if missing:
        raise CertificateAuthorityError(f"{folder} lacks {', '.join(missing)}; `clinpred tls init` writes them")
    try:
        ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
        ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
    except (ValueError, TypeError):
        raise CertificateAuthorityError(f"{folder}: ca.crt or ca.key is not an unencrypted PEM") from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey) or ca_key.public_key() != ca.public_key():
        raise CertificateAuthorityError(f"{folder}: ca.key is not the EC key of ca.crt")
    return ca, ca_key


def issue_client_certificate(
    folder: Path, tenant: str, client: str, days: int = 365, out: Path | None = None
) -> IssuedCertificate:
    """A client certificate signed by the folder's CA, written to `out`.crt/.key (default clients/<tenant>/<client>)."""
    ca, ca_key = _authority(folder)
    try:
        trust_domain = read_trust_domain(folder / TRUST_DOMAIN_FILE)
    except OSError:
        raise CertificateAuthorityError(f"{folder} lacks {TRUST_DOMAIN_FILE}; `clinpred tls init` writes it") from None
    spiffe_id(trust_domain, tenant, client)
    prefix = out if out is not None else folder / "clients" / tenant / client
    return _issue(ca, ca_key, trust_domain, tenant, client, days, prefix)


def _read_certificate(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    try:
        return x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError:
        raise CertificateAuthorityError(f"{path} is not a PEM or DER certificate") from None


def revoke_certificate(folder: Path, certificate_file: Path) -> Revocation:
    """Adds the certificate's serial number to the folder's CRL (created if missing), signed again by the CA."""
    ca, ca_key = _authority(folder)
    certificate = _read_certificate(certificate_file)
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise CertificateAuthorityError(f"{certificate_file} was not issued by the CA of {folder}") from None
    crl_path = folder / CRL_FILE
    entries: list[x509.RevokedCertificate] = []
    number = 1
    if crl_path.exists():
        try:
            crl = x509.load_pem_x509_crl(crl_path.read_bytes())
        except ValueError:
            raise CertificateAuthorityError(f"{crl_path} is not a PEM CRL") from None
        if crl.issuer != ca.subject or not crl.is_signature_valid(ca_key.public_key()):
            raise CertificateAuthorityError(f"{crl_path} is not signed by the CA of {folder}")
        entries = list(crl)
        try:
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
        except x509.ExtensionNotFound:
            number = 1
    if any(entry.serial_number == certificate.serial_number for entry in entries):
        return Revocation(crl_path, certificate.serial_number, newly_revoked=False, revoked_count=len(entries))
    entries.append(
        x509.RevokedCertificateBuilder()
        .serial_number(certificate.serial_number)
        .revocation_date(datetime.datetime.now(datetime.UTC))
        .build()
    )
    _write_atomically(crl_path, _signed_crl(ca, ca_key, entries, number).public_bytes(serialization.Encoding.PEM))
    return Revocation(crl_path, certificate.serial_number, newly_revoked=True, revoked_count=len(entries))
