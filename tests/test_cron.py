"""Running from cron: repeated crawls, locks, exit codes, faults, SIGKILL at any moment."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import struct
import subprocess
import time
import zlib
from pathlib import Path

from crawler.evidence import verify
from matchers.images import analyse_image
from tests.conftest import CFMON, CFMON_ENV, DEMO, free_port, run_cfmon
from tests.mockserver import MockServer

OFFICIAL = DEMO / "brand" / "catalog" / "trail-30.jpg"
OTHER = DEMO / "sites" / "bazaar" / "img" / "b8.jpg"
CHANGED = DEMO / "sites" / "bazaar" / "img" / "b1.jpg"

CONFIG = """
[brand]
name = "Nordvik"
authorized_sellers = ["Nordvik Official Store"]
[[products]]
name = "Nordvik Trail Backpack 30L"
msrp = 129.0
currency = "USD"
images = ["catalog/trail-30.jpg"]
[crawl]
download_delay = 0
autothrottle = false
{crawl_extra}

[[sites]]
name = "market"
start_urls = ["{server}/market/list-1.html"]
[sites.results]
listing = "li.item"
url = "a::attr(href)"
next_page = "a.next::attr(href)"
[sites.product]
{extra_sites}
"""


def product_page(title: str, price: str, seller: str, image: str, charset: str = "utf-8") -> bytes:
    data = {"@context": "https://schema.org", "@type": "Product", "name": title,
            "image": image, "offers": {"@type": "Offer", "price": price, "priceCurrency": "USD",
                                       "seller": {"@type": "Organization", "name": seller}}}
    html = (f'<html><head><meta charset="{charset}"><title>{title}</title>'
            f'<script type="application/ld+json">{json.dumps(data, ensure_ascii=False)}</script>'
            f"</head><body><h1>{title}</h1></body></html>")
    return html.encode(charset)


class Market:
    """A marketplace on disk that a test changes between crawls."""

    def __init__(self, root: Path):
        self.root = root / "www"
        (self.root / "market" / "p").mkdir(parents=True)
        (self.root / "market" / "img").mkdir()
        (self.root / "market" / "img" / "official.jpg").write_bytes(OFFICIAL.read_bytes())
        (self.root / "market" / "img" / "other.jpg").write_bytes(OTHER.read_bytes())
        (self.root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
        self.listed: list[str] = []

    def add(self, slug: str, title: str, price: str, seller: str = "someone",
            image: str = "img/official.jpg") -> None:
        (self.root / "market" / "p" / f"{slug}.html").write_bytes(
            product_page(title, price, seller, f"/market/{image}"))
        if slug not in self.listed:
            self.listed.append(slug)

    def publish(self, per_page: int = 20) -> None:
        pages = [self.listed[i:i + per_page] for i in range(0, len(self.listed), per_page)] or [[]]
        for n, slugs in enumerate(pages, 1):
            items = "".join(f'<li class="item"><a href="/market/p/{s}.html">{s}</a></li>'
                            for s in slugs)
            nxt = f'<a class="next" href="list-{n + 1}.html">next</a>' if n < len(pages) else ""
            (self.root / "market" / f"list-{n}.html").write_text(
                f"<html><body><ul>{items}</ul>{nxt}</body></html>", encoding="utf-8")


def write_config(tmp_path: Path, server: MockServer, crawl_extra: str = "",
                 extra_sites: str = "") -> Path:
    (tmp_path / "catalog").mkdir(exist_ok=True)
    (tmp_path / "catalog" / "trail-30.jpg").write_bytes(OFFICIAL.read_bytes())
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG.replace("{server}", server.url).replace("{crawl_extra}", crawl_extra)
                    .replace("{extra_sites}", extra_sites), encoding="utf-8")
    return path


def crawl(tmp_path: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cfmon("crawl", "--config", str(config), "--db", str(tmp_path / "c.db"), *extra,
                     cwd=tmp_path)


def query(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# -- incremental crawls and takedowns --------------------------------------------------

def test_repeated_crawls_track_changes_gone_listings_and_takedowns(tmp_path: Path) -> None:
    market = Market(tmp_path)
    market.add("fake-1", "Nordvik Trail Backpack 30L replica", "29.99")
    market.add("genuine", "Nordvik Trail Backpack 30L", "129.00", "Nordvik Official Store")
    market.add("fake-2", "N0rdvik Trail Backpack 30L 1:1", "35.00")
    market.add("other", "Camping chair", "20.00", image="img/other.jpg")
    market.publish()
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server)
        first = crawl(tmp_path, config, "--quiet")
        assert first.returncode == 0, first.stderr[-2000:]
        ids = dict(query(db, "SELECT url, id FROM listings"))
        fake1, fake2 = ids[f"{server.url}/market/p/fake-1.html"], ids[f"{server.url}/market/p/fake-2.html"]
        assert run_cfmon("verdict", "--db", str(db), str(fake1), str(fake2), "counterfeit",
                         cwd=tmp_path).returncode == 0

        # Between runs: a price changes, one page answers 404, one listing disappears.
        market.add("genuine", "Nordvik Trail Backpack 30L", "119.00", "Nordvik Official Store")
        (market.root / "market" / "p" / "fake-1.html").unlink()
        market.listed.remove("fake-2")
        market.publish()
        second = crawl(tmp_path, config, "--quiet")
        assert second.returncode == 0, second.stderr[-2000:]
        # A 404 is a takedown, not an error.
        assert "market: 3 pages, 2 listings, 0 new, 1 changed, 2 gone, 0 errors" in second.stdout

        assert query(db, "SELECT count(*), count(DISTINCT url) FROM listings") == [(4, 4)]
        assert query(db, "SELECT field, old_value, new_value FROM listing_changes") == \
            [("price", "129.0", "119.0")]
        gone = dict(query(db, "SELECT id, gone_reason FROM listings WHERE gone_at IS NOT NULL"))
        assert gone == {fake1: "HTTP 404", fake2: "not listed in run 2"}
        status = query(db, "SELECT listing_id, status, days_to_takedown >= 0 FROM takedown_status "
                           "ORDER BY listing_id")
        assert status == sorted([(fake1, "taken down", 1), (fake2, "taken down", 1)])
        assert query(db, "SELECT site, confirmed, taken_down FROM takedown_times") == \
            [("market", 2, 2)]

        # It comes back: live again. And the same seller lists again, at retail price.
        market.listed.append("fake-2")
        market.add("relisted", "Nordvik Trail Backpack 30L", "125.00", image="img/other.jpg")
        market.publish()
        assert crawl(tmp_path, config, "--quiet").returncode == 0
        (reasons,) = query(db, "SELECT reasons FROM review_queue WHERE url LIKE '%relisted%'")[0]
        assert "seller 'someone' sold confirmed counterfeit #" in reasons
        assert ": a re-listing?" in reasons
        assert query(db, f"SELECT gone_at FROM listings WHERE id = {fake2}") == [(None,)]
        assert query(db, f"SELECT status FROM takedown_status WHERE listing_id = {fake2}") == \
            [("still listed",)]


# -- one crawl at a time -------------------------------------------------------------

def test_second_crawl_on_the_same_database_exits_3_at_once(tmp_path: Path) -> None:
    market = Market(tmp_path)
    for n in range(6):
        market.add(f"p{n}", f"Camping chair {n}", "20.00", image="img/other.jpg")
    market.publish()
    with MockServer(market.root) as server:
        server.delay = 1.0  # a slow marketplace keeps the first crawl busy for seconds
        config = write_config(tmp_path, server)
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        first = subprocess.Popen([CFMON, "crawl", "--config",
                                  str(config), "--db", str(tmp_path / "c.db"), "--quiet"],
                                 cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        lock = tmp_path / "c.db.lock"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text()):
            time.sleep(0.05)
        started = time.monotonic()
        second = crawl(tmp_path, config, "--quiet")
        elapsed = time.monotonic() - started
        out, err = first.communicate(timeout=120)
    assert second.returncode == 3
    assert f"is being crawled by pid {first.pid}" in second.stderr
    assert elapsed < 15  # it did not wait for the first crawl (one Python start-up)
    assert first.returncode == 0, err[-2000:]


def test_a_stale_lock_from_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    market = Market(tmp_path)
    market.add("p1", "Camping chair", "20.00", image="img/other.jpg")
    market.publish()
    (tmp_path / "c.db.lock").write_text(json.dumps({"pid": 999999, "started_at": "yesterday"}))
    with MockServer(market.root) as server:
        result = crawl(tmp_path, write_config(tmp_path, server))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "took over the lock left by pid 999999" in result.stderr


# -- exit codes ----------------------------------------------------------------------

BROKEN_SITES = """
[[sites]]
name = "renamed-markup"
start_urls = ["{server}/market/list-1.html?from=renamed"]
[sites.results]
listing = "div.card"
url = "a::attr(href)"

