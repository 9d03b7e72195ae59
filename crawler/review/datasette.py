"""Datasette metadata for a cfmon database: descriptions of every table and column,
thumbnails rendered as images, canned queries (the review queue first), and who may
see it and decide. Verdicts are recorded by the review page (page.py), through the
Store and into the custody chain, not by a writable canned query."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "review_queue": ("Flagged listings awaiting a verdict, highest score first.", {
        "listing_id": "Listing id: give it to `cfmon verdict`, or decide on the review page (/-/review)",
        "score": "0-100; flagged at the config's matching.threshold",
        "reasons": "Every signal that fired, strongest first",
        "listing_image": "Thumbnail of the listing's photo",
        "reference_image": "Thumbnail of the catalog photo it matched",
        "first_seen": "UTC time the listing was first crawled",
        "price_vs_msrp": "The price as a share of the matched product's MSRP (same currency)",
    }),
    "confirmed_counterfeits": ("Listings whose latest verdict is counterfeit.", {}),
    "takedown_status": ("Confirmed counterfeits and whether the last crawl of their site "
                        "still found them.", {
        "status": "'taken down' once gone, else 'still listed'",
        "flagged_at": "UTC time it was first flagged", "gone_at": "UTC time it went away",
        "days_to_takedown": "Days from first flag to takedown"}),
    "verdict_history": ("Every verdict ever recorded; a later one replaces an earlier one "
                        "only as the listing's latest.", {}),
    "latest_verdicts": ("Each listing's most recent verdict.", {}),
    "listings": ("One row per listing URL ever crawled.", {
        "site": "Marketplace name from the config",
        "url": "The listing's URL (its identity)",
        "price": "Amount as shown, in currency",
        "currency": "ISO 4217 code",
        "sources": "JSON: where each field was read (selector, jsonld, microdata, opengraph, "
                   "card, heuristic)",
        "found_on": "The results page that listed it",
        "first_seen": "UTC time of the first crawl that saw it",
        "last_seen": "UTC time of the latest crawl that saw it",
        "first_run_id": "Run that first saw it",
        "last_run_id": "Run that last saw it",
        "gone_at": "UTC time it was found taken down; empty while live, cleared if it returns",
        "gone_reason": "HTTP 404/410 on its page, or not listed in a complete crawl of its site",
    }),
    "listing_changes": ("Every change of a listing's title, price, currency or seller "
                        "between crawls.", {
        "changed_at": "UTC time of the crawl that saw the change", "field": "What changed",
        "old_value": "Before", "new_value": "After"}),
    "takedown_times": ("Per site: confirmed counterfeits, how many were taken down, and the "
                       "days from first flag to takedown.", {
        "confirmed": "Listings confirmed counterfeit", "taken_down": "Of those, gone",
        "avg_days_to_takedown": "Average days from first flag to gone",
        "max_days_to_takedown": "Longest"}),
    "images": ("Each listing image once, with its perceptual hashes.", {
        "url": "Image URL",
        "fetched_at": "UTC time it was fetched",
        "etag": "ETag the server gave (sent back as If-None-Match)",
        "variants": "JSON: hashes of the trimmed and central variants, for matching",
        "last_modified": "Last-Modified the server gave (sent back as If-Modified-Since)",
        "sha256": "SHA-256 of the image bytes as downloaded",
        "phash": "64-bit perceptual hash (DCT), 16 hex digits",
        "dhash": "64-bit difference hash, 16 hex digits",
        "thumbnail": "JPEG thumbnail, at most 100 KB",
        "error": "Why the image could not be fetched or read",
        "match": "JSON: the reference photo this image was verified to show (keypoints, "
                 "transform, region), or empty",
        "match_key": "The catalog and matcher it was checked against; another key means the "
                     "next crawl checks it again",
    }),
    "catalog": ("The brand's reference photos from the config.", {
        "photo": "File name of the reference photo",
        "path": "Where the photo file is",
        "updated_at": "UTC time the row was last refreshed from the config",
        "msrp": "Retail price of the product",
    }),
    "matches": ("The latest score of each listing.", {
        "flagged": "1 when score >= threshold",
        "reasons": "One reason per line, strongest first",
        "signals": "JSON: each scoring signal with its points",
        "image_distance": "pHash bits to a confirmed counterfeit's photo (a re-listing), "
                          "best variant pair",
        "reference_photo": "The reference photo the listing photo was verified to show (or "
                           "the confirmed counterfeit's)",
        "image_inliers": "Keypoints of the listing photo and the reference photo that agree "
                         "with one transform (geometric verification)",
        "image_region": "JSON [x0, y0, x1, y1]: where the reference photo is in the listing "
                        "photo, as shares of its width and height",
        "matched_at": "UTC time of the scoring",
        "first_flagged_at": "UTC time it was first flagged (the takedown clock starts here)",
        "image_url": "The listing photo that matched a reference (it may show several)",
        "listing_id": "Listing id (listings.id); one row per listing",
    }),
    "verdicts": ("Reviewers' decisions; append-only.", {
        "verdict": "counterfeit, genuine or dismissed",
        "decided_by": "Who decided (user name, or the reviewer `cfmon browse` names)",
        "replaces_id": "The verdict this one superseded",
    }),
    "runs": ("Every crawl run with its statistics.", {
        "started_at": "UTC start", "finished_at": "UTC end",
        "status": "running, finished, failed or interrupted",
        "config_path": "The config file used", "sites": "JSON list of the sites crawled",
        "pages": "Pages fetched and read", "listings_seen": "Listings seen in this run",
        "listings_new": "Listings seen for the first time", "flagged": "Flagged in this run",
        "errors": "Errors logged (fetch, image, field, card)",
        "finish_reason": "Scrapy's finish reason (killed: the process died)",
        "site_stats": "JSON: per site pages, listings, new, changed, gone, errors, complete",
        "exit_code": "0 ok, 1 a site failed (see site_stats)",
        "stats": "JSON: Scrapy's stats for the run",
    }),
    "blobs": ("Captured bytes (pages, images), compressed, stored once by SHA-256; a page "
              "as a delta against its listing's first capture; only `cfmon prune` removes "
              "bytes.", {
        "sha256": "SHA-256 of the original bytes", "size": "Original size in bytes",
        "encoding": "zstd, zstd-delta (against base_sha256), identity, or zlib (older)",
        "media_type": "Content-Type as served",
        "data": "The stored bytes", "stored_at": "UTC time first stored",
        "base_sha256": "The blob a zstd-delta was compressed against (the listing's first page)"}),
    "reference_features": ("Keypoints and hash variants of each reference photo, computed "
                           "once per photo and matcher version.", {
        "sha256": "SHA-256 of the photo's bytes", "version": "Matcher version",
        "hashes": "JSON: [kind, variant, pHash, dHash] per variant",
        "features": "ORB keypoints, descriptors and small copies (binary)",
        "mirrored": "The same of the mirrored photo",
        "tiny": "12x12 colour image of it and of it mirrored (float32), for candidates"}),
    "prunes": ("Each `cfmon prune`: whose bytes went, under which retention; each is in the "
               "custody chain.", {
        "pruned_at": "UTC time of the prune", "pruned_by": "Who ran it",
        "keep_days": "Retention: captures younger than this were kept",
        "cutoff": "Captures older than this could go", "blobs": "Blobs whose bytes went",
        "bytes": "Their original size", "list_sha256": "SHA-256 of their sorted hashes"}),
    "pruned_blobs": ("Blobs whose bytes retention dropped: `cfmon verify` reports their "
                     "captures as pruned, not missing.", {
        "sha256": "The blob", "prune_id": "The prune (prunes.id)", "size": "Original size"}),
    "captures": ("Every response a listing was read from: URL, status, headers, UTC time, "
                 "SHA-256; append-only.", {
        "kind": "page or image", "url": "URL requested", "final_url": "URL after redirects",
        "status": "HTTP status", "headers": "JSON: response headers",
        "captured_at": "UTC time of the response", "sha256": "SHA-256 of the body (blobs.sha256)"}),
    "custody_log": ("Hash chain over the captures, verdicts and prunes: entry_hash = "
                    "sha256(prev_hash || content_sha256). `cfmon verify` checks it; "
                    "append-only.", {
        "capture_id": "The capture this entry records (captures.id)",
        "verdict_id": "The verdict this entry records (verdicts.id)",
        "prune_id": "The prune this entry records (prunes.id)",
        "kind": "capture, verdict or prune",
        "content": "Canonical JSON of the capture or verdict record",
        "content_sha256": "SHA-256 of content", "prev_hash": "entry_hash of the entry before",
        "entry_hash": "sha256(prev_hash || content_sha256)",
        "recorded_at": "UTC time of the entry"}),
    "exchange_rates": ("The ECB's reference rates fetched by `cfmon rates update` (units of "
                       "each currency for one euro), by date.", {
        "date": "The ECB's reference date", "per_eur": "Units of the currency for one euro",
        "source": "Where they were fetched from", "fetched_at": "UTC time of the fetch"}),
    "chain_heads": ("The custody chain's head after each run and each verdict command, "
                    "with its RFC 3161 time-stamp token where configured; append-only. "
                    "Keep a copy of a head elsewhere: `cfmon verify --against` checks it.", {
        "entry_id": "custody_log.id of the head", "entry_hash": "Its entry_hash",
        "recorded_at": "UTC time it was recorded", "reason": "What ended: a run, verdicts",
        "tsa_url": "The Time-Stamp Authority asked", "token": "Its TimeStampResp (DER)"}),
}

# Descriptions of columns that mean the same wherever they appear.
COMMON: dict[str, str] = {
    "id": "Row id", "listing_id": "Listing id (listings.id)", "site": "Marketplace name from the config",
    "url": "URL", "title": "Listing title as shown", "price": "Amount as shown, in currency",
    "currency": "ISO 4217 code", "seller": "Seller name as shown", "brand": "Brand the page names",
    "sku": "SKU / MPN the page gives", "availability": "schema.org availability (InStock, ...)",
    "image_url": "URL of the listing's main image", "product": "Catalog product it matches",
    "score": "0-100; flagged at the config's matching.threshold",
    "reasons": "Every signal that fired, strongest first, one per line",
    "first_seen": "UTC time of the first crawl that saw it",
    "last_seen": "UTC time of the latest crawl that saw it",
    "verdict": "counterfeit, genuine or dismissed", "note": "The reviewer's note",
    "decided_by": "Who decided", "decided_at": "UTC time of the decision",
    "replaces_id": "The earlier verdict this one superseded", "sha256": "SHA-256 of the bytes",
    "phash": "64-bit perceptual hash (DCT), 16 hex digits",
    "dhash": "64-bit difference hash, 16 hex digits", "thumbnail": "JPEG thumbnail, at most 100 KB",
    "run_id": "Crawl run (runs.id)", "kind": "What was recorded", "status": "Status",
    "width": "Pixels", "height": "Pixels", "msrp": "Retail price of the product",
    "listing_image": "Thumbnail of the listing's photo",
    "reference_image": "Thumbnail of the catalog photo it matched",
    "confirmed_at": "UTC time of the counterfeit verdict", "confirmed_by": "Who confirmed it",
    "verdict_id": "Verdict id (verdicts.id)",
}

QUERIES: dict[str, dict[str, Any]] = {
    "review": {
        "title": "Review queue: flagged listings awaiting a verdict",
        "sql": "SELECT * FROM review_queue",
    },
    "top_risks_per_site": {
        "title": "Top 5 risks per site",
        "sql": """SELECT site, listing_id, score, title, price, currency, seller, reasons,
       listing_image, reference_image
