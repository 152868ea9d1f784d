"""The README's command lines name only `salesmon` subcommands and options that exist (issue #13).

Every `salesmon ...` in the README's code (fenced blocks and inline code) is cut into its subcommand
(`run`, `db start`, ...) and the `--options` it names; each subcommand's `--help` must succeed and
list each option. `salesmon dbt ...` passes its arguments to dbt, so only the subcommand is checked.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

README = Path(__file__).resolve().parent.parent / "README.md"
GROUPS = {"db", "data"}  # subcommands with subcommands of their own
PASSTHROUGH = {"dbt"}  # the rest of the line is dbt's
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
_INLINE = re.compile(r"`([^`\n]+)`")
_COMMAND = re.compile(r"(?:^|[\s(\"'/])salesmon((?:\s+[^\s|;&)`]+)*)")


def code_snippets(text: str) -> list[str]:
    """The lines of the fenced blocks and the inline code spans outside them."""
    snippets = [line for block in _FENCE.findall(text) for line in block.splitlines()]
    outside = _FENCE.sub("", text)
    return snippets + _INLINE.findall(outside)


def commands(text: str) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(subcommand path, options) of every `salesmon ...` in the README's code."""
    found = []
    for snippet in code_snippets(text):
        snippet = snippet.replace("\\|", "/")  # alternatives in a table cell: process\|dask
        snippet = snippet.split("#", 1)[0] if not snippet.lstrip().startswith("|") else snippet
        for piece in re.split(r"&&|\|\||;|\$\(|\|\s", snippet):
            match = _COMMAND.search(piece)
            if not match:
                continue
            words = match.group(1).split()
            path: list[str] = []
            options: list[str] = []
            for word in words:
                word = word.lstrip("[(")
                if word.startswith("-"):
                    option = re.match(r"--?[a-z][a-z-]*", word)
                    if option and not (path and path[0] in PASSTHROUGH):
                        options.append(option.group(0))
                    continue
                if not path or (path[0] in GROUPS and len(path) == 1):
                    if re.fullmatch(r"[a-z][a-z-]*", word):
                        path.append(word)
                        continue
                    break
            found.append((tuple(path), tuple(options)))
    return found


@cache
def help_text(path: tuple[str, ...]) -> str:
    from orchestration.cli import app

    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=250, env={"COLUMNS": "250"})
    assert result.exit_code == 0, (path, result.output)
    return result.output


def test_the_readme_names_the_commands_a_newcomer_needs() -> None:
    found = commands(README.read_text(encoding="utf-8"))
    paths = {path for path, _ in found}
    for needed in [("run",), ("report",), ("ui",), ("db", "url"), ("load",), ("monitor",), ("dbt",)]:
        assert needed in paths, needed
    assert len(found) > 30


@pytest.mark.parametrize(
    ("path", "options"),
    sorted(set(commands(README.read_text(encoding="utf-8")))),
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else str(value),
)
def test_each_salesmon_command_line_of_the_readme_exists(
    path: tuple[str, ...], options: tuple[str, ...]
) -> None:
    text = help_text(path)
    usage = text.split("Usage:", 1)[1].split()[1:] if path else []
    assert [word for word in usage if word in path][: len(path)] == list(path), (path, text)
    for option in options:
        listed = help_text(()) if option in help_text(()) and option not in text else text
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", listed), (path, option, text)


def test_the_parser_finds_a_wrong_option_and_a_wrong_subcommand() -> None:
    text = "```\nsalesmon run --no-such-option\nsalesmon db vanish\n```\n"
    found = commands(text)
    assert found == [(("run",), ("--no-such-option",)), (("db", "vanish"), ())]
    assert "--no-such-option" not in help_text(("run",))
    from orchestration.cli import app

    assert CliRunner().invoke(app, ["db", "vanish", "--help"]).exit_code != 0
