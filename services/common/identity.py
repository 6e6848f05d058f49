"""Who is calling: a SPIFFE-style client certificate, a JWT bearer token, or development mode.

Identity is `spiffe://<trust domain>/tenant/<tenant>/client/<client>` in the URI SAN of the
client certificate of mutual TLS (the TLS layer has verified its chain and dates already), or a
bearer token (RS256/ES256 JWT, like SMART Backend Services access tokens) checked against a JWKS
file. Every refusal is `Unauthenticated` with a short message naming the rule that failed; nothing
from the certificate or token is echoed.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from clinpred.pilots.common.errors import Unauthenticated
from clinpred.services.common.watched_file import WatchedFile

logger = logging.getLogger("clinpred.identity")

# The file `clinpred tls init` writes beside ca.crt, naming the trust domain of its client certificates.
TRUST_DOMAIN_FILE = "trust-domain"
DEFAULT_TRUST_DOMAIN = "clinpred.local"
NAME_RULE = "[a-z0-9][a-z0-9._-]{0,62}"
_NAME = re.compile(NAME_RULE)
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]{1,255}")
# RFC 7515 compact serialisation: three base64url parts, no padding.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_AUTHORIZATION_LENGTH = 8192
TOKEN_ALGORITHMS = ("RS256", "ES256")
AUTHORIZATION_KEY = "authorization"


@dataclass(frozen=True)
class Caller:
    """An authenticated caller; `token_scopes` is the token's `scope` claim split on spaces, None without a token."""

    tenant: str
    client: str
    authenticated_by: Literal["certificate", "token", "development"]
    token_scopes: frozenset[str] | None = None


def is_identity_name(name: str) -> bool:
    """True for a valid tenant or client name: 1 to 63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit."""
    return _NAME.fullmatch(name) is not None


def checked_trust_domain(trust_domain: str) -> str:
    if _TRUST_DOMAIN.fullmatch(trust_domain) is None:
        raise ValueError("a trust domain is 1 to 255 of a-z, 0-9, '.', '_', '-'")
    return trust_domain


def spiffe_id(trust_domain: str, tenant: str, client: str) -> str:
    """The URI SAN that names `client` of `tenant`; ValueError for names outside the rule."""
    checked_trust_domain(trust_domain)
    for what, name in (("tenant", tenant), ("client", client)):
        if not is_identity_name(name):
            raise ValueError(f"a {what} name must match {NAME_RULE}")
    return f"spiffe://{trust_domain}/tenant/{tenant}/client/{client}"


def read_trust_domain(path: Path) -> str:
    """The trust domain written in `path` (a TLS folder's `trust-domain` file)."""
    return checked_trust_domain(path.read_text(encoding="ascii").strip())


T = TypeVar("T")


def _watched(
    path: Path, parse: Callable[[bytes], T], what: str, check_interval: float, clock: Callable[[], float]
) -> WatchedFile[T]:
    """`path` watched for changes; it must parse at start (ValueError otherwise)."""
    try:
        return WatchedFile(path, parse, what=what, logger=logger, check_interval_seconds=check_interval, clock=clock)
    except OSError as error:
        raise ValueError(f"{what} {path} cannot be read: {error.strerror}") from None
    except ValueError as error:
        raise ValueError(f"{what} {path} cannot be used: {error}") from None


@dataclass(frozen=True)
class _Revocations:
    issuer: x509.Name
    serial_numbers: frozenset[int]
    next_update: datetime.datetime | None