[[sites]]
name = "down"
start_urls = ["{server}/down/index.html"]
[sites.results]
listing = "li"
url = "a::attr(href)"
"""


def test_a_site_that_yields_nothing_exits_1_and_says_why(tmp_path: Path) -> None:
    market = Market(tmp_path)
    market.add("p1", "Camping chair", "20.00", image="img/other.jpg")
    market.publish()
    with MockServer(market.root) as server:
        server.faults["/down/index.html"] = (503, "text/html", b"maintenance")
        config = write_config(tmp_path, server,
                              extra_sites=BROKEN_SITES.replace("{server}", server.url))
        result = crawl(tmp_path, config, "--quiet")
    assert result.returncode == 1
    assert "renamed-markup: selectors matched no listing on 1 pages" in result.stderr
    assert (f"down: no page could be read (1 results pages failed: HTTP 503 at {server.url}"
            "/down/index.html)") in result.stderr
    assert query(tmp_path / "c.db", "SELECT count(*) FROM listings") == [(1,)]
    assert query(tmp_path / "c.db", "SELECT exit_code FROM runs") == [(1,)]


def test_cards_whose_product_pages_all_fail_exit_1_naming_the_cause(tmp_path: Path) -> None:
    market = Market(tmp_path)
    closed = free_port()  # nothing listens there: connection refused
    items = "".join(f'<li class="item"><a href="http://127.0.0.1:{closed}/p/{n}.html">{n}</a></li>'
                    for n in range(5))
    (market.root / "market" / "list-1.html").write_text(f"<ul>{items}</ul>", encoding="utf-8")
    with MockServer(market.root) as server:
        result = crawl(tmp_path, write_config(tmp_path, server, crawl_extra="timeout = 5"),
                       "--quiet")
    assert result.returncode == 1
    assert "market: 5 listing cards found, 0 product pages could be read (" in result.stderr
    assert "refused" in result.stderr.split("0 product pages could be read")[1].lower()
    assert "5 product pages failed: " in result.stdout  # the summary names the kind


def test_a_run_whose_every_image_fails_exits_1_saying_no_photo_was_matched(tmp_path: Path) -> None:
    market = Market(tmp_path)
    for n in range(3):
        market.add(f"p{n}", f"Nordvik Trail Backpack 30L {n}", "29.00")
    market.publish()
    with MockServer(market.root) as server:
        server.faults["/market/img/official.jpg"] = (403, "text/html", b"bot check")
        result = crawl(tmp_path, write_config(tmp_path, server), "--quiet")
    assert result.returncode == 1
    assert ("market: 3 images failed, none could be read, so no photo was matched "
            f"(HTTP 403 at {server.url}/market/img/official.jpg)") in result.stderr
    # Counted once, under the site, and the run's total agrees with the sites'.
    assert "3 errors\n  market: 4 pages, 3 listings, 3 new, 0 changed, 0 gone, 3 errors" \
        in result.stdout
    assert f"    3 images failed: HTTP 403 at {server.url}/market/img/official.jpg" in result.stdout


def test_quiet_prints_only_the_summary_and_log_file_gets_the_log(tmp_path: Path) -> None:
    market = Market(tmp_path)
    market.add("p1", "Camping chair", "20.00", image="img/other.jpg")
    market.publish()
    with MockServer(market.root) as server:
        result = crawl(tmp_path, write_config(tmp_path, server), "--quiet", "--log-file",
                       str(tmp_path / "crawl.log"))
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.splitlines()[0].startswith("run 1 finished (finished): 2 pages, 1 listings")
    assert "Spider closed (finished)" in (tmp_path / "crawl.log").read_text()


# -- faults ---------------------------------------------------------------------------

def bomb_png() -> bytes:
    """A PNG header claiming 40000 x 40000 pixels: Pillow must refuse it unopened."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_faults_are_logged_with_their_url_and_the_crawl_goes_on(tmp_path: Path) -> None:
    market = Market(tmp_path)
    market.add("ok", "Camping chair", "20.00", image="img/other.jpg")
    market.add("bomb", "Camping table", "30.00", image="img/bomb.png")
    (market.root / "market" / "img" / "bomb.png").write_bytes(bomb_png())
    market.add("ssrf", "Camping lamp", "15.00", image="img/x.jpg")
    (market.root / "market" / "p" / "ssrf.html").write_bytes(
        product_page("Camping lamp", "15.00", "s", "http://127.0.0.2:1/admin/secret.jpg"))
    (market.root / "market" / "p" / "cp1251.html").write_bytes(
        product_page("Палатка туристическая", "99.00", "s", "/market/img/other.jpg",
                     charset="windows-1251"))
    market.add("slow", "Camping stove", "45.00", image="img/other.jpg")
    market.listed += ["cp1251", "loop", "huge", "cut"]
    market.publish()
    with MockServer(market.root) as server:
        server.script["/market/list-1.html"] = [(429, {"Retry-After": "1"}, b"slow down")]
        server.script["/market/p/loop.html"] = [
            (302, {"Location": "/market/p/loop.html"}, b"")] * 12
        server.script["/market/p/huge.html"] = [
            (200, {"Content-Type": "text/html", "Content-Length": str(80 * 1024 * 1024)},
             b"<html>")]
        server.script["/market/p/cut.html"] = [
            (200, {"Content-Type": "text/html", "Content-Length": "5000"}, b"<html><h1>half")] * 3
        config = write_config(tmp_path, server, crawl_extra="timeout = 2")
        server.delays["/market/p/slow.html"] = 6  # beyond the 2 s timeout, and its retries
        result = crawl(tmp_path, config)
    log = result.stderr
    base = server.url
    assert result.returncode == 0, log[-3000:]
    assert f"HTTP 429 at {base}/market/list-1.html: waiting 1.0s as Retry-After asks" in log
    assert f"redirect loop: {base}/market/p/loop.html redirects back to" in log
    assert f"{base}/market/p/huge.html" in log
    assert f"took longer than 2.0 seconds.) at {base}/market/p/slow.html" in log
    assert f"Got data loss in {base}/market/p/cut.html" in log
    assert f"at {base}/market/p/cut.html" in log.split("Got data loss")[1]
    assert "image skipped (not a readable image" in log and f"{base}/market/img/bomb.png" in log
    assert "refused http://127.0.0.2:1/admin/secret.jpg: 127.0.0.2 resolves to 127.0.0.2" in log
    titles = {t for (t,) in query(tmp_path / "c.db", "SELECT title FROM listings")}
    assert {"Camping chair", "Camping table", "Camping lamp", "Палатка туристическая"} <= titles


