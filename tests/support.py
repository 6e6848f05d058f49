"""Small pieces several test modules use."""

from __future__ import annotations

import math
import socket

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
