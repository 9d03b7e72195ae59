from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
# The bundled demo (brand and marketplaces) ships inside the package.
DEMO = REPO / "crawler" / "demo"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


# The `cfmon` entry point that `pip install` wrote beside this Python: tests run what
# users run (the installed package), in a fresh process (a crawl starts Twisted's
# reactor, which starts once per process), from a folder outside the checkout.
CFMON = str(Path(sys.executable).with_name("cfmon"))
CFMON_ENV = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
CFMON_ENV.pop("PYTHONPATH", None)


def run_cfmon(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the installed `cfmon` command with ``args`` in ``cwd``."""
    assert not Path(cwd).resolve().is_relative_to(REPO), "run cfmon outside the checkout"
    return subprocess.run([CFMON, *args], cwd=cwd, env=CFMON_ENV, capture_output=True,
                          text=True, timeout=timeout)


def free_port() -> int:
    """A port nothing listens on now, for a server a test starts on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def db_rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of a query on a database file, as any SQLite tool would read them."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()