# -- SIGKILL at any moment -------------------------------------------------------------

def check_intact(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # A listing is written with its match and its captures, or not at all.
        assert conn.execute("SELECT count(*) FROM listings l WHERE NOT EXISTS "
                            "(SELECT 1 FROM matches m WHERE m.listing_id = l.id)").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM listings l WHERE NOT EXISTS "
                            "(SELECT 1 FROM captures c WHERE c.listing_id = l.id)").fetchone() == (0,)
        assert list(verify(conn)) == []
    finally:
        conn.close()


def _progress(db: Path) -> tuple[int, int]:
    """(id of the latest run if it is still running, else 0; listings it has stored)."""
    if not db.exists():
        return 0, 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT id, status FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            if row is None or row[1] != "running":
                return 0, 0
            stored = conn.execute("SELECT count(*) FROM listings WHERE last_run_id = ?",
                                  [row[0]]).fetchone()[0]
            return row[0], stored
        finally:
            conn.close()
    except sqlite3.OperationalError:  # the schema is being created
        return 0, 0


def test_sigkill_at_any_stage_of_a_crawl_leaves_an_intact_database(tmp_path: Path) -> None:
    """Kills chosen from the crawl's own progress, not from the clock, so that a slow or
    busy machine kills at the same stages as an idle one: as soon as the run is
    recorded, after some listings are stored (mid-crawl, between batches), and while
    images are being fetched and hashed."""
    market = Market(tmp_path)
    for n in range(40):
        market.add(f"p{n:02d}", f"Nordvik Trail Backpack 30L copy {n}", f"{20 + n}.00",
                   image="img/official.jpg" if n % 2 else "img/other.jpg")
    market.publish(per_page=10)
    db = tmp_path / "c.db"
    rnd = random.Random(20261125)
    kills = []
    last_run = 0  # a killed run stays "running" until the next crawl marks it
    with MockServer(market.root) as server:
        server.delay = 0.01
        config = write_config(tmp_path, server)
        command = [CFMON, "crawl", "--config", str(config), "--db", str(db), "--quiet"]
        for attempt in range(12):
            stage = ("run recorded", "listings stored", "images fetched")[attempt % 3]
            wanted = rnd.randint(1, 30)
            served_before = len(server.requested)
            process = subprocess.Popen(command, cwd=tmp_path, env=CFMON_ENV,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while process.poll() is None and time.monotonic() < deadline:
                run, stored = _progress(db)
                images = sum("/img/" in path for path in server.requested[served_before:])
                if run > last_run and (stage == "run recorded" or
                            (stage == "listings stored" and stored >= wanted) or
                            (stage == "images fetched" and images >= 1)):
                    process.send_signal(signal.SIGKILL)
                    kills.append((stage, stored))
                    last_run = run
                    break
                time.sleep(0.01)
            process.wait(timeout=120)
            if db.exists():
                check_intact(db)
        final = crawl(tmp_path, config, "--quiet")
    assert final.returncode == 0, final.stderr[-2000:]
    check_intact(db)
    assert query(db, "SELECT count(*) FROM listings") == [(40,)]
    statuses = dict(query(db, "SELECT status, count(*) FROM runs GROUP BY status"))
    assert statuses["finished"] >= 1
    # Every kill of a running crawl is said by the next crawl; nothing is left "running".
    # (A kill can land just after a fast re-crawl finished: that run stays finished.)
    assert "running" not in statuses
    assert 4 <= statuses["interrupted"] <= len(kills)
    assert {stage for stage, _ in kills} == {"run recorded", "listings stored", "images fetched"}


def test_images_already_hashed_are_not_fetched_again_unless_changed(tmp_path: Path) -> None:
    market = Market(tmp_path)
    market.add("a", "Nordvik Trail Backpack 30L", "129.00")
    market.add("b", "Camping chair", "20.00", image="img/other.jpg")
    market.publish()
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server)
        assert crawl(tmp_path, config, "--quiet").returncode == 0
        # The second crawl asks with If-Modified-Since: the server answers 304.
        assert crawl(tmp_path, config, "--quiet").returncode == 0
        # A server that ignores it and sends the same bytes: recognised by SHA-256.
        for name in ("official.jpg", "other.jpg"):
            body = (market.root / "market" / "img" / name).read_bytes()
            server.script[f"/market/img/{name}"] = [(200, {"Content-Type": "image/jpeg"}, body)]
        assert crawl(tmp_path, config, "--quiet").returncode == 0
        # A changed image is fetched and hashed again.
        (market.root / "market" / "img" / "other.jpg").write_bytes(CHANGED.read_bytes())
        os.utime(market.root / "market" / "img" / "other.jpg", (time.time() + 10,) * 2)
        assert crawl(tmp_path, config, "--quiet").returncode == 0
    stats = [json.loads(s) for (s,) in query(db, "SELECT stats FROM runs ORDER BY id")]
    decoded = [s.get("file_status_count/downloaded", 0) for s in stats]
    unchanged = [s.get("cfmon/images/unchanged", 0) for s in stats]
    assert decoded == [2, 0, 0, 1] and unchanged == [0, 2, 2, 1]
    assert query(db, "SELECT status, count(*) FROM captures WHERE kind = 'image' AND run_id = 2 "
                     "GROUP BY status") == [(304, 2)]
    assert query(db, "SELECT count(*) FROM images WHERE length(thumbnail) > 0") == [(2,)]
    (phash,) = query(db, f"SELECT phash FROM images WHERE url = '{server.url}/market/img/other.jpg'")[0]
    assert phash == analyse_image(CHANGED.read_bytes()).hashes.hex()[0]  # the new bytes were hashed
    conn = sqlite3.connect(db)
    assert list(verify(conn)) == []
    conn.close()


