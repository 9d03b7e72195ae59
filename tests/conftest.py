from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def run_cfmon(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the real `cfmon` command in a fresh process (a crawl starts Twisted's reactor,
    which starts once per process)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    return subprocess.run([sys.executable, "-m", "crawler.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
