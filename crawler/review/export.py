"""`cfmon export`: a takedown list with what platform notice forms ask for."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from pathlib import PurePath
from typing import Any

from crawler.review.safe import spreadsheet_cell

FIELDS = ("listing_url", "seller", "marketplace", "listing_title", "price", "currency",
          "product_infringed", "brand_reference", "reasons", "verdict", "verdict_by",
          "verdict_at", "evidence_id", "evidence_sha256", "custody_entry_hash", "first_seen",
          "captured_at")
STATUSES = ("counterfeit", "genuine", "dismissed", "flagged", "all")


def takedown_rows(conn: sqlite3.Connection, status: str) -> list[dict[str, Any]]:
    """One row per listing: ``counterfeit``/``genuine``/``dismissed`` by latest verdict,
    ``flagged`` for flagged listings without a verdict, ``all`` for both kinds."""
    where = {
        "counterfeit": "v.verdict = 'counterfeit'",
        "genuine": "v.verdict = 'genuine'",
        "dismissed": "v.verdict = 'dismissed'",
        "flagged": "m.flagged = 1 AND v.verdict IS NULL",
        "all": "m.flagged = 1 OR v.verdict IS NOT NULL",
    }[status]
    conn.row_factory = sqlite3.Row
    rows = conn.execute(f"""
        SELECT l.url AS listing_url, l.seller, l.site AS marketplace, l.title AS listing_title,
               l.price, l.currency, m.product AS product_infringed,
               c.path AS brand_reference, m.reasons, v.verdict, v.decided_by AS verdict_by,
               v.decided_at AS verdict_at, cap.id AS evidence_id,
               cap.sha256 AS evidence_sha256, log.entry_hash AS custody_entry_hash,
               l.first_seen, cap.captured_at
        FROM listings l
        LEFT JOIN matches m ON m.listing_id = l.id
        LEFT JOIN latest_verdicts v ON v.listing_id = l.id
        LEFT JOIN catalog c ON c.product = m.product AND c.photo = m.reference_photo
        LEFT JOIN captures cap ON cap.id = (SELECT max(id) FROM captures
                                           WHERE listing_id = l.id AND kind = 'page')
        LEFT JOIN custody_log log ON log.capture_id = cap.id
        WHERE {where}
        ORDER BY m.score DESC, l.id""").fetchall()
    config = conn.execute("SELECT config_path FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    out = [{k: row[k] for k in FIELDS} for row in rows]
    for row in out:
        row["brand_reference"] = _as_in_config(row["brand_reference"], config[0] if config else None)
    return out


def _as_in_config(photo: str | None, config_path: str | None) -> str | None:
    """A catalog photo as the config names it ("catalog/trail-30.jpg"): the absolute
    path of an installed or private folder means nothing in a platform's notice form."""
    if not photo:
        return photo
    path = PurePath(photo)
    if config_path and PurePath(config_path).is_absolute() and path.is_absolute():
        return os.path.relpath(path, PurePath(config_path).parent)
    return path.name


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS)
    writer.writeheader()
    # Counterfeiters write these titles and shop names: no cell may become a formula,
    # and no bidi control may disguise one (see review/safe.py).
    writer.writerows({k: spreadsheet_cell(v) for k, v in row.items()} for row in rows)
    return buf.getvalue()