FROM (SELECT *, row_number() OVER (PARTITION BY site ORDER BY score DESC) AS rank
      FROM review_queue)
WHERE rank <= 5 ORDER BY site, score DESC""",
    },
    "new_since_last_run": {
        "title": "Listings first seen in the latest run",
        "sql": """SELECT l.id AS listing_id, l.site, l.title, l.price, l.currency, l.seller,
       m.score, m.flagged, m.reasons, l.url
FROM listings l LEFT JOIN matches m ON m.listing_id = l.id
WHERE l.first_run_id = (SELECT max(id) FROM runs)
ORDER BY m.score DESC""",
    },
    "seller_listings": {
        "title": "A seller's listings",
        "sql": """SELECT l.id AS listing_id, l.site, l.title, l.price, l.currency, m.score,
       m.flagged, v.verdict, l.url
FROM listings l LEFT JOIN matches m ON m.listing_id = l.id
LEFT JOIN latest_verdicts v ON v.listing_id = l.id
WHERE l.seller = :seller ORDER BY m.score DESC""",
    },
}


# Datasette plugins of cfmon's own (`--plugins-dir`): files, not a package.
PLUGINS_DIR = Path(__file__).resolve().parent / "datasette_plugins"


def describe(table: str, columns: list[str]) -> dict[str, str]:
    own = TABLES.get(table, ("", {}))[1]
    return {c: own.get(c) or COMMON.get(c, "") for c in columns}


def browse_metadata(db_path: str | Path, reviewer: str | None = "reviewer",
                    accounts: dict[str, str] | None = None) -> dict[str, Any]:
    """Datasette's metadata for a cfmon database.

    ``reviewer``: on 127.0.0.1, who decides (the person at this machine). ``accounts``
    (name -> password hash, as `datasette hash-password` prints it): served beyond
    127.0.0.1, every page needs sign-in and the signed-in name decides."""
    name = Path(db_path).stem
    conn = sqlite3.connect(db_path)
    try:
        columns = {t: [c[0] for c in conn.execute("SELECT name FROM pragma_table_info(?)", [t])]
                   for t in TABLES}
    finally:
        conn.close()
    start_here = ('Start with the <a href="/-/review">review page</a> (one card per flagged '
                  f'listing, decided with a key) or the <a href="/{name}/review_queue">review '
                  "queue</a> as a table.")
    cfmon: dict[str, Any] = {"loopback": accounts is None}
    if accounts is None:
        cfmon["reviewer"] = reviewer  # who decides: the verdicts the page records carry it
    plugins: dict[str, Any] = {"datasette-render-images": {"size_limit": 100_000},
                               "cfmon": cfmon}
    metadata: dict[str, Any] = {"title": "cfmon: counterfeit review",
                                "description_html": start_here, "plugins": plugins}
    if accounts is not None:
        plugins["datasette-auth-passwords"] = {f"{who}_password_hash": hashed
                                               for who, hashed in accounts.items()}
        metadata["allow"] = {"id": "*"}  # nothing is shown before sign-in
    metadata["databases"] = {
        name: {
            "description_html": start_here,
            "tables": {table: {"description": description,
                               "columns": describe(table, columns[table])}
                       for table, (description, _) in TABLES.items()},
            "queries": QUERIES,
        },
    }
    return metadata
