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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from crawler.store import blobs

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


def verdict_content(row: dict[str, Any]) -> dict[str, Any]:
    """What the custody log records of a verdict: the whole decision."""
    return {
        "verdict_id": row["id"],
        "listing_id": row["listing_id"],
        "listing_url": row["listing_url"],
        "verdict": row["verdict"],
        "note": row["note"],
        "decided_by": row["decided_by"],
        "decided_at": row["decided_at"],
        "replaces_id": row["replaces_id"],
    }


@dataclass(frozen=True)
class Problem:
    where: str  # "blobs 3f2a...", "captures 12", "custody_log 7"
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def verify(conn: sqlite3.Connection) -> Iterator[Problem]:
    """Recompute every hash, both ways: each blob against its SHA-256; each capture and
    verdict against its custody-log entry, and each entry against the record it names
    (a record deleted while its entry stayed is named too); then the chain, entry by
    entry. Streams: memory does not grow with the database."""
    conn.row_factory = sqlite3.Row
    bases = blobs.Bases(conn)
    for row in conn.execute("SELECT sha256, size, encoding, data, base_sha256 FROM blobs "
                            "WHERE encoding != 'pruned' ORDER BY rowid"):
        try:
            # a delta's base is read with a second cursor of the same connection
            data = blobs.unpack(conn, row["encoding"], row["data"], row["base_sha256"], bases)
        except blobs.BlobError as exc:
            yield Problem(f"blobs {row['sha256']}", str(exc))
            continue
        if sha256_hex(data) != row["sha256"] or len(data) != row["size"]:
            yield Problem(f"blobs {row['sha256']}",
                          f"content hashes to {sha256_hex(data)} ({len(data)} bytes)")
    # records -> log
    for row in conn.execute(
            "SELECT c.*, l.url AS listing_url, g.content AS logged, "
            "(SELECT 1 FROM blobs b WHERE b.sha256 = c.sha256 AND b.encoding != 'pruned') "
            "AS has_bytes, "
            "(SELECT p.prune_id FROM pruned_blobs p WHERE p.sha256 = c.sha256) AS pruned "
            "FROM captures c LEFT JOIN listings l ON l.id = c.listing_id "
            "LEFT JOIN custody_log g ON g.capture_id = c.id ORDER BY c.id"):
        if row["logged"] is None:
            yield Problem(f"captures {row['id']}", "has no custody log entry")
        elif row["logged"] != canonical(capture_content(row["id"], row["listing_url"], dict(row))):
            yield Problem(f"captures {row['id']}", "differs from its custody log entry")
        if row["has_bytes"] is None and row["pruned"] is None:
            yield Problem(f"captures {row['id']}", f"its bytes {row['sha256']} are missing "
                          "(not pruned by retention: deleted outside cfmon prune)")
    for row in conn.execute(
            "SELECT v.*, l.url AS listing_url, g.content AS logged FROM verdicts v "
            "LEFT JOIN listings l ON l.id = v.listing_id "
            "LEFT JOIN custody_log g ON g.verdict_id = v.id ORDER BY v.id"):
        if row["logged"] is None:
            yield Problem(f"verdicts {row['id']}", "has no custody log entry (recorded "
                          "outside cfmon, or inserted by hand)")
        elif row["logged"] != canonical(verdict_content(dict(row))):
            yield Problem(f"verdicts {row['id']}", "differs from its custody log entry")
    yield from _verify_prunes(conn)
    # log -> records
    for row in conn.execute(
            "SELECT g.id, g.kind, g.capture_id, g.verdict_id, g.prune_id FROM custody_log g "
            "LEFT JOIN captures c ON c.id = g.capture_id "
            "LEFT JOIN verdicts v ON v.id = g.verdict_id "
            "LEFT JOIN prunes p ON p.id = g.prune_id "
            "WHERE (g.kind = 'capture' AND c.id IS NULL) "
            "   OR (g.kind = 'verdict' AND v.id IS NULL) "
            "   OR (g.kind = 'prune' AND p.id IS NULL) "
            "   OR g.kind NOT IN ('capture', 'verdict', 'prune') ORDER BY g.id"):
        kind = row["kind"]
        record = {"capture": f"capture {row['capture_id']}",
                  "verdict": f"verdict {row['verdict_id']}",
                  "prune": f"prune {row['prune_id']}"}.get(kind, f"kind {kind!r}")
        yield Problem(f"custody_log {row['id']}", f"records {record}, which is missing")
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


def prune_content(row: dict[str, Any]) -> dict[str, Any]:
    """What the custody log records of a prune: who dropped how many blobs' bytes, when,
    under which retention, and a hash of the list of their SHA-256s."""
    return {key: row[key] for key in ("id", "pruned_at", "pruned_by", "keep_days", "cutoff",
                                      "blobs", "bytes", "list_sha256")}


