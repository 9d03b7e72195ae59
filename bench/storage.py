"""Evidence storage over daily crawls: does a year fit on one small machine?

    python bench/storage.py [--days 30] [--listings 600] [--keep-days 30]

Writes N days of crawls of the same listings through cfmon's own Store (no network:
what is measured is what the database keeps), each day 30 days back from now:
~600 KB product pages as marketplaces serve them (a site template shared by its
listings, the listing's own block, a block of recommendations that rotates every day,
a timestamp and a token), 5% of listings changing price each day, 10% flagged, one
photo per listing. Then:

- bytes per listing per day, split into what retention keeps forever (first
  sightings, every capture of a flagged listing, every change), what it drops after
  keep_days, and the rows (captures, custody chain, listings);
- the projected size after 365 days at --keep-days (default: cfmon's, 30):
  first sightings + 365 x (kept + rows per day) + keep_days x (droppable per day);
- the same pages as cfmon stored them before (zlib, each page whole), measured on a
  sample in the same run: the baseline of the ratio;
- `cfmon prune --keep-days 7` on the result (so that something is old enough), then
  `cfmon verify`, and a check that every flagged listing's captures kept their bytes.

The last line holds the projected year against the goal of issue 15 (< 2 GB).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.evidence import Capture  # noqa: E402
from crawler.items import Listing  # noqa: E402
from crawler.store.writer import Store  # noqa: E402
from matchers.score import MatchResult, Signal  # noqa: E402

SITES = ("bazaar", "marketo", "trendhub")
TAGS = ("div", "span", "a", "li", "section", "p", "button", "img")


def vocabulary(seed: int, n: int = 4000) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(3, 11)))
            for _ in range(n)]


WORDS = vocabulary(1)


def markup(rnd: random.Random, size: int) -> str:
    """HTML the way shops write it: nested tags, classes, links, words."""
    out, total = [], 0
    while total < size:
        tag, cls = rnd.choice(TAGS), "-".join(rnd.choices(WORDS[:300], k=rnd.randint(1, 3)))
        text = " ".join(rnd.choices(WORDS, k=rnd.randint(1, 9)))
        piece = (f'<{tag} class="{cls}" data-id="{rnd.randint(1, 99999)}">'
                 f'<a href="/{rnd.choice(WORDS)}/{rnd.randint(1, 9999)}">{text}</a></{tag}>\n')
        out.append(piece)
        total += len(piece)
    return "".join(out)


class Site:
    def __init__(self, name: str, seed: int):
        rnd = random.Random(seed)
        self.name = name
        self.head = markup(rnd, 300_000)  # header, menus, inline scripts and styles
        self.foot = markup(rnd, 200_000)
        self.cards = [markup(rnd, 300) for _ in range(600)]  # recommendation cards

    def page(self, n: int, day: int, price: str, when: datetime) -> bytes:
        own = markup(random.Random(n * 7919), 40_000)  # title, description, specs
        rnd = random.Random(n * 31 + day * 1_000_003)
        rotating = "".join(rnd.choices(self.cards, k=40))  # "you may also like", today
        token = f"{rnd.getrandbits(128):032x}"
        return (f"<html><head><meta name=csrf content={token}></head><body>{self.head}"
                f"<h1>Listing {n}</h1><span class=price>${price}</span>{own}"
                f"<section class=recommended>{rotating}</section>{self.foot}"
                f"<footer>served {when.isoformat()}</footer></body></html>").encode()


def photo(n: int) -> bytes:
    return random.Random(n).randbytes(40_000)  # a JPEG does not compress


def build(db: Path, days: int, listings: int) -> dict:
    sites = [Site(name, i) for i, name in enumerate(SITES)]
    rnd = random.Random(7)
    prices = {n: Decimal(rnd.randint(20, 400)) for n in range(listings)}
    flagged = set(rnd.sample(range(listings), listings // 10))
    start = datetime.now(timezone.utc) - timedelta(days=days)
    store = Store.open(db)
    zlib_sample, sample_pages, raw = 0, 0, 0
    t0 = time.perf_counter()
    for day in range(days):
        when = start + timedelta(days=day)
        for n in rnd.sample(range(listings), listings // 20):  # 5% change price
            prices[n] = (prices[n] * Decimal("0.9")).quantize(Decimal("0.01"))
        run = store.start_run("monitor.toml", list(SITES))
        batch = []
        for n in range(listings):
            site = sites[n % len(sites)]
            url = f"https://{site.name}.example/item/{n}"
            body = site.page(n, day, str(prices[n]), when)
            raw += len(body)
            if n % 20 == 0:  # the baseline: cfmon's storage before, on a sample
                zlib_sample += len(zlib.compress(body, 6))
                sample_pages += 1
            stamp = (when + timedelta(seconds=n)).isoformat(timespec="milliseconds")
            item = Listing(site=site.name, url=url, title=f"Listing {n}", price=prices[n],
                           currency="USD", seller=f"seller{n % 40}")
            item.image_url = f"https://{site.name}.example/img/{n}.jpg"
            item.captures += [
                Capture("page", url, url, 200, {"Content-Type": ["text/html"]}, body, stamp),
                Capture("image", item.image_url, item.image_url, 200,
                        {"Content-Type": ["image/jpeg"]}, photo(n), stamp)]
            score = 80 if n in flagged else 10
            item.match = MatchResult(score=score, flagged=score >= 50, product="Pack",
                                     signals=(Signal("price", "suspicion", 40, "cheap"),)
                                     if n in flagged else ())
            batch.append(item)
            if len(batch) == 100:
                store.write_batch(batch, run)
                batch = []
        if batch:
            store.write_batch(batch, run)
        store.finish_run(run, status="finished", finish_reason="finished", stats={})
        print(f"day {day + 1:>2}: {db.stat().st_size / 1e6:8.1f} MB "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    store.close()
    return {"raw": raw, "zlib_per_page": zlib_sample / sample_pages, "flagged": flagged}


def split(db: Path, days: int) -> dict[str, float]:
    """Stored bytes by what retention does with them."""
    conn = sqlite3.connect(db)
    kinds = dict(conn.execute("""
        WITH firsts AS (SELECT min(id) AS id FROM captures GROUP BY listing_id, kind),
             owner AS (SELECT min(id) AS id FROM captures GROUP BY sha256),
             changed AS (SELECT DISTINCT listing_id, run_id FROM listing_changes)
        SELECT CASE
            WHEN c.id IN (SELECT id FROM firsts) THEN 'first'
            WHEN c.listing_id IN (SELECT listing_id FROM matches WHERE flagged = 1) THEN 'kept'
            WHEN c.kind = 'page' AND (c.listing_id, c.run_id) IN (SELECT * FROM changed)
                THEN 'kept'
            ELSE 'droppable' END AS class, sum(length(b.data))
        FROM captures c JOIN blobs b ON b.sha256 = c.sha256
        WHERE c.id IN (SELECT id FROM owner)  -- each blob once, by its first capture
        GROUP BY class""").fetchall())
    blob_bytes = conn.execute("SELECT sum(length(data)) FROM blobs").fetchone()[0]
    conn.close()
    size = db.stat().st_size
    return {"first": kinds.get("first", 0), "kept_per_day": kinds.get("kept", 0) / (days - 1),
            "droppable_per_day": kinds.get("droppable", 0) / (days - 1),
            "rows_per_day": (size - blob_bytes) / days, "size": size}


def cfmon(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crawler.cli", *args], cwd=ROOT,
                          capture_output=True, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--listings", type=int, default=600)
    parser.add_argument("--keep-days", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "storage.db"
        built = build(db, args.days, args.listings)
        parts = split(db, args.days)
        n = args.listings
        per_day = parts["kept_per_day"] + parts["droppable_per_day"] + parts["rows_per_day"]
        year = (parts["first"] + 365 * (parts["kept_per_day"] + parts["rows_per_day"])
                + args.keep_days * parts["droppable_per_day"])
        old_per_day = built["zlib_per_page"] * n
        print(f"\n{n} listings, {args.days} days, {built['raw'] / 1e9:.1f} GB of pages served")
        print(f"first sightings (kept): {parts['first'] / 1e6:.1f} MB")
        print(f"per listing per day: {per_day / n / 1e3:.1f} KB stored "
              f"(kept forever {parts['kept_per_day'] / n / 1e3:.1f} KB, droppable after "
              f"keep_days {parts['droppable_per_day'] / n / 1e3:.1f} KB, rows "
              f"{parts['rows_per_day'] / n / 1e3:.1f} KB); before (zlib, whole pages): "
              f"{old_per_day / n / 1e3:.1f} KB")
        print(f"database after {args.days} days: {parts['size'] / 1e6:.1f} MB")
        pruned = cfmon("prune", "--db", str(db), "--keep-days", "7")
        print(f"cfmon prune --keep-days 7: {pruned.stdout.strip().splitlines()[0]}")
        verify = cfmon("verify", "--db", str(db))
        print(f"cfmon verify: exit {verify.returncode}: "
              f"{(verify.stdout or verify.stderr).strip().splitlines()[0]}")
        conn = sqlite3.connect(db)
        lost = conn.execute(
            "SELECT count(*) FROM captures c JOIN blobs b ON b.sha256 = c.sha256 "
            "JOIN matches m ON m.listing_id = c.listing_id "
            "WHERE m.flagged = 1 AND b.encoding = 'pruned'").fetchone()[0]
        conn.close()
        print(f"captures of flagged listings without their bytes after prune: {lost}")
        ok = verify.returncode == 0 and lost == 0
        print(f"projected after 365 days at keep_days {args.keep_days}: {year / 1e9:.2f} GB "
              f"for {n} listings (before: {(old_per_day * 365) / 1e9:.1f} GB, "
              f"{old_per_day * 365 / year:.0f}x more); goal < 2 GB: "
              f"{'met' if year < 2e9 and ok else 'NOT met'}")


if __name__ == "__main__":
    main()
