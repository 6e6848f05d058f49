"""Who may call what: the scope each method needs, a deny-by-default policy file, hot reload.

Callers are (tenant, client) pairs taken from their certificate. A policy file grants
scopes to clients of a tenant; a method needs every scope in `METHOD_SCOPES`. A caller
that also presents a bearer token gets at most the token's scopes (SMART: a token can
only narrow a grant). Methods in no table are denied.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from clinpred.pilots.common.errors import PermissionDenied
from clinpred.services.common.watched_file import WatchedFile

logger = logging.getLogger("clinpred.authorization")

PATIENT_WRITE = "system/Patient.write"
OBSERVATION_WRITE = "system/Observation.write"
RISK_READ = "system/RiskAssessment.read"
DETERIORATION_WATCH = "clinpred/deterioration.watch"
DETERIORATION_SCORE = "clinpred/deterioration.score"
TUMOR_CLASSIFY = "clinpred/tumor.classify"
GENOMICS_ASSESS = "clinpred/genomics.assess"
GENOMICS_ENCRYPTED = "clinpred/genomics.encrypted"
MODEL_READ = "clinpred/model.read"

_TUMOR = "/clinpred.tumor.v1.TumorClassificationService/"
_DETERIORATION = "/clinpred.deterioration.v1.DeteriorationService/"
_GENOMICS = "/clinpred.genomics.v1.GenomicRiskService/"

# Needs no scope, only an authenticated caller (see METHOD_SCOPES).
SEALED_ENVELOPE: frozenset[str] = frozenset()

# Every scope in a method's set is needed; an empty set: any authenticated caller. Cuts that differ from a plain resource mapping:
# - RecordObservations answers with the updated risk, so writing alone is not enough to
#   learn it: a device that only uploads must not read risks;
# - WatchRisk streams every patient of a ward or team, ids included, without knowing any
#   of them: a search, not a read (SMART v2 splits `.r` from `.s` for this reason). A
#   telemonitoring app reads the risks of its own patients; only a dashboard watches wards;
# - ExportFhir holds the same score as GetLatestRisk with what it was computed from: the PEWS
#   Observation and the vital signs it scored (values GetLatestRisk shows as PEWS items), plus
#   temperature and the times measured; whoever reads a risk may read its basis;
# - GetScoreLayout is needed only to encrypt dosages, and RegisterEvaluationKeys only to
#   score them, so both travel with ScoreEncrypted; GetEncryptionLayout travels with
#   ClassifyEncrypted (a classification like Classify).
METHOD_SCOPES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        _TUMOR + "Classify": frozenset({TUMOR_CLASSIFY}),
        _TUMOR + "ClassifyBatch": frozenset({TUMOR_CLASSIFY}),
        _TUMOR + "ClassifyStream": frozenset({TUMOR_CLASSIFY}),
        _TUMOR + "GetModelInfo": frozenset({MODEL_READ}),
        _TUMOR + "GetEncryptionLayout": frozenset({TUMOR_CLASSIFY}),
        _TUMOR + "ClassifyEncrypted": frozenset({TUMOR_CLASSIFY}),
        _DETERIORATION + "RegisterPatient": frozenset({PATIENT_WRITE}),
        _DETERIORATION + "RecordObservations": frozenset({OBSERVATION_WRITE, RISK_READ}),
        _DETERIORATION + "GetLatestRisk": frozenset({RISK_READ}),
        _DETERIORATION + "ListRiskHistory": frozenset({RISK_READ}),
        _DETERIORATION + "WatchRisk": frozenset({RISK_READ, DETERIORATION_WATCH}),
        _DETERIORATION + "ScoreObservations": frozenset({DETERIORATION_SCORE}),
        _DETERIORATION + "ExportFhir": frozenset({RISK_READ}),
        _DETERIORATION + "GetModelInfo": frozenset({MODEL_READ}),
        _GENOMICS + "ListScores": frozenset({MODEL_READ}),
        _GENOMICS + "AssessVcf": frozenset({GENOMICS_ASSESS}),
        _GENOMICS + "AssessVcfUpload": frozenset({GENOMICS_ASSESS}),
        _GENOMICS + "GetScoreLayout": frozenset({GENOMICS_ENCRYPTED}),
        _GENOMICS + "ScoreEncrypted": frozenset({GENOMICS_ENCRYPTED}),
        _GENOMICS + "RegisterEvaluationKeys": frozenset({GENOMICS_ENCRYPTED}),
        _GENOMICS + "GetModelInfo": frozenset({MODEL_READ}),
        # Sealed calls: any authenticated caller may send an envelope or read the public keys (like a model
        # card, they reveal nothing); the method inside an envelope needs its own scopes, checked once opened.
        _TUMOR + "Sealed": SEALED_ENVELOPE,
        _TUMOR + "GetKeyConfigurations": SEALED_ENVELOPE,
        _DETERIORATION + "Sealed": SEALED_ENVELOPE,
        _DETERIORATION + "GetKeyConfigurations": SEALED_ENVELOPE,
        _GENOMICS + "Sealed": SEALED_ENVELOPE,
        _GENOMICS + "GetKeyConfigurations": SEALED_ENVELOPE,
    }
)

# Any authenticated caller: probes and tooling must work before a policy names them.
# Exact names, so that a method added by a newer grpcio is denied until listed here.
OPEN_METHODS: frozenset[str] = frozenset(
    {
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    }
)

SCOPES: frozenset[str] = frozenset().union(*METHOD_SCOPES.values())

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_SMART_SCOPE = re.compile(r"system/(?P<resource>\*|[A-Za-z]+)\.(?P<access>read|write|\*)")
_SHOWN_METHOD = re.compile(r"/[A-Za-z0-9_.]{1,150}/[A-Za-z0-9_]{1,80}")


def expand_scope(scope: str) -> frozenset[str]:
    """The scopes of `SCOPES` that `scope` stands for; empty when it stands for none.

    Wildcards: SMART v1 `system/*.read`, `system/Patient.*`, `system/*.*`, and
    `clinpred/*` for every named clinpred scope.
    """
    if scope in SCOPES:
        return frozenset({scope})
    if scope == "clinpred/*":
        return frozenset(s for s in SCOPES if s.startswith("clinpred/"))
    match = _SMART_SCOPE.fullmatch(scope)
    if match is None or "*" not in scope:
        return frozenset()
    resource, access = match["resource"], match["access"]
    found = set()
    for known in SCOPES:
        known_match = _SMART_SCOPE.fullmatch(known)
        if known_match is None:
            continue
        if resource in ("*", known_match["resource"]) and access in ("*", known_match["access"]):
            found.add(known)
    return frozenset(found)


@dataclass(frozen=True)
class Grant:
    """Scopes (wildcards expanded) for some clients of one tenant; `"*"` in clients is every client."""

    tenant: str
    clients: frozenset[str]
    scopes: frozenset[str]


@dataclass(frozen=True)
class AccessPolicy:
    """Grants; what no grant gives is denied. `source` says where it came from, for logs."""

    grants: tuple[Grant, ...]
    source: str
    _index: Mapping[tuple[str, str], frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[tuple[str, str], frozenset[str]] = {}
        for grant in self.grants:
            for client in grant.clients:
                key = (grant.tenant, client)
                index[key] = index.get(key, frozenset()) | grant.scopes
        object.__setattr__(self, "_index", MappingProxyType(index))

    @classmethod
    def allow_all(cls, tenant: str) -> AccessPolicy:
        """Every scope for every client of `tenant`: for plaintext development mode only."""
        return cls((Grant(tenant, frozenset({"*"}), SCOPES),), source=f"development: every scope for tenant {tenant}")

    def scopes_of(self, tenant: str, client: str) -> frozenset[str]:
        """Scopes granted to this client, by name or through the tenant's `"*"`."""
        return self._index.get((tenant, client), frozenset()) | self._index.get((tenant, "*"), frozenset())