def test_the_same_photo_at_another_url_is_analysed_once(tmp_path: Path) -> None:
    market = Market(tmp_path)
    market.add("a", "Nordvik Trail Backpack 30L", "129.00")
    # A seller's copy of the brand's photo, byte for byte, under its own URL.
    (market.root / "market" / "img" / "copy.jpg").write_bytes(OFFICIAL.read_bytes())
    market.add("b", "Nordvik Trail Backpack 30L", "39.00", image="img/copy.jpg")
    market.add("c", "Camping chair", "20.00", image="img/other.jpg")
    market.publish()
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server)
        assert crawl(tmp_path, config, "--quiet").returncode == 0
        # The next day another copy turns up at a new URL: known bytes, not analysed.
        (market.root / "market" / "img" / "copy2.jpg").write_bytes(OFFICIAL.read_bytes())
        market.add("d", "Nordvik Trail Backpack 30L", "35.00", image="img/copy2.jpg")
        market.publish()
        assert crawl(tmp_path, config, "--quiet").returncode == 0
    stats = [json.loads(s) for (s,) in query(db, "SELECT stats FROM runs ORDER BY id")]
    assert [s.get("file_status_count/downloaded", 0) for s in stats] == [2, 0]
    assert [s.get("cfmon/images/same_bytes", 0) for s in stats] == [1, 1]
    rows = query(db, "SELECT url, phash, length(thumbnail) > 0, match FROM images "
                     "WHERE url NOT LIKE '%other.jpg' ORDER BY url")
    assert [url.rsplit("/", 1)[1] for url, *_ in rows] == ["copy.jpg", "copy2.jpg", "official.jpg"]
    # Each URL keeps the one analysis: hashes, a thumbnail, the verified match.
    assert len({(phash, thumbnail, match) for _, phash, thumbnail, match in rows}) == 1
    assert rows[0][2] == 1 and json.loads(rows[0][3])["photo"] == "trail-30.jpg"
    matched = query(db, "SELECT l.url, m.image_inliers FROM listings l JOIN matches m "
                        "ON m.listing_id = l.id WHERE m.image_inliers IS NOT NULL")
    assert sorted(url.rsplit("/", 1)[1] for url, _ in matched) == ["a.html", "b.html", "d.html"]
    conn = sqlite3.connect(db)
    assert list(verify(conn)) == []
    conn.close()


