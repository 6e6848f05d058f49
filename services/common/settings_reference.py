"""Every environment variable clinpred reads, taken from the settings classes.

Two uses: the settings reference in README.md (between its settings-reference markers),
written by

    python -m clinpred.services.common.settings_reference --write README.md

and, at start, a warning for each `CLINPRED_` variable that nothing reads: pydantic
settings ignore names they do not know, so a typo would otherwise go unnoticed.

A variable's description is its field's `Field(description=...)`, else the comment just
above the field in its class; a subclass that overrides a field adds its own note to
the base class's description.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import inspect
import json
import logging
import os
import sys
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

logger = logging.getLogger("clinpred.settings")

PREFIX = "CLINPRED_"
# Variables of the test suite (e.g. CLINPRED_TEST_POSTGRES_URL) are never warned about.
TEST_PREFIX = "CLINPRED_TEST_"
START_MARKER = "<!-- settings-reference:start -->"
END_MARKER = "<!-- settings-reference:end -->"
CHECKOUT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    default: str
    description: str


@dataclass(frozen=True)
class VariableGroup:
    title: str
    source: str
    variables: tuple[Variable, ...]


# Read with os.environ rather than through a settings class; a test finds every such read
# of a CLINPRED_ name in the source tree and checks that it is listed here.
_READ_DIRECTLY: dict[str, tuple[Variable, ...]] = {
    "Deterioration service": (
        Variable(
            "CLINPRED_SECRETS_DIR",
            "Path",
            "unset",
            "A folder of files named like these variables (e.g. `CLINPRED_DETERIORATION_DATABASE_URL`), such as a "
            "mounted Kubernetes Secret, so that a secret need not sit in the environment; a variable set in the "
            "environment wins over its file.",
        ),
    ),
    "Development": (
        Variable(
            "CLINPRED_TOOLS_VENV",
            "Path",
            "`<checkout>/.venv-tools`",
            "The virtual environment with checkov and kubernetes-validate that the Kubernetes manifest tests run.",
        ),
        Variable(
            "CLINPRED_TEST_POSTGRES_URL",
            "str",
            "`postgresql://postgres@127.0.0.1:5432/test`",
            "PostgreSQL server the tests create (and drop) their own databases in.",
        ),
        Variable(
            "CLINPRED_FUZZ_EXAMPLES",
            "int",
            "unset (the normal suite's small run)",
            "Hostile examples per RPC the fuzz tests generate (tests/fuzz, tests/integration/deterioration/test_fuzz.py);"
            " `make fuzz` runs 10000.",
        ),
        Variable(
            "CLINPRED_FUZZ_REPORT",
            "Path",
            "unset",
            "A JSON file the fuzz tests append the status codes they saw to, per backend and RPC.",
        ),
    ),
}


def _settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    # Imported here: the services' settings modules import this package's settings module.
    from clinpred.cli.settings import CliSettings
    from clinpred.services.common.server_logs import LogSettings
    from clinpred.services.deterioration.settings import DeteriorationSettings
    from clinpred.services.genomics.settings import GenomicsSettings
    from clinpred.services.tumor.settings import TumorSettings

    return [
        ("Command line", CliSettings),
        ("Every served process", LogSettings),
        ("Tumour service", TumorSettings),
        ("Deterioration service", DeteriorationSettings),
        ("Genomic risk service", GenomicsSettings),
    ]


def _variable_name(settings: type[BaseSettings], name: str, field: FieldInfo) -> str:
    if isinstance(field.validation_alias, str):
        return field.validation_alias.upper()
    return f"{settings.model_config.get('env_prefix', '')}{name}".upper()


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(annotation))
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(annotation))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in get_args(annotation))}]"
    if annotation is type(None):
        return "None"
    return str(getattr(annotation, "__name__", annotation))


def _number(value: float) -> str:
    return f"{value:g}"


def _bounds(field: FieldInfo) -> str:
    words = []
    for bound in field.metadata:
        if isinstance(bound, Ge):
            words.append(f"≥ {_number(bound.ge)}")  # type: ignore[arg-type]  # annotated_types bounds are any comparable
        elif isinstance(bound, Gt):
            words.append(f"> {_number(bound.gt)}")  # type: ignore[arg-type]
        elif isinstance(bound, Le):
            words.append(f"≤ {_number(bound.le)}")  # type: ignore[arg-type]
        elif isinstance(bound, Lt):
            words.append(f"< {_number(bound.lt)}")  # type: ignore[arg-type]
    return ", ".join(words)


def _size(value: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"


def _default(name: str, field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]  # settings factories take no arguments
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int) and name.endswith("_BYTES"):
        return f"`{value}` ({_size(value)})"
    if isinstance(value, float):
        return f"`{_number(value)}`"
    if isinstance(value, list | dict):
        return f"`{json.dumps(value)}`"
    # Paths under the checkout are shown relative to it, so the reference reads the same on every machine.
    return f"`{str(value).replace(str(CHECKOUT), '<checkout>')}`"


def _comment_above(owner: type, name: str) -> str | None:
    """The comment lines just above `name`'s definition in `owner`'s class body, joined."""
    try:
        source = textwrap.dedent(inspect.getsource(owner))
    except (OSError, TypeError):
        return None
    lines = source.splitlines()
    (definition,) = ast.parse(source).body
    assert isinstance(definition, ast.ClassDef)
    for node in definition.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            above: list[str] = []
            index = node.lineno - 2
            while index >= 0 and lines[index].strip().startswith("#"):
                above.insert(0, lines[index].strip().lstrip("#").strip())
                index -= 1
            return " ".join(above) or None
    return None


def _description(settings: type[BaseSettings], name: str) -> str | None:
    notes: list[str] = []
    for owner in reversed(settings.__mro__):
        if not issubclass(owner, BaseSettings) or name not in vars(owner).get("__annotations__", {}):
            continue
        note = owner.model_fields[name].description or _comment_above(owner, name)
        if note and note not in notes:
            notes.append(note)
    return " ".join(notes) or None


def _source(settings: type) -> str:
    module = settings.__module__.removeprefix("clinpred.").replace(".", "/")
    return f"`{module}.py`, `{settings.__name__}`"


class UndescribedSetting(Exception):
    """A setting has no description: give its field `Field(description=...)`."""


@cache
def reference() -> tuple[VariableGroup, ...]:
    """Every variable, by the part of clinpred that reads it."""
    groups = []
    for title, settings in _settings_classes():
        variables = []
        for name, field in settings.model_fields.items():
            variable = _variable_name(settings, name, field)
            description = _description(settings, name)
            if description is None:
                raise UndescribedSetting(f"{settings.__name__}.{name} ({variable}) has no description")
            bounds = _bounds(field)
            kind = _type_name(field.annotation) + (f", {bounds}" if bounds else "")
            variables.append(Variable(variable, kind, _default(variable, field), description))
        variables.extend(_READ_DIRECTLY.get(title, ()))
        groups.append(VariableGroup(title, _source(settings), tuple(variables)))
    known_titles = {title for title, _ in _settings_classes()}
    for title, direct in _READ_DIRECTLY.items():
        if title not in known_titles:
            groups.append(VariableGroup(title, "read from `os.environ`", direct))
    return tuple(groups)


def known_variables() -> frozenset[str]:
    return frozenset(v.name for group in reference() for v in group.variables)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    """The README block between the markers (markers included)."""
    lines = [
        START_MARKER,
        "### Settings reference",
        "",
        "<!-- Generated from the settings classes by `make settings-reference` (python -m"
        " clinpred.services.common.settings_reference --write README.md): edit the classes, then regenerate. -->",
        "",
        "Every environment variable clinpred reads. Names are case-insensitive; at start, the services and"
        " `clinpred serve` warn about a `CLINPRED_` variable that is not one of these (a typo), naming the closest one.",
    ]
    for group in reference():
        lines += ["", f"**{group.title}** ({group.source}):", "", "| variable | type | default | description |"]
        lines.append("|---|---|---|---|")
        lines += [f"| `{v.name}` | {_cell(v.type)} | {_cell(v.default)} | {_cell(v.description)} |" for v in group.variables]
    lines.append(END_MARKER)
    return "\n".join(lines)


class MissingMarkers(Exception):
    pass


def replace_block(document: str, block: str, start_marker: str = START_MARKER, end_marker: str = END_MARKER) -> str:
    """`document` with the text from the start marker to the end marker replaced by `block`."""
    start, end = document.find(start_marker), document.find(end_marker)
    if start < 0 or end < start:
        raise MissingMarkers(f"{start_marker} ... {end_marker} not found")
    return document[:start] + block + document[end + len(end_marker) :]


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """(name, closest known name or None) for each CLINPRED_ variable in `environ` that nothing reads."""
    environ = os.environ if environ is None else environ
    known = known_variables()
    found = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper.startswith(TEST_PREFIX) or upper in known:
            continue
        # Compared without the prefix every name shares, which would make any two names look alike.
        closest = difflib.get_close_matches(upper.removeprefix(PREFIX), [k.removeprefix(PREFIX) for k in sorted(known)], n=1)
        found.append((name, PREFIX + closest[0] if closest else None))
    return found


def unknown_variable_messages(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per unknown variable. Names only: a value may be a secret."""
    return [
        f"{name} is not a clinpred setting and is ignored"
        + (f" (did you mean {closest}?)" if closest else " (see the settings reference in README.md)")
        for name, closest in unknown_variables(environ)
    ]


def warn_about_unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Logs one WARNING per unknown CLINPRED_ variable; returns the messages."""
    messages = unknown_variable_messages(environ)
    for message in messages:
        logger.warning("%s", message)
    return messages


def readme_block_main(
    argv: Sequence[str] | None, what: str, render: Callable[[], str], start_marker: str, end_marker: str
) -> int:
    """`--write README` or `--check README` for a generated block between two markers (or print it)."""
    parser = argparse.ArgumentParser(description=f"The {what} of README.md, generated.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", type=Path, metavar="README", help="replace the block between the markers in this file")
    action.add_argument("--check", type=Path, metavar="README", help="exit 1 when this file's block is out of date")
    args = parser.parse_args(argv)
    block = render()
    target: Path | None = args.write or args.check
    if target is None:
        print(block)
        return 0
    current = target.read_text()
    updated = replace_block(current, block, start_marker, end_marker)
    if args.check:
        if updated != current:
            print(f"{target}: the {what} is out of date; run --write {target}", file=sys.stderr)
            return 1
        return 0
    if updated != current:
        target.write_text(updated)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return readme_block_main(argv, "settings reference", render_markdown, START_MARKER, END_MARKER)


if __name__ == "__main__":
    raise SystemExit(main())
