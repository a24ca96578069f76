"""docs/ documents every option of every subcommand exactly as the CLI defines it; examples parse."""

from __future__ import annotations

import re
import shlex

import pytest

from archive_colorizer import cli, docs
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
PAGES = {path.name: path.read_text() for path in sorted((REPO_ROOT / "docs").glob("*.md"))}
PAGE_LIMIT_README = 250


def test_docs_option_tables_are_generated_from_the_current_cli():
    rendered = docs.render_pages(PAGES)
    changed = [name for name in PAGES if rendered[name] != PAGES[name]]
    assert not changed, f"option tables in docs/{changed} differ from the CLI: run `make docs` and commit docs/"


def test_every_subcommand_has_exactly_one_block_in_docs_with_every_option():
    for command in cli.COMMANDS:
        blocks = [
            match.group(1)
            for text in PAGES.values()
            for match in re.finditer(
                rf"<!-- options:{command.name} -->\n(.*?)<!-- /options:{command.name} -->", text, re.S
            )
        ]
        assert len(blocks) == 1, f"docs/ has {len(blocks)} option tables for {command.name}"
        block = blocks[0]
        parser = docs.command_parser(command)
        for action in parser._actions:
            for flag in action.option_strings or [action.metavar]:
                assert f"`{flag}" in block or f"/ `{flag}`" in block, (command.name, flag)


def test_a_new_subcommand_gets_a_block_after_the_last_one():
    example = cli.Command("example", "an example job", "tests.test_config:ExampleConfig", "tests.test_cli:_run_example")
    text = "intro\n\n<!-- options:demo -->\nstale table\n<!-- /options:demo -->\n\n## Later section\n"
    demo = next(command for command in cli.COMMANDS if command.name == "demo")
    rendered = docs.render(text, [demo, example])
    assert "stale table" not in rendered
    assert (
        rendered.index("<!-- /options:demo -->")
        < rendered.index("## `archive-colorizer example`")
        < rendered.index("## Later section")
    )
    assert "| `--gan-mode {vanilla,lsgan}` | vanilla |" in rendered
    assert "| `--storage-option KEY=VALUE` | none |" in rendered
    assert "| `INPUT` | required |" in rendered
    assert docs.render(rendered, [demo, example]) == rendered


def test_a_block_for_a_missing_subcommand_is_refused():
    with pytest.raises(ValueError, match="evaluatee"):
        docs.render("<!-- options:evaluatee -->\n<!-- /options:evaluatee -->\n")


def test_pages_get_a_missing_block_on_the_commands_own_page_and_refuse_a_second_one():
    demo, export = (next(c for c in cli.COMMANDS if c.name == name) for name in ("demo", "export"))
    pages = {
        "demo.md": "# The demo\n",
        "train.md": "# train\n\n<!-- options:export -->\nstale table\n<!-- /options:export -->\n",
    }
    rendered = docs.render_pages(pages, [demo, export])
    assert "<!-- options:demo -->" in rendered["demo.md"] and "<!-- options:demo -->" not in rendered["train.md"]
    assert "stale table" not in rendered["train.md"] and "| `CHECKPOINT` | required |" in rendered["train.md"]
    assert docs.render_pages(rendered, [demo, export]) == rendered
    with pytest.raises(ValueError, match="more than one"):
        docs.render_pages({**rendered, "other.md": rendered["demo.md"]}, [demo, export])


def test_the_readme_is_a_front_door_and_its_links_into_docs_exist():
    assert len(README.splitlines()) <= PAGE_LIMIT_README
    for target in re.findall(r"\]\((docs/[\w.-]+\.md)(?:#[\w-]+)?\)", README):
        assert (REPO_ROOT / target).is_file(), target
    for name, text in PAGES.items():
        for target in re.findall(r"\]\(([\w.-]+\.(?:md|png))(?:#[\w-]+)?\)", text):
            assert (REPO_ROOT / "docs" / target).is_file(), (name, target)


def _commands_in_code_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(subcommand, words after it) for each command in the README's shell blocks.

    Commands are ``archive-colorizer X ...``, ``python jobs/X.py ...`` (also under ``ray job
    submit``) and ``make demo DEMO_ARGS="..."``; continued lines are joined, comments dropped.
    """
    found = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0]
            demo_args = re.search(r'make demo DEMO_ARGS="([^"]*)"', line)
            match = re.search(r"(?:archive-colorizer |python \S*jobs/)(\w+)(?:\.py)?\s*(.*)", line)
            if demo_args:
                found.append(("demo", shlex.split(demo_args.group(1))))
            elif match and match.group(1) in {c.name for c in cli.COMMANDS}:
                found.append((match.group(1), shlex.split(match.group(2).replace("...", ""))))
    return found


def test_every_command_in_the_readme_and_docs_examples_parses_into_a_valid_config():
    examples = _commands_in_code_blocks(README + "".join(PAGES.values()))
    assert {name for name, _ in examples} == {c.name for c in cli.COMMANDS} - {"export"}, examples
    parser = cli.build_parser()
    for name, words in examples:
        config_cls, _ = next(c for c in cli.COMMANDS if c.name == name).load()
        try:
            config = cli.config_from_args(config_cls, parser.parse_args([name, *words]))
        except SystemExit:  # argparse's own error (printed on stderr): an unknown option or a missing argument
            pytest.fail(f"example in README.md or docs/ does not parse: archive-colorizer {name} {shlex.join(words)}")
        assert isinstance(config, config_cls)
