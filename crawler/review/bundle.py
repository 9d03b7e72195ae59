"""An evidence bundle for one listing: files a lawyer or a platform can check without
trusting cfmon: ``sha256sum`` for the files, the chain segment by hand, ``openssl ts
-verify`` for the time-stamp token of its head."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from crawler.errors import BundleExistsError, UnknownListingError
from crawler.evidence import sha256_hex
from crawler.store import blobs

README = """Evidence for listing {listing_id}: {url}

Captured by cfmon, an open-source counterfeit monitor, and exported on {exported_at}.

Files
  manifest.json   the listing, its verdicts, every capture (URL, final URL, HTTP status,
                  headers, UTC capture time, SHA-256 of the bytes) with its custody-log
                  entry
  captures/       the bytes exactly as received, one file per capture, named by order
                  and by what the bytes are (.jpg, .png, .webp, .gif; .html.txt for
                  pages, saved as text so that opening one cannot run its scripts;
                  .bin for anything else), never by what the server claimed
  chain.jsonl     the custody log from this listing's first entry to the head below,
                  one entry per line
  head.txt        that head: "head <entry> <sha256>"
  head.tsr        {token_note}
  SHA256SUMS      the SHA-256 of every file above but itself

1. The files
  sha256sum -c SHA256SUMS
Every line must say OK. Each capture's hash is also in manifest.json and in its
custody-log entry, so a changed byte in any file shows.

2. The chain, from these captures to the head
  Each line of chain.jsonl: "content_sha256" is the SHA-256 of "content"; "entry_hash"
  is the SHA-256 of the text prev_hash + content_sha256; "prev_hash" is the line
  before's "entry_hash". By hand:
      printf '%s' "<content>" | sha256sum                       -> content_sha256
      printf '%s%s' "<prev_hash>" "<content_sha256>" | sha256sum -> entry_hash
  or with Python alone:
      python3 -c 'import json,hashlib as h;e=[json.loads(l) for l in open("chain.jsonl")];\
        print(all(h.sha256(x["content"].encode()).hexdigest()==x["content_sha256"] and \
        h.sha256((x["prev_hash"]+x["content_sha256"]).encode()).hexdigest()==x["entry_hash"] \
        and (i==0 or x["prev_hash"]==e[i-1]["entry_hash"]) for i,x in enumerate(e)))'
  The last line's id and entry_hash are the head in head.txt.

3. The time, from someone other than us
  openssl ts -verify -data head.txt -in head.tsr -CAfile <the TSA's CA certificate>
  "Verification: OK" means the Time-Stamp Authority saw this head, and so every
  capture and verdict before it, no later than the time the token states
  (openssl ts -reply -in head.tsr -text shows it). Without a token, the head proves
  nothing about time by itself: compare it with a copy kept elsewhere (an alert
  e-mail, a report), or run `cfmon verify --db FILE --against '<head>'`.
"""

# What bytes are, by their first bytes: the file name never comes from the server.
_MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"GIF87a", ".gif"),
          (b"GIF89a", ".gif"))


def safe_extension(data: bytes) -> str:
    """An allow-listed extension from the content itself. Pages become .html.txt: a
    double-click opens them as text, so a scraped page's scripts never run."""
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<") or b"<html" in head:
        return ".html.txt"
    return ".bin"


