"""`cfmon demo`, as a new user runs it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import run_cfmon


def test_demo_serves_crawls_and_prints_the_review_queue(tmp_path: Path) -> None:
    result = run_cfmon("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "serving 3 demo marketplaces at http://127.0.0.1:" in out
    assert "16 pages, 23 listings, 8 flagged" in out
    assert "review queue (8 flagged, highest score first):" in out
    assert "NORDVIK Trail Backpack 30L replica AAA quality" in out
    assert "cfmon browse --db cfmon-demo.db" in out
    assert "sqlitebrowser -t review_queue cfmon-demo.db" in out
    conn = sqlite3.connect(tmp_path / "cfmon-demo.db")
    assert conn.execute("SELECT count(*) FROM review_queue").fetchone()[0] == 8
    conn.close()


def test_demo_run_twice_replaces_its_database(tmp_path: Path) -> None:
    for _ in range(2):
        assert run_cfmon("demo", "--db", "d.db", cwd=tmp_path).returncode == 0
    conn = sqlite3.connect(tmp_path / "d.db")
    assert conn.execute("SELECT count(*) FROM listings").fetchone()[0] == 23
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    conn.close()
