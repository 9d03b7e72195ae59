"""Evidence that holds up: content-addressed captures and a hash-chained custody log.

Every page and image a listing was read from is stored once, compressed, under the
SHA-256 of its bytes (table ``blobs``). Each capture (URL, final URL, HTTP status,
headers, UTC time, SHA-256) is written to ``captures`` and entered in
``custody_log``, where each entry's hash covers the previous entry's hash and the
SHA-256 of its own content: changing any byte of a stored page, image, capture or
log entry breaks a hash that ``verify`` recomputes (the construction of a hash
chain, as in Haber & Stornetta, "How to time-stamp a digital document", 1991).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

GENESIS = "0" * 64  # prev_hash of the first entry


@dataclass
class Capture:
    """One HTTP response kept as evidence."""

    kind: str  # "page" or "image"
    url: str
    final_url: str
    status: int
    headers: dict[str, list[str]]
    body: bytes = field(repr=False)
    captured_at: str
    sha256: str = ""

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = sha256_hex(self.body)


def capture_response(response: Any, kind: str = "page") -> Capture:
    """A Scrapy response as evidence: bytes as received, with status, headers and time."""
    request_url = response.request.url if response.request else response.url
    headers = {k.decode("latin-1"): [v.decode("latin-1") for v in vs]
               for k, vs in response.headers.items()}
    return Capture(kind=kind, url=request_url, final_url=response.url, status=response.status,
                   headers=headers, body=response.body,
                   captured_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(content: dict[str, Any]) -> str:
    """The one JSON spelling of ``content`` that is hashed (sorted keys, no spaces)."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, content_sha256: str) -> str:
    return sha256_hex(f"{prev_hash}{content_sha256}".encode("ascii"))


def compress(data: bytes) -> bytes:
    return zlib.compress(data, 6)


def decompress(data: bytes) -> bytes:
    return zlib.decompress(data)


def capture_content(capture_id: int, listing_url: str, row: dict[str, Any]) -> dict[str, Any]:
    """What the custody log records of a capture: everything but the bytes, which the
    SHA-256 stands for."""
    return {
        "capture_id": capture_id,
        "listing_url": listing_url,
        "kind": row["kind"],
        "url": row["url"],
        "final_url": row["final_url"],
        "status": row["status"],
        "headers": json.loads(row["headers"]) if isinstance(row["headers"], str) else row["headers"],
        "captured_at": row["captured_at"],
        "sha256": row["sha256"],
    }


@dataclass(frozen=True)
class Problem:
    where: str  # "blobs 3f2a...", "captures 12", "custody_log 7"
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def verify(conn: sqlite3.Connection) -> Iterator[Problem]:
    """Recompute every hash; yield each record whose content or chain does not match,
    in the order blobs, captures, custody log."""
    conn.row_factory = sqlite3.Row
    for row in conn.execute("SELECT sha256, size, data FROM blobs ORDER BY rowid"):
        try:
            data = decompress(row["data"])
        except zlib.error:
            yield Problem(f"blobs {row['sha256']}", "stored bytes do not decompress")
            continue
        if sha256_hex(data) != row["sha256"] or len(data) != row["size"]:
            yield Problem(f"blobs {row['sha256']}",
                          f"content hashes to {sha256_hex(data)} ({len(data)} bytes)")
    logged = {}
    for row in conn.execute("SELECT id, capture_id, content FROM custody_log "
                            "WHERE capture_id IS NOT NULL"):
        logged[row["capture_id"]] = row["content"]
    for row in conn.execute(
            "SELECT c.*, l.url AS listing_url FROM captures c "
            "LEFT JOIN listings l ON l.id = c.listing_id ORDER BY c.id"):
        content = canonical(capture_content(row["id"], row["listing_url"], dict(row)))
        if row["id"] not in logged:
            yield Problem(f"captures {row['id']}", "has no custody log entry")
        elif logged[row["id"]] != content:
            yield Problem(f"captures {row['id']}", "differs from its custody log entry")
        if conn.execute("SELECT 1 FROM blobs WHERE sha256 = ?", [row["sha256"]]).fetchone() is None:
            yield Problem(f"captures {row['id']}", f"its bytes {row['sha256']} are missing")
    prev = GENESIS
    for row in conn.execute("SELECT id, content, content_sha256, prev_hash, entry_hash "
                            "FROM custody_log ORDER BY id"):
        where = f"custody_log {row['id']}"
        if sha256_hex(row["content"].encode("utf-8")) != row["content_sha256"]:
            yield Problem(where, "content does not match its content_sha256")
        if row["prev_hash"] != prev:
            yield Problem(where, "prev_hash does not match the previous entry's hash")
        if entry_hash(row["prev_hash"], row["content_sha256"]) != row["entry_hash"]:
            yield Problem(where, "entry_hash does not match prev_hash + content_sha256")
        prev = row["entry_hash"]
