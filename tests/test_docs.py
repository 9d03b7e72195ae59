"""The README cannot drift from the CLI."""

from __future__ import annotations

import re
from pathlib import Path

from crawler.cli import main
from tests.conftest import DEMO

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


def test_the_readme_config_example_is_a_valid_config(tmp_path: Path) -> None:
    import shutil

    from crawler.config import load_config

    blocks = re.findall(r"^```toml\n(.+?)\n```", README, re.M | re.S)
    example = next(b for b in blocks if "[[sites]]" in b)
    (tmp_path / "catalog").mkdir()
    shutil.copy(DEMO / "brand" / "catalog" /
                "trail-30.jpg", tmp_path / "catalog" / "trail-30.jpg")
    (tmp_path / "tsa-ca.pem").write_text("the TSA's CA certificate")
    path = tmp_path / "monitor.toml"
    alerts = next(b for b in blocks if b.startswith("[alerts]"))
    path.write_text(example + "\n" + alerts + "\n", encoding="utf-8")
    config = load_config(path)
    assert config.sites[0].name == "shopmart"
    assert config.alerts.email is not None and config.matching.exchange_rates["EUR"] == 1.08