class RevocationList:
    """A CRL (PEM or DER) signed by the CA in `ca_certificate`, reloaded when its file changes.

    A CRL that is missing or broken at start is a ValueError; later, a broken version keeps the last good one.
    """

    def __init__(
        self,
        crl_file: Path,
        ca_certificate: Path,
        *,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            ca = x509.load_pem_x509_certificate(ca_certificate.read_bytes())
        except (OSError, ValueError):
            raise ValueError(f"CA certificate {ca_certificate} cannot be read as PEM") from None
        public_key = ca.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ValueError("the CA key must be RSA or EC")
        self._ca_subject = ca.subject
        self._ca_key = public_key
        self._file = _watched(crl_file, self._parse, "certificate revocation list", check_interval, clock)
        self._stale_warned: datetime.datetime | None = None

    def _parse(self, data: bytes) -> _Revocations:
        crl = x509.load_pem_x509_crl(data) if b"-----BEGIN" in data else x509.load_der_x509_crl(data)
        if crl.issuer != self._ca_subject:
            raise ValueError("issued by another CA")
        if not crl.is_signature_valid(self._ca_key):
            raise ValueError("its signature does not verify against the CA")
        return _Revocations(crl.issuer, frozenset(entry.serial_number for entry in crl), crl.next_update_utc)

    def is_revoked(self, certificate: x509.Certificate) -> bool:
        revocations = self._file.current()
        next_update = revocations.next_update
        if next_update is not None and next_update < datetime.datetime.now(datetime.UTC) and self._stale_warned != next_update:
            # Still the best list there is: keep using it, and say so once per list.
            logger.warning("certificate revocation list is past its next update; publish a new one")
            self._stale_warned = next_update
        return certificate.issuer == revocations.issuer and certificate.serial_number in revocations.serial_numbers


def _certificate_refused(rule: str) -> Unauthenticated:
    return Unauthenticated(f"client certificate refused: {rule}")


def caller_from_certificate_pem(pem: bytes, trust_domain: str, revocations: RevocationList | None) -> Caller:
    """The caller named by the SPIFFE URI SAN of a client certificate (PEM) the TLS layer has verified."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
        extensions = certificate.extensions
    except ValueError:
        raise _certificate_refused("it cannot be read") from None
    now = datetime.datetime.now(datetime.UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise _certificate_refused("it is expired or not yet valid")
    try:
        is_authority = extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_authority = False
    if is_authority:
        raise _certificate_refused("it is a CA certificate")
    try:
        usages = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise _certificate_refused("it has no extended key usage clientAuth") from None
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise _certificate_refused("its extended key usage lacks clientAuth")
    try:
        uris = extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.UniformResourceIdentifier
        )
    except x509.ExtensionNotFound:
        uris = []
    spiffe_ids = [uri for uri in uris if uri[:9].lower() == "spiffe://"]
    if not spiffe_ids:
        raise _certificate_refused("it has no SPIFFE ID (URI SAN spiffe://...)")
    if len(spiffe_ids) > 1:
        raise _certificate_refused("it has more than one SPIFFE ID")
    prefix = f"spiffe://{trust_domain}/"
    if not spiffe_ids[0].startswith(prefix):
        raise _certificate_refused(f"its SPIFFE ID is not of trust domain {trust_domain}")
    parts = spiffe_ids[0][len(prefix) :].split("/")
    if len(parts) != 4 or parts[0] != "tenant" or parts[2] != "client" or not all(map(is_identity_name, parts[1::2])):
        raise _certificate_refused(f"its SPIFFE ID path is not /tenant/<tenant>/client/<client>, names {NAME_RULE}")
    if revocations is not None and revocations.is_revoked(certificate):
        raise _certificate_refused("it is revoked")
    return Caller(tenant=parts[1], client=parts[3], authenticated_by="certificate")


def _parse_jwks(data: bytes) -> dict[str, jwt.PyJWK]:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise ValueError("it is not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError('it is not a JWK set (no "keys" list)')
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
        if key.algorithm_name not in TOKEN_ALGORITHMS:
            continue
        if entry["kid"] in keys:
            raise ValueError("two keys share one kid")
        keys[entry["kid"]] = key
    if not keys:
        raise ValueError(f"it has no usable {' or '.join(TOKEN_ALGORITHMS)} signing key with a kid")
    return keys


def _token_refused(rule: str) -> Unauthenticated:
    return Unauthenticated(f"bearer token refused: {rule}")


_JWT_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "it has expired"),
    (jwt.ImmatureSignatureError, "it is not valid yet"),
    (jwt.InvalidIssuerError, "it is from another issuer"),
    (jwt.InvalidAudienceError, "it is for another audience"),
    (jwt.InvalidSignatureError, "its signature does not verify"),
    (jwt.InvalidAlgorithmError, f"its algorithm is not {' or '.join(TOKEN_ALGORITHMS)}"),
    (jwt.InvalidKeyError, "its signing key is not acceptable"),
)


class BearerTokenVerifier:
    """Checks `Bearer <jwt>` values: RS256 or ES256, key by `kid` from a JWKS file, `iss`, `aud`, `exp`, `nbf`."""

    def __init__(
        self,
        jwks_file: Path,
        issuer: str,
        audience: str,
        tenant_claim: str = "tenant",
        client_claim: str = "client_id",
        leeway_seconds: float = 30.0,
        *,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = _watched(jwks_file, _parse_jwks, "JWK set", check_interval, clock)
        self._issuer = issuer
        self._audience = audience
        self._tenant_claim = tenant_claim
        self._client_claim = client_claim
        self._leeway = leeway_seconds

    def verify(self, authorization: str) -> Caller:
        """The caller a valid token names; `Unauthenticated` for anything else."""
        if not isinstance(authorization, str) or len(authorization) > MAX_AUTHORIZATION_LENGTH:
            raise _token_refused(f"the authorization value is not text of at most {MAX_AUTHORIZATION_LENGTH} characters")
        scheme, _, token = authorization.partition(" ")
        token = token.strip(" ")
        if scheme.lower() != "bearer" or _COMPACT_JWS.fullmatch(token) is None:
            raise _token_refused('the authorization value is not "Bearer <compact JWT>"')
        try:
            claims = self._verified_claims(token)
        except jwt.MissingRequiredClaimError as error:
            raise _token_refused(f"it lacks the {error.claim} claim") from None
        except jwt.PyJWTError as error:
            rule = next((rule for kind, rule in _JWT_ERRORS if isinstance(error, kind)), "it is not a well-formed JWT")
            raise _token_refused(rule) from None
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
            raise _token_refused("it is not a well-formed JWT") from None
        names = []
        for claim in (self._tenant_claim, self._client_claim):
            value = claims.get(claim)
            if value is None:
                raise _token_refused(f"it lacks the {claim} claim")
            if not isinstance(value, str) or not is_identity_name(value):
                raise _token_refused(f"its {claim} claim does not match {NAME_RULE}")
            names.append(value)
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise _token_refused("its scope claim is not a string")
        return Caller(names[0], names[1], "token", frozenset(scope.split()))

    def _verified_claims(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in TOKEN_ALGORITHMS:
            raise jwt.InvalidAlgorithmError(algorithm)
        if not isinstance(kid, str):
            raise _token_refused("it names no signing key (kid)")
        key = self._keys.current().get(kid)
        if key is None:
            raise _token_refused("its signing key (kid) is not in the JWK set")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
            options={"require": ["exp", "iss", "aud"], "enforce_minimum_key_length": True},
        )
        return claims


class Authenticator:
    """The caller of one call, from its TLS peer (`context.auth_context()`) and metadata."""

    def __init__(
        self,
        trust_domain: str,
        revocations: RevocationList | None = None,
        tokens: BearerTokenVerifier | None = None,
        development_tenant: str | None = None,
    ) -> None:
        self._trust_domain = checked_trust_domain(trust_domain)
        if development_tenant is not None and not is_identity_name(development_tenant):
            raise ValueError(f"the development tenant must match {NAME_RULE}")
        self._revocations = revocations
        self._tokens = tokens
        self._development_tenant = development_tenant

    def authenticate(self, auth_context: Mapping[str, Sequence[bytes]], metadata: Sequence[tuple[str, str | bytes]]) -> Caller:
        """A bearer token if one is sent (its tenant must be the certificate's, if there is one), else the
        client certificate, else the development tenant when configured; `Unauthenticated` otherwise."""
        authorization = _authorization(metadata)
        if authorization is not None and self._tokens is None:
            raise Unauthenticated("bearer tokens are not accepted by this service")
        certificate = self._certificate_caller(auth_context)
        if authorization is not None and self._tokens is not None:
            caller = self._tokens.verify(authorization)
            if certificate is not None and certificate.tenant != caller.tenant:
                raise Unauthenticated("the bearer token's tenant is not the client certificate's")
            return caller
        if certificate is not None:
            return certificate
        if self._development_tenant is not None:
            return Caller(self._development_tenant, "development", "development")
        raise Unauthenticated("no client certificate or bearer token")

    def _certificate_caller(self, auth_context: Mapping[str, Sequence[bytes]]) -> Caller | None:
        if b"ssl" not in auth_context.get("transport_security_type", ()):
            return None
        certificates = auth_context.get("x509_pem_cert") or ()
        if not certificates:
            return None
        pem = certificates[0]
        if not isinstance(pem, bytes):
            raise _certificate_refused("it cannot be read")
        return caller_from_certificate_pem(pem, self._trust_domain, self._revocations)


def _authorization(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """The one `authorization` value of the metadata, checked to be bounded ASCII text, or None."""
    values = [value for key, value in metadata or () if isinstance(key, str) and key.lower() == AUTHORIZATION_KEY]
    if not values:
        return None
    if len(values) > 1:
        raise Unauthenticated("more than one authorization metadata entry")
    value = values[0]
    if not isinstance(value, str) or not value.isascii():
        raise Unauthenticated("the authorization metadata is not ASCII text")
    if len(value) > MAX_AUTHORIZATION_LENGTH:
        raise Unauthenticated(f"the authorization metadata is longer than {MAX_AUTHORIZATION_LENGTH} characters")
    return value
