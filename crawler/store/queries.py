"""Every read of the database outside the writer: read-only connections, one named
function per question. Reads a crawl makes before it starts are never fatal to it."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def read_rows(db_path: str | None, sql: str, params: tuple[Any, ...] = (),
              what: str = "rows") -> list[sqlite3.Row]:
    """Rows from a read-only connection; [] when there is no database yet, or when it
    cannot be read (an older schema, a locked file), with a warning naming ``what``."""
    if not db_path or not Path(db_path).is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        logger.warning("%s not loaded from %s: %s", what, db_path, exc)
        return []


def _connect_ro(db_path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _all(db_path: str, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
    conn = _connect_ro(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# -- what a crawl reads back before it starts (never fatal: see read_rows) ---------------

def hashed_images(db_path: str | None) -> list[sqlite3.Row]:
    """Images an earlier crawl hashed, for conditional requests and reuse."""
    return read_rows(db_path, "SELECT url, sha256, phash, dhash, width, height, etag, "
                              "last_modified, variants, match, match_key FROM images "
                              "WHERE phash IS NOT NULL AND sha256 IS NOT NULL",
                     what="stored image hashes")


def reference_features(db_path: str | None, version: str) -> dict[str, sqlite3.Row]:
    """Reference photos analysed by an earlier crawl, by SHA-256 (this matcher version)."""
    return {row["sha256"]: row for row in read_rows(
        db_path, "SELECT sha256, hashes, features, mirrored, tiny FROM reference_features "
                 "WHERE version = ?", (version,), what="reference photos' keypoints")}


def counterfeit_photos(db_path: str | None) -> list[sqlite3.Row]:
    """(listing id, product, pHash, dHash) of each listing whose latest verdict is
    counterfeit and whose photo was hashed."""
    return read_rows(db_path, """
        SELECT l.id, m.product, i.phash, i.dhash
        FROM verdicts v JOIN listings l ON l.id = v.listing_id
        JOIN images i ON i.url = l.image_url
        LEFT JOIN matches m ON m.listing_id = l.id
        WHERE v.id = (SELECT max(id) FROM verdicts WHERE listing_id = v.listing_id)
          AND v.verdict = 'counterfeit' AND i.phash IS NOT NULL""", what="known counterfeits")


def counterfeit_sellers(db_path: str | None) -> list[sqlite3.Row]:
    """(seller, first listing id, listings, last takedown) of each seller with a listing
    whose latest verdict is counterfeit."""
    return read_rows(db_path, """
        SELECT l.seller, min(l.id), count(*), max(l.gone_at) FROM verdicts v
        JOIN listings l ON l.id = v.listing_id
        WHERE v.id = (SELECT max(id) FROM verdicts WHERE listing_id = v.listing_id)
          AND v.verdict = 'counterfeit' AND l.seller IS NOT NULL
        GROUP BY l.seller""", what="seller history")


# -- after a crawl, and for the commands ---------------------------------------------------

def run_row(db_path: str, run_id: int | None) -> sqlite3.Row | None:
    """A run by id, or the latest run."""
    if run_id is None:
        rows = _all(db_path, "SELECT * FROM runs ORDER BY id DESC LIMIT 1")
    else:
        rows = _all(db_path, "SELECT * FROM runs WHERE id = ?", [run_id])
    return rows[0] if rows else None


def new_flags(db_path: str, run_id: int, min_score: int) -> list[sqlite3.Row]:
    """Listings first flagged during the run, scoring at least ``min_score``."""
    return _all(db_path, """
        SELECT l.id, l.site, l.url, l.title, l.price, l.currency, l.seller, m.score,
               m.product, m.reasons
        FROM matches m JOIN listings l ON l.id = m.listing_id
        WHERE m.run_id = :run AND m.flagged = 1 AND m.score >= :min
          AND m.first_flagged_at >= (SELECT started_at FROM runs WHERE id = :run)
        ORDER BY m.score DESC, l.id""", {"run": run_id, "min": min_score})


def listings_with_photos(db_path: str) -> tuple[list[sqlite3.Row], dict[int, list[sqlite3.Row]]]:
    """Every listing, and per listing every photo it was seen with (its image
    captures, in capture order) that was hashed."""
    conn = _connect_ro(db_path)
    try:
        rows = conn.execute(
            "SELECT id, site, url, title, price, currency, seller, image_url FROM listings"
        ).fetchall()
        photos: dict[int, list[sqlite3.Row]] = {}
        for photo in conn.execute(
                "SELECT DISTINCT c.listing_id, i.url, i.phash, i.dhash, i.variants, i.match, "
                "i.match_key "
                "FROM captures c JOIN images i ON i.url = c.url "
                "WHERE c.kind = 'image' AND i.phash IS NOT NULL ORDER BY c.id"):
            photos.setdefault(photo["listing_id"], []).append(photo)
    finally:
        conn.close()
    return rows, photos


def queue_head(db_path: str, limit: int) -> list[sqlite3.Row]:
    """The first rows of the review queue, as a terminal shows them."""
    return _all(db_path, "SELECT score, site, title, price, currency, seller, reasons "
                         "FROM review_queue LIMIT ?", [limit])


def evidence_counts(conn: sqlite3.Connection) -> tuple[int, int, int, int]:
    """Blobs, captures, custody-log entries, and captures whose bytes retention pruned."""
    return tuple(conn.execute(
        "SELECT (SELECT count(*) FROM blobs WHERE encoding != 'pruned'), "
        "(SELECT count(*) FROM captures), (SELECT count(*) FROM custody_log), "
        "(SELECT count(*) FROM captures c WHERE c.sha256 IN "
        " (SELECT sha256 FROM blobs WHERE encoding = 'pruned'))").fetchone())


def timestamped_heads(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Recorded heads that carry an RFC 3161 token."""
    conn.row_factory = sqlite3.Row
    return conn.execute("SELECT id, entry_id, entry_hash, token FROM chain_heads "
                        "WHERE token IS NOT NULL ORDER BY id").fetchall()


def latest_rates(db_path: str | None) -> tuple[str, dict[str, float]] | None:
    """The newest ECB reference rates fetched into the database: (date, per euro)."""
    rows = read_rows(db_path, "SELECT date, currency, per_eur FROM exchange_rates "
                              "WHERE date = (SELECT max(date) FROM exchange_rates)",
                     what="exchange rates")
    if not rows:
        return None
    return rows[0][0], {currency: rate for _, currency, rate in rows}