def write_bundle(conn: sqlite3.Connection, listing_id: int, out: Path, exported_at: str) -> Path:
    conn.row_factory = sqlite3.Row
    listing = conn.execute("SELECT * FROM listings WHERE id = ?", [listing_id]).fetchone()
    if listing is None:
        raise UnknownListingError(f"no listing with id {listing_id}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BundleExistsError(f"{out} exists and is not an empty folder; give --out a new "
                                "folder (a bundle never mixes with older files)")
    match = conn.execute("SELECT score, product, reasons FROM matches WHERE listing_id = ?",
                         [listing_id]).fetchone()
    verdicts = conn.execute("SELECT id, verdict, note, decided_by, decided_at FROM verdicts "
                            "WHERE listing_id = ? ORDER BY id", [listing_id]).fetchall()
    (out / "captures").mkdir(parents=True, exist_ok=True)
    captures, files = [], []
    rows = conn.execute(
        "SELECT c.*, l.id AS log_id, l.content, l.content_sha256, l.prev_hash, "
        "l.entry_hash, l.recorded_at FROM captures c "
        "LEFT JOIN custody_log l ON l.capture_id = c.id WHERE c.listing_id = ? "
        "AND c.sha256 IN (SELECT sha256 FROM blobs WHERE encoding != 'pruned') "
        "ORDER BY c.id",  # retention keeps every capture of a flagged listing
        [listing_id]).fetchall()
    for n, row in enumerate(rows, 1):
        data = blobs.read(conn, row["sha256"])
        name = f"captures/{n:03d}-{row['kind']}{safe_extension(data)}"
        (out / name).write_bytes(data)
        files.append(name)
        captures.append({
            "file": name, "kind": row["kind"], "url": row["url"], "final_url": row["final_url"],
            "status": row["status"], "headers": json.loads(row["headers"]),
            "captured_at": row["captured_at"], "sha256": row["sha256"],
            "custody_log": {"id": row["log_id"], "content": row["content"],
                            "content_sha256": row["content_sha256"],
                            "prev_hash": row["prev_hash"], "entry_hash": row["entry_hash"],
                            "recorded_at": row["recorded_at"]},
        })
    head = _write_chain(conn, listing_id, out)
    files += ["chain.jsonl", "head.txt"] + (["head.tsr"] if head["token"] else [])
    manifest = {
        "listing": {k: listing[k] for k in ("id", "site", "url", "title", "price", "currency",
                                            "seller", "first_seen", "last_seen")},
        "match": dict(match) if match else None,
        "verdicts": [dict(v) for v in verdicts],
        "captures": captures,
        "head": {k: head[k] for k in ("entry_id", "entry_hash", "recorded_at", "tsa_url")},
        "exported_at": exported_at,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    files.append("manifest.json")
    (out / "SHA256SUMS").write_text("".join(f"{sha256_hex((out / f).read_bytes())}  {f}\n"
                                            for f in files), encoding="utf-8")
    token_note = (f"the RFC 3161 time-stamp token of that head, from {head['tsa_url']}"
                  if head["token"] else "(absent: no Time-Stamp Authority is configured)")
    (out / "README.txt").write_text(README.format(listing_id=listing_id, url=listing["url"],
                                                  exported_at=exported_at,
                                                  token_note=token_note), encoding="utf-8")
    return out


def _write_chain(conn: sqlite3.Connection, listing_id: int, out: Path) -> sqlite3.Row | dict:
    """chain.jsonl from the listing's first entry to the latest recorded head (the
    latest time-stamped one when there is one), head.txt and head.tsr."""
    head = conn.execute("SELECT entry_id, entry_hash, recorded_at, tsa_url, token "
                        "FROM chain_heads ORDER BY token IS NULL, id DESC LIMIT 1").fetchone()
    if head is None:  # never recorded (a database from before heads): the chain's end
        last = conn.execute("SELECT id, entry_hash FROM custody_log ORDER BY id DESC LIMIT 1"
                            ).fetchone()
        head = {"entry_id": last[0] if last else 0, "entry_hash": last[1] if last else "",
                "recorded_at": None, "tsa_url": None, "token": None}
    first = conn.execute(
        "SELECT min(g.id) FROM custody_log g LEFT JOIN captures c ON c.id = g.capture_id "
        "LEFT JOIN verdicts v ON v.id = g.verdict_id "
        "WHERE c.listing_id = :id OR v.listing_id = :id", {"id": listing_id}).fetchone()[0]
    with (out / "chain.jsonl").open("w", encoding="utf-8") as chain:
        if first is not None:
            for row in conn.execute(
                    "SELECT id, kind, content, content_sha256, prev_hash, entry_hash, "
                    "recorded_at FROM custody_log WHERE id BETWEEN ? AND ? ORDER BY id",
                    [first, head["entry_id"]]):
                chain.write(json.dumps(dict(row), ensure_ascii=False) + "\n")
    (out / "head.txt").write_text(f"head {head['entry_id']} {head['entry_hash']}",
                                  encoding="ascii")
    if head["token"]:
        (out / "head.tsr").write_bytes(head["token"])
    return head