def test_the_same_unreadable_bytes_at_two_urls_fail_for_both(tmp_path: Path) -> None:
    market = Market(tmp_path)
    for name in ("a", "b"):
        (market.root / "market" / "img" / f"{name}.jpg").write_bytes(b"\xff\xd8 not a photo" * 50)
        market.add(name, "Nordvik Trail Backpack 30L", "39.00", image=f"img/{name}.jpg")
    market.add("c", "Nordvik Trail Backpack 30L", "129.00")
    market.publish()
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        result = crawl(tmp_path, write_config(tmp_path, server), "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    errors = query(db, "SELECT url, phash, error FROM images WHERE error IS NOT NULL ORDER BY url")
    assert [url.rsplit("/", 1)[1] for url, *_ in errors] == ["a.jpg", "b.jpg"]
    assert all(phash is None and "not a readable image: no image format" in error
               for _, phash, error in errors), errors
    assert query(db, "SELECT count(*) FROM listings") == [(3,)]


def test_a_site_that_lost_its_titles_fails_in_words_and_monitors_say_so(tmp_path: Path) -> None:
    market = Market(tmp_path)
    for n in range(4):
        market.add(f"p{n}", f"Camping chair {n}", "20.00", image="img/other.jpg")
        # The markup changed: no structured data, no heading, no title any more.
        (market.root / "market" / "p" / f"p{n}.html").write_text(
            "<html><body><div class='price'>$20.00</div></body></html>", encoding="utf-8")
    market.publish()
    with MockServer(market.root) as server:
        result = crawl(tmp_path, write_config(tmp_path, server), "--quiet")
    # Listings came, but none a reviewer can use: a failed site, said in words.
    assert result.returncode == 1
    assert ("market: 4 of 4 listings have no title: the page markup has likely changed"
            in result.stderr)
    assert "warning: run monitors failed: Field Coverage Monitor" in result.stderr
    (stats,) = query(tmp_path / "c.db", "SELECT stats FROM runs")[0]
    assert "Field Coverage Monitor" in json.loads(stats)["cfmon/monitors/failed"]


def test_an_image_on_another_name_of_the_sites_own_address_is_fetched(tmp_path: Path) -> None:
    market = Market(tmp_path)
    market.add("p1", "Camping chair", "20.00", image="img/other.jpg")
    market.publish()
    with MockServer(market.root) as server:
        port = server.server_address[1]
        (market.root / "market" / "p" / "p1.html").write_bytes(product_page(
            "Camping chair", "20.00", "s", f"http://localhost:{port}/market/img/other.jpg"))
        result = crawl(tmp_path, write_config(tmp_path, server))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused" not in result.stderr
    assert query(tmp_path / "c.db", "SELECT count(*) FROM images WHERE phash IS NOT NULL") == [(1,)]


def test_a_stolen_photo_shown_second_is_matched_and_shown_to_the_reviewer(tmp_path: Path) -> None:
    market = Market(tmp_path)
    market.add("gallery", "Hiking backpack 30 L", "25.00")
    data = {"@context": "https://schema.org", "@type": "Product", "name": "Hiking backpack 30 L",
            "image": ["/market/img/other.jpg", "/market/img/official.jpg"],
            "offers": {"@type": "Offer", "price": "25.00", "priceCurrency": "USD"}}
    (market.root / "market" / "p" / "gallery.html").write_text(
        f'<html><head><script type="application/ld+json">{json.dumps(data)}</script></head>'
        "<body><h1>Hiking backpack 30 L</h1></body></html>", encoding="utf-8")
    market.publish()
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        assert crawl(tmp_path, write_config(tmp_path, server), "--quiet").returncode == 0
    ((reasons, matched, shown),) = query(db, """
        SELECT q.reasons, m.image_url, q.listing_image = i.thumbnail
        FROM review_queue q JOIN matches m ON m.listing_id = q.listing_id
        JOIN images i ON i.url = m.image_url""")
    assert "agree with reference photo trail-30.jpg" in reasons
    assert matched.endswith("/market/img/official.jpg") and shown == 1
    assert query(db, "SELECT image_url FROM listings")[0][0].endswith("/market/img/other.jpg")
    assert query(db, "SELECT count(*) FROM captures WHERE kind = 'image'") == [(2,)]


def test_a_new_reference_photo_checks_every_stored_photo_again(tmp_path: Path) -> None:
    # A listing shows a photo that is in no catalog yet; the brand then adds it as a
    # reference photo. The stored answer ("no match") was given against the old
    # catalog: the next crawl fetches the photo in full and checks it again.
    market = Market(tmp_path)
    jacket = DEMO / "brand" / "catalog" / "summit-jacket.jpg"
    (market.root / "market" / "img" / "jacket.jpg").write_bytes(jacket.read_bytes())
    market.add("jacket", "Warm winter jacket", "60.00", image="img/jacket.jpg")
    market.publish()
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server)
        assert crawl(tmp_path, config, "--quiet").returncode == 0
        assert query(db, "SELECT reference_photo FROM matches") == [(None,)]
        (tmp_path / "catalog" / "summit-jacket.jpg").write_bytes(jacket.read_bytes())
        with config.open("a", encoding="utf-8") as f:
            f.write('\n[[products]]\nname = "Nordvik Summit Down Jacket"\nmsrp = 249.0\n'
                    'currency = "USD"\nimages = ["catalog/summit-jacket.jpg"]\n')
        assert crawl(tmp_path, config, "--quiet").returncode == 0
    ((photo, reasons),) = query(db, "SELECT reference_photo, reasons FROM matches")
    assert photo == "summit-jacket.jpg"
    assert "keypoints agree with reference photo summit-jacket.jpg" in reasons