class ScopeNotGranted(PermissionDenied):
    """A method needs scopes the caller lacks; `missing_scopes` names them (for ErrorInfo)."""

    def __init__(self, message: str, method: str, missing_scopes: tuple[str, ...]) -> None:
        super().__init__(message)
        self.method = method
        self.missing_scopes = missing_scopes


def effective_scopes(
    policy: AccessPolicy, tenant: str, client: str, token_scopes: frozenset[str] | None = None
) -> frozenset[str]:
    """The policy's grant, narrowed to the token's scopes when the caller came with a token."""
    granted = policy.scopes_of(tenant, client)
    if token_scopes is None:
        return granted
    carried = frozenset().union(*(expand_scope(scope) for scope in token_scopes))
    return granted & carried


def authorize(policy: AccessPolicy, tenant: str, client: str, method: str, token_scopes: frozenset[str] | None = None) -> None:
    """Returns when the caller may call `method` (a full name, `/package.Service/Method`); else raises.

    Raises `ScopeNotGranted` (a `PermissionDenied`) naming the method and the missing scopes,
    and whether the policy or the bearer token lacks them.
    """
    if method in OPEN_METHODS:
        return
    required = METHOD_SCOPES.get(method)
    shown = method if _SHOWN_METHOD.fullmatch(method) else "this method"
    if required is None:
        raise ScopeNotGranted(f"{shown} is not a method this service authorizes, so it is denied", shown, ())
    not_granted = tuple(sorted(required - policy.scopes_of(tenant, client)))
    if not_granted:
        raise ScopeNotGranted(
            f"{shown} needs scope {' and '.join(not_granted)}, which the access policy does not grant to this client",
            shown,
            not_granted,
        )
    not_carried = tuple(sorted(required - effective_scopes(policy, tenant, client, token_scopes)))
    if not_carried:
        raise ScopeNotGranted(
            f"{shown} needs scope {' and '.join(not_carried)}, which the bearer token does not carry",
            shown,
            not_carried,
        )


