"""Whole crawls through the real Scrapy engine, in a subprocess, against loopback servers."""

from __future__ import annotations

import json
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from crawler.demo import demo_config_text
from tests.conftest import DEMO, run_cfmon
from tests.mockserver import MockServer


def rows(db: Path, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def write_config(tmp_path: Path, text: str) -> Path:
    shutil.copytree(DEMO / "brand" / "catalog", tmp_path / "catalog", dirs_exist_ok=True)
    path = tmp_path / "monitor.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the demo marketplaces ---------------------------------------------------------

@pytest.fixture(scope="module")
def demo_crawl(tmp_path_factory) -> tuple[Path, str, MockServer]:
    tmp_path = tmp_path_factory.mktemp("demo")
    with MockServer(DEMO / "sites") as server:
        text, _ = demo_config_text(server.url)
        config = write_config(tmp_path, text)
        result = run_cfmon("crawl", "--config", str(config), "--db", str(tmp_path / "c.db"),
                           cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "c.db", result.stderr + result.stdout, server


EXPECTED = json.loads((DEMO / "brand" / "expected.json").read_text(encoding="utf-8"))


def test_every_demo_listing_is_found_once(demo_crawl) -> None:
    db, _, server = demo_crawl
    got = sorted(r["url"].replace(server.url, "") for r in rows(db, "SELECT url FROM listings"))
    assert got == sorted(e["path"] for e in EXPECTED)


@pytest.mark.parametrize("field", ["title", "price", "currency", "seller"])
def test_demo_listing_fields_are_exact(demo_crawl, field: str) -> None:
    db, _, server = demo_crawl
    by_path = {r["url"].replace(server.url, ""): r for r in rows(db, "SELECT * FROM listings")}
    for expected in EXPECTED:
        value = by_path[expected["path"]][field]
        if field == "price" and value is not None:
            value = Decimal(str(value)).quantize(Decimal(expected["price"]))
            assert str(value) == expected["price"], expected["path"]
        else:
            assert value == expected[field], expected["path"]


def test_demo_flags_exactly_the_counterfeits_with_reasons(demo_crawl) -> None:
    db, _, server = demo_crawl
    queue = rows(db, "SELECT url, score, reasons FROM review_queue")
    flagged = {r["url"].replace(server.url, "") for r in queue}
    assert flagged == {e["path"] for e in EXPECTED if e["counterfeit"]}
    assert [r["score"] for r in queue] == sorted((r["score"] for r in queue), reverse=True)
    assert all(r["reasons"] for r in queue)


def test_demo_images_are_hashed_once_with_thumbnails(demo_crawl) -> None:
    db, _, _ = demo_crawl
    images = rows(db, "SELECT url, phash, length(thumbnail) AS size, error FROM images")
    hashed = [i for i in images if i["phash"]]
    assert len(hashed) == 22 and len({i["url"] for i in images}) == len(images)
    assert all(len(i["phash"]) == 16 and 0 < i["size"] <= 100_000 for i in hashed)
    assert [i["error"] for i in images if not i["phash"]] == ["HTTP 404"]


def test_photos_analysed_in_worker_processes_give_the_same_answers(demo_crawl,
                                                                   tmp_path: Path) -> None:
    db, _, _ = demo_crawl
    with MockServer(DEMO / "sites") as server:
        text, _ = demo_config_text(server.url)
        text = text.replace("[crawl]\n", "[crawl]\nanalysis_processes = 2\n", 1)
        config = write_config(tmp_path, text)
        result = run_cfmon("crawl", "--config", str(config), "--db", str(tmp_path / "p.db"),
                           cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (stats,) = rows(tmp_path / "p.db", "SELECT stats FROM runs")
    # 22 photos, two of them byte-for-byte copies of others at other URLs: analysed once.
    counts = json.loads(stats["stats"])
    assert (counts["cfmon/images/in_processes"], counts["cfmon/images/same_bytes"]) == (20, 2)

    def answers(path: Path, base: str) -> list[tuple]:
        return [(r[0].replace(base, ""), *r[1:]) for r in rows(
            path, "SELECT url, sha256, phash, dhash, match, error FROM images ORDER BY url")]

    def queue(path: Path, base: str) -> list[tuple]:
        return sorted((r[0].replace(base, ""), r[1], r[2]) for r in rows(
            path, "SELECT url, score, reasons FROM review_queue"))

    first = demo_crawl[2].url
    assert answers(tmp_path / "p.db", server.url) == answers(db, first)
    assert queue(tmp_path / "p.db", server.url) == queue(db, first)


POOL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from twisted.internet import defer, reactor
from crawler.pipelines.analysis import AnalysisPool

@defer.inlineCallbacks
def main():
    try:
        analysing = pool.analyse(Path(sys.argv[1]).read_bytes())
        for pid in list(pool._executor._processes):  # the worker dies mid-photo
            os.kill(pid, signal.SIGKILL)
        analysis = yield analysing
        print(analysis.sha256, analysis.width, pool.restarts)
    finally:
        pool.close()
        reactor.stop()

if __name__ == "__main__":  # workers import this file again (multiprocessing)
    pool = AnalysisPool(1, None)
    reactor.callWhenRunning(main)
    reactor.run()
"""


def test_a_dead_analysis_process_is_replaced_and_the_photo_analysed(tmp_path: Path) -> None:
    import hashlib
    import subprocess
    import sys

    photo = DEMO / "brand" / "catalog" / "trail-30.jpg"
    (tmp_path / "pool.py").write_text(POOL_SCRIPT)
    result = subprocess.run([sys.executable, "pool.py", str(photo)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    sha256, width, restarts = result.stdout.split()
    assert sha256 == hashlib.sha256(photo.read_bytes()).hexdigest() and int(width) > 0
    assert restarts == "1"
    assert "a photo analysis process died; starting new ones" in result.stderr


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_killed_crawl_leaves_no_analysis_process_behind(tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from tests.conftest import CFMON, CFMON_ENV

    with MockServer(DEMO / "sites") as server:
        server.delays["/bazaar/search-3.html"] = 60  # the crawl is still running when killed
        text, _ = demo_config_text(server.url)
        config = write_config(tmp_path, text.replace(
            "[crawl]\n", "[crawl]\nanalysis_processes = 2\n", 1))
        crawl = subprocess.Popen([CFMON, "crawl", "--config", str(config), "--db",
                                  str(tmp_path / "c.db"), "--quiet"], cwd=tmp_path,
                                 env=CFMON_ENV, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            workers: list[int] = []
            deadline = time.monotonic() + 120
            while len(workers) < 2 and crawl.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)  # the forkserver is the crawl's child, workers its
                workers = [w for child in _children(crawl.pid) for w in _children(child)]
            assert len(workers) == 2 and crawl.poll() is None, "no analysis workers"
            crawl.send_signal(signal.SIGKILL)
            crawl.wait()
            deadline = time.monotonic() + 60
            while any(Path(f"/proc/{w}").exists() for w in workers) \
                    and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not any(Path(f"/proc/{w}").exists() for w in workers)
        finally:
            if crawl.poll() is None:
                crawl.kill()


NO_PROCESSES = """
import sys
from crawler.pipelines import analysis
from crawler.cli import main

class NoProcesses:  # what a system without /dev/shm answers
    def __init__(self, *args, **kwargs):
        raise OSError(38, "Function not implemented")

analysis.ProcessPoolExecutor = NoProcesses
if __name__ == "__main__":
    sys.argv = ["cfmon", *sys.argv[1:]]
    main()
"""


def test_photos_are_analysed_in_threads_where_processes_cannot_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import CFMON_ENV

    (tmp_path / "no_processes.py").write_text(NO_PROCESSES)
    with MockServer(DEMO / "sites") as server:
        text, _ = demo_config_text(server.url)
        config = write_config(tmp_path, text.replace(
            "[crawl]\n", "[crawl]\nanalysis_processes = 2\n", 1))
        result = subprocess.run([sys.executable, "no_processes.py", "crawl", "--config",
                                 str(config), "--db", str(tmp_path / "c.db")], cwd=tmp_path,
                                env=CFMON_ENV, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("photos are analysed in the crawl's threads: worker processes could not start "
            "([Errno 38] Function not implemented)") in result.stderr
    hashed = rows(tmp_path / "c.db", "SELECT count(*) AS n FROM images WHERE phash IS NOT NULL")
    assert hashed[0]["n"] == 22


def test_demo_faults_are_logged_with_their_urls(demo_crawl) -> None:
    _, log, server = demo_crawl
    assert f"listing gone (HTTP 404) at {server.url}/trendhub/p/removed-listing.html" in log
    assert f"image skipped (HTTP 404) at {server.url}/bazaar/img/b12.jpg" in log
    assert f"price 'Call for price' has no readable amount at {server.url}/bazaar/item/b9" in log


def test_demo_run_is_recorded(demo_crawl) -> None:
    db, log, _ = demo_crawl
    (run,) = rows(db, "SELECT * FROM runs")
    assert (run["status"], run["finish_reason"]) == ("finished", "finished")
    assert (run["pages"], run["listings_seen"], run["flagged"]) == (16, 23, 8)
    assert "run 1 finished (finished): 16 pages, 23 listings (23 new), 8 flagged" in log
    catalog = rows(db, "SELECT product, phash FROM catalog ORDER BY product")
    assert [c["product"] for c in catalog] == ["Nordvik Summit Down Jacket",
                                               "Nordvik Thermo Flask 750ml",
                                               "Nordvik Trail Backpack 30L"]


def test_the_crawler_announces_itself_and_obeys_robots(demo_crawl) -> None:
    _, _, server = demo_crawl
    assert "/robots.txt" in server.requested


# -- a marketplace the spider has never seen -----------------------------------------

CARD = """<article class="offer">
  <h3 class="name"><a href="{href}">{title}</a></h3>
  <picture><img loading="lazy" src="/static/blank.gif" data-lazy="{img}"></picture>
  <p class="cost"><span>{price}</span></p>
  <footer>by <em>{seller}</em></footer>
</article>"""

JSONLD_PAGE = """<!DOCTYPE html><html><head><title>{title} | Structo</title>
<script type="application/ld+json">{data}</script></head>
<body><div id="app">{title}</div></body></html>"""


def build_unseen_marketplace(root: Path) -> dict[str, tuple[str, str, str]]:
    """Two sites in markup unlike the demo's; returns url path -> (title, price, currency)."""
    expected = {}
    photo = (DEMO / "brand" / "catalog" / "summit-jacket.jpg").read_bytes()
    (root / "cards" / "img").mkdir(parents=True)
    (root / "cards" / "img" / "ok.jpg").write_bytes(photo)
    other = DEMO / "sites" / "marketo" / "pics" / "1005.jpg"  # another brand's backpack
    (root / "cards" / "img" / "other.jpg").write_bytes(other.read_bytes())
    (root / "cards" / "img" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    pages = [
        [("/cards/o/1", "Nordvik Summit Down Jacket", "1.299,00 €", "1299.00", "ok.jpg"),
         ("/cards/o/2", "Winter jacket &amp; gloves", "49,90 €", "49.90", "missing.jpg")],
        [("/cards/o/3", "Nordvik Summit jacket replica", "89,00 €", "89.00", "corrupt.jpg"),
         # The same listing again, behind tracking parameters: still one listing.
         ("/cards/o/1?utm_source=list&ref=p2", "Nordvik Summit Down Jacket", "1.299,00 €",
          "1299.00", "ok.jpg"),
         ("/cards/o/4?color=red&ref=p2", "Mystery box", "ask the seller", None, "ok.jpg")],
        [("/cards/o/5", "Down jacket, blue", "120,00 €", "120.00", "other.jpg")],
    ]
    for n, cards in enumerate(pages, 1):
        html = "".join(CARD.format(href=h, title=t, price=p, img=f"img/{i}", seller="s" + h[-1])
                       for h, t, p, _, i in cards)
        nxt = f'<a class="pager-next" href="/cards/list-{n + 1}">more</a>' if n < len(pages) else ""
        # An empty article (no link) is an ad slot: skipped with a warning.
        (root / "cards" / f"list-{n}").write_text(
            f"<html><body><main>{html}<article class='offer'>ad</article></main>{nxt}"
            f"</body></html>", encoding="utf-8")
        for href, title, _, amount, _ in cards:
            identity = href.replace("utm_source=list&ref=p2", "").replace("&ref=p2", "")
            expected[identity.rstrip("?")] = (title.replace("&amp;", "&"), amount,
                                              "EUR" if amount else None)

    (root / "structo" / "item").mkdir(parents=True)
    (root / "structo" / "private").mkdir()
    links = []
    products = [("a", "Nordvik Thermo Flask 750ml", "9.99", "GBP"),
                ("b", "Steel bottle", "15", "GBP"),
                ("c", "Nordvik Trail Backpack 30L", "129.00", "USD")]
    for slug, title, price, currency in products:
        data = {"@context": "https://schema.org", "@type": "Product", "name": title,
                "offers": {"@type": "Offer", "price": price, "priceCurrency": currency}}
        (root / "structo" / "item" / f"{slug}.html").write_text(
            JSONLD_PAGE.format(title=title, data=json.dumps(data)), encoding="utf-8")
        links.append(f"item/{slug}.html")
        expected[f"/structo/item/{slug}.html"] = (title, str(Decimal(price)), currency)
    (root / "structo" / "item" / "pdf.html").write_bytes(b"%PDF-1.4 binary")
    (root / "structo" / "private" / "x.html").write_text("secret", encoding="utf-8")
    links += ["item/pdf.html", "item/boom.html", "private/x.html", "item/a.html"]
    (root / "structo" / "index.html").write_text(
        "<html><body><ol>" + "".join(f'<li><a class="go" href="{h}">{h}</a></li>' for h in links)
        + "</ol></body></html>", encoding="utf-8")
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /structo/private/\n")
    return expected


UNSEEN_CONFIG = """
[brand]
name = "Nordvik"
[[products]]
name = "Nordvik Summit Down Jacket"
msrp = 249.0
currency = "EUR"
images = ["catalog/summit-jacket.jpg"]
[crawl]
download_delay = 0
autothrottle = false

[[sites]]
name = "cards"
start_urls = ["{server}/cards/list-1"]
[sites.results]
listing = "article.offer"
url = "h3.name a::attr(href)"
title = "h3.name a::text"
price = "p.cost"
image = "img::attr(data-lazy)"
seller = "footer em::text"
next_page = "a.pager-next::attr(href)"

[[sites]]
name = "structo"
start_urls = ["{server}/structo/index.html"]
[sites.results]
listing = "ol > li"
url = "a.go::attr(href)"
[sites.product]
"""


@pytest.fixture(scope="module")
def unseen_crawl(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("unseen")
    expected = build_unseen_marketplace(tmp_path / "www")
    with MockServer(tmp_path / "www") as server:
        server.faults["/structo/item/boom.html"] = (500, "text/html", b"<h1>oops</h1>")
        server.faults["/structo/item/pdf.html"] = (200, "application/pdf", b"%PDF-1.4 binary")
        config = write_config(tmp_path, UNSEEN_CONFIG.replace("{server}", server.url))
        result = run_cfmon("crawl", "--config", str(config), "--db", str(tmp_path / "u.db"),
                           cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "u.db", result.stderr, server, expected


def test_unseen_marketplace_listings_found_once_with_exact_fields(unseen_crawl) -> None:
    db, _, server, expected = unseen_crawl
    got = {}
    for r in rows(db, "SELECT url, title, price, currency FROM listings"):
        price = None if r["price"] is None else Decimal(str(r["price"]))
        got[r["url"].replace(server.url, "")] = (r["title"], price, r["currency"])
    assert set(got) == set(expected)
    for path, (title, amount, currency) in expected.items():
        assert got[path][0] == title, path
        assert got[path][1] == (Decimal(amount) if amount else None), path
        assert got[path][2] == currency, path


def test_unseen_marketplace_faults_are_logged_and_skipped(unseen_crawl) -> None:
    _, log, server, _ = unseen_crawl
    base = server.url
    assert f"product page failed (HTTP 500) at {base}/structo/item/boom.html" in log
    assert f"not an HTML page (application/pdf) at {base}/structo/item/pdf.html" in log
    assert f"image skipped (HTTP 404) at {base}/cards/img/missing.jpg" in log
    assert "image skipped (not a readable image" in log and f"{base}/cards/img/corrupt.jpg" in log
    assert f"price 'ask the seller' has no readable amount at {base}/cards/o/4?color=red" in log
    assert f"listing card 3 at {base}/cards/list-1 has no URL" in log


def test_unseen_marketplace_robots_txt_is_obeyed(unseen_crawl) -> None:
    _, _, server, _ = unseen_crawl
    assert "/structo/private/x.html" not in server.requested
    assert server.requested.count("/structo/item/a.html") == 1  # linked twice, fetched once


def test_unseen_marketplace_counterfeit_is_flagged(unseen_crawl) -> None:
    db, _, server, _ = unseen_crawl
    queue = [r["url"].replace(server.url, "") for r in rows(db, "SELECT url FROM review_queue")]
    assert queue == ["/cards/o/3"]


def test_bad_config_stops_before_fetching(tmp_path: Path) -> None:
    with MockServer(tmp_path) as server:
        config = write_config(tmp_path, UNSEEN_CONFIG.replace("{server}", server.url)
                              .replace('listing = "ol > li"', 'listing = "ol >> li"'))
        result = run_cfmon("crawl", "--config", str(config), "--db", str(tmp_path / "x.db"),
                           cwd=tmp_path)
    assert result.returncode == 2
    assert "sites[2].results.listing: invalid CSS selector" in result.stderr
    assert server.requested == []
    assert not (tmp_path / "x.db").exists()


def test_the_image_cache_is_bounded_so_memory_does_not_grow_with_the_crawl() -> None:
    from crawler.pipelines.images import RecentResults

    cache = RecentResults(2)
    for fingerprint in (b"a", b"b", b"c"):
        cache[fingerprint] = {"url": fingerprint}
    assert list(cache) == [b"b", b"c"] and b"a" not in cache


def test_the_crawl_pauses_while_too_many_photos_wait_for_analysis() -> None:
    from types import SimpleNamespace

    from crawler.pipelines.images import Backlog

    looked: list[bool] = []
    engine = SimpleNamespace(paused=False,
                             _slot=SimpleNamespace(nextcall=SimpleNamespace(
                                 schedule=lambda: looked.append(True))))
    engine.pause = lambda: setattr(engine, "paused", True)
    engine.unpause = lambda: setattr(engine, "paused", False)
    backlog = Backlog(engine, limit=4)
    for _ in range(3):
        backlog.add()
    assert not engine.paused
    backlog.add()
    assert engine.paused  # four photos wait: no new request is taken
    backlog.done()
    assert engine.paused and not looked  # three still wait
    backlog.done()
    assert not engine.paused and looked == [True]  # half done: the engine looks at once


def test_product_pages_go_before_the_next_results_page(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from scrapy.http import HtmlResponse, Request

    from crawler.config import load_config
    from crawler.spiders.marketplace import MarketplaceSpider
    from crawler.stats import Counters

    config = tmp_path / "monitor.toml"
    config.write_text(
        '[brand]\nname = "Nordvik"\n[[products]]\nname = "Nordvik Trail"\nmsrp = 100.0\n'
        'currency = "USD"\n[[sites]]\nname = "shop"\nstart_urls = ["https://shop.example/s"]\n'
        '[sites.results]\nlisting = "li"\nurl = "a::attr(href)"\n'
        'next_page = "a.next::attr(href)"\n[sites.product]\n')
    spider = MarketplaceSpider(config=load_config(config))
    page = HtmlResponse("https://shop.example/s", body=b'<ul><li><a href="/p/1">1</a></li>'
                        b'<li><a href="/p/2">2</a></li></ul><a class="next" href="/s?p=2">n</a>',
                        encoding="utf-8", request=Request("https://shop.example/s"))
    stats: dict = {}
    spider.__dict__["counters"] = Counters(SimpleNamespace(
        inc_value=lambda key, n=1: stats.__setitem__(key, stats.get(key, 0) + n),
        get_value=lambda key, default=None: stats.get(key, default),
        set_value=stats.__setitem__))
    out = [r for r in spider.parse_results(page, site=spider.sites[0], page=1)
           if isinstance(r, Request)]
    products = [r for r in out if "/p/" in r.url]
    results = [r for r in out if "/s?p=2" in r.url]
    assert len(products) == 2 and len(results) == 1
    assert min(r.priority for r in products) > results[0].priority


def test_a_product_page_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Extraction and the block-page check read one parse of the page (Scrapy's
    response.css would parse it again: ~6 ms a real page)."""
    from types import SimpleNamespace

    from lxml import etree
    from scrapy.http import HtmlResponse, Request
    from scrapy.settings import Settings

    from crawler.config import load_config
    from crawler.extract.page import Extracted
    from crawler.items import Listing, SeenListing
    from crawler.spiders.marketplace import MarketplaceSpider
    from crawler.stats import Counters
    from tests.conftest import FIXTURES

    config = tmp_path / "monitor.toml"
    config.write_text(
        '[brand]\nname = "Nordvik"\n[[products]]\nname = "Nordvik Trail"\nmsrp = 100.0\n'
        'currency = "USD"\n[[sites]]\nname = "shop"\nstart_urls = ["https://shop.example/s"]\n'
        '[sites.results]\nlisting = "li"\nurl = "a::attr(href)"\n[sites.product]\n')
    spider = MarketplaceSpider(config=load_config(config))
    spider.crawler = SimpleNamespace(settings=Settings())
    spider.crawler.settings.setmodule("crawler.settings")
    stats: dict = {}
    spider.__dict__["counters"] = Counters(SimpleNamespace(
        inc_value=lambda key, n=1: stats.__setitem__(key, stats.get(key, 0) + n),
        get_value=lambda key, default=None: stats.get(key, default),
        set_value=stats.__setitem__))
    parses = []
    parse = etree.fromstring
    monkeypatch.setattr(etree, "fromstring", lambda *a, **k: parses.append(a) or parse(*a, **k))
    product = (FIXTURES / "pages" / "jsonld-several-offers.html").read_bytes()
    captcha = (b"<html><head><title>Just a moment...</title></head><body>"
               b"<h1>Verify you are human</h1></body></html>")
    for body, kind in ((product, Listing), (captcha, SeenListing)):
        response = HtmlResponse("https://shop.example/p/1", body=body, encoding="utf-8",
                                request=Request("https://shop.example/p/1"))
        parses.clear()
        out = list(spider.parse_product(response, site=spider.sites[0], card=Extracted(),
                                        found_on="https://shop.example/s"))
        assert [type(item) for item in out] == [kind]
        assert len(parses) == 1
    assert stats["cfmon/blocked"] == 1