# -- on a terminal: progress, Ctrl-C -------------------------------------------------

def run_in_terminal(command: list[str], cwd: Path, db: Path, interrupts: int = 0,
                    server: MockServer | None = None,
                    timeout: float = 180) -> tuple[int, str, float]:
    """Run ``command`` on a pseudo-terminal, as a person at a shell would; send
    ``interrupts`` Ctrl-Cs (SIGINT) once the crawl is under way (its run recorded, a
    product page asked for). Returns the exit code, what the terminal showed, and the
    seconds from the first Ctrl-C to exit."""
    import pty
    import select

    master, slave = pty.openpty()
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                               env=CFMON_ENV, start_new_session=True)
    os.close(slave)
    shown, sent, first_sent = b"", 0, None
    asked_before = len(server.requested) if server is not None else 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the process has exited
                break
            if not chunk:
                break
            shown += chunk
        if sent < interrupts and _progress(db)[0] and server is not None and \
                any("/market/p/" in path for path in server.requested[asked_before:]):
            process.send_signal(signal.SIGINT)
            first_sent = first_sent or time.monotonic()
            sent += 1
            time.sleep(0.3)
    process.wait(timeout=30)
    os.close(master)
    waited = time.monotonic() - first_sent if first_sent else 0.0
    return process.returncode, shown.decode("utf-8", "replace"), waited


