"""Nothing cfmon reports is false, against hostile marketplaces and unlucky operators:
no lost writes, no false takedowns, no page that stalls the crawl or eats the memory.

Real processes on 127.0.0.1 only: the installed `cfmon`, a scripted local server,
another SQLite connection holding the database, a small tmpfs for a full disk.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import pytest

from crawler.config import parse_config
from crawler.errors import ConfigError
from tests.conftest import CFMON, CFMON_ENV, run_cfmon
from tests.mockserver import MockServer
from tests.test_cron import Market, _progress, crawl, product_page, query, write_config


def counterfeits(tmp_path: Path, n: int = 6) -> Market:
    market = Market(tmp_path)
    for i in range(n):
        market.add(f"p{i}", f"Nordvik Trail Backpack 30L replica {i}", "29.00")
    market.publish()
    return market


def confirm_all(db: Path, cwd: Path) -> None:
    ids = [str(i) for (i,) in query(db, "SELECT id FROM listings ORDER BY id")]
    assert run_cfmon("verdict", "--db", str(db), *ids, "counterfeit", cwd=cwd).returncode == 0


def run_until(command: list[str], cwd: Path, ready, timeout: float = 120):
    """Start ``command``; once ``ready()`` is true, return the process (still running)."""
    process = subprocess.Popen(command, cwd=cwd, env=CFMON_ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return process


# -- writes that cannot be lost ---------------------------------------------------------

def test_a_crawl_that_cannot_write_stops_loudly_and_marks_nothing_gone(tmp_path: Path) -> None:
    market = counterfeits(tmp_path, 30)
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server, crawl_extra="database_wait = 2")
        assert crawl(tmp_path, config, "--quiet").returncode == 0
        confirm_all(db, tmp_path)
        server.delay = 0.05
        # A reviewer's SQLite browser takes the write lock once the second crawl is under
        # way, and keeps it far longer than the crawl waits.
        process = run_until([CFMON, "crawl", "--config", str(config), "--db", str(db),
                             "--quiet"], tmp_path, lambda: _progress(db)[0] == 2)
        browser = sqlite3.connect(db, isolation_level=None)
        browser.execute("BEGIN IMMEDIATE")
        try:
            out, err = process.communicate(timeout=120)
        finally:
            browser.execute("ROLLBACK")
            browser.close()
        assert process.returncode == 1
        assert "error: the crawl stopped: " in err
        assert "is locked by another program for 2 s" in err
        assert query(db, "SELECT count(*) FROM listings WHERE gone_at IS NOT NULL") == [(0,)]
        assert query(db, "SELECT DISTINCT status FROM takedown_status") == [("still listed",)]
        # The next crawl completes, and finds nothing gone either.
        server.delay = 0
        final = crawl(tmp_path, config, "--quiet")
    assert final.returncode == 0, final.stderr
    assert "market: 32 pages, 30 listings, 0 new, 0 changed, 0 gone, 0 errors" in final.stdout
    assert query(db, "SELECT status FROM runs ORDER BY id") == \
        [("finished",), ("interrupted",), ("finished",)]


@pytest.fixture
def small_disk():
    """A 3 MB tmpfs, where this machine lets the test mount one."""
    where = Path(tempfile.mkdtemp(prefix="cfmon-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def test_a_full_disk_stops_the_crawl_loudly_and_the_next_run_recovers(
        tmp_path: Path, small_disk: Path) -> None:
    market = counterfeits(tmp_path, 20)
    db = small_disk / "c.db"
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server)
        first = run_cfmon("crawl", "--config", str(config), "--db", str(db), "--quiet",
                          cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        confirm_all(db, tmp_path)
        for i in range(20):  # every page changes: the second crawl has much to write
            market.add(f"p{i}", f"Nordvik Trail Backpack 30L replica {i} " + "x" * 20000,
                       "29.00")
        filler = small_disk / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
        second = run_cfmon("crawl", "--config", str(config), "--db", str(db), "--quiet",
                           cwd=tmp_path)
        assert second.returncode == 1
        assert "disk is full" in second.stderr and "Traceback" not in second.stderr
        filler.unlink()  # (reading the database needs a little room too: its WAL index)
        assert query(db, "SELECT count(*) FROM listings WHERE gone_at IS NOT NULL") == [(0,)]
        third = run_cfmon("crawl", "--config", str(config), "--db", str(db), "--quiet",
                          cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert query(db, "SELECT count(*) FROM listings WHERE gone_at IS NOT NULL") == [(0,)]
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


# -- no false takedowns -------------------------------------------------------------------

CAPTCHA = (b"<html><head><title>Please solve this captcha</title></head><body>"
           b"<h1>Please solve this captcha</h1><form>...</form></body></html>")


def test_failing_and_blocked_product_pages_take_nothing_down(tmp_path: Path) -> None:
    market = counterfeits(tmp_path, 7)
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server, crawl_extra="timeout = 2")
        assert crawl(tmp_path, config, "--quiet").returncode == 0
        confirm_all(db, tmp_path)
        titles = query(db, "SELECT id, title FROM listings ORDER BY id")
        # The marketplace throttles and blocks, or a seller's shop fakes its takedown.
        server.faults["/market/p/p0.html"] = (500, "text/html", b"error")
        server.faults["/market/p/p1.html"] = (503, "text/html", b"busy")
        server.faults["/market/p/p2.html"] = (403, "text/html", b"bot?")
        server.delays["/market/p/p3.html"] = 7  # beyond the timeout and its retries
        server.faults["/market/p/p4.html"] = (200, "text/html", CAPTCHA)
        server.faults["/market/p/p5.html"] = (200, "text/html", b"<html><body></body></html>")
        second = crawl(tmp_path, config, "--quiet")
    assert second.returncode == 0, second.stderr
    assert "(incomplete: nothing marked gone)" in second.stdout
    assert "2 product pages were block pages (captcha, bot check, login wall): " in second.stdout
    assert query(db, "SELECT count(*) FROM listings WHERE gone_at IS NOT NULL") == [(0,)]
    assert query(db, "SELECT DISTINCT status FROM takedown_status") == [("still listed",)]
    # The captcha did not overwrite a title, nor count as a change; all were seen.
    assert query(db, "SELECT id, title FROM listings ORDER BY id") == titles
    assert query(db, "SELECT count(*) FROM listing_changes") == [(0,)]
    assert query(db, "SELECT count(*) FROM listings WHERE last_run_id = 2") == [(7,)]
    (site_stats,) = query(db, "SELECT site_stats FROM runs WHERE id = 2")[0]
    assert json.loads(site_stats)["market"]["blocked"] == 2


# -- one page cannot stall the others -----------------------------------------------------

def test_a_huge_brand_repeating_title_does_not_stall_another_site(tmp_path: Path) -> None:
    market = Market(tmp_path)
    for i in range(40):
        market.add(f"p{i}", f"Camping chair {i}", "20.00", image="img/other.jpg")
    market.publish()
    hostile = market.root / "hostile"
    hostile.mkdir()
    title = "Nordvik " * 130_000  # about 1 MB
    (hostile / "item.html").write_bytes(product_page(title, "29.00", "x", "/market/img/other.jpg"))
    (hostile / "list.html").write_text('<ul><li class="item"><a href="item.html">x</a></li></ul>',
                                       encoding="utf-8")
    sites = """
