"""A database to review: N listings on three marketplaces written through cfmon's Store
(captured pages, photos, matches, a share flagged), as a crawl of the demo brand would
leave it, without a crawl."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from crawler.evidence import Capture
from crawler.items import Listing
from crawler.store.writer import CatalogPhoto, Store
from matchers.geometry import Verification
from matchers.images import (
    ImageAnalysis,
    ImageHashes,
    ImageMatch,
    PhotoMatch,
    Reference,
    analyse_image,
)
from matchers.score import MatchResult, Signal
from tests.conftest import DEMO

CATALOG = DEMO / "brand" / "catalog"
PRODUCTS = [("Nordvik Trail Backpack 30L", "trail-30.jpg", 129.0),
            ("Nordvik Summit Down Jacket", "summit-jacket.jpg", 249.0),
            ("Nordvik Thermo Flask", "thermo-flask.jpg", 39.0)]
SITES = ["bazaar", "marketo", "trendhub"]
PHOTOS = sorted((DEMO / "sites" / "bazaar" / "img").glob("b*.jpg"))
WHEN = "2026-11-20T10:00:00.000+00:00"


def make_review_db(path: Path, listings: int = 500, flag_every: int = 3) -> list[int]:
    """Write the database; returns the flagged listings' ids, highest score first."""
    store = Store.open(path)
    store.sync_catalog([
        CatalogPhoto(name, CATALOG / photo, msrp, "USD",
                     analyse_image((CATALOG / photo).read_bytes()))
        for name, photo, msrp in PRODUCTS])
    photos = [(p.read_bytes(), analyse_image(p.read_bytes())) for p in PHOTOS]
    run = store.start_run("monitor.toml", SITES)
    store.write_all((listing(n, flag_every, photos) for n in range(1, listings + 1)), run)
    store.finish_run(run, status="finished", finish_reason="finished", stats={})
    store.close()
    # listing ids follow insertion order here: id n is listing n
    flagged = [n for n in range(1, listings + 1) if n % flag_every == 0]
    return sorted(flagged, key=lambda n: (-score_of(n, flag_every), n))


def score_of(n: int, flag_every: int) -> int:
    return 50 + n % 50 if n % flag_every == 0 else n % 40


def listing(n: int, flag_every: int, photos: list[tuple[bytes, ImageAnalysis]]) -> Listing:
    """Listing n: its page and photo captured, matched, flagged one time in flag_every."""
    site = SITES[(n // flag_every) % 3]  # flagged listings on every site
    name, photo, msrp = PRODUCTS[(n // 7) % 3]
    url = f"http://{site}.test/item/{n}"
    flag = n % flag_every == 0
    price = Decimal(str(round(msrp * (0.2 if flag else 0.95), 2)))
    title = f"{name} {'replica AAA' if flag else 'new'} #{n}"
    item = Listing(site=site, url=url, title=title, price=price, currency="USD",
                   seller=f"seller{n % 17}", sources={"title": "selector"})
    page = f"<html><body><h1>{title}</h1><p>${price}</p></body></html>".encode()
    item.captures.append(Capture("page", url, url, 200, {"Content-Type": ["text/html"]},
                                 page, WHEN))
    data, analysis = photos[n % len(photos)]
    item.image_url = f"http://{site}.test/img/{n % len(photos)}.jpg"
    item.image = analysis
    item.captures.append(Capture("image", item.image_url, item.image_url, 200,
                                 {"Content-Type": ["image/jpeg"]}, data, WHEN))
    signals = (Signal("vocabulary", "suspicion", 40, "title contains 'replica', 'aaa'"),
               Signal("price", "suspicion", 40, f"price {price} USD is 20% of MSRP "
                                                f"{msrp:.2f} USD")) if flag else ()
    # Some listing photos hold the reference photo in a part of them (a screenshot).
    inside = PhotoMatch(name, photo, Verification(
        inliers=120, matches=150, region=(0.25, 0.2, 0.75, 0.8), visible=1.0, fills=0.3,
        rotation=0.0, scale=0.5, perspective=0.0, agreement=1.0)) if n % 7 == 0 else None
    item.match = MatchResult(score=score_of(n, flag_every), flagged=flag, product=name,
                             signals=signals,
                             image_match=ImageMatch(Reference(name, photo, "original",
                                                              ImageHashes(0, 0)), 2, 1),
                             photo_match=inside)
    return item
