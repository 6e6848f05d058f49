"""How `clinpred` fails: one exit code per kind of failure, and one readable line per problem.

The table of exit codes is `ExitCode` alone; `clinpred --help` prints it from here
(`exit_codes_help`). gRPC errors from a service and domain errors raised in this
process (a bad CSV, a bad VCF, training data with a bad column) map through the
same gRPC status names, so a script sees the same code for the same problem
wherever it was found.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import typer

# typer 0.29 vendors click; its Context is the type `TyperGroup.invoke` takes.
from typer._click.core import Context
from typer.core import TyperGroup

from clinpred.pilots.common.errors import ClinpredError

if TYPE_CHECKING:
    import grpc


class ExitCode(IntEnum):
    """Exit status of every `clinpred` command: (number, meaning, the gRPC status names that end with it)."""

    meaning: str
    statuses: tuple[str, ...]

    def __new__(cls, value: int, meaning: str, statuses: tuple[str, ...] = ()) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        member.statuses = statuses
        return member

    OK = 0, "success", ("OK",)
    ERROR = 1, "any other error (INTERNAL, RESOURCE_EXHAUSTED, UNKNOWN, ...)"
    USAGE = 2, "usage: an unknown command, a bad or missing option or argument"
    INVALID_INPUT = (
        3, "invalid input: INVALID_ARGUMENT, OUT_OF_RANGE, a bad CSV/JSON/VCF",
        ("INVALID_ARGUMENT", "OUT_OF_RANGE"),
    )
    NOT_FOUND = 4, "not found: NOT_FOUND (e.g. an unknown patient or score)", ("NOT_FOUND",)
    UNAVAILABLE = (
        5, "unavailable: UNAVAILABLE, DEADLINE_EXCEEDED, connection refused", ("UNAVAILABLE", "DEADLINE_EXCEEDED")
    )
    PERMISSION = 6, "permission: PERMISSION_DENIED, UNAUTHENTICATED", ("PERMISSION_DENIED", "UNAUTHENTICATED")
    FAILED_PRECONDITION = (
        7, "failed precondition: FAILED_PRECONDITION (e.g. a VCF in another build)", ("FAILED_PRECONDITION",)
    )
    INTERRUPTED = 130, "interrupted (Ctrl-C)"


DEBUG_ENV = "CLINPRED_DEBUG"


def exit_code_of_status(status: str) -> ExitCode:
    """The exit code for a gRPC status code name such as "NOT_FOUND"."""
    return next((code for code in ExitCode if status in code.statuses), ExitCode.ERROR)


def exit_codes_help() -> str:
    rows = "\n".join(f"  {int(code):>3}  {code.meaning}" for code in ExitCode)
    return (
        f"Exit codes:\n{rows}\n\n"
        f"Errors print one line per problem on standard error, without a traceback;\n"
        f"--debug (or {DEBUG_ENV}=1) adds the traceback."
    )


@dataclass(frozen=True)
class Failure:
    """A failure as the person at the terminal sees it."""

    code: ExitCode
    lines: Sequence[str]


def _status_lines(status: str, message: str, violations: Sequence[tuple[str, str]]) -> list[str]:
    lines = [f"{status}: {message}" if message else status]
    # A single violation is usually the message itself; every one is printed when there are more.
    if not (len(violations) == 1 and message == f"{violations[0][0]}: {violations[0][1]}"):
        lines += [f"  {field}: {description}" for field, description in violations]
    return lines


def _rpc_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(error)
    except ValueError:  # trailers that contradict the call's own status: show the status alone
        return []
    found: list[tuple[str, str]] = []
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found += [(v.field, v.description) for v in bad_request.field_violations]
    return found


def failure_of(error: BaseException) -> Failure:
    """The exit code and lines for any exception that ends a command, with the notes a command added to it."""
    failure = _failure_of(error)
    notes = [f"  ({note})" for note in getattr(error, "__notes__", ())]
    return Failure(failure.code, [*failure.lines, *notes])


def _failure_of(error: BaseException) -> Failure:
    # grpc is imported by the commands that call a service only; without it no error can be an RpcError.
    grpc = sys.modules.get("grpc")
    if grpc is not None and isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call):
        code = error.code()
        name = code.name if code is not None else "UNKNOWN"
        lines = _status_lines(name, error.details() or "", _rpc_violations(error))
        exit_code = exit_code_of_status(name)
        if exit_code is ExitCode.UNAVAILABLE:
            lines.append("  is the service running there? `clinpred serve` starts it; --target names another")
        return Failure(exit_code, lines)
    from clinpred.services.common.sealed_channel import SealedStreamError

    if isinstance(error, SealedStreamError):
        return Failure(ExitCode.USAGE, [f"error: {error}", "  (--sealed carries one request and one answer)"])
    if isinstance(error, ClinpredError):
        violations = [(v.field, v.description) for v in error.violations]
        return Failure(exit_code_of_status(error.status), _status_lines(error.status, error.message, violations))
    if isinstance(error, subprocess.CalledProcessError):
        # The child (e.g. `clinpred models register`) already printed its own error; keep its code.
        command = " ".join(str(part) for part in error.cmd[-4:]) if isinstance(error.cmd, list) else str(error.cmd)
        code = next((c for c in ExitCode if c == error.returncode), ExitCode.ERROR)
        return Failure(code, [f"error: the child process `{command}` failed with exit code {error.returncode}"])
    return Failure(ExitCode.ERROR, [f"error: {type(error).__name__}: {error}", f"  (--debug or {DEBUG_ENV}=1 shows where)"])


def debug_requested(ctx: Context | None) -> bool:
    if ctx is not None and ctx.find_root().meta.get("clinpred.debug"):
        return True
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class ReportingGroup(TyperGroup):
    """The root command: turns any exception a command raises into its `Failure` and exit code.

    Wrapping `invoke` of the root group (rather than the console script) means `python -m
    clinpred.cli.main`, the installed `clinpred` script and `typer.testing.CliRunner` all behave alike.
    """

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # exits, usage errors (2) and Ctrl-C (130) as typer itself reports them
        except BrokenPipeError:
            raise  # the reader went away (`| head`); typer exits quietly
        except Exception as error:
            if debug_requested(ctx):
                traceback.print_exception(error, file=sys.stderr)
            failure = failure_of(error)
            for line in failure.lines:
                typer.echo(line, err=True)
            raise typer.Exit(failure.code) from None
