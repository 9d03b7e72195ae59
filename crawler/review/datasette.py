"""Datasette metadata for a cfmon database: descriptions of every table and column,
thumbnails rendered as images, canned queries (the review queue first), and
writable canned queries that record verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "review_queue": ("Flagged listings awaiting a verdict, highest score first.", {
        "listing_id": "Listing id: give it to `cfmon verdict` or the record_verdict query",
        "score": "0-100; flagged at the config's matching.threshold",
        "reasons": "Every signal that fired, strongest first",
        "listing_image": "Thumbnail of the listing's photo",
        "reference_image": "Thumbnail of the catalog photo it matched",
        "first_seen": "UTC time the listing was first crawled",
    }),
    "confirmed_counterfeits": ("Listings whose latest verdict is counterfeit.", {}),
    "takedown_status": ("Confirmed counterfeits and whether the last crawl of their site "
                        "still found them.", {}),
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
    }),
    "images": ("Each listing image once, with its perceptual hashes.", {
        "sha256": "SHA-256 of the image bytes as downloaded",
        "phash": "64-bit perceptual hash (DCT), 16 hex digits",
        "dhash": "64-bit difference hash, 16 hex digits",
        "thumbnail": "JPEG thumbnail, at most 100 KB",
        "error": "Why the image could not be fetched or read",
    }),
    "catalog": ("The brand's reference photos from the config.", {
        "photo": "File name of the reference photo",
        "msrp": "Retail price of the product",
    }),
    "matches": ("The latest score of each listing.", {
        "flagged": "1 when score >= threshold",
        "reasons": "One reason per line, strongest first",
        "evidence": "JSON: each signal with its points",
        "image_distance": "pHash bits between the listing photo and the nearest reference",
        "reference_photo": "The nearest reference photo",
    }),
    "verdicts": ("Reviewers' decisions; append-only.", {
        "verdict": "counterfeit, genuine or dismissed",
        "decided_by": "Who decided (user name, or 'datasette')",
        "replaces_id": "The verdict this one superseded",
    }),
    "runs": ("Every crawl run with its statistics.", {
        "finish_reason": "Scrapy's finish reason",
        "stats": "JSON: Scrapy's stats for the run",
    }),
    "blobs": ("Captured bytes (pages, images), zlib-compressed, stored once by SHA-256; "
              "append-only.", {
        "sha256": "SHA-256 of the original bytes", "size": "Original size in bytes"}),
    "captures": ("Every response a listing was read from: URL, status, headers, UTC time, "
                 "SHA-256; append-only.", {}),
    "custody_log": ("Hash chain over the captures: entry_hash = sha256(prev_hash || "
                    "content_sha256). `cfmon verify` checks it; append-only.", {}),
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
    "record_verdict": {
        "title": "Record a verdict (counterfeit, genuine or dismissed)",
        "sql": """INSERT INTO verdicts (listing_id, verdict, note, decided_by, decided_at, replaces_id)
VALUES (:listing_id, :verdict, :note, 'datasette',
        strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'),
        (SELECT max(id) FROM verdicts WHERE listing_id = :listing_id))""",
        "write": True,
        "on_success_message": "Verdict recorded; the listing has left the review queue.",
        "on_error_message": "Not recorded: the verdict must be counterfeit, genuine or "
                            "dismissed, and the listing id must exist.",
    },
}


def browse_metadata(db_path: str | Path) -> dict[str, Any]:
    name = Path(db_path).stem
    return {
        "title": "cfmon: counterfeit review",
        "description_html": (
            f'Start with the <a href="/{name}/review_queue">review queue</a>; record a '
            f'decision with <a href="/{name}/record_verdict">record_verdict</a> or '
            "<code>cfmon verdict</code>."),
        "plugins": {"datasette-render-images": {"size_limit": 100_000}},
        "databases": {
            name: {
                "tables": {table: {"description": description, "columns": columns}
                           for table, (description, columns) in TABLES.items()},
                "queries": QUERIES,
            },
        },
    }