[[sites]]
name = "hostile"
start_urls = ["{server}/hostile/list.html"]
[sites.results]
listing = "li.item"
url = "a::attr(href)"
[sites.product]
"""
    with MockServer(market.root) as server:
        server.delay = 0.05
        config = write_config(tmp_path, server, extra_sites=sites.replace("{server}", server.url))
        result = crawl(tmp_path, config, "--quiet")
    assert result.returncode == 0, result.stderr
    normal = [t for t, path in zip(server.times, server.requested, strict=True)
              if path.startswith("/market/")]
    assert len(normal) > 40
    assert max(b - a for a, b in zip(normal, normal[1:], strict=False)) < 2.0
    (stored,) = query(tmp_path / "c.db", "SELECT length(title) FROM listings WHERE site = 'hostile'")[0]
    assert stored == 1000


def cpu_seconds_of(command: list[str], cwd: Path) -> tuple[int, float, int]:
    """Exit code, CPU seconds (user + system) and peak RSS in MB of a child process."""
    process = subprocess.Popen(command, cwd=cwd, env=CFMON_ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


CARDS_CONFIG = """
[brand]
name = "Nordvik"
[[products]]
name = "Nordvik Trail Backpack 30L"
[crawl]
download_delay = 0
autothrottle = false
[[sites]]
name = "market"
start_urls = ["{url}"]
max_cards_per_page = 10000
[sites.results]
listing = "li.item"
url = "a::attr(href)"
title = "a::text"
price = "span.p"
"""


def test_cards_per_results_page_cost_the_same_from_1000_to_5000(tmp_path: Path) -> None:
    """CPU time per card, not wall time: a busy machine slows both crawls alike. A cost
    quadratic in the cards would make the 5,000-card page's 5x the 1,000-card one's."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    cost = {}
    with MockServer(root) as server:
        for n in (1, 1000, 5000):
            cards = "".join(f'<li class="item"><a href="/i/{i}">Camping chair {i}</a>'
                            f'<span class="p">$ {10 + i % 50}.00</span></li>' for i in range(n))
            (root / f"list-{n}.html").write_text(f"<ul>{cards}</ul>", encoding="utf-8")
            work = tmp_path / f"n{n}"
            work.mkdir()
            config = work / "monitor.toml"
            config.write_text(CARDS_CONFIG.replace("{url}", f"{server.url}/list-{n}.html"))
            code, cpu, _ = cpu_seconds_of([CFMON, "crawl", "--config", str(config), "--db",
                                           str(work / "c.db"), "--quiet"], work)
            assert code == 0
            assert query(work / "c.db", "SELECT count(*) FROM listings") == [(n,)]
            cost[n] = cpu
    per_card_1k = (cost[1000] - cost[1]) / 999
    per_card_5k = (cost[5000] - cost[1]) / 4999
    assert per_card_5k < 2 * per_card_1k, cost


