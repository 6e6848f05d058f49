"""Caller identity: SPIFFE client certificates, the CRL, JWT bearer tokens, and the authenticator over all three.

Certificates come from the `clinpred tls` functions and from `cryptography` directly; tokens are signed
with real RS256 and ES256 keys published in a JWKS file.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinpred.cli.certificates import issue_client_certificate, revoke_certificate, write_mutual_tls_folder
from clinpred.pilots.common.errors import Unauthenticated
from clinpred.services.common.identity import (
    MAX_AUTHORIZATION_LENGTH,
    Authenticator,
    BearerTokenVerifier,
    Caller,
    RevocationList,
    caller_from_certificate_pem,
    read_trust_domain,
    spiffe_id,
)

DOMAIN = "clinpred.local"
ISSUER = "https://auth.hospital.example"
AUDIENCE = "clinpred-deterioration"


class FakeClock:
    """Monotonic time the test moves by hand, so reload checks never depend on the wall clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Authority:
    folder: Path
    ca: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _authority(folder: Path) -> Authority:
    write_mutual_tls_folder(folder, hosts=["localhost"], tenant="demo", client="cli")
    key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Authority(folder, x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes()), key)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return _authority(tmp_path_factory.mktemp("ca"))


def certificate_pem(
    authority: Authority,
    *,
    uris: tuple[str, ...] = (f"spiffe://{DOMAIN}/tenant/acme/client/app",),
    usages: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    common_name: str = "app",
    valid_from: datetime.timedelta = datetime.timedelta(minutes=-5),
    valid_for: datetime.timedelta = datetime.timedelta(days=1),
    ca: bool = False,
) -> bytes:
    """A certificate signed by `authority`'s CA with exactly the SANs and key usages given."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(authority.ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + valid_from)
        .not_valid_after(now + valid_from + valid_for)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri) for uri in uris]), critical=False
        )
    return builder.sign(authority.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


# --- client certificates ---------------------------------------------------------------------------


def test_the_default_client_of_tls_init_is_demo_cli(authority: Authority) -> None:
    pem = (authority.folder / "client.crt").read_bytes()
    assert caller_from_certificate_pem(pem, DOMAIN, None) == Caller("demo", "cli", "certificate", None)
    assert read_trust_domain(authority.folder / "trust-domain") == DOMAIN


def test_a_tls_client_certificate_names_its_tenant_and_client(authority: Authority) -> None:
    issued = issue_client_certificate(authority.folder, "north-hospital", "ward.app_2")
    assert issued.certificate == authority.folder / "clients" / "north-hospital" / "ward.app_2.crt"
    caller = caller_from_certificate_pem(issued.certificate.read_bytes(), DOMAIN, None)
    assert caller == Caller("north-hospital", "ward.app_2", "certificate")
    assert caller.token_scopes is None


def test_other_uri_sans_beside_one_spiffe_id_are_ignored(authority: Authority) -> None:
    pem = certificate_pem(authority, uris=("https://hospital.example/device/7", f"spiffe://{DOMAIN}/tenant/t1/client/c1"))
    assert caller_from_certificate_pem(pem, DOMAIN, None) == Caller("t1", "c1", "certificate")


REFUSED = {
    "no-eku": ({"usages": None}, "no extended key usage clientAuth"),
    "server-auth-only": ({"usages": (ExtendedKeyUsageOID.SERVER_AUTH,)}, "lacks clientAuth"),
    "cn-only": ({"uris": (), "common_name": "anyone-at-all"}, "no SPIFFE ID"),
    "not-spiffe": ({"uris": ("https://hospital.example/tenant/acme/client/app",)}, "no SPIFFE ID"),
    "two-spiffe-ids": (
        {"uris": (f"spiffe://{DOMAIN}/tenant/a/client/b", f"spiffe://{DOMAIN}/tenant/c/client/d")},
        "more than one SPIFFE ID",
    ),
    "wrong-trust-domain": ({"uris": ("spiffe://other.example/tenant/acme/client/app",)}, "not of trust domain"),
    "domain-prefix-trick": ({"uris": (f"spiffe://{DOMAIN}.evil/tenant/acme/client/app",)}, "not of trust domain"),
    "upper-case-tenant": ({"uris": (f"spiffe://{DOMAIN}/tenant/Acme/client/app",)}, "path is not"),
    "tenant-starts-with-dash": ({"uris": (f"spiffe://{DOMAIN}/tenant/-acme/client/app",)}, "path is not"),
    "tenant-too-long": ({"uris": (f"spiffe://{DOMAIN}/tenant/{'a' * 64}/client/app",)}, "path is not"),
    "extra-segment": ({"uris": (f"spiffe://{DOMAIN}/tenant/acme/client/app/x",)}, "path is not"),
    "no-client": ({"uris": (f"spiffe://{DOMAIN}/tenant/acme",)}, "path is not"),
    "query": ({"uris": (f"spiffe://{DOMAIN}/tenant/acme/client/app?x=1",)}, "path is not"),
    "swapped": ({"uris": (f"spiffe://{DOMAIN}/client/app/tenant/acme",)}, "path is not"),
    "expired": ({"valid_from": datetime.timedelta(days=-3), "valid_for": datetime.timedelta(days=1)}, "expired"),
    "not-yet-valid": ({"valid_from": datetime.timedelta(days=1)}, "not yet valid"),
    "ca-certificate": ({"ca": True}, "it is a CA certificate"),
}


@pytest.mark.parametrize(("options", "rule"), REFUSED.values(), ids=REFUSED.keys())
def test_a_certificate_breaking_a_rule_is_unauthenticated(authority: Authority, options: dict[str, Any], rule: str) -> None:
    pem = certificate_pem(authority, **options)
    with pytest.raises(Unauthenticated) as caught:
        caller_from_certificate_pem(pem, DOMAIN, None)
    assert caught.value.status == "UNAUTHENTICATED"
    assert rule in caught.value.message
    # Short, bounded, and nothing read from the certificate comes back.
    assert len(caught.value.message) < 140
    assert "anyone-at-all" not in caught.value.message and "acme" not in caught.value.message


@pytest.mark.parametrize("pem", [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_an_unreadable_certificate_is_unauthenticated(pem: bytes) -> None:
    with pytest.raises(Unauthenticated, match="cannot be read"):
        caller_from_certificate_pem(pem, DOMAIN, None)


def test_spiffe_ids_are_built_only_from_valid_names() -> None:
    assert spiffe_id(DOMAIN, "demo", "cli") == "spiffe://clinpred.local/tenant/demo/client/cli"
    for tenant, client in (("Demo", "cli"), ("demo", ""), ("demo", "a/b"), ("d" * 64, "cli")):
        with pytest.raises(ValueError, match="must match"):
            spiffe_id(DOMAIN, tenant, client)
    with pytest.raises(ValueError, match="trust domain"):
        spiffe_id("Clinpred/Local", "demo", "cli")


# --- revocation ------------------------------------------------------------------------------------


@pytest.fixture
def fresh_authority(tmp_path: Path) -> Authority:
    return _authority(tmp_path / "ca")


def test_a_revoked_certificate_is_unauthenticated_and_others_are_not(fresh_authority: Authority) -> None:
    revoked = issue_client_certificate(fresh_authority.folder, "acme", "lost-laptop")
    kept = issue_client_certificate(fresh_authority.folder, "acme", "desk")
    revoke_certificate(fresh_authority.folder, revoked.certificate)
    revocations = RevocationList(fresh_authority.folder / "crl.pem", fresh_authority.folder / "ca.crt")
    with pytest.raises(Unauthenticated, match="it is revoked"):
        caller_from_certificate_pem(revoked.certificate.read_bytes(), DOMAIN, revocations)
    assert caller_from_certificate_pem(kept.certificate.read_bytes(), DOMAIN, revocations).client == "desk"


def test_a_der_crl_is_read_too(fresh_authority: Authority, tmp_path: Path) -> None:
    revoked = issue_client_certificate(fresh_authority.folder, "acme", "old")
    revoke_certificate(fresh_authority.folder, revoked.certificate)
    der = tmp_path / "crl.der"
    der.write_bytes(
        x509.load_pem_x509_crl((fresh_authority.folder / "crl.pem").read_bytes()).public_bytes(serialization.Encoding.DER)
    )
    revocations = RevocationList(der, fresh_authority.folder / "ca.crt")
    assert revocations.is_revoked(x509.load_pem_x509_certificate(revoked.certificate.read_bytes()))


def test_a_crl_of_another_ca_is_refused_at_start(fresh_authority: Authority, tmp_path: Path) -> None:
    # Same subject name ("clinpred private CA"), other key: only the signature tells them apart.
    other = _authority(tmp_path / "other")
    with pytest.raises(ValueError, match="signature does not verify"):
        RevocationList(other.folder / "crl.pem", fresh_authority.folder / "ca.crt")
    with pytest.raises(ValueError, match="cannot be read"):
        RevocationList(tmp_path / "missing.pem", fresh_authority.folder / "ca.crt")
    (tmp_path / "garbage.pem").write_bytes(b"-----BEGIN X509 CRL-----\nnope\n-----END X509 CRL-----\n")
    with pytest.raises(ValueError, match="cannot be used"):
        RevocationList(tmp_path / "garbage.pem", fresh_authority.folder / "ca.crt")


def test_the_crl_is_reloaded_when_it_changes_at_most_once_per_second(fresh_authority: Authority) -> None:
    clock = FakeClock()
    revocations = RevocationList(fresh_authority.folder / "crl.pem", fresh_authority.folder / "ca.crt", clock=clock)
    issued = issue_client_certificate(fresh_authority.folder, "acme", "tablet")
    certificate = x509.load_pem_x509_certificate(issued.certificate.read_bytes())
    assert not revocations.is_revoked(certificate)
    revoke_certificate(fresh_authority.folder, issued.certificate)
    clock.now += 0.5
    assert not revocations.is_revoked(certificate)  # not looked at again within the second
    clock.now += 0.5
    assert revocations.is_revoked(certificate)


def test_a_broken_crl_keeps_the_last_good_one_and_warns_once(
    fresh_authority: Authority, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    crl = fresh_authority.folder / "crl.pem"
    issued = issue_client_certificate(fresh_authority.folder, "acme", "phone")
    revoke_certificate(fresh_authority.folder, issued.certificate)
    certificate = x509.load_pem_x509_certificate(issued.certificate.read_bytes())
    revocations = RevocationList(crl, fresh_authority.folder / "ca.crt", clock=clock)
    assert revocations.is_revoked(certificate)
    caplog.set_level(logging.WARNING, logger="clinpred.identity")

    def warnings() -> int:
        return len([r for r in caplog.records if "the last good one stays in force" in r.getMessage()])

    crl.write_bytes(b"half a file")
    for _ in range(3):
        clock.now += 1.0
        assert revocations.is_revoked(certificate)
    assert warnings() == 1
    crl.unlink()
    for _ in range(2):
        clock.now += 1.0
        assert revocations.is_revoked(certificate)
    assert warnings() == 2
    os.replace(_authority(tmp_path / "other").folder / "crl.pem", crl)  # another CA's CRL
    clock.now += 1.0
    assert revocations.is_revoked(certificate) and warnings() == 3

    # A good CRL of this CA that no longer lists the serial is taken again.
    moment = datetime.datetime.now(datetime.UTC)
    empty = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(fresh_authority.ca.subject)
        .last_update(moment)
        .next_update(moment + datetime.timedelta(days=1))
        .sign(fresh_authority.key, hashes.SHA256())
    )
    crl.write_bytes(empty.public_bytes(serialization.Encoding.DER))
    clock.now += 1.0
    assert not revocations.is_revoked(certificate)
    assert warnings() == 3


# --- bearer tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    jwks: Path


def _jwk(public_key: Any, kid: str, algorithm: str) -> dict[str, Any]:
    if algorithm == "RS256":
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(public_key, as_dict=True)
    else:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(public_key, as_dict=True)
    return {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}


def write_jwks(path: Path, *jwks: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"keys": list(jwks)}))
    os.replace(temporary, path)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    write_jwks(path, _jwk(rsa_key.public_key(), "rsa-1", "RS256"), _jwk(ec_key.public_key(), "ec-1", "ES256"))
    return Keys(rsa_key, ec_key, path)


@pytest.fixture(scope="module")
def verifier(keys: Keys) -> BearerTokenVerifier:
    return BearerTokenVerifier(keys.jwks, issuer=ISSUER, audience=AUDIENCE)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "sub": "app",
        "tenant": "acme",
        "client_id": "ward-app",
        "scope": "system/Observation.write system/RiskAssessment.read",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def rs256(keys: Keys, payload: dict[str, Any], kid: str = "rsa-1") -> str:
    return jwt.encode(payload, keys.rsa_key, algorithm="RS256", headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_rs256_and_es256_tokens_name_tenant_client_and_scopes(keys: Keys, verifier: BearerTokenVerifier) -> None:
    expected = Caller("acme", "ward-app", "token", frozenset({"system/Observation.write", "system/RiskAssessment.read"}))
    assert verifier.verify("Bearer " + rs256(keys, claims())) == expected
    es256 = jwt.encode(claims(), keys.ec_key, algorithm="ES256", headers={"kid": "ec-1"})
    assert verifier.verify("bearer " + es256) == expected
    assert verifier.verify("Bearer " + rs256(keys, claims(scope=None))).token_scopes == frozenset()


def test_claim_names_and_leeway_are_configurable(keys: Keys) -> None:
    custom = BearerTokenVerifier(keys.jwks, ISSUER, AUDIENCE, tenant_claim="org", client_claim="azp", leeway_seconds=0)
    token = rs256(keys, claims(org="north", azp="pump-3", exp=int(time.time()) + 60))
    caller = custom.verify(f"Bearer {token}")
    assert (caller.tenant, caller.client, caller.authenticated_by) == ("north", "pump-3", "token")
    recent = rs256(keys, claims(exp=int(time.time()) - 10))
    with pytest.raises(Unauthenticated, match="expired"):
        custom.verify(f"Bearer {recent}")
    lenient = BearerTokenVerifier(keys.jwks, ISSUER, AUDIENCE, leeway_seconds=30)
    assert lenient.verify(f"Bearer {recent}").tenant == "acme"


def _hs256_with_public_key(keys: Keys) -> str:
    secret = keys.rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'kid': 'rsa-1', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims()).encode())}"
    )
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def _alg_none(kid: str = "rsa-1") -> str:
    return f"{b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{b64(json.dumps(claims()).encode())}."


def _alg_none_with_signature() -> str:
    return _alg_none() + "c2lnbmF0dXJl"


def _other_key(keys: Keys) -> str:
    return rs256(Keys(rsa.generate_private_key(public_exponent=65537, key_size=2048), keys.ec_key, keys.jwks), claims())


def _deeply_nested_header() -> str:
    header = '{"alg": "RS256", "kid": "rsa-1", "x": ' + "[" * 2000 + "]" * 2000 + "}"
    return f"{b64(header.encode())}.{b64(json.dumps(claims()).encode())}.c2ln"


def _tampered(keys: Keys) -> str:
    header, _, signature = rs256(keys, claims()).split(".")
    return ".".join([header, b64(json.dumps(claims(tenant="other")).encode()), signature])


def _now() -> int:
    """Read when a token is made, never at import: the suite runs long enough for "+10 minutes" to pass."""
    return int(time.time())
BAD_TOKENS: dict[str, tuple[Callable[[Keys], str], str]] = {
    "bad-signature": (_other_key, "signature does not verify"),
    "tampered-payload": (_tampered, "signature does not verify"),
    "expired": (lambda k: rs256(k, claims(exp=_now() - 120)), "expired"),
    "nbf-in-the-future": (lambda k: rs256(k, claims(nbf=_now() + 600)), "not valid yet"),
    "iat-in-the-future": (lambda k: rs256(k, claims(iat=_now() + 600)), "not valid yet"),
    "wrong-issuer": (lambda k: rs256(k, claims(iss="https://elsewhere.example")), "another issuer"),
    "wrong-audience": (lambda k: rs256(k, claims(aud="clinpred-genomics")), "another audience"),
    "no-exp": (lambda k: rs256(k, claims(exp=None)), "lacks the exp claim"),
    "no-iss": (lambda k: rs256(k, claims(iss=None)), "lacks the iss claim"),
    "no-aud": (lambda k: rs256(k, claims(aud=None)), "lacks the aud claim"),
    "no-tenant": (lambda k: rs256(k, claims(tenant=None)), "lacks the tenant claim"),
    "no-client": (lambda k: rs256(k, claims(client_id=None)), "lacks the client_id claim"),
    "bad-tenant-name": (lambda k: rs256(k, claims(tenant="../Other")), "tenant claim does not match"),
    "tenant-not-a-string": (lambda k: rs256(k, claims(tenant=["acme"])), "tenant claim does not match"),
    "scope-not-a-string": (lambda k: rs256(k, claims(scope=["a"])), "scope claim is not a string"),
    "exp-not-a-number": (lambda k: rs256(k, claims(exp="soon")), "not a well-formed JWT"),
    "exp-infinite": (lambda k: rs256(k, claims(exp=float("inf"))), "not a well-formed JWT"),
    "exp-nan": (lambda k: rs256(k, claims(exp=float("nan"))), "not a well-formed JWT"),
    "alg-none": (lambda k: _alg_none(), "compact JWT"),
    "alg-none-with-signature": (lambda k: _alg_none_with_signature(), "algorithm is not"),
    "hs256-with-the-public-key": (_hs256_with_public_key, "algorithm is not"),
    "es256-header-on-the-rsa-key": (
        lambda k: jwt.encode(claims(), k.ec_key, algorithm="ES256", headers={"kid": "rsa-1"}),
        "algorithm is not",
    ),
    "rs384": (lambda k: jwt.encode(claims(), k.rsa_key, algorithm="RS384", headers={"kid": "rsa-1"}), "algorithm is not"),
    "unknown-kid": (lambda k: rs256(k, claims(), kid="rsa-2"), "not in the JWK set"),
    "no-kid": (lambda k: jwt.encode(claims(), k.rsa_key, algorithm="RS256"), "names no signing key"),
    "deeply-nested-header": (lambda k: _deeply_nested_header(), "not a well-formed JWT"),
    "header-not-json": (lambda k: f"{b64(b'not json')}.{b64(b'{}')}.c2ln", "not a well-formed JWT"),
    "payload-not-json": (
        lambda k: ".".join([rs256(k, claims()).split(".")[0], b64(b"[1,"), "c2ln"]),
        "signature does not verify",
    ),
}


@pytest.mark.parametrize(("make", "rule"), BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_a_bad_token_is_unauthenticated(
    keys: Keys, verifier: BearerTokenVerifier, make: Callable[[Keys], str], rule: str
) -> None:
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify("Bearer " + make(keys))
    assert rule in caught.value.message
    assert len(caught.value.message) < 140 and "acme" not in caught.value.message


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer a.b",
        "Bearer a.b.c.d",
        "Bearer !!.@@.##",
        "Bearer a.b.c",
        "Bearer\ta.b.c",
        "Token " + "a.b.c",
        "Bearer " + "A" * 100_000,
        "Bearer " + ".".join(["A" * 40_000] * 3),
    ],
    ids=lambda value: value[:20] if len(value) < 100 else f"{len(value)}-characters",
)
def test_garbage_is_unauthenticated(verifier: BearerTokenVerifier, authorization: str) -> None:
    with pytest.raises(Unauthenticated, match="bearer token refused"):
        verifier.verify(authorization)


def test_a_token_longer_than_the_bound_is_refused_before_parsing(keys: Keys, verifier: BearerTokenVerifier) -> None:
    padded = rs256(keys, claims(padding="x" * MAX_AUTHORIZATION_LENGTH))
    with pytest.raises(Unauthenticated, match=f"at most {MAX_AUTHORIZATION_LENGTH} characters"):
        verifier.verify("Bearer " + padded)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.text(max_size=300),
        st.builds(lambda t: "Bearer " + t, st.text(max_size=300)),
        st.builds(
            lambda parts: "Bearer " + ".".join(parts),
            st.lists(
                st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=80), min_size=3, max_size=3
            ),
        ),
        st.builds(
            lambda header, payload: f"Bearer {b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.c2ln",
            st.dictionaries(
                st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jku"]),
                st.one_of(
                    st.sampled_from(["RS256", "ES256", "none", "HS256", "rsa-1", "ec-1"]),
                    st.integers(),
                    st.none(),
                    st.lists(st.text(max_size=5), max_size=3),
                    st.booleans(),
                ),
            ),
            st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=10), st.floats(), st.none())),
        ),
    )
)
def test_no_authorization_value_raises_anything_but_unauthenticated(verifier: BearerTokenVerifier, authorization: str) -> None:
    with pytest.raises(Unauthenticated):
        verifier.verify(authorization)


def test_the_jwks_file_is_reloaded_and_a_broken_one_keeps_the_last_good(
    tmp_path: Path, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    path = tmp_path / "jwks.json"
    write_jwks(path, _jwk(keys.rsa_key.public_key(), "rsa-1", "RS256"))
    verifier = BearerTokenVerifier(path, ISSUER, AUDIENCE, clock=clock)
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), rotated, algorithm="RS256", headers={"kid": "rsa-2"})
    with pytest.raises(Unauthenticated, match="not in the JWK set"):
        verifier.verify(f"Bearer {token}")
    write_jwks(path, _jwk(keys.rsa_key.public_key(), "rsa-1", "RS256"), _jwk(rotated.public_key(), "rsa-2", "RS256"))
    clock.now += 1.0
    assert verifier.verify(f"Bearer {token}").client == "ward-app"

    caplog.set_level(logging.WARNING, logger="clinpred.identity")
    path.write_text('{"keys": [')
    for _ in range(2):
        clock.now += 1.0
        assert verifier.verify(f"Bearer {token}").tenant == "acme"
    assert len([r for r in caplog.records if "JWK set" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        '{"keys": {}}',
        '{"keys": []}',
        '{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}',
        '{"keys": [{"kty": "RSA", "kid": "x", "n": "AQAB"}]}',
    ],
)
def test_a_jwks_without_a_usable_signing_key_is_refused_at_start(tmp_path: Path, document: str) -> None:
    (tmp_path / "jwks.json").write_text(document)
    with pytest.raises(ValueError, match="JWK set"):
        BearerTokenVerifier(tmp_path / "jwks.json", ISSUER, AUDIENCE)


def test_a_jwks_with_an_hmac_key_beside_signing_keys_ignores_it(tmp_path: Path, keys: Keys) -> None:
    write_jwks(
        tmp_path / "jwks.json",
        {"kty": "oct", "k": b64(b"a-shared-secret-of-32-bytes-long!"), "kid": "h"},
        _jwk(keys.ec_key.public_key(), "ec-1", "ES256"),
    )
    verifier = BearerTokenVerifier(tmp_path / "jwks.json", ISSUER, AUDIENCE)
    forged = jwt.encode(claims(), b"a-shared-secret-of-32-bytes-long!", algorithm="HS256", headers={"kid": "h"})
    with pytest.raises(Unauthenticated, match="algorithm is not"):
        verifier.verify(f"Bearer {forged}")


# --- the authenticator -----------------------------------------------------------------------------


def tls_context(pem: bytes | None) -> dict[str, list[bytes]]:
    context = {"transport_security_type": [b"ssl"], "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"]}
    return {**context, "x509_pem_cert": [pem]} if pem is not None else context


@pytest.fixture(scope="module")
def acme_pem(authority: Authority) -> bytes:
    return certificate_pem(authority, uris=(f"spiffe://{DOMAIN}/tenant/acme/client/gateway",))


def test_the_certificate_is_the_caller_without_a_token(acme_pem: bytes, verifier: BearerTokenVerifier) -> None:
    authenticator = Authenticator(DOMAIN, tokens=verifier)
    metadata = [("user-agent", "grpc-python/1.71"), ("x-trace-bin", b"\x00\x01")]
    assert authenticator.authenticate(tls_context(acme_pem), metadata) == Caller("acme", "gateway", "certificate")


def test_a_token_with_a_certificate_of_its_tenant_is_the_caller(
    acme_pem: bytes, keys: Keys, verifier: BearerTokenVerifier
) -> None:
    authenticator = Authenticator(DOMAIN, tokens=verifier)
    caller = authenticator.authenticate(tls_context(acme_pem), [("authorization", "Bearer " + rs256(keys, claims()))])
    assert (caller.tenant, caller.client, caller.authenticated_by) == ("acme", "ward-app", "token")
    assert caller.token_scopes == frozenset({"system/Observation.write", "system/RiskAssessment.read"})
    with pytest.raises(Unauthenticated, match="tenant is not the client certificate's"):
        authenticator.authenticate(tls_context(acme_pem), [("authorization", "Bearer " + rs256(keys, claims(tenant="other")))])
    # Without a certificate (TLS without client authentication) the token alone names the caller.
    assert (
        authenticator.authenticate(tls_context(None), [("authorization", "Bearer " + rs256(keys, claims()))]).client == "ward-app"
    )


def test_a_token_is_refused_where_tokens_are_not_configured(acme_pem: bytes, keys: Keys) -> None:
    with pytest.raises(Unauthenticated, match="bearer tokens are not accepted by this service"):
        Authenticator(DOMAIN).authenticate(tls_context(acme_pem), [("authorization", "Bearer " + rs256(keys, claims()))])


def test_a_bad_certificate_is_refused_even_with_a_good_token(
    authority: Authority, keys: Keys, verifier: BearerTokenVerifier
) -> None:
    no_identity = certificate_pem(authority, uris=(), common_name="anyone-at-all")
    with pytest.raises(Unauthenticated, match="no SPIFFE ID"):
        Authenticator(DOMAIN, tokens=verifier).authenticate(
            tls_context(no_identity), [("authorization", "Bearer " + rs256(keys, claims()))]
        )


def test_the_revocation_list_is_consulted(fresh_authority: Authority) -> None:
    issued = issue_client_certificate(fresh_authority.folder, "acme", "gone")
    revoke_certificate(fresh_authority.folder, issued.certificate)
    authenticator = Authenticator(DOMAIN, RevocationList(fresh_authority.folder / "crl.pem", fresh_authority.folder / "ca.crt"))
    with pytest.raises(Unauthenticated, match="revoked"):
        authenticator.authenticate(tls_context(issued.certificate.read_bytes()), [])


def test_development_mode_names_the_development_tenant_only_without_credentials(acme_pem: bytes) -> None:
    development = Authenticator(DOMAIN, development_tenant="local")
    assert development.authenticate({}, []) == Caller("local", "development", "development")
    assert development.authenticate({"transport_security_type": [b"insecure"]}, ()) == Caller(
        "local", "development", "development"
    )
    assert development.authenticate(tls_context(acme_pem), []).authenticated_by == "certificate"
    with pytest.raises(Unauthenticated, match="no client certificate or bearer token"):
        Authenticator(DOMAIN).authenticate({}, [])
    with pytest.raises(Unauthenticated, match="no client certificate or bearer token"):
        Authenticator(DOMAIN).authenticate(tls_context(None), [])
    with pytest.raises(ValueError, match="development tenant"):
        Authenticator(DOMAIN, development_tenant="Local Ward")
    with pytest.raises(ValueError, match="trust domain"):
        Authenticator("not a domain")


@pytest.mark.parametrize(
    ("metadata", "rule"),
    [
        ([("authorization", "Bearer a.b.c"), ("authorization", "Bearer a.b.c")], "more than one"),
        ([("authorization", "Bearer a.b.c"), ("Authorization", "Bearer d.e.f")], "more than one"),
        ([("authorization", b"Bearer a.b.c")], "not ASCII text"),
        ([("authorization", "Bearer ä.b.c")], "not ASCII text"),
        ([("authorization", "Bearer " + "a" * 9000)], "longer than"),
    ],
)
def test_garbage_metadata_is_unauthenticated(
    metadata: list[tuple[str, str | bytes]], rule: str, verifier: BearerTokenVerifier
) -> None:
    with pytest.raises(Unauthenticated, match=rule):
        Authenticator(DOMAIN, tokens=verifier, development_tenant="local").authenticate({}, metadata)


_KEYS = st.sampled_from(["authorization", "Authorization", "AUTHORIZATION", "user-agent", "x-b-bin", "authorization-bin"])
_VALUES = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    st.builds(lambda t: "Bearer " + t, st.text(max_size=200)),
    st.builds(lambda t: "Bearer " + t, st.text("abcXYZ019-_.", max_size=200)),
)


@pytest.fixture(scope="module")
def contexts(authority: Authority) -> dict[str, dict[str, list[bytes]]]:
    """TLS peers none of which names a caller: garbage metadata must not find one either."""
    return {
        "none": {},
        "plaintext": {"transport_security_type": [b"insecure"]},
        "ssl-no-cert": tls_context(None),
        "garbage-pem": tls_context(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"),
        "other-domain": tls_context(certificate_pem(authority, uris=("spiffe://x.example/tenant/a/client/b",))),
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    metadata=st.lists(st.tuples(_KEYS, _VALUES), max_size=4),
    context=st.sampled_from(["none", "plaintext", "ssl-no-cert", "garbage-pem", "other-domain"]),
)
def test_garbage_metadata_never_raises_anything_but_unauthenticated(
    contexts: dict[str, dict[str, list[bytes]]],
    verifier: BearerTokenVerifier,
    metadata: list[tuple[str, str | bytes]],
    context: str,
) -> None:
    with pytest.raises(Unauthenticated):
        Authenticator(DOMAIN, tokens=verifier).authenticate(contexts[context], metadata)
