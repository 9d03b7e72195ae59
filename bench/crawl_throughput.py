"""What cfmon's processing costs a crawl: cfmon against the bare Scrapy engine.

    python bench/crawl_throughput.py [--listings 600]

Builds a marketplace of N listings (results pages, JSON-LD product pages, one JPEG
photo each, 800x800), serves it on 127.0.0.1, and crawls it twice, each in its own
process: once with a bare Scrapy spider that fetches the same pages and images and
does nothing with them (the baseline), once with `cfmon crawl` (extraction, photo
analysis in worker processes, matching, evidence capture, SQLite writes on the writer
thread). The bench stops unless both fetched every page and photo. Then cfmon crawls
the unchanged marketplace again into the same database, as a daily cron run does:
photos are asked for conditionally, answered 304 and not analysed again (a figure of
its own, not the goal's). Prints the requests each answered, the wall times, listings
per second, the CPU time per listing of each crawl's process tree and of the HTTP
server with the ratio those allow on this machine's cores (a crawl cannot end before
its CPU time, spread over every core, has run), and the first crawl's ratio to the
bare spider (last line).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.demo import serve  # noqa: E402

# The baseline runs from a file, not `python -c`: Scrapy reads callbacks' source code
# (to warn about generators that return values) and fails on code it cannot find,
# which once left the baseline making 53 of 1,213 requests and fetching no image.
BASELINE = textwrap.dedent("""
    import json, sys, scrapy
    from scrapy.crawler import CrawlerProcess

    class Bare(scrapy.Spider):
        name = "bare"
        start_urls = [sys.argv[1]]

        def parse(self, response):
            for href in response.css("li a::attr(href)").getall():
                yield response.follow(href, self.product)
            nxt = response.css("a.next::attr(href)").get()
            if nxt:
                yield response.follow(nxt, self.parse)

        def product(self, response):
            yield response.follow(response.css("img::attr(src)").get(), self.image)

        def image(self, response):
            pass

    process = CrawlerProcess({"LOG_LEVEL": "ERROR", "ROBOTSTXT_OBEY": True,
                              "CONCURRENT_REQUESTS_PER_DOMAIN": 16, "DOWNLOAD_DELAY": 0})
    crawler = process.create_crawler(Bare)
    process.crawl(crawler)
    process.start()
    with open(sys.argv[2], "w") as out:
        json.dump(crawler.stats.get_stats(), out, default=str)
""")

CONFIG = """
[brand]
name = "Nordvik"
[[products]]
name = "Nordvik Trail Backpack 30L"
msrp = 129.0
currency = "USD"
images = ["{catalog}"]
[crawl]
download_delay = 0
autothrottle = false
concurrent_requests_per_domain = 16
[[sites]]
name = "bench"
start_urls = ["{server}/list-1.html"]
max_pages = 1000
[sites.results]
listing = "li"
url = "a::attr(href)"
next_page = "a.next::attr(href)"
[sites.product]
"""


def build(root: Path, n: int, photo: int = 800) -> None:
    """A marketplace of ``n`` listings: results pages of 50, product pages, one
    ``photo`` x ``photo`` JPEG each."""
    rnd = random.Random(1)
    scale = photo / 800
    (root / "p").mkdir(parents=True)
    (root / "img").mkdir()
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    for i in range(n):
        image = Image.new("RGB", (photo, photo), tuple(rnd.randint(0, 255) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x, y = int(rnd.randint(0, 700) * scale), int(rnd.randint(0, 700) * scale)
            draw.ellipse([x, y, x + int(rnd.randint(20, 200) * scale),
                          y + int(rnd.randint(20, 200) * scale)],
                         fill=tuple(rnd.randint(0, 255) for _ in range(3)))
        image.save(root / "img" / f"{i}.jpg", "JPEG", quality=85)
        data = {"@context": "https://schema.org", "@type": "Product",
                "name": f"Nordvik Trail Backpack 30L lot {i}", "image": f"/img/{i}.jpg",
                "offers": {"@type": "Offer", "price": f"{rnd.uniform(20, 140):.2f}",
                           "priceCurrency": "USD"}}
        (root / "p" / f"{i}.html").write_text(
            f'<html><head><script type="application/ld+json">{json.dumps(data)}</script></head>'
            f'<body><h1>{data["name"]}</h1><img src="/img/{i}.jpg"></body></html>')
    per_page = 50
    pages = (n + per_page - 1) // per_page
    for p in range(pages):
        links = "".join(f'<li><a href="/p/{i}.html">{i}</a></li>'
                        for i in range(p * per_page, min(n, (p + 1) * per_page)))
        nxt = f'<a class="next" href="/list-{p + 2}.html">next</a>' if p + 1 < pages else ""
        (root / f"list-{p + 1}.html").write_text(f"<html><body><ul>{links}</ul>{nxt}</body></html>")


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _adopt_orphans() -> None:
    """Become the reaper of this process's orphaned descendants (Linux): cfmon's photo
    workers outlive the crawl by a moment, their forkserver gone, and the CPU of a
    process nobody waits for is counted nowhere."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


