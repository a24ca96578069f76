"""The option tables in ``docs/*.md``, generated from the command line's own parser.

Every subcommand in :data:`archive_colorizer.cli.COMMANDS` has exactly one block in one of the
pages under ``docs/`` (the job's own page: ``docs/prepare.md`` holds prepare's)::

    <!-- options:prepare -->
    ...usage line and a table of every option, written by this module...
    <!-- /options:prepare -->

``python -m archive_colorizer.docs`` (``make docs``) rewrites the blocks in place;
``--check`` only says whether they are current (``tests/test_docs.py`` fails when they are
not). A subcommand without a block gets one, with a heading, at the end of ``docs/NAME.md``
when that page exists, else after the last block of the pages; so a new subcommand is
documented by running the command once.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from archive_colorizer.cli import COMMANDS, Command, add_config_arguments

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
BLOCK = re.compile(r"<!-- options:(?P<name>[\w-]+) -->\n.*?<!-- /options:(?P=name) -->", re.S)
_DEFAULT = re.compile(r"^(?P<meaning>.*) \(default: (?P<default>.*)\)$", re.S)


def command_parser(command: Command) -> argparse.ArgumentParser:
    """The subcommand's parser, built by the CLI's own :func:`add_config_arguments`."""
    config_cls, _ = command.load()
    parser = argparse.ArgumentParser(prog=f"archive-colorizer {command.name}", add_help=False)
    add_config_arguments(parser, config_cls)
    return parser


def _escape(text: str) -> str:
    """Markdown table cell text: pipes, asterisks and angle brackets escaped, one line."""
    return " ".join(text.split()).replace("|", r"\|").replace("*", r"\*").replace("<", r"\<")


def _option(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar}`"
    if isinstance(action, argparse.BooleanOptionalAction):
        return " / ".join(f"`{flag}`" for flag in action.option_strings)
    flag = action.option_strings[0]
    if action.choices:
        return f"`{flag} {{{','.join(action.choices)}}}`"
    if action.nargs == "+":
        return f"`{flag} VALUE...`"
    if action.metavar in ("KEY=VALUE", "FILE.yaml"):
        return f"`{flag} {action.metavar}`"
    return f"`{flag}`"


def option_rows(parser: argparse.ArgumentParser) -> list[tuple[str, str, str]]:
    """(option, default, meaning) for every argument of ``parser``, in the parser's order.

    The default is the one the CLI prints in ``--help`` (``required`` for positionals).
    """
    rows = []
    for action in parser._actions:  # argparse has no public accessor for its arguments
        match = _DEFAULT.match(action.help or "")
        if not action.option_strings:
            default, meaning = "required", action.help or ""
        elif match:
            default, meaning = match["default"], match["meaning"]
        else:
            default, meaning = "none", action.help or ""
        rows.append((_option(action), _escape(default), _escape(meaning)))
    return rows


def usage(command: Command, parser: argparse.ArgumentParser) -> str:
    """One line: the command with its positional arguments, and its ``jobs/`` entrypoint if any."""
    positionals = " ".join(
        a.metavar if isinstance(a.metavar, str) else a.dest for a in parser._actions if not a.option_strings
    )
    line = f"`archive-colorizer {command.name} [options]{' ' + positionals if positionals else ''}`"
    if (REPO_ROOT / "jobs" / f"{command.name}.py").exists():
        line += f", or `python jobs/{command.name}.py` with the same arguments (for `ray job submit`)"
    return line + "."


def options_block(command: Command) -> str:
    """The README block of ``command``: markers, usage line, option table."""
    parser = command_parser(command)
    lines = [
        f"<!-- options:{command.name} -->",
        usage(command, parser),
        "",
        "| option | default | meaning |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {option} | {default} | {meaning} |" for option, default, meaning in option_rows(parser)]
    lines.append(f"<!-- /options:{command.name} -->")
    return "\n".join(lines)


def render(text: str, commands: Sequence[Command] | None = None, *, add_missing: bool = True) -> str:
    """``text`` (one page) with every command's block regenerated; missing blocks are added.

    Args:
        add_missing: add a block, after the last one, for each command that has none here.

    Raises:
        ValueError: a block names a subcommand that does not exist (remove it by hand).
    """
    commands = list(COMMANDS if commands is None else commands)
    by_name = {command.name: command for command in commands}
    stale = [m["name"] for m in BLOCK.finditer(text) if m["name"] not in by_name]
    if stale:
        raise ValueError(f"option blocks for subcommands that do not exist: {', '.join(stale)}")
    text = BLOCK.sub(lambda m: options_block(by_name[m["name"]]), text)
    present = {m["name"] for m in BLOCK.finditer(text)}
    for command in commands if add_missing else []:
        if command.name not in present:
            text = _append_block(text, command)
    return text


def _append_block(text: str, command: Command) -> str:
    """``text`` with a heading and a block for ``command`` after its last block (or at the end)."""
    blocks = list(BLOCK.finditer(text))
    new = f"## `archive-colorizer {command.name}`\n\n{command.help}.\n\n{options_block(command)}"
    if blocks:
        end = blocks[-1].end()
        return f"{text[:end]}\n\n{new}{text[end:]}"
    return f"{text.rstrip()}\n\n{new}\n"


def render_pages(pages: Mapping[str, str], commands: Sequence[Command] | None = None) -> dict[str, str]:
    """Every page (file name -> text) with its blocks regenerated, each command in exactly one page.

    A command without a block gets one in ``NAME.md`` when there is such a page, else after the
    last block of the last page (by name) that has blocks, else at the end of the last page.

    Raises:
        ValueError: a block names a subcommand that does not exist, or a subcommand has blocks
            in more than one place.
    """
    commands = list(COMMANDS if commands is None else commands)
    rendered = {name: render(text, commands, add_missing=False) for name, text in sorted(pages.items())}
    where: dict[str, list[str]] = {}
    for name, text in rendered.items():
        for match in BLOCK.finditer(text):
            where.setdefault(match["name"], []).append(name)
    doubled = {command: names for command, names in where.items() if len(names) > 1}
    if doubled:
        raise ValueError(f"subcommands with more than one option block: {doubled}")
    for command in commands:
        if command.name in where or not rendered:
            continue
        with_blocks = [name for name, text in rendered.items() if BLOCK.search(text)]
        page = f"{command.name}.md" if f"{command.name}.md" in rendered else (with_blocks or list(rendered))[-1]
        rendered[page] = _append_block(rendered[page], command)
    return rendered


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m archive_colorizer.docs [PAGE.md...] [--check]``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m archive_colorizer.docs", description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path, help="the pages holding the option blocks (default: docs/*.md)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the tables are not current; change nothing")
    args = parser.parse_args(argv)
    paths = {path.name: path for path in (args.pages or sorted(DOCS.glob("*.md")))}
    pages = {name: path.read_text() for name, path in paths.items()}
    rendered = render_pages(pages)
    changed = [name for name in rendered if rendered[name] != pages[name]]
    if not changed:
        print(f"{', '.join(str(p) for p in paths.values())}: option tables are current")
        return 0
    if args.check:
        print(f"option tables differ from the CLI in {', '.join(changed)}; run `make docs`", file=sys.stderr)
        return 1
    for name in changed:
        paths[name].write_text(rendered[name])
        print(f"{paths[name]}: option tables rewritten")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
