"""Authorization: the scope table covers every RPC, the policy file is strict, deny by default, hot reload."""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import threading
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from clinpred.pilots.common.errors import PermissionDenied
from clinpred.services import api
from clinpred.services.common.authorization import (
    METHOD_SCOPES,
    OPEN_METHODS,
    SCOPES,
    SEALED_ENVELOPE,
    AccessPolicy,
    PolicyFile,
    PolicyFileError,
    ScopeNotGranted,
    authorize,
    effective_scopes,
    expand_scope,
    load_policy,
)

DETERIORATION = "/clinpred.deterioration.v1.DeteriorationService/"
TUMOR = "/clinpred.tumor.v1.TumorClassificationService/"
GENOMICS = "/clinpred.genomics.v1.GenomicRiskService/"

# The example of the README's security page: keep the two the same.
EXAMPLE = """\
version = 1

# Telemonitoring app: registers children, records observations, reads their risks.
[[grants]]
tenant = "st-olav"
clients = ["home-monitoring"]
scopes = ["system/Patient.write", "system/Observation.write", "system/RiskAssessment.read"]

# Ward dashboard: watches wards and teams, reads risks, history and FHIR exports.
[[grants]]
tenant = "st-olav"
clients = ["ward-dashboard"]
scopes = ["system/RiskAssessment.read", "clinpred/deterioration.watch"]

# Laboratory system: polygenic risk from VCFs, plain or encrypted.
[[grants]]
tenant = "st-olav"
clients = ["lab-system"]
scopes = ["clinpred/genomics.assess", "clinpred/genomics.encrypted"]

# Every client of the tenant may read model identities and metrics.
[[grants]]
tenant = "st-olav"
clients = ["*"]
scopes = ["clinpred/model.read"]
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str) -> Path:
    """Replaces the file atomically, as a ConfigMap update or `mv` does (a new inode each time)."""
    staging = path.with_name(path.name + ".new")
    staging.write_text(text)
    os.replace(staging, path)
    return path


def policy_of(tmp_path: Path, text: str) -> AccessPolicy:
    return load_policy(write(tmp_path / "policy.toml", text))


def problems_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(PolicyFileError) as raised:
        policy_of(tmp_path, text)
    assert raised.value.problems, "a refused file names at least one problem"
    assert str(tmp_path / "policy.toml") in str(raised.value)
    return str(raised.value)


def rpc_methods() -> set[str]:
    """Every RPC of every generated service, as a full method name."""
    methods = set()
    for module in pkgutil.walk_packages(api.__path__, api.__name__ + "."):
        if module.name.endswith("_pb2"):
            descriptor = importlib.import_module(module.name).DESCRIPTOR
            for service in descriptor.services_by_name.values():
                methods.update(f"/{service.full_name}/{method.name}" for method in service.methods)
    return methods


def test_every_rpc_of_every_service_needs_a_scope_and_the_table_names_no_other() -> None:
    methods = rpc_methods()
    assert len(methods) == 27  # tumour 6, deterioration 8, genomics 7, and Sealed and GetKeyConfigurations each
    assert set(METHOD_SCOPES) == methods
    # Only the sealed envelope and its public keys need no scope: the envelope's inner method needs its own.
    unscoped = {m for m in methods if m.endswith(("/Sealed", "/GetKeyConfigurations"))}
    assert all(METHOD_SCOPES[m] == SEALED_ENVELOPE for m in unscoped) and len(unscoped) == 6
    assert all(METHOD_SCOPES[m] and METHOD_SCOPES[m] <= SCOPES for m in methods - unscoped)


def test_health_and_reflection_are_open_to_any_caller_and_exactly_their_methods() -> None:
    health = health_pb2.DESCRIPTOR.services_by_name["Health"]
    reflection = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]
    installed = {f"/{s.full_name}/{m.name}" for s in (health, reflection) for m in s.methods}
    assert installed | {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"} == OPEN_METHODS
    nobody = AccessPolicy((), source="empty")
    for method in OPEN_METHODS:
        authorize(nobody, "st-olav", "probe", method)
        authorize(nobody, "st-olav", "probe", method, token_scopes=frozenset())


def test_the_example_gives_each_hospital_system_what_it_does_and_nothing_else(tmp_path: Path) -> None:
    policy = policy_of(tmp_path, EXAMPLE)
    allowed = {
        client: {m for m in METHOD_SCOPES if _allowed(policy, "st-olav", client, m)}
        for client in ("home-monitoring", "ward-dashboard", "lab-system", "billing")
    }
    model_info = {TUMOR + "GetModelInfo", DETERIORATION + "GetModelInfo", GENOMICS + "GetModelInfo", GENOMICS + "ListScores"}
    risk_reads = {DETERIORATION + m for m in ("GetLatestRisk", "ListRiskHistory", "ExportFhir")}
    # Every authenticated caller may send sealed envelopes; what they carry is authorized as a plain call.
    sealed = {m for m in METHOD_SCOPES if METHOD_SCOPES[m] == SEALED_ENVELOPE}
    allowed = {client: methods - sealed for client, methods in allowed.items() if methods >= sealed}
    assert allowed["home-monitoring"] == model_info | risk_reads | {
        DETERIORATION + "RegisterPatient",
        DETERIORATION + "RecordObservations",
    }
    assert allowed["ward-dashboard"] == model_info | risk_reads | {DETERIORATION + "WatchRisk"}
    assert allowed["lab-system"] == model_info | {
        GENOMICS + m for m in ("AssessVcf", "AssessVcfUpload", "GetScoreLayout", "ScoreEncrypted", "RegisterEvaluationKeys")
    }
    assert allowed["billing"] == model_info  # through "*" only


def _allowed(policy: AccessPolicy, tenant: str, client: str, method: str) -> bool:
    try:
        authorize(policy, tenant, client, method)
    except PermissionDenied:
        return False
    return True


def test_deny_by_default_names_method_and_missing_scope_only(tmp_path: Path) -> None:
    policy = policy_of(tmp_path, EXAMPLE)
    assert policy.scopes_of("st-olav", "unknown-client") == {"clinpred/model.read"}
    assert policy.scopes_of("haukeland", "ward-dashboard") == frozenset()
    with pytest.raises(ScopeNotGranted) as raised:
        authorize(policy, "haukeland", "ward-dashboard", DETERIORATION + "GetLatestRisk")
    error = raised.value
    assert isinstance(error, PermissionDenied) and error.status == "PERMISSION_DENIED"
    assert error.missing_scopes == ("system/RiskAssessment.read",)
    assert error.message == (
        "/clinpred.deterioration.v1.DeteriorationService/GetLatestRisk needs scope system/RiskAssessment.read,"
        " which the access policy does not grant to this client"
    )
    assert "haukeland" not in error.message and "ward-dashboard" not in error.message


def test_recording_observations_needs_reading_risks_too_because_it_answers_with_the_risk(tmp_path: Path) -> None:
    policy = policy_of(
        tmp_path,
        'version = 1\n[[grants]]\ntenant = "st-olav"\nclients = ["uploader"]\nscopes = ["system/Observation.write"]\n',
    )
    with pytest.raises(ScopeNotGranted) as raised:
        authorize(policy, "st-olav", "uploader", DETERIORATION + "RecordObservations")
    assert raised.value.missing_scopes == ("system/RiskAssessment.read",)


def test_wildcard_client_covers_every_client_of_its_tenant_only(tmp_path: Path) -> None:
    policy = policy_of(
        tmp_path,
        'version = 1\n[[grants]]\ntenant = "st-olav"\nclients = ["*"]\nscopes = ["clinpred/tumor.classify"]\n'
        '[[grants]]\ntenant = "st-olav"\nclients = ["pacs"]\nscopes = ["clinpred/model.read"]\n',
    )
    assert policy.scopes_of("st-olav", "pacs") == {"clinpred/tumor.classify", "clinpred/model.read"}
    assert policy.scopes_of("st-olav", "any-other") == {"clinpred/tumor.classify"}
    authorize(policy, "st-olav", "any-other", TUMOR + "ClassifyStream")
    with pytest.raises(PermissionDenied):
        authorize(policy, "haukeland", "pacs", TUMOR + "Classify")


def test_scope_wildcards_expand_to_the_scopes_they_stand_for(tmp_path: Path) -> None:
    assert expand_scope("system/*.read") == {"system/RiskAssessment.read"}
    assert expand_scope("system/*.write") == {"system/Patient.write", "system/Observation.write"}
    assert expand_scope("system/*.*") == {s for s in SCOPES if s.startswith("system/")}
    assert expand_scope("system/Patient.*") == {"system/Patient.write"}
    assert expand_scope("clinpred/*") == {s for s in SCOPES if s.startswith("clinpred/")}
    assert expand_scope("system/Encounter.*") == frozenset()
    assert expand_scope("system/Patient.read") == frozenset()
    policy = policy_of(
        tmp_path, 'version = 1\n[[grants]]\ntenant = "t"\nclients = ["c"]\nscopes = ["clinpred/*", "system/*.*"]\n'
    )
    assert policy.scopes_of("t", "c") == SCOPES


def test_a_token_can_only_narrow_the_grant(tmp_path: Path) -> None:
    policy = policy_of(tmp_path, EXAMPLE)
    method = DETERIORATION + "RecordObservations"
    authorize(policy, "st-olav", "home-monitoring", method, token_scopes=None)
    authorize(policy, "st-olav", "home-monitoring", method, frozenset({"system/*.write", "system/*.read", "openid"}))
    with pytest.raises(ScopeNotGranted) as raised:
        authorize(policy, "st-olav", "home-monitoring", method, token_scopes=frozenset({"system/RiskAssessment.read"}))
    assert raised.value.missing_scopes == ("system/Observation.write",)
    assert "the bearer token does not carry" in raised.value.message
    with pytest.raises(ScopeNotGranted, match="access policy does not grant"):
        authorize(policy, "st-olav", "ward-dashboard", method, token_scopes=frozenset({"system/*.*"}))
    narrowed = effective_scopes(policy, "st-olav", "ward-dashboard", frozenset({"system/*.*", "clinpred/genomics.assess"}))
    assert narrowed == {"system/RiskAssessment.read"}
    assert effective_scopes(policy, "st-olav", "ward-dashboard", frozenset()) == frozenset()


def test_a_method_in_no_table_is_denied_without_echoing_odd_names() -> None:
    everything = AccessPolicy.allow_all("st-olav")
    with pytest.raises(ScopeNotGranted, match=r"^/clinpred.tumor.v1.TumorClassificationService/Retrain is not a method"):
        authorize(everything, "st-olav", "c", TUMOR + "Retrain")
    with pytest.raises(ScopeNotGranted) as raised:
        authorize(everything, "st-olav", "c", "/x/child-17 <script>")
    assert "child-17" not in raised.value.message and raised.value.message.startswith("this method is not")


def test_allow_all_is_every_method_for_one_tenant() -> None:
    policy = AccessPolicy.allow_all("dev")
    for method in METHOD_SCOPES:
        authorize(policy, "dev", "anyone", method)
    with pytest.raises(PermissionDenied):
        authorize(policy, "other", "anyone", TUMOR + "Classify")


GOOD_GRANT = 'tenant = "st-olav"\nclients = ["ward-dashboard"]\nscopes = ["system/RiskAssessment.read"]\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version = 1\ngrant = []\n", "grant: unknown key (known: version, grants) (line 2)"),
        ("[[grants]]\n" + GOOD_GRANT, "version: missing"),
        ("version = 2\n", "version: must be 1"),
        ('version = "1"\n', "version: must be 1"),
        ("version = 1\ngrants = 3\n", "grants: must be an array of tables ([[grants]]), not an integer (line 2)"),
        (
            "version = 1\n[[grants]]\n" + GOOD_GRANT + "[[grants]]\n" + GOOD_GRANT + 'scope = ["x"]\n',
            "grants[1].scope: unknown key (known: tenant, clients, scopes) (line 10)",
        ),
        (
            'version = 1\n[[grants]]\ntenant = "st-olav"\nscopes = ["clinpred/model.read"]\n',
            "grants[0]: missing key 'clients' (line 2)",
        ),
        (
            "version = 1\n[[grants]]\n" + GOOD_GRANT.replace('"st-olav"', "5"),
            "grants[0].tenant: must be a string, not an integer (line 3)",
        ),
        (
            "version = 1\n[[grants]]\n" + GOOD_GRANT.replace("st-olav", "St Olav"),
            "grants[0].tenant: 'St Olav' is not a tenant name",
        ),
        ("version = 1\n[[grants]]\n" + GOOD_GRANT.replace("st-olav", "*"), "grants[0].tenant: a grant names one tenant"),
        ("version = 1\n[[grants]]\n" + GOOD_GRANT.replace("st-olav", "a" * 64), "is not a tenant name"),
        (
            "version = 1\n[[grants]]\n" + GOOD_GRANT.replace('["ward-dashboard"]', '["ok", "Ward Dashboard"]'),
            "grants[0].clients[1]: 'Ward Dashboard' is not a client name",
        ),
        (
            "version = 1\n[[grants]]\n" + GOOD_GRANT.replace('["ward-dashboard"]', '"ward"'),
            "grants[0].clients: must be a list of strings, not a string",
        ),
        ("version = 1\n[[grants]]\n" + GOOD_GRANT.replace('["ward-dashboard"]', "[]"), "grants[0].clients: must not be empty"),
        (
            "version = 1\n[[grants]]\n" + GOOD_GRANT.replace("system/RiskAssessment.read", "system/Patient.read"),
            "grants[0].scopes[0]: unknown scope 'system/Patient.read': no method needs it",
        ),
        (
            "version = 1\n[[grants]]\n" + GOOD_GRANT.replace('["system/RiskAssessment.read"]', "[1]"),
            "grants[0].scopes[0]: must be a string, not an integer (line 5)",
        ),
        ("version = 1\ngrants = [1]\n", "grants[0]: must be a table, not an integer"),
        ("version = 1\n[[grants]\n", "is not valid TOML"),
        ("version = 1\n[[grants]]\ntenant = \n", "(at line 3"),
    ],
)
def test_a_refused_file_names_the_key_path_and_the_reason(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in problems_of(tmp_path, text)


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    message = problems_of(tmp_path, 'version = 3\n[[grants]]\ntenant = "T"\nclients = ["*"]\nscopes = ["read-all"]\n')
    assert "version: must be 1" in message
    assert "grants[0].tenant: 'T' is not a tenant name" in message
    assert "grants[0].scopes[0]: unknown scope 'read-all'" in message


def test_no_policy_file_means_no_service(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="cannot be read"):
        PolicyFile(tmp_path / "missing.toml")
    with pytest.raises(PolicyFileError, match="version: missing"):
        PolicyFile(write(tmp_path / "policy.toml", "[[grants]]\n" + GOOD_GRANT))


def _dashboard_may_read(policy: AccessPolicy) -> bool:
    return _allowed(policy, "st-olav", "ward-dashboard", DETERIORATION + "GetLatestRisk")


def test_a_changed_file_is_picked_up_after_the_interval(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    path = write(tmp_path / "policy.toml", "version = 1\n")
    policies = PolicyFile(path, check_interval_seconds=1.0, clock=clock)
    assert not _dashboard_may_read(policies.current())
    write(path, "version = 1\n[[grants]]\n" + GOOD_GRANT)
    clock.now += 0.5
    assert not _dashboard_may_read(policies.current()), "looked at most once per interval"
    clock.now += 0.5
    with caplog.at_level(logging.INFO, logger="clinpred.authorization"):
        assert _dashboard_may_read(policies.current())
    assert [r.getMessage() for r in caplog.records] == [f"access policy {path} reloaded: 1 grants"]
    assert policies.last_error is None


def test_an_in_place_edit_is_seen_by_its_mtime(tmp_path: Path) -> None:
    clock = FakeClock()
    path = write(tmp_path / "policy.toml", "version = 1\n[[grants]]\n" + GOOD_GRANT)
    policies = PolicyFile(path, clock=clock)
    status = path.stat()
    # Same size, same inode: only the times tell.
    path.write_text("version = 1\n[[grants]]\n" + GOOD_GRANT.replace("ward-dashboard", "ward-dashboarx"))
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    assert path.stat().st_size == status.st_size and path.stat().st_ino == status.st_ino
    clock.now += 1
    assert not _dashboard_may_read(policies.current())


def test_a_broken_file_keeps_the_last_good_policy_warns_once_and_a_fix_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    path = write(tmp_path / "policy.toml", "version = 1\n[[grants]]\n" + GOOD_GRANT)
    policies = PolicyFile(path, clock=clock)
    write(path, "version = 1\n[[grants]]\n" + GOOD_GRANT.replace("RiskAssessment", "Riskassessment"))
    with caplog.at_level(logging.INFO, logger="clinpred.authorization"):
        for _ in range(5):
            clock.now += 1
            assert _dashboard_may_read(policies.current())
    assert (
        policies.last_error is not None
        and "grants[0].scopes[0]: unknown scope 'system/Riskassessment.read'" in policies.last_error
    )
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage() and "grants[0].scopes[0]" in warnings[0].getMessage()

    caplog.clear()
    write(path, "version = 1\n[[grants]]\n" + GOOD_GRANT.replace("ward-dashboard", "other"))
    clock.now += 1
    with caplog.at_level(logging.INFO, logger="clinpred.authorization"):
        assert not _dashboard_may_read(policies.current())
    assert policies.last_error is None
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.INFO, f"access policy {path} reloaded: 1 grants")]


def test_a_second_bad_version_warns_again_and_a_deleted_file_keeps_the_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    path = write(tmp_path / "policy.toml", "version = 1\n[[grants]]\n" + GOOD_GRANT)
    policies = PolicyFile(path, clock=clock)
    with caplog.at_level(logging.WARNING, logger="clinpred.authorization"):
        write(path, "version = 2\n")
        clock.now += 1
        policies.current()
        write(path, "version = [\n")
        clock.now += 1
        policies.current()
        path.unlink()
        for _ in range(3):
            clock.now += 1
            assert _dashboard_may_read(policies.current())
    reasons = [r.getMessage() for r in caplog.records]
    assert len(reasons) == 3
    assert "version: must be 1" in reasons[0] and "not valid TOML" in reasons[1] and "cannot be read" in reasons[2]
    assert policies.last_error is not None and "cannot be read" in policies.last_error


def test_many_threads_read_the_policy_while_it_changes(tmp_path: Path) -> None:
    clock = FakeClock()
    path = write(tmp_path / "policy.toml", "version = 1\n")
    policies = PolicyFile(path, check_interval_seconds=0.0, clock=clock)
    seen: list[AccessPolicy] = []
    start = threading.Barrier(9)

    def read() -> None:
        start.wait()
        seen.extend(policies.current() for _ in range(500))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    start.wait()
    for n in range(20):
        write(path, "version = 1\n" + "\n" * n + "[[grants]]\n" + GOOD_GRANT)
    for thread in threads:
        thread.join()
    assert len(seen) == 8 * 500 and all(isinstance(policy, AccessPolicy) for policy in seen)
    assert _dashboard_may_read(policies.current())
    assert policies.last_error is None