class Timing(NamedTuple):
    seconds: float  # wall time
    # CPU seconds: the crawl's process tree (a child's CPU counts once it is waited for:
    # cfmon's photo workers through their forkserver) and this process's (the HTTP
    # server's threads)
    cpu: float
    server_cpu: float


def timed(command: list[str]) -> Timing:
    children, own = _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    _reap()
    if result.returncode != 0:
        sys.exit(f"{command[:4]} failed:\n{result.stderr[-2000:]}")
    return Timing(elapsed, _cpu(resource.RUSAGE_CHILDREN) - children,
                  _cpu(resource.RUSAGE_SELF) - own)


def responses(stats: dict, kind: str) -> int:
    """Responses of status 200 or 304 the engine received (robots.txt left out)."""
    return int(stats.get("downloader/response_status_count/200", 0)) + \
        int(stats.get("downloader/response_status_count/304", 0)) - \
        int(stats.get("robotstxt/response_status_count/200", 0))


def cfmon_crawl(config: Path, db: Path) -> tuple[Timing, int]:
    """Times of one `cfmon crawl` and the pages and images it was answered."""
    timing = timed([sys.executable, "-m", "crawler.cli", "crawl", "--config", str(config),
                     "--db", str(db), "--quiet"])
    conn = sqlite3.connect(db)
    stats = json.loads(conn.execute("SELECT stats FROM runs ORDER BY id DESC").fetchone()[0])
    conn.close()
    return timing, responses(stats, "cfmon")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=600)
    parser.add_argument("--runs", type=int, default=1, help="median of this many runs each")
    args = parser.parse_args()
    n = args.listings
    _adopt_orphans()
    work = Path(tempfile.mkdtemp(prefix="cfmon-bench-"))
    build(work / "www", n)
    pages = (n + 49) // 50
    expected = pages + 2 * n  # results pages, product pages, photos
    script = work / "bare_spider.py"
    script.write_text(BASELINE)
    timings: dict[str, list[Timing]] = {"bare": [], "cfmon": [], "again": []}
    with serve(work / "www") as base:
        config = work / "monitor.toml"
        config.write_text(CONFIG.replace("{server}", base).replace(
            "{catalog}", str(ROOT / "crawler" / "demo" / "brand" / "catalog" / "trail-30.jpg")))
        for run in range(args.runs):
            stats_file = work / f"bare-{run}.json"
            timings["bare"].append(timed([sys.executable, str(script), f"{base}/list-1.html",
                                          str(stats_file)]))
            bare_got = responses(json.loads(stats_file.read_text()), "bare")
            db = work / f"bench-{run}.db"
            timing, cfmon_got = cfmon_crawl(config, db)
            timings["cfmon"].append(timing)
            timing, again_got = cfmon_crawl(config, db)
            timings["again"].append(timing)
            # A baseline that fetched less than everything measures nothing: stop.
            if bare_got != expected:
                sys.exit(f"the bare spider fetched {bare_got} of {expected} pages and images")
            if cfmon_got != expected:
                sys.exit(f"cfmon fetched {cfmon_got} of {expected} pages and images")
            if again_got != expected:
                sys.exit(f"cfmon's second crawl fetched {again_got} of {expected}")
    bare, cfmon, again = (statistics.median(t.seconds for t in timings[name])
                          for name in ("bare", "cfmon", "again"))
    print(f"{n} listings (pages + 800x800 JPEGs) on 127.0.0.1, 2 cores, median of {args.runs}")
    print(f"requests answered: bare {bare_got} of {expected}, cfmon {cfmon_got} of {expected}")
    print(f"bare Scrapy spider (fetch only): {bare:6.1f}s  {n / bare:6.1f} listings/s")
    print(f"cfmon crawl (everything):        {cfmon:6.1f}s  {n / cfmon:6.1f} listings/s")
    print(f"cfmon again, nothing changed:    {again:6.1f}s  {n / again:6.1f} listings/s  "
          f"({bare / again:.2f} of bare; photos 304, not analysed again)")
    # What the cores allow: a crawl cannot end before its CPU time, and the server's,
    # spread over every core, has run.
    cores = os.cpu_count() or 1
    print(f"CPU ms per listing (crawl process tree + HTTP server), {cores} cores:")
    for name, label in (("bare", "bare"), ("cfmon", "cfmon"), ("again", "cfmon again")):
        crawl_cpu = statistics.median(t.cpu for t in timings[name])
        server_cpu = statistics.median(t.server_cpu for t in timings[name])
        print(f"  {label:<12} {1000 * crawl_cpu / n:6.1f} + {1000 * server_cpu / n:5.1f}  "
              f"(at most {bare / ((crawl_cpu + server_cpu) / cores):.2f} of bare's listings/s "
              f"if every core were busy throughout)")
    print(f"cfmon / bare listings per second: {bare / cfmon:.2f}")


if __name__ == "__main__":
    main()
