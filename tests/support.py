"""Small pieces several test modules use."""

from __future__ import annotations

import http.client
import math
import socket
import ssl
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listen_addresses(port: int) -> set[str]:
    """The local addresses TCP sockets of any process listen on at `port` (e.g. {"127.0.0.1"}, {"0.0.0.0"})."""
    import psutil

    return {c.laddr.ip for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


def another_local_address() -> str:
    """A local IPv4 address other than 127.0.0.1: a non-loopback interface's, else 127.0.0.2 (Linux
    answers all of 127.0.0.0/8 on the loopback interface). A socket bound to 127.0.0.1 is not
    reachable there; one bound to 0.0.0.0 is."""
    import psutil

    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return "127.0.0.2"


def https_get(
    port: int, ca: Path, client: tuple[Path, Path] | None, *, server_name: str = "127.0.0.1", path: str = "/metrics"
) -> tuple[int, str]:
    """GET over TLS from 127.0.0.1:`port`, checking the server's certificate against `ca` for
    `server_name`, presenting `client` (certificate, key) if given. Raises OSError (ssl.SSLError
    among them) or http.client.HTTPException when the server refuses the connection."""
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as connection,
    ):
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, response.read().decode()


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    """The google.rpc.BadRequest field violations of a failed call, field -> description."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "the error carries no rich status"
    found: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.update({v.field: v.description for v in bad_request.field_violations})
    return found


def assert_figures_close(actual: object, expected: object, *, rel: float, path: str = "metrics") -> None:
    """Nested JSON-like figures agree: numbers within `rel` (relative, with an absolute floor of
    `rel` near zero), everything else exactly. For trained figures rebuilt on another machine,
    whose float sums may run in another order."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), f"{path}: keys differ"
        for key in expected:
            assert_figures_close(actual[key], expected[key], rel=rel, path=f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: lengths differ"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_figures_close(a, e, rel=rel, path=f"{path}[{index}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert isinstance(actual, int | float), f"{path}: {actual!r} is not a number"
        assert math.isclose(actual, expected, rel_tol=rel, abs_tol=rel), f"{path}: {actual!r} != {expected!r} within {rel:g}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
