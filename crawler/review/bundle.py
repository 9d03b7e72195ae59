"""An evidence bundle for one listing: files a lawyer or a platform can check with
nothing but ``sha256sum``."""

from __future__ import annotations

import json
import mimetypes
import sqlite3
from pathlib import Path

from crawler.errors import UnknownListingError
from crawler.evidence import decompress

README = """Evidence for listing {listing_id}: {url}

Captured by cfmon, an open-source counterfeit monitor, and exported on {exported_at}.

Files
  manifest.json   the listing, every capture (URL, final URL, HTTP status, headers,
                  UTC capture time, SHA-256 of the bytes) and its custody-log entries
  captures/       the bytes exactly as received, one file per capture, named by order
  SHA256SUMS      the SHA-256 of every file in captures/

Check the files
  sha256sum -c SHA256SUMS
Every line must say OK. Each hash is also written in manifest.json ("sha256") and in
the custody-log entry of its capture ("content" holds the capture record with that
hash), so a changed byte in any file shows.

Check the custody log entries
  Each entry's "content_sha256" is the SHA-256 of its "content" text, and its
  "entry_hash" is the SHA-256 of the text prev_hash + content_sha256 (both hex):
      printf '%s' "<content>" | sha256sum                       -> content_sha256
      printf '%s%s' "<prev_hash>" "<content_sha256>" | sha256sum -> entry_hash
  "prev_hash" is the entry_hash of the entry recorded before it in the monitoring
  database (all zeros for the first), so entries cannot be changed, removed or
  reordered there without breaking every later hash. `cfmon verify --db FILE` checks
  the whole database.
"""


def write_bundle(conn: sqlite3.Connection, listing_id: int, out: Path, exported_at: str) -> Path:
    conn.row_factory = sqlite3.Row
    listing = conn.execute("SELECT * FROM listings WHERE id = ?", [listing_id]).fetchone()
    if listing is None:
        raise UnknownListingError(f"no listing with id {listing_id}")
    match = conn.execute("SELECT score, product, reasons FROM matches WHERE listing_id = ?",
                         [listing_id]).fetchone()
    verdicts = conn.execute("SELECT verdict, note, decided_by, decided_at FROM verdicts "
                            "WHERE listing_id = ? ORDER BY id", [listing_id]).fetchall()
    (out / "captures").mkdir(parents=True, exist_ok=True)
    captures, sums = [], []
    rows = conn.execute(
        "SELECT c.*, b.data, l.id AS log_id, l.content, l.content_sha256, l.prev_hash, "
        "l.entry_hash, l.recorded_at FROM captures c JOIN blobs b ON b.sha256 = c.sha256 "
        "LEFT JOIN custody_log l ON l.capture_id = c.id WHERE c.listing_id = ? ORDER BY c.id",
        [listing_id]).fetchall()
    for n, row in enumerate(rows, 1):
        headers = json.loads(row["headers"])
        media = (headers.get("Content-Type") or [""])[0].split(";")[0].strip()
        ext = {"text/html": ".html"}.get(media) or mimetypes.guess_extension(media) or ".bin"
        name = f"captures/{n:03d}-{row['kind']}{ext}"
        (out / name).write_bytes(decompress(row["data"]))
        sums.append(f"{row['sha256']}  {name}")
        captures.append({
            "file": name, "kind": row["kind"], "url": row["url"], "final_url": row["final_url"],
            "status": row["status"], "headers": headers, "captured_at": row["captured_at"],
            "sha256": row["sha256"],
            "custody_log": {"id": row["log_id"], "content": row["content"],
                            "content_sha256": row["content_sha256"],
                            "prev_hash": row["prev_hash"], "entry_hash": row["entry_hash"],
                            "recorded_at": row["recorded_at"]},
        })
    manifest = {
        "listing": {k: listing[k] for k in ("id", "site", "url", "title", "price", "currency",
                                            "seller", "first_seen", "last_seen")},
        "match": dict(match) if match else None,
        "verdicts": [dict(v) for v in verdicts],
        "captures": captures,
        "exported_at": exported_at,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="utf-8")
    (out / "README.txt").write_text(README.format(listing_id=listing_id, url=listing["url"],
                                                  exported_at=exported_at), encoding="utf-8")
    return out
