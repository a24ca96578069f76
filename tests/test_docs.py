"""The README documents every option of every subcommand exactly as the CLI defines it."""

from __future__ import annotations

import re
import shlex

import pytest

from archive_colorizer import cli, docs
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_readme_option_tables_are_generated_from_the_current_cli():
    rendered = docs.render(README)
    assert rendered == README, "README.md's option tables differ from the CLI: run `make docs` and commit README.md"


def test_every_subcommand_has_its_block_with_every_option():
    for command in cli.COMMANDS:
        block = re.search(rf"<!-- options:{command.name} -->\n(.*?)<!-- /options:{command.name} -->", README, re.S)
        assert block, f"README.md has no option table for {command.name}"
        parser = docs.command_parser(command)
        for action in parser._actions:
            for flag in action.option_strings or [action.metavar]:
                assert f"`{flag}" in block.group(1) or f"/ `{flag}`" in block.group(1), (command.name, flag)


def test_a_new_subcommand_gets_a_block_after_the_last_one():
    example = cli.Command("example", "an example job", "tests.test_config:ExampleConfig", "tests.test_cli:_run_example")
    text = "intro\n\n<!-- options:demo -->\nstale table\n<!-- /options:demo -->\n\n## Later section\n"
    demo = next(command for command in cli.COMMANDS if command.name == "demo")
    rendered = docs.render(text, [demo, example])
    assert "stale table" not in rendered
    assert (
        rendered.index("<!-- /options:demo -->")
        < rendered.index("### `archive-colorizer example`")
        < rendered.index("## Later section")
    )
    assert "| `--gan-mode {vanilla,lsgan}` | vanilla |" in rendered
    assert "| `--storage-option KEY=VALUE` | none |" in rendered
    assert "| `INPUT` | required |" in rendered
    assert docs.render(rendered, [demo, example]) == rendered


def test_a_block_for_a_missing_subcommand_is_refused():
    with pytest.raises(ValueError, match="evaluatee"):
        docs.render("<!-- options:evaluatee -->\n<!-- /options:evaluatee -->\n")


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


def test_every_command_in_the_readme_examples_parses_into_a_valid_config():
    examples = _commands_in_code_blocks(README)
    assert {name for name, _ in examples} == {c.name for c in cli.COMMANDS} - {"export"}, examples
    parser = cli.build_parser()
    for name, words in examples:
        config_cls, _ = next(c for c in cli.COMMANDS if c.name == name).load()
        try:
            config = cli.config_from_args(config_cls, parser.parse_args([name, *words]))
        except SystemExit:  # argparse's own error (printed on stderr): an unknown option or a missing argument
            pytest.fail(f"README example does not parse: archive-colorizer {name} {shlex.join(words)}")
        assert isinstance(config, config_cls)