def test_a_crawl_on_a_terminal_shows_live_progress_per_site(tmp_path: Path) -> None:
    market = Market(tmp_path)
    for n in range(12):
        market.add(f"p{n}", f"Camping chair {n}", "20.00", image="img/other.jpg")
    market.publish()
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        code, shown, _ = run_in_terminal(
            [CFMON, "crawl", "--config", str(write_config(tmp_path, server)), "--db", str(db)],
            tmp_path, db)
    assert code == 0, shown[-2000:]
    assert "cfmon crawl: " in shown
    for column in ("site", "pages", "listings", "flagged", "errors"):
        assert column in shown
    assert re.search(r"market\s*│\s*13\s*│\s*12\s*│\s*0\s*│\s*0", shown)  # the final counts
    # Not on a terminal (cron, pipes): no table.
    piped = crawl(tmp_path, write_config(tmp_path, server))
    assert "cfmon crawl: " not in piped.stdout + piped.stderr


def slow_market(tmp_path: Path) -> Market:
    market = Market(tmp_path)
    for n in range(10):
        market.add(f"p{n}", f"Camping chair {n}", "20.00", image="img/other.jpg")
    market.publish()
    return market


def test_ctrl_c_stops_within_seconds_keeping_what_was_read(tmp_path: Path) -> None:
    market = slow_market(tmp_path)
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server)
        assert crawl(tmp_path, config, "--quiet").returncode == 0
        for n in range(10):  # now every product page takes 20 s to answer
            server.delays[f"/market/p/p{n}.html"] = 20
        code, shown, waited = run_in_terminal(
            [CFMON, "crawl", "--config", str(config), "--db", str(db)], tmp_path, db,
            interrupts=1, server=server)
    assert code == 1
    assert "stopping: writing what was read so far (Ctrl-C again to stop at once)" in shown
    assert "the crawl stopped early by Ctrl-C: listings read so far are stored, nothing was " \
           "marked gone" in shown
    assert waited < 12  # not the 20 s of the slow pages, nor their timeouts
    assert query(db, "SELECT status, finish_reason FROM runs ORDER BY id") == \
        [("finished", "finished"), ("failed", "shutdown")]
    assert query(db, "SELECT count(*) FROM listings WHERE gone_at IS NOT NULL") == [(0,)]