def pruned_list_sha256(hashes: Iterable[str]) -> str:
    return sha256_hex("".join(f"{h}\n" for h in sorted(hashes)).encode("ascii"))


def _verify_prunes(conn: sqlite3.Connection) -> Iterator[Problem]:
    """Each prune against its custody entry and against the blobs it names: a blob
    "pruned" by hand (a row added to pruned_blobs, bytes deleted) breaks the list's
    hash, and a prune row added by hand has no entry in the chain."""
    for row in conn.execute(
            "SELECT p.*, g.content AS logged FROM prunes p "
            "LEFT JOIN custody_log g ON g.prune_id = p.id ORDER BY p.id"):
        where = f"prunes {row['id']}"
        if row["logged"] is None:
            yield Problem(where, "has no custody log entry (recorded outside cfmon prune)")
        elif row["logged"] != canonical(prune_content(dict(row))):
            yield Problem(where, "differs from its custody log entry")
        names = [r[0] for r in conn.execute(
            "SELECT sha256 FROM pruned_blobs WHERE prune_id = ?", [row["id"]])]
        if pruned_list_sha256(names) != row["list_sha256"] or len(names) != row["blobs"]:
            yield Problem(where, f"its list of pruned blobs changed ({len(names)} listed, "
                          f"{row['blobs']} pruned)")
    for row in conn.execute("SELECT sha256, prune_id FROM pruned_blobs WHERE prune_id NOT IN "
                            "(SELECT id FROM prunes)"):
        yield Problem(f"pruned_blobs {row['sha256']}", f"names prune {row['prune_id']}, "
                      "which is missing")
    for row in conn.execute("SELECT sha256 FROM blobs WHERE encoding = 'pruned' AND sha256 "
                            "NOT IN (SELECT sha256 FROM pruned_blobs)"):
        yield Problem(f"blobs {row['sha256']}", "marked pruned by no prune")


@dataclass(frozen=True)
class Head:
    """The chain's last entry: what a copy kept outside the database pins."""

    entry: int
    hash: str

    def __str__(self) -> str:
        return f"head {self.entry} {self.hash}"

    @classmethod
    def parse(cls, text: str) -> Head:
        parts = text.replace("head", "", 1).split() if text.startswith("head") else text.split()
        if len(parts) != 2 or not parts[0].isdigit() or len(parts[1]) != 64:
            raise ValueError(f"expected '<entry number> <sha256 hex>', got {text!r}")
        return cls(int(parts[0]), parts[1].lower())


def chain_head(conn: sqlite3.Connection) -> Head | None:
    row = conn.execute("SELECT id, entry_hash FROM custody_log ORDER BY id DESC LIMIT 1").fetchone()
    return Head(row[0], row[1]) if row else None


# Entries after an anchored head may carry earlier times than the head's own (a results
# page captured at a crawl's start is written hours later), but not by more than this.
_LATE_WRITE = timedelta(days=1)


def check_against(conn: sqlite3.Connection, head: Head) -> Iterator[Problem]:
    """Whether today's chain still holds ``head`` (seen earlier, kept elsewhere) and only
    extends it: truncation, a consistent rewrite and a back-dated append all fail here.
    (The chain's own links are checked by ``verify``.)"""
    row = conn.execute("SELECT entry_hash, content FROM custody_log WHERE id = ?",
                       [head.entry]).fetchone()
    if row is None:
        last = chain_head(conn)
        yield Problem(f"custody_log {head.entry}", "is missing: the chain ends at "
                      f"{last.entry if last else 0}, so entries were removed")
        return
    if row[0] != head.hash:
        yield Problem(f"custody_log {head.entry}", f"hashes to {row[0]}, not {head.hash}: "
                      "the chain was rewritten since that head")
        return
    anchored = _content_time(row[1])
    if anchored is None:
        return
    for entry_id, content in conn.execute("SELECT id, content FROM custody_log WHERE id > ? "
                                          "ORDER BY id", [head.entry]):
        when = _content_time(content)
        if when is not None and when < anchored - _LATE_WRITE:
            yield Problem(f"custody_log {entry_id}", f"dated {when.isoformat()}, before the "
                          f"anchored head ({anchored.isoformat()}): appended back-dated")


def _content_time(content: str) -> datetime | None:
    try:
        data = json.loads(content)
        text = data.get("captured_at") or data.get("decided_at")
        return datetime.fromisoformat(text) if text else None
    except (ValueError, TypeError, AttributeError):
        return None
