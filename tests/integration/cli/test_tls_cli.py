"""`clinpred tls init|client|revoke` as a process: the files, their identities, permissions and the CRL."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clinpred.cli.certificates import write_mutual_tls_folder
from clinpred.cli.errors import ExitCode
from clinpred.services.common.identity import DEFAULT_TRUST_DOMAIN, caller_from_certificate_pem
from tests.integration.cli.conftest import cli_process
from tests.support import free_port


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def uris(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    )


def is_private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def crl_serials(folder: Path) -> set[int]:
    crl = x509.load_pem_x509_crl((folder / "crl.pem").read_bytes())
    assert crl.is_signature_valid(certificate(folder / "ca.crt").public_key())  # type: ignore[arg-type]
    return {entry.serial_number for entry in crl}


def test_init_writes_the_ca_key_a_client_identity_the_trust_domain_and_an_empty_crl(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    result = cli_process(
        "tls",
        "init",
        str(folder),
        "--trust-domain",
        "north.hospital.example",
        "--tenant",
        "north",
        "--client",
        "gateway",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["trust_domain"] == "north.hospital.example"
    assert answer["client"]["spiffe_id"] == "spiffe://north.hospital.example/tenant/north/client/gateway"
    for name in ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key", "trust-domain", "crl.pem"):
        assert name in answer["files"] and (folder / name).is_file(), name
    assert all(is_private(folder / key) for key in ("ca.key", "server.key", "client.key"))
    assert (folder / "trust-domain").read_text() == "north.hospital.example\n"
    client = certificate(folder / "client.crt")
    client.verify_directly_issued_by(certificate(folder / "ca.crt"))
    assert uris(client) == [answer["client"]["spiffe_id"]]
    assert client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gateway"
    assert f"{client.serial_number:x}" == answer["client"]["serial"]
    assert crl_serials(folder) == set()

    default = tmp_path / "default"
    assert cli_process("tls", "init", str(default)).returncode == 0
    assert (default / "trust-domain").read_text().strip() == DEFAULT_TRUST_DOMAIN
    assert uris(certificate(default / "client.crt")) == [f"spiffe://{DEFAULT_TRUST_DOMAIN}/tenant/demo/client/cli"]


def test_client_and_revoke(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    assert cli_process("tls", "init", str(folder)).returncode == 0

    made = cli_process("tls", "client", str(folder), "--tenant", "acme", "--name", "ward-app", "--days", "30", "--json")
    assert made.returncode == 0, made.stderr
    issued = json.loads(made.stdout)
    crt, key = folder / "clients" / "acme" / "ward-app.crt", folder / "clients" / "acme" / "ward-app.key"
    assert (issued["certificate"], issued["key"]) == (str(crt), str(key)) and is_private(key)
    assert caller_from_certificate_pem(crt.read_bytes(), DEFAULT_TRUST_DOMAIN, None).tenant == "acme"
    certificate(crt).verify_directly_issued_by(certificate(folder / "ca.crt"))
    lifetime = certificate(crt).not_valid_after_utc - certificate(crt).not_valid_before_utc
    assert 29 < lifetime.days <= 30

    elsewhere = cli_process(
        "tls", "client", str(folder), "--tenant", "acme", "--name", "pump", "--out", str(tmp_path / "out" / "pump")
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "spiffe://clinpred.local/tenant/acme/client/pump" in elsewhere.stdout
    assert is_private(tmp_path / "out" / "pump.key")
    pump = certificate(tmp_path / "out" / "pump.crt")

    revoked = cli_process("tls", "revoke", str(folder), str(crt), "--json")
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout) == {
        "crl": str(folder / "crl.pem"),
        "serial": issued["serial"],
        "newly_revoked": True,
        "revoked_count": 1,
    }
    again = cli_process("tls", "revoke", str(folder), str(crt))
    assert again.returncode == 0 and "already revoked" in again.stdout
    assert cli_process("tls", "revoke", str(folder), str(tmp_path / "out" / "pump.crt")).returncode == 0
    assert crl_serials(folder) == {int(issued["serial"], 16), pump.serial_number}


def test_tls_mistakes_exit_with_one_line_and_the_right_code(tmp_path: Path) -> None:
    folder, other = tmp_path / "tls", tmp_path / "other"
    assert cli_process("tls", "init", str(folder)).returncode == 0
    assert cli_process("tls", "init", str(other)).returncode == 0

    bad_name = cli_process("tls", "client", str(folder), "--tenant", "Acme Hospital", "--name", "x")
    assert bad_name.returncode == 3 and "--tenant: must match" in bad_name.stderr
    foreign = cli_process("tls", "revoke", str(folder), str(other / "client.crt"))
    assert foreign.returncode == 3 and "was not issued by the CA of" in foreign.stderr
    (folder / "ca.key").unlink()
    no_key = cli_process("tls", "client", str(folder), "--tenant", "acme", "--name", "x")
    assert no_key.returncode == 2 and "lacks ca.key; `clinpred tls init` writes them" in " ".join(
        no_key.stderr.replace("│", " ").split()
    )
    for result in (bad_name, foreign, no_key):
        assert "Traceback" not in result.stderr


def test_call_without_a_tls_folder_says_to_serve_or_init_first(tmp_path: Path) -> None:
    done = cli_process("call", "tumor", "info", env={"CLINPRED_STATE_DIR": str(tmp_path)})
    assert done.returncode == ExitCode.FAILED_PRECONDITION, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"no TLS folder at {tmp_path / 'tls'}" in line
    assert "`clinpred serve`" in line and f"`clinpred tls init {tmp_path / 'tls'}`" in line


def test_call_without_options_uses_the_state_dirs_tls_folder(tmp_path: Path) -> None:
    write_mutual_tls_folder(tmp_path / "tls", hosts=["127.0.0.1"])
    (tmp_path / "tls" / "client.key").unlink()
    incomplete = cli_process("call", "tumor", "info", env={"CLINPRED_STATE_DIR": str(tmp_path)})
    assert incomplete.returncode == ExitCode.FAILED_PRECONDITION
    assert "lacks client.key" in incomplete.stderr and len(incomplete.stderr.strip().splitlines()) == 1
    write_mutual_tls_folder(tmp_path / "tls", hosts=["127.0.0.1"])
    # The certificates load, and the call goes out over TLS: nobody listens there, so it is unavailable.
    unused = f"127.0.0.1:{free_port()}"
    done = cli_process("call", "tumor", "info", "--target", unused, "--timeout", "2", env={"CLINPRED_STATE_DIR": str(tmp_path)})
    assert done.returncode == ExitCode.UNAVAILABLE, done.stderr


def test_tls_dir_and_insecure_development_exclude_each_other(tmp_path: Path) -> None:
    for command in (["call", "genomics", "scores"], ["serve", "tumor"]):
        done = cli_process(*command, "--tls-dir", str(tmp_path), "--insecure-development")
        assert done.returncode == ExitCode.USAGE, done.stderr
        words = " ".join(done.stderr.replace("│", " ").split())  # the message as typer boxes and wraps it
        assert "give either --tls-dir or --insecure-development" in words
