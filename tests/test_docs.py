"""The README cannot drift from the CLI."""

from __future__ import annotations

import re
from pathlib import Path

from crawler.cli import main

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_command_is_documented_in_the_readme() -> None:
    for name in main.commands:
        assert f"cfmon {name}" in README, f"README does not mention `cfmon {name}`"


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    commands = re.findall(r"^```(?:sh|bash)?\n(.+?)\n```", README, re.M)[:2]
    assert "cfmon demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    test_command = re.findall(r"^```(?:sh|bash)?\n(.+?)\n```", README, re.M)[1]
    assert test_command in ci