def big_png(width: int, height: int) -> bytes:
    """A valid PNG of one colour: a few hundred KB that claim ``width`` x ``height``."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\0" + b"\x80\x40\x20" * width
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_a_9000_pixel_square_png_cannot_take_the_memory(tmp_path: Path) -> None:
    market = Market(tmp_path)
    (market.root / "market" / "img" / "huge.png").write_bytes(big_png(9000, 9000))
    for i in range(4):
        market.add(f"p{i}", f"Nordvik Trail Backpack 30L {i}", "29.00", image=f"img/huge.png?{i}")
    market.publish()
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server)
        code, _, peak_mb = cpu_seconds_of([CFMON, "crawl", "--config", str(config), "--db",
                                           str(tmp_path / "c.db"), "--quiet"], tmp_path)
    assert peak_mb < 500
    assert code == 1  # every image failed: the site says so
    errors = query(tmp_path / "c.db", "SELECT site_stats FROM runs")[0][0]
    assert "image too large to analyse: 9000x9000 pixels" in errors


# -- numbers ------------------------------------------------------------------------------

def test_nan_and_infinite_prices_are_field_problems_not_lost_listings(tmp_path: Path) -> None:
    market = Market(tmp_path)
    for slug, price in (("nan", "NaN"), ("inf", "Infinity"), ("ok", "29.00")):
        market.add(slug, f"Nordvik Trail Backpack 30L replica {slug}", "1")
        page = product_page(f"Nordvik Trail Backpack 30L replica {slug}", "1", "s",
                            "/market/img/official.jpg")
        (market.root / "market" / "p" / f"{slug}.html").write_bytes(
            page.replace(b'"price": "1"', f'"price": {price}'.encode()))
    market.publish()
    with MockServer(market.root) as server:
        result = crawl(tmp_path, write_config(tmp_path, server), "--quiet")
    assert result.returncode == 0, result.stderr
    rows = dict(query(tmp_path / "c.db", "SELECT replace(url, ?, ''), price FROM listings"
                      .replace("?", f"'{server.url}/market/p/'")))
    assert rows == {"nan.html": None, "inf.html": None, "ok.html": 29.0}
    assert "2 fields could not be read: price " in result.stdout
    assert " is not a finite amount at " in result.stdout


@pytest.mark.parametrize("line", ["msrp = nan", "msrp = inf", "msrp = 1e300"])
def test_the_config_refuses_non_finite_and_absurd_numbers(line: str) -> None:
    text = f'[brand]\nname = "A"\n[[products]]\nname = "P"\ncurrency = "USD"\n{line}\n' \
           '[[sites]]\nname = "s"\nstart_urls = ["https://s.test/"]\n' \
           '[sites.results]\nlisting = "li"\nurl = "a::attr(href)"\n'
    with pytest.raises(ConfigError, match=r"line 6: products\[1\]\.msrp: expected a "):
        parse_config(text, "monitor.toml")


# -- verdicts while a crawl writes ----------------------------------------------------------

def test_verdicts_during_a_crawl_all_land(tmp_path: Path) -> None:
    market = counterfeits(tmp_path, 60)
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server)
        assert crawl(tmp_path, config, "--quiet").returncode == 0
        ids = [i for (i,) in query(db, "SELECT id FROM listings ORDER BY id")]
        for i in range(60):  # every listing changes: the crawl writes all the time
            market.add(f"p{i}", f"Nordvik Trail Backpack 30L replica {i} v2", "28.00")
        process = run_until([CFMON, "crawl", "--config", str(config), "--db", str(db),
                             "--quiet"], tmp_path, lambda: _progress(db)[0] == 2)
        results = [run_cfmon("verdict", "--db", str(db), str(i), "counterfeit", cwd=tmp_path)
                   for i in ids[:15]]
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert [r.returncode for r in results] == [0] * 15, [r.stderr for r in results]
    assert query(db, "SELECT count(*) FROM verdicts") == [(15,)]


# -- network: what a page can make cfmon fetch --------------------------------------------

REBINDING = '''
import socket

_real_getaddrinfo, _real_gethostbyname = socket.getaddrinfo, socket.gethostbyname
_asked = []


def getaddrinfo(host, *args, **kwargs):
    if host == "rebind.test":  # public when checked...
        _asked.append(host)
        if len(_asked) == 1:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", 0))]
    return _real_getaddrinfo(host, *args, **kwargs)


def gethostbyname(host):
    if host == "rebind.test":  # ... and an inside address when connected to
        return "127.0.0.2"
    return _real_gethostbyname(host)


socket.getaddrinfo, socket.gethostbyname = getaddrinfo, gethostbyname
'''


def test_a_rebinding_name_or_another_port_cannot_reach_inside(tmp_path: Path) -> None:
    market = Market(tmp_path)
    market.add("rebind", "Camping lamp", "15.00")
    market.add("port", "Camping table", "25.00")
    market.publish()
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(REBINDING)  # a resolver that answers public first
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "secret.jpg").write_bytes(b"internal")
    with MockServer(market.root) as server, MockServer(inside) as internal, \
            MockServer(inside, host="127.0.0.2") as admin:
        (market.root / "market" / "p" / "rebind.html").write_bytes(product_page(
            "Camping lamp", "15.00", "s",
            f"http://rebind.test:{admin.server_address[1]}/secret.jpg"))
        (market.root / "market" / "p" / "port.html").write_bytes(product_page(
            "Camping table", "25.00", "s", f"{internal.url}/secret.jpg"))
        env = {**CFMON_ENV, "PYTHONPATH": str(hooks)}
        result = subprocess.run([CFMON, "crawl", "--config", str(write_config(tmp_path, server)),
                                 "--db", str(tmp_path / "c.db")], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=180)
    assert admin.requested == []  # never connected
    assert internal.requested == []
    assert "refused a connection to rebind.test: it resolved to 127.0.0.2" in result.stderr
    assert f"refused {internal.url}/secret.jpg: 127.0.0.1 resolves to 127.0.0.1" in result.stderr


@pytest.mark.parametrize("address", ["::7f00:1", "64:ff9b::7f00:1", "2002:7f00:1::1",
                                     "::ffff:127.0.0.1", "::ffff:10.0.0.1", "169.254.169.254",
                                     "fe80::1", "::1"])
def test_ipv6_forms_of_inside_addresses_are_judged_by_what_they_embed(address: str) -> None:
    from crawler.middlewares import private_reason

    assert private_reason(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "::ffff:93.184.216.34", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    from crawler.middlewares import private_reason

    assert private_reason(address) is None


def test_a_verdict_that_cannot_get_the_lock_says_so_without_a_traceback(tmp_path: Path) -> None:
    market = counterfeits(tmp_path, 2)
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        assert crawl(tmp_path, write_config(tmp_path, server), "--quiet").returncode == 0
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = run_cfmon("verdict", "--db", str(db), "1", "counterfeit", "--wait", "1",
                           cwd=tmp_path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "is locked by another program for 1 s (a crawl writing" in result.stderr
    assert "try again when it is done" in result.stderr
    assert query(db, "SELECT count(*) FROM verdicts") == [(0,)]
