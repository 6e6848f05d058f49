"""The README's command-line reference, generated from the typer app: every command and the exit codes.

`make cli-reference` (python -m clinpred.cli.reference --write README.md) regenerates it; a test
fails when the README's copy differs, so a new command or exit code cannot go undocumented.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence

import typer.main

from clinpred.cli.errors import DEBUG_ENV, ExitCode
from clinpred.services.common.settings_reference import readme_block_main

START_MARKER = "<!-- cli-reference:start -->"
END_MARKER = "<!-- cli-reference:end -->"


def commands() -> Iterator[tuple[str, str]]:
    """(`clinpred ...` command line, first line of its help), depth first in name order."""
    from clinpred.cli.main import app

    # typer vendors its own click, so commands are typed as plain objects: groups have `commands`.
    def walk(command: object, words: list[str]) -> Iterator[tuple[str, str]]:
        children: dict[str, object] = getattr(command, "commands", {})
        if not children:
            summary = str(getattr(command, "help", None) or "").strip().split("\n", 1)[0]
            yield " ".join(words), summary
            return
        for name in sorted(children):
            yield from walk(children[name], [*words, name])

    yield from walk(typer.main.get_command(app), ["clinpred"])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown() -> str:
    lines = [
        START_MARKER,
        "### Command-line reference",
        "",
        "<!-- Generated from the typer app by `make cli-reference` (python -m clinpred.cli.reference"
        " --write README.md): edit the commands' docstrings, then regenerate. -->",
        "",
        "`clinpred COMMAND --help` gives every option. `call` commands take `--target HOST:PORT` (default: the"
        " service's port on 127.0.0.1), `--timeout`, `--tls-dir DIR` (mutual TLS; default: `var/tls`, the folder"
        " `clinpred serve` makes), `--insecure-development` (plaintext, for `clinpred serve --insecure-development`)"
        " and `--json`, which prints the API's"
        " response message as proto3 JSON (one message per line for streams); local commands' `--json`"
        " prints the object their `--help` describes. One option name means one thing in every command.",
        "",
        "| command | what it does |",
        "|---|---|",
        *(f"| `{_cell(line)}` | {_cell(summary)} |" for line, summary in commands()),
        "",
        "Exit codes (errors print one line per problem on standard error, without a traceback;"
        f" `--debug` or `{DEBUG_ENV}=1` adds it):",
        "",
        "| code | meaning |",
        "|---|---|",
        *(f"| {int(code)} | {_cell(code.meaning)} |" for code in ExitCode),
        END_MARKER,
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return readme_block_main(argv, "command-line reference", render_markdown, START_MARKER, END_MARKER)


if __name__ == "__main__":
    sys.exit(main())