class PolicyFileError(Exception):
    """A policy file that cannot be used: missing, not TOML, or not a valid policy. Lists every problem."""

    def __init__(self, path: Path, problems: Iterable[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{path}: {problem}" for problem in self.problems))


_TOP_KEYS = ("version", "grants")
_GRANT_KEYS = ("tenant", "clients", "scopes")
_KNOWN_SCOPES = ", ".join(sorted(SCOPES)) + "; wildcards: clinpred/*, system/*.read, system/*.write, system/Patient.*"
_NAME_RULE = "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters"


def _type_name(value: object) -> str:
    return {str: "a string", int: "an integer", bool: "a boolean", float: "a number", list: "a list", dict: "a table"}.get(
        type(value), type(value).__name__
    )


class _KeyLines:
    """Best-effort line numbers of keys in a policy file (tomllib gives positions only for syntax errors)."""

    _GRANTS_HEADER = re.compile(r"\s*\[\[\s*grants\s*\]\]")
    _HEADER = re.compile(r"\s*\[")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.grant_starts = [n for n, line in enumerate(self.lines) if self._GRANTS_HEADER.match(line)]

    def _find(self, key: str, start: int, under_header: bool) -> int | None:
        assignment = re.compile(rf"\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
        for n in range(start, len(self.lines)):
            if (n > start or not under_header) and self._HEADER.match(self.lines[n]):
                return None
            if assignment.match(self.lines[n]):
                return n + 1
        return None

    def of(self, key: str, grant: int | None = None) -> int | None:
        if grant is None:
            return self._find(key, 0, under_header=False)
        if grant >= len(self.grant_starts):
            return None
        start = self.grant_starts[grant]
        return start + 1 if key == "" else self._find(key, start, under_header=True)


def _parse(document: dict[str, Any], lines: _KeyLines) -> tuple[tuple[Grant, ...], list[str]]:
    problems: list[str] = []

    def problem(path: str, reason: str, line: int | None) -> None:
        problems.append(f"{path}: {reason}" + (f" (line {line})" if line else ""))

    for key in document:
        if key not in _TOP_KEYS:
            problem(key, f"unknown key (known: {', '.join(_TOP_KEYS)})", lines.of(key))
    version = document.get("version")
    if version is None:
        problem("version", "missing; this format is version = 1", None)
    elif type(version) is not int or version != 1:
        problem("version", f"must be 1, the only version this service reads (got {version!r})", lines.of("version"))
    raw_grants = document.get("grants", [])
    if not isinstance(raw_grants, list):
        problem("grants", f"must be an array of tables ([[grants]]), not {_type_name(raw_grants)}", lines.of("grants"))
        return (), problems
    grants = []
    for i, raw in enumerate(raw_grants):
        at = f"grants[{i}]"
        if not isinstance(raw, dict):
            problem(at, f"must be a table, not {_type_name(raw)}", lines.of("", i))
            continue
        for key in raw:
            if key not in _GRANT_KEYS:
                problem(f"{at}.{key}", f"unknown key (known: {', '.join(_GRANT_KEYS)})", lines.of(key, i))
        for key in _GRANT_KEYS:
            if key not in raw:
                problem(at, f"missing key '{key}'", lines.of("", i))
        tenant = raw.get("tenant")
        if tenant is not None:
            if not isinstance(tenant, str):
                problem(f"{at}.tenant", f"must be a string, not {_type_name(tenant)}", lines.of("tenant", i))
            elif tenant == "*":
                problem(f"{at}.tenant", "a grant names one tenant; '*' is for clients only", lines.of("tenant", i))
            elif not _NAME.fullmatch(tenant):
                problem(f"{at}.tenant", f"{tenant!r} is not a tenant name: {_NAME_RULE}", lines.of("tenant", i))
        clients = _strings(raw, "clients", at, i, lines, problem)
        for j, client in enumerate(clients):
            if client != "*" and not _NAME.fullmatch(client):
                reason = f"{client!r} is not a client name: {_NAME_RULE}, or '*' for every client"
                problem(f"{at}.clients[{j}]", reason, lines.of("clients", i))
        scopes: set[str] = set()
        for j, scope in enumerate(_strings(raw, "scopes", at, i, lines, problem)):
            expanded = expand_scope(scope)
            if not expanded:
                reason = f"unknown scope {scope!r}: no method needs it (known: {_KNOWN_SCOPES})"
                problem(f"{at}.scopes[{j}]", reason, lines.of("scopes", i))
            scopes |= expanded
        if isinstance(tenant, str) and clients and scopes:
            grants.append(Grant(tenant, frozenset(clients), frozenset(scopes)))
    return tuple(grants), problems


def _strings(
    raw: dict[str, Any], key: str, at: str, grant: int, lines: _KeyLines, problem: Callable[[str, str, int | None], None]
) -> list[str]:
    """A non-empty list of strings at `raw[key]`, or [] after reporting what is wrong."""
    if key not in raw:
        return []
    value = raw[key]
    line = lines.of(key, grant)
    if not isinstance(value, list):
        problem(f"{at}.{key}", f"must be a list of strings, not {_type_name(value)}", line)
        return []
    if not value:
        problem(f"{at}.{key}", "must not be empty (a grant of nothing is likely a mistake)", line)
        return []
    strings = []
    for j, item in enumerate(value):
        if isinstance(item, str):
            strings.append(item)
        else:
            problem(f"{at}.{key}[{j}]", f"must be a string, not {_type_name(item)}", line)
    return strings


def _policy_from_bytes(path: Path, data: bytes) -> AccessPolicy:
    try:
        text = data.decode("utf-8")
        document = tomllib.loads(text)
    except UnicodeDecodeError as error:
        raise PolicyFileError(path, [f"is not UTF-8 text (byte {error.start})"]) from error
    except tomllib.TOMLDecodeError as error:
        raise PolicyFileError(path, [f"is not valid TOML: {error}"]) from error
    grants, problems = _parse(document, _KeyLines(text))
    if problems:
        raise PolicyFileError(path, problems)
    return AccessPolicy(grants, source=str(path))


def load_policy(path: Path) -> AccessPolicy:
    """The policy in a TOML policy file; raises `PolicyFileError` listing every problem."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PolicyFileError(path, [f"cannot be read: {error.strerror or error}"]) from error
    return _policy_from_bytes(path, data)


class PolicyFile:
    """A policy file, reloaded when it changes (`WatchedFile`); `current()` is cheap enough for every call.

    A broken or missing file at construction raises `PolicyFileError` (no service without a policy).
    Later, a broken version keeps the last good policy, is logged once as a warning and sets
    `last_error`; the next good version replaces it and is logged at INFO.
    """

    def __init__(self, path: Path, check_interval_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        try:
            self._file = WatchedFile(
                path,
                functools.partial(_policy_from_bytes, path),
                what="access policy",
                logger=logger,
                rejects=(PolicyFileError,),
                summary=lambda policy: f": {len(policy.grants)} grants",
                check_interval_seconds=check_interval_seconds,
                clock=clock,
            )
        except OSError as error:
            raise PolicyFileError(path, [f"cannot be read: {error.strerror or error}"]) from error
        logger.info("access policy %s loaded: %d grants", path, len(self._file.current().grants))

    @property
    def last_error(self) -> str | None:
        return self._file.last_error

    def current(self) -> AccessPolicy:
        """The policy in force, after looking for a new version at most once per interval."""
        return self._file.current()
