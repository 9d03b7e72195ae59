"""Reviews that stay usable at 100,000 listings: verify's memory, the report's size, the
queue page's time.

    python bench/review_scale.py [--listings 100000] [--flagged 0.15]

Writes a database of N listings through cfmon's own Store (each with a captured page,
a match, a share flagged, one photo per 50 listings), then measures, each in its own
process where memory counts: `cfmon verify` (peak RSS, seconds), the default `cfmon
report` (bytes, seconds) and Datasette's review queue page as `cfmon browse` serves it
(seconds, median of 3, facet suggestions off as browse sets them; and on, the baseline
in the same run). The last line holds the figures against the goals of issue 16.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.evidence import Capture  # noqa: E402
from crawler.items import Listing  # noqa: E402
from crawler.store.writer import CatalogPhoto, Store  # noqa: E402
from matchers.images import (  # noqa: E402
    ImageAnalysis,
    ImageHashes,
    ImageMatch,
    Reference,
    analyse_image,
)
from matchers.score import MatchResult, Signal  # noqa: E402

CATALOG = ROOT / "crawler" / "demo" / "brand" / "catalog" / "trail-30.jpg"
PHOTO = ROOT / "crawler" / "demo" / "sites" / "bazaar" / "img" / "b2.jpg"


def build(db: Path, n: int, flagged: float) -> None:
    store = Store.open(db)
    store.sync_catalog([CatalogPhoto("Nordvik Trail Backpack 30L", CATALOG, 129.0, "USD",
                                     analyse_image(CATALOG.read_bytes()))])
    photo = analyse_image(PHOTO.read_bytes())
    photo_bytes = PHOTO.read_bytes()
    reference = Reference("Nordvik Trail Backpack 30L", "trail-30.jpg", "original",
                          ImageHashes(0, 0))
    run = store.start_run("monitor.toml", ["bench"])
    every = max(1, round(1 / flagged)) if flagged else 0
    store.write_all((listing(i, every, photo, photo_bytes, reference) for i in range(n)), run,
                    batch_size=500)
    store.finish_run(run, status="finished", finish_reason="finished", stats={})
    store.close()


def listing(i: int, every: int, photo: ImageAnalysis, photo_bytes: bytes,
            reference: Reference) -> Listing:
    """Listing i of the database: a captured page, a match, a photo one time in 50."""
    url = f"https://bench.example/item/{i}"
    body = (f"<html><h1>Nordvik Trail Backpack 30L lot {i}</h1><p>${20 + i % 100}.00</p>"
            f"<p>{'x' * (i % 300)}</p></html>").encode()
    item = Listing(site="bench", url=url, title=f"Nordvik Trail Backpack 30L lot {i}",
                   price=Decimal(20 + i % 100), currency="USD", seller=f"seller{i % 997}")
    item.captures.append(Capture("page", url, url, 200, {"Content-Type": ["text/html"]},
                                 body, "2026-11-20T10:00:00.000+00:00"))
    if i % 50 == 0:
        item.image_url = f"https://bench.example/img/{i}.jpg"
        item.image = photo
        item.captures.append(Capture("image", item.image_url, item.image_url, 200,
                                     {"Content-Type": ["image/jpeg"]}, photo_bytes,
                                     "2026-11-20T10:00:00.000+00:00"))
    score = 80 if every and i % every == 0 else 10
    item.match = MatchResult(score=score, flagged=score >= 50,
                             product="Nordvik Trail Backpack 30L",
                             signals=(Signal("price", "suspicion", 40, "price 23% of MSRP"),),
                             image_match=ImageMatch(reference, 2, 1))
    return item


def peak_rss_mb(command: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{command[:3]} failed")
    return time.perf_counter() - started, usage.ru_maxrss // 1024


def queue_page_seconds(db: Path, suggest_facets: bool) -> float:
    from datasette.app import Datasette

    from crawler.review.datasette import PLUGINS_DIR, browse_metadata

    app = Datasette([str(db)], metadata=browse_metadata(db), plugins_dir=str(PLUGINS_DIR),
                    settings={"suggest_facets": suggest_facets})
    path = f"/{db.stem}/review_queue"

    async def timed() -> list[float]:
        times = []
        for _ in range(4):  # the first warms the caches
            started = time.perf_counter()
            response = await app.client.get(path)
            assert response.status_code == 200, response.status_code
            times.append(time.perf_counter() - started)
        return times[1:]

    return statistics.median(asyncio.run(timed()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--flagged", type=float, default=0.15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cfmon-scale-"))
    db = work / "scale.db"
    started = time.perf_counter()
    build(db, args.listings, args.flagged)
    print(f"{args.listings} listings written in {time.perf_counter() - started:.0f}s "
          f"({db.stat().st_size / 1e6:.0f} MB)")
    cfmon = [sys.executable, "-m", "crawler.cli"]
    verify_s, verify_mb = peak_rss_mb([*cfmon, "verify", "--db", str(db)])
    print(f"cfmon verify: {verify_s:.1f}s, peak RSS {verify_mb} MB")
    report = work / "report.html"
    report_s, report_mb = peak_rss_mb([*cfmon, "report", "--db", str(db), "--out", str(report)])
    size = report.stat().st_size
    print(f"cfmon report (default): {size / 1e6:.1f} MB in {report_s:.1f}s, peak RSS {report_mb} MB")
    with_suggestions = queue_page_seconds(db, True)
    without = queue_page_seconds(db, False)
    print(f"review queue page: {without:.2f}s as cfmon browse serves it "
          f"(facet suggestions on: {with_suggestions:.2f}s)")
    print(f"verify {verify_mb} MB (goal < 200), report {size / 1e6:.1f} MB (goal < 10), "
          f"queue page {without:.2f}s (goal < 1)")


if __name__ == "__main__":
    main()
