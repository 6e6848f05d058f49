"""What every fuzzed call must end with, and a tally of status codes per RPC for the large runs.

CLINPRED_FUZZ_EXAMPLES sets the examples per RPC (unset: the small run of the normal suite);
the tally is printed at the end of a module when it is set.
"""

from __future__ import annotations

import os
import struct
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import grpc
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.support import field_violations

LARGE = int(os.environ.get("CLINPRED_FUZZ_EXAMPLES", "0") or 0)

# Statuses a caller may get for hostile input; INTERNAL and UNKNOWN never.
ACCEPTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.NOT_FOUND,
}

TALLY: defaultdict[str, Counter[str]] = defaultdict(Counter)


def examples(small: int, share: float = 1.0) -> Callable[[Any], Any]:
    """Hypothesis settings: `small` examples in the normal suite, CLINPRED_FUZZ_EXAMPLES * `share` in a large run."""
    count = max(1, int(LARGE * share)) if LARGE else small
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=not LARGE,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def outcome(rpc: str, error: grpc.RpcError | None) -> grpc.StatusCode:
    """Checks a call's ending against the property and tallies it; returns its status code."""
    if error is None:
        TALLY[rpc]["OK"] += 1
        return grpc.StatusCode.OK
    code = error.code()
    TALLY[rpc][code.name] += 1
    assert code in ACCEPTED, (rpc, code, error.details())
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert field_violations(error), (rpc, "INVALID_ARGUMENT without BadRequest violations", error.details())
    return code


def call(rpc: str, invoke: Callable[[], object]) -> grpc.StatusCode:
    """Runs a blocking client call (blocking clients report the server's status even when it refuses a
    stream early) and checks how it ended."""
    try:
        invoke()
    except grpc.RpcError as error:
        return outcome(rpc, error)
    return outcome(rpc, None)


def print_tally(service: str) -> None:
    """Prints the tally of one service's RPCs (names starting with `service`) in a large run."""
    if LARGE:
        for rpc, counts in sorted(TALLY.items()):
            if rpc.startswith(service):
                print(f"\nfuzz {rpc}: " + ", ".join(f"{code} {count}" for code, count in counts.most_common()), end="")


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@st.composite
def unknown_fields(draw: st.DrawFn, first_unknown: int = 16) -> bytes:
    """One or more fields a message does not define, encoded as a newer client would send them."""
    out = b""
    for _ in range(draw(st.integers(1, 3))):
        number = draw(st.integers(first_unknown, (1 << 29) - 1))
        wire = draw(st.sampled_from([0, 1, 2, 5]))
        out += varint(number << 3 | wire)
        if wire == 0:
            out += varint(draw(st.integers(0, (1 << 64) - 1)))
        elif wire == 1:
            out += struct.pack("<Q", draw(st.integers(0, (1 << 64) - 1)))
        elif wire == 2:
            payload = draw(st.binary(max_size=40))
            out += varint(len(payload)) + payload
        else:
            out += struct.pack("<I", draw(st.integers(0, (1 << 32) - 1)))
    return out


def raw_tail() -> st.SearchStrategy[bytes]:
    """What to append to a message's bytes: mostly nothing (so its content is what gets fuzzed), else
    unknown fields or arbitrary bytes."""
    kinds = st.sampled_from(["none", "none", "none", "none", "unknown", "bytes"])
    return kinds.flatmap(
        lambda kind: (
            st.just(b"") if kind == "none" else unknown_fields() if kind == "unknown" else st.binary(min_size=1, max_size=32)
        )
    )


# Hostile identifiers: control characters, NUL, odd unicode, very long strings.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(["", "\x00", "a\x00b", "\t", "line\nbreak", "\u2028", "\x7f", "\u202e", "é", "😀", "breast\x00"]),
    st.integers(65, 5000).map(lambda n: "x" * n),
)
