"""Every subcommand of the installed `cfmon`, run from a folder outside the checkout.

What a user runs after `pip install .` is the entry point and the installed package,
not this checkout: a module or data file left out of the wheel fails here.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CFMON, CFMON_ENV, DEMO, free_port, run_cfmon
from tests.mockserver import MockServer

COMMANDS = ["check-config", "crawl", "extract", "demo", "evaluate", "verdict", "verify",
            "evidence", "export", "report", "browse", "rates", "prune"]


def test_every_command_is_tested_here() -> None:
    help_text = run_cfmon("--help", cwd=Path("/")).stdout
    listed = {line.split()[0] for line in help_text.split("Commands:")[1].splitlines()
              if line.strip()}
    assert listed == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str, tmp_path: Path) -> None:
    result = run_cfmon(command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Example:" in result.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo, run by the installed command: its database and a config beside it."""
    work = tmp_path_factory.mktemp("installed")
    result = run_cfmon("demo", "--db", "demo.db", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "8 flagged" in result.stdout
    shutil.copytree(DEMO / "brand" / "catalog", work / "catalog")
    text = (DEMO / "brand" / "monitor.toml").read_text(encoding="utf-8")
    (work / "monitor.toml").write_text(text.replace("{server}", "http://127.0.0.1:9"),
                                       encoding="utf-8")
    return work


def flagged_ids(work: Path) -> list[int]:
    import sqlite3

    conn = sqlite3.connect(work / "demo.db")
    try:
        return [r[0] for r in conn.execute("SELECT listing_id FROM review_queue")]
    finally:
        conn.close()


def test_check_config(demo: Path) -> None:
    result = run_cfmon("check-config", "monitor.toml", cwd=demo)
    assert result.returncode == 0, result.stderr
    assert "ok: brand 'Nordvik', 3 products (3 photos), 3 sites" in result.stdout


def test_crawl_one_site(demo: Path, tmp_path: Path) -> None:
    with MockServer(DEMO / "sites") as server:
        config = tmp_path / "monitor.toml"
        config.write_text((demo / "monitor.toml").read_text(encoding="utf-8")
                          .replace("http://127.0.0.1:9", server.url)
                          .replace('"catalog/', f'"{demo}/catalog/'), encoding="utf-8")
        result = run_cfmon("crawl", "--config", str(config), "--db", "c.db", "--site", "bazaar",
                           "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bazaar: 3 pages, 12 listings, 12 new" in result.stdout
    assert "1 images failed: HTTP 404 at " in result.stdout  # the demo's broken image


def test_extract(demo: Path) -> None:
    page = DEMO / "sites" / "trendhub" / "p" / "nordvik-backpack-sale.html"
    result = run_cfmon("extract", "--url", "https://trendhub.test/p/1", str(page), cwd=demo)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["title"] and got["price"] and got["sources"]["price"] == "jsonld"


def test_evaluate(demo: Path) -> None:
    labels = DEMO / "brand" / "expected.json"
    result = run_cfmon("evaluate", "--config", "monitor.toml", "--labels", str(labels),
                       "--db", "demo.db", cwd=demo)
    assert result.returncode == 0, result.stderr
    assert "precision 1.000  recall 1.000" in result.stdout


def test_verdict_verify_evidence_export_report(demo: Path) -> None:
    first = flagged_ids(demo)[0]
    verdict = run_cfmon("verdict", "--db", "demo.db", str(first), "counterfeit", "--by", "ana",
                        cwd=demo)
    assert verdict.returncode == 0, verdict.stderr
    assert verdict.stdout.startswith(f"listing {first} (") and "counterfeit" in verdict.stdout

    verify = run_cfmon("verify", "--db", "demo.db", cwd=demo)
    assert verify.returncode == 0 and ": ok: " in verify.stdout, verify.stderr

    bundle = run_cfmon("evidence", "--db", "demo.db", str(first), "--out", "bundle", cwd=demo)
    assert bundle.returncode == 0, bundle.stderr
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=demo / "bundle",
                           capture_output=True, text=True)
    assert check.returncode == 0 and "OK" in check.stdout

    export = run_cfmon("export", "--db", "demo.db", cwd=demo)
    assert export.returncode == 0, export.stderr
    (row,) = csv.DictReader(io.StringIO(export.stdout))
    # The catalog photo as the config names it, not a path inside site-packages.
    assert row["brand_reference"].startswith("catalog/") and row["verdict"] == "counterfeit"

    report = run_cfmon("report", "--db", "demo.db", "--out", "report.html", cwd=demo)
    assert report.returncode == 0, report.stderr
    assert "Counterfeit monitoring report" in (demo / "report.html").read_text(encoding="utf-8")

    # crawled minutes ago: everything is inside the retention window
    prune = run_cfmon("prune", "--db", "demo.db", "--keep-days", "1", cwd=demo)
    assert prune.returncode == 0 and "nothing to prune" in prune.stdout, prune.stderr


def test_browse_serves_the_review_queue(demo: Path) -> None:
    port = free_port()
    server = subprocess.Popen([CFMON, "browse", "--db", "demo.db", "--port", str(port)],
                              cwd=demo, env=CFMON_ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        first_line = server.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first_line
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/demo/review_queue.json",
                                            timeout=5) as response:
                    rows = json.load(response)["rows"]
                break
            except OSError:
                assert time.monotonic() < deadline, server.stderr.read()
                time.sleep(0.2)
        assert len(rows) == len(flagged_ids(demo))
    finally:
        server.terminate()
        server.wait(timeout=30)


# -- usage errors: exit 2, one line, no traceback --------------------------------------

def test_db_in_a_missing_folder_is_a_usage_error(demo: Path) -> None:
    result = run_cfmon("crawl", "--config", "monitor.toml", "--db", "no/such/dir/c.db",
                       cwd=demo)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --db no/such/dir/c.db: folder ")
    assert "does not exist" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (demo / "no").exists()


def test_an_unreadable_config_is_a_usage_error(demo: Path, tmp_path: Path) -> None:
    unreadable = tmp_path / "monitor.toml"
    unreadable.write_bytes(b"\xff\xfe not utf-8")
    for config in ("missing.toml", str(unreadable)):
        result = run_cfmon("crawl", "--config", config, "--db", "c.db", cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.startswith(f"error: config {config}: ")
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


ECB_FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
 xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
<gesmes:subject>Reference rates</gesmes:subject>
<Cube><Cube time="2099-11-24"><Cube currency="USD" rate="1.0850"/>
<Cube currency="JPY" rate="163.20"/><Cube currency="GBP" rate="0.8312"/></Cube></Cube>
</gesmes:Envelope>"""


def test_rates_update_fetches_the_ecb_feed_and_crawls_use_it(tmp_path: Path) -> None:
    from crawler.rates import current

    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "eurofxref-daily.xml").write_bytes(ECB_FEED)
    with MockServer(tmp_path / "www") as server:
        result = run_cfmon("rates", "update", "--db", "r.db", "--url",
                           f"{server.url}/eurofxref-daily.xml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ECB reference rates of 2099-11-24: 3 currencies; 1 EUR = 1.085 USD\n"
    rates = current(str(tmp_path / "r.db"))
    assert rates.date == "2099-11-24" and rates.table().label == "ECB 2099-11-24"
    broken = run_cfmon("rates", "update", "--db", "r.db", "--url", "http://127.0.0.1:9/x",
                       cwd=tmp_path)
    assert broken.returncode == 1 and "cannot fetch the ECB's rates" in broken.stderr