def test_a_second_ctrl_c_stops_at_once_with_nothing_half_written(tmp_path: Path) -> None:
    market = slow_market(tmp_path)
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server)
        for n in range(10):
            server.delays[f"/market/p/p{n}.html"] = 20
        code, shown, waited = run_in_terminal(
            [CFMON, "crawl", "--config", str(config), "--db", str(db)], tmp_path, db,
            interrupts=2, server=server)
        assert code != 0
        assert "stopped at once; the next crawl marks this run interrupted" in shown
        assert waited < 5
        check_intact(db)
        server.delays.clear()
        assert crawl(tmp_path, config, "--quiet").returncode == 0
    assert query(db, "SELECT status FROM runs ORDER BY id") == [("interrupted",), ("finished",)]


def test_the_lock_file_never_follows_a_symlink(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("a file the lock must not truncate")
    (tmp_path / "c.db.lock").symlink_to(precious)
    market = Market(tmp_path)
    market.add("p1", "Camping chair", "20.00", image="img/other.jpg")
    market.publish()
    with MockServer(market.root) as server:
        result = crawl(tmp_path, write_config(tmp_path, server), "--quiet")
    assert result.returncode == 2
    assert "c.db.lock: it is a symbolic link; remove it or choose another --db" in result.stderr
    assert precious.read_text() == "a file the lock must not truncate"


def test_nothing_a_crawl_runs_listens_on_a_port() -> None:
    from crawler import settings

    assert settings.TELNETCONSOLE_ENABLED is False
    assert settings.REMOTE_CONTROL_ENABLED is False
