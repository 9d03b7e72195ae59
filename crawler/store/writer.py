"""The one place that writes the database.

Every write is a transaction: a batch of listings (each with its image and match)
commits whole or not at all, so a crawl killed mid-batch leaves no half-written
listing. A Store is used from one thread at a time (the store pipeline gives it a
thread of its own).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from crawler.errors import (
    DatabaseBusyError,
    DatabaseError,
    DatabaseWriteError,
    DiskFullError,
    NotFlaggedError,
    UnknownListingError,
    VerdictConflictError,
)
from crawler.evidence import (
    GENESIS,
    Head,
    canonical,
    capture_content,
    chain_head,
    entry_hash,
    prune_content,
    pruned_list_sha256,
    sha256_hex,
    verdict_content,
)
from crawler.review.safe import shown
from crawler.store import blobs
from crawler.store.migrations import migrations

if TYPE_CHECKING:
    from crawler.items import Listing
    from matchers.images import ImageAnalysis, ReferencePhoto


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class BatchResult:
    written: int
    new: int
    flagged: int
    # site -> {"new": n, "changed": n}
    per_site: dict[str, dict[str, int]] = field(default_factory=dict)

# Fields whose changes are kept in listing_changes.
TRACKED_FIELDS = ("title", "price", "currency", "seller")

# What a reviewer decides; UNDONE only ever replaces one of them (an undo).
DECISIONS = ("counterfeit", "genuine", "dismissed")
UNDONE = "undone"


@dataclass(frozen=True)
class PruneResult:
    prune_id: int | None  # None: nothing was old and unneeded enough
    blobs: int
    bytes: int  # original size of what was dropped
    cutoff: str


@dataclass(frozen=True)
class Decision:
    """A verdict written: its id, and the line that tells the reviewer what happened."""

    id: int
    listing_id: int
    verdict: str
    line: str


@dataclass(frozen=True)
class CatalogPhoto:
    product: str
    path: Path
    msrp: float | None
    currency: str | None
    analysis: ImageAnalysis
    reference: ReferencePhoto | None = None  # hash variants and keypoints


# Seconds a write waits for the database when another program holds its write lock
# (DB Browser for SQLite until "Write Changes", Datasette or `cfmon verdict` writing).
LOCK_WAIT = 60.0


class Store:
    """Every write is one ``BEGIN IMMEDIATE`` transaction (``_transaction``): it takes the
    write lock first, so SQLite's busy handler waits (retrying with backoff) up to
    ``lock_wait`` seconds for another program to let go. A write that still cannot be
    made raises DatabaseBusyError or DiskFullError, never passes silently: the caller
    decides what the loss means (a crawl stops and marks nothing gone)."""

    def __init__(self, db: Database, path: str, lock_wait: float = LOCK_WAIT):
        self.db = db
        self.path = path
        self.lock_wait = lock_wait
        # Blobs this Store wrote or found: a page shown for 10,000 cards is compressed
        # and written once, not once per card.
        self._blobs: set[str] = set()
        # Bytes of recent delta bases (a site's first page serves all its new listings).
        self._bases = blobs.Bases(db.conn)

    @classmethod
    def open(cls, path: str | Path, lock_wait: float = LOCK_WAIT) -> Store:
        """Open (creating if needed) and migrate the database at ``path``."""
        path = str(path)
        try:
            # isolation_level=None: no implicit transactions; each write says BEGIN IMMEDIATE.
            conn = sqlite3.connect(path, check_same_thread=False, timeout=lock_wait,
                                   isolation_level=None)
            db = Database(conn)
            # WAL lets a SQLite browser read while a crawl writes.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            migrations.apply(db)
        except sqlite3.OperationalError as exc:
            raise write_error(path, exc, lock_wait) from None
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{path}: cannot open as a cfmon database ({exc}); "
                                "give --db a new file name or an existing cfmon database"
                                ) from None
        return cls(db, path, lock_wait)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise write_error(self.path, exc, self.lock_wait) from None
        self._pending_blobs: set[str] = set()
        try:
            yield
            conn.execute("COMMIT")
            self._blobs |= self._pending_blobs
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise write_error(self.path, exc, self.lock_wait) from None
            raise

    # -- runs ------------------------------------------------------------------

    def start_run(self, config_path: str, sites: Sequence[str]) -> int:
        with self._transaction():
            cursor = self.db.execute(
                "INSERT INTO runs (started_at, status, config_path, sites) VALUES (?, ?, ?, ?)",
                [utcnow(), "running", config_path, json.dumps(list(sites))])
        return int(cursor.lastrowid)

    def finish_run(self, run_id: int, *, status: str, finish_reason: str | None,
                   stats: dict[str, Any], site_stats: dict[str, Any] | None = None) -> None:
        counts = self.db.execute(
            """SELECT
                 (SELECT count(*) FROM listings WHERE last_run_id = :run),
                 (SELECT count(*) FROM listings WHERE first_run_id = :run),
                 (SELECT count(*) FROM matches WHERE run_id = :run AND flagged = 1)""",
            {"run": run_id}).fetchone()
        errors = sum(site.get("errors", 0) for site in (site_stats or {}).values())
        pages = sum(site.get("pages", 0) for site in (site_stats or {}).values())
        with self._transaction():
            self.db.execute(
                """UPDATE runs SET finished_at = ?, status = ?, finish_reason = ?,
                       pages = ?, listings_seen = ?, listings_new = ?, flagged = ?,
                       errors = ?, stats = ?, site_stats = ?
                   WHERE id = ?""",
                [utcnow(), status, finish_reason, pages, counts[0],
                 counts[1], counts[2], errors, json.dumps(stats, default=str, sort_keys=True),
                 json.dumps(site_stats or {}, sort_keys=True), run_id])

    # -- catalog ---------------------------------------------------------------

    def sync_catalog(self, photos: Iterable[CatalogPhoto]) -> None:
        from matchers.images import FEATURES_VERSION  # OpenCV: only where photos are

        now = utcnow()
        with self._transaction():
            for photo in photos:
                phash, dhash = photo.analysis.hashes.hex()
                self.db.execute(
                    """INSERT INTO catalog (product, photo, path, msrp, currency, sha256,
                           phash, dhash, thumbnail, updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (product, photo) DO UPDATE SET
                           path = excluded.path, msrp = excluded.msrp,
                           currency = excluded.currency, sha256 = excluded.sha256,
                           phash = excluded.phash, dhash = excluded.dhash,
                           thumbnail = excluded.thumbnail, updated_at = excluded.updated_at""",
                    [photo.product, photo.path.name, str(photo.path), photo.msrp,
                     photo.currency, photo.analysis.sha256, phash, dhash,
                     photo.analysis.thumbnail, now])
                ref = photo.reference
                if ref is not None:
                    self.db.execute(
                        """INSERT OR IGNORE INTO reference_features
                               (sha256, version, hashes, features, mirrored, tiny)
                           VALUES (?, ?, ?, ?, ?, ?)""",
                        [ref.sha256, FEATURES_VERSION,
                         json.dumps([[r.kind, r.variant, *r.hashes.hex()] for r in ref.hashes]),
                         ref.features.to_bytes(), ref.mirrored.to_bytes(),
                         ref.tiny.astype("<f4").tobytes()])

    # -- listings --------------------------------------------------------------

    def write_all(self, listings: Iterable[Listing], run_id: int, batch_size: int = 100) -> None:
        """Write ``listings`` (a generator, say) in transactions of ``batch_size``: a
        bulk load (benchmarks, test databases) holds one batch in memory, not all."""
        batch: list[Listing] = []
        for listing in listings:
            batch.append(listing)
            if len(batch) == batch_size:
                self.write_batch(batch, run_id)
                batch = []
        if batch:
            self.write_batch(batch, run_id)

    def write_batch(self, listings: Sequence[Listing], run_id: int) -> BatchResult:
        """Write listings with their images and matches in one transaction."""
        new = flagged = 0
        per_site: dict[str, dict[str, int]] = {}
        now = utcnow()
        with self._transaction():
            chain = self._chain()
            for listing in listings:
                listing_id, is_new, changed = self._upsert_listing(listing, run_id, now)
                self._write_captures(listing_id, listing, run_id, chain)
                new += is_new
                counts = per_site.setdefault(listing.site, {"new": 0, "changed": 0})
                counts["new"] += is_new
                counts["changed"] += bool(changed)
                if listing.image_url and (listing.image or listing.image_error):
                    self._upsert_image(listing, listing.image_url, listing.image,
                                       listing.image_error, now)
                for url, analysis in listing.extra_images:
                    self._upsert_image(listing, url, analysis, None, now)
                if listing.match is not None:
                    self._write_match(listing_id, listing, run_id, now)
                    flagged += listing.match.flagged
        return BatchResult(len(listings), new, flagged, per_site)

    def save_rates(self, date: str, per_eur: dict[str, float], source: str) -> int:
        """The ECB's reference rates of ``date`` (units for one euro)."""
        now = utcnow()
        with self._transaction():
            for currency, rate in per_eur.items():
                self.db.execute(
                    "INSERT INTO exchange_rates (date, currency, per_eur, source, fetched_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (date, currency) DO UPDATE SET "
                    "per_eur = excluded.per_eur, source = excluded.source, "
                    "fetched_at = excluded.fetched_at", [date, currency, rate, source, now])
        return len(per_eur)

    def mark_gone(self, urls_and_reasons: Sequence[tuple[str, str]]) -> int:
        """Listings whose own page answered 404/410 are gone, as of now."""
        now, gone = utcnow(), 0
        with self._transaction():
            for url, reason in urls_and_reasons:
                gone += self.db.execute(
                    "UPDATE listings SET gone_at = ?, gone_reason = ? "
                    "WHERE url = ? AND gone_at IS NULL", [now, reason, url]).rowcount
        return gone

    def touch_seen(self, urls: Sequence[str], run_id: int) -> int:
        """Listings shown on this run's results pages whose own pages could not be read:
        still listed. Their data stays as last read; only when they were seen changes."""
        now = utcnow()
        with self._transaction():
            return sum(self.db.execute(
                "UPDATE listings SET last_seen = ?, last_run_id = ?, gone_at = NULL, "
                "gone_reason = NULL WHERE url = ?", [now, run_id, url]).rowcount for url in urls)

    def mark_missing(self, site: str, run_id: int) -> int:
        """After a complete crawl of ``site``: its live listings this run did not see
        are gone."""
        with self._transaction():
            return self.db.execute(
                "UPDATE listings SET gone_at = ?, gone_reason = ? "
                "WHERE site = ? AND gone_at IS NULL AND coalesce(last_run_id, 0) != ?",
                [utcnow(), f"not listed in run {run_id}", site, run_id]).rowcount

    def set_exit_code(self, run_id: int, code: int) -> None:
        with self._transaction():
            self.db.execute("UPDATE runs SET exit_code = ? WHERE id = ?", [code, run_id])

    def interrupt_stale_runs(self) -> int:
        """Runs still marked running belong to a crawl that was killed."""
        with self._transaction():
            return self.db.execute(
                "UPDATE runs SET status = 'interrupted', finish_reason = 'killed' "
                "WHERE status = 'running'").rowcount

    def _upsert_listing(self, listing: Listing, run_id: int,
                        now: str) -> tuple[int, bool, list[str]]:
        before = self.db.execute(
            "SELECT id, title, price, currency, seller FROM listings WHERE url = ?",
            [listing.url]).fetchone()
        row = self.db.execute(
            """INSERT INTO listings (site, url, title, price, currency, seller, brand, sku,
                   availability, image_url, found_on, sources, first_seen, last_seen,
                   first_run_id, last_run_id)
               VALUES (:site, :url, :title, :price, :currency, :seller, :brand, :sku,
                   :availability, :image_url, :found_on, :sources, :now, :now, :run, :run)
               ON CONFLICT (url) DO UPDATE SET
                   site = excluded.site, title = excluded.title, price = excluded.price,
                   currency = excluded.currency, seller = excluded.seller,
                   brand = excluded.brand, sku = excluded.sku,
                   availability = excluded.availability, image_url = excluded.image_url,
                   found_on = excluded.found_on, sources = excluded.sources,
                   last_seen = excluded.last_seen, last_run_id = excluded.last_run_id,
                   gone_at = NULL, gone_reason = NULL
               RETURNING id, first_run_id""",
            {
                "site": listing.site, "url": listing.url, "title": listing.title,
                "price": float(listing.price) if listing.price is not None else None,
                "currency": listing.currency, "seller": listing.seller,
                "brand": listing.brand, "sku": listing.sku,
                "availability": listing.availability, "image_url": listing.image_url,
                "found_on": listing.found_on,
                "sources": json.dumps(listing.sources, sort_keys=True),
                "now": now, "run": run_id,
            }).fetchone()
        listing_id = int(row[0])
        changed = []
        if before is not None:
            after = {"title": listing.title,
                     "price": float(listing.price) if listing.price is not None else None,
                     "currency": listing.currency, "seller": listing.seller}
            for name, old in zip(TRACKED_FIELDS, before[1:], strict=True):
                if old != after[name]:
                    changed.append(name)
                    self.db.execute(
                        "INSERT INTO listing_changes (listing_id, run_id, changed_at, field, "
                        "old_value, new_value) VALUES (?, ?, ?, ?, ?, ?)",
                        [listing_id, run_id, now, name, _text(old), _text(after[name])])
        return listing_id, before is None, changed

    def _write_captures(self, listing_id: int, listing: Listing, run_id: int,
                        chain: list[str]) -> None:
        for capture in listing.captures:
            if capture.sha256 not in self._blobs:
                stored = self.db.execute("SELECT 1 FROM blobs WHERE sha256 = ?",
                                         [capture.sha256]).fetchone() is not None
                if not stored and capture.body:
                    base_sha256, base = (self._delta_base(listing_id, listing.site)
                                         if capture.kind == "page" else (None, None))
                    encoding, packed = blobs.encode(capture.body, base)
                    self.db.execute(
                        "INSERT INTO blobs (sha256, size, encoding, media_type, data, "
                        "stored_at, base_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [capture.sha256, len(capture.body), encoding,
                         (capture.headers.get("Content-Type") or [None])[0],
                         packed, utcnow(), base_sha256 if base else None])
                elif not stored:
                    continue  # bytes never reached the store (their first listing was dropped)
                self._pending_blobs.add(capture.sha256)
            row = {"kind": capture.kind, "url": capture.url, "final_url": capture.final_url,
                   "status": capture.status, "headers": json.dumps(capture.headers, sort_keys=True),
                   "captured_at": capture.captured_at, "sha256": capture.sha256}
            capture_id = self.db.execute(
                """INSERT INTO captures (listing_id, run_id, kind, url, final_url, status,
                       headers, captured_at, sha256)
                   VALUES (:listing_id, :run_id, :kind, :url, :final_url, :status, :headers,
                       :captured_at, :sha256) RETURNING id""",
                {**row, "listing_id": listing_id, "run_id": run_id}).fetchone()[0]
            self._log(chain, "capture", canonical(capture_content(capture_id, listing.url, row)),
                      capture_id=capture_id)

    def _delta_base(self, listing_id: int, site: str) -> tuple[str | None, bytes | None]:
        """The dictionary a new page is compressed against (see store/blobs.py): the
        listing's first stored page, else (a first sighting) the first page stored
        whole for its site, whose template it shares."""
        row = self.db.execute(
            "SELECT c.sha256 FROM captures c JOIN blobs b ON b.sha256 = c.sha256 "
            "WHERE c.listing_id = ? AND c.kind = 'page' AND b.encoding != 'pruned' "
            "ORDER BY c.id LIMIT 1", [listing_id]).fetchone()
        if row is None:
            row = self.db.execute(
                "SELECT c.sha256 FROM listings l JOIN captures c ON c.listing_id = l.id "
                "JOIN blobs b ON b.sha256 = c.sha256 WHERE l.site = ? AND c.kind = 'page' "
                "AND b.encoding = 'zstd' ORDER BY c.id LIMIT 1", [site]).fetchone()
        if row is None:
            return None, None
        return row[0], self._bases.read(row[0])

    def _log(self, chain: list[str], kind: str, content: str, *, capture_id: int | None = None,
             verdict_id: int | None = None, prune_id: int | None = None) -> None:
        content_sha256 = sha256_hex(content.encode("utf-8"))
        entry = entry_hash(chain[0], content_sha256)
        self.db.execute(
            "INSERT INTO custody_log (capture_id, verdict_id, prune_id, kind, content, "
            "content_sha256, prev_hash, entry_hash, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [capture_id, verdict_id, prune_id, kind, content, content_sha256, chain[0], entry,
             utcnow()])
        chain[0] = entry

    def _chain(self) -> list[str]:
        """The chain's current head hash, in a one-item list that _log moves along."""
        last = self.db.execute(
            "SELECT entry_hash FROM custody_log ORDER BY id DESC LIMIT 1").fetchone()
        return [last[0] if last else GENESIS]

    def record_head(self, reason: str, head: Head | None = None, tsa_url: str | None = None,
                    token: bytes | None = None) -> Head | None:
        """Note the chain's head (after a run, after verdicts): ``head`` as it was when
        its RFC 3161 ``token`` was asked for, else the head as it is now."""
        with self._transaction():
            head = head or chain_head(self.db.conn)
            if head is not None:
                self.db.execute(
                    "INSERT INTO chain_heads (entry_id, entry_hash, recorded_at, reason, "
                    "tsa_url, token) VALUES (?, ?, ?, ?, ?, ?)",
                    [head.entry, head.hash, utcnow(), reason, tsa_url, token])
        return head

    # -- retention -------------------------------------------------------------

    def prune(self, keep_days: int, pruned_by: str, now: datetime | None = None) -> PruneResult:
        """Drop the bytes of captures that prove nothing new, older than ``keep_days``.

        Kept whatever their age: every capture of a listing ever flagged or given a
        verdict; a listing's first capture of each kind (its first sighting, and the
        base its later pages are deltas against); a page captured in a run where the
        listing's title, price, currency or seller changed; an image the first time its
        bytes were seen for the listing (a new photo). The rest, older than the cutoff,
        lose their bytes; their captures, headers and hashes stay in the chain, the
        dropped blobs are listed in ``pruned_blobs`` under one ``prunes`` row, and that
        row enters the custody chain. One transaction: all or nothing.
        """
        now = now or datetime.now(timezone.utc)
        cutoff = (now - timedelta(days=keep_days)).isoformat(timespec="milliseconds")
        pruned_at = now.isoformat(timespec="milliseconds")
        with self._transaction():
            self.db.execute("DROP TABLE IF EXISTS temp.keep")
            self.db.execute("CREATE TEMP TABLE keep (sha256 TEXT PRIMARY KEY) WITHOUT ROWID")
            self.db.execute(
                """INSERT OR IGNORE INTO temp.keep (sha256)
                   SELECT c.sha256 FROM captures c
                   WHERE c.captured_at >= :cutoff
                      OR c.listing_id IN (SELECT listing_id FROM matches
                                          WHERE flagged = 1 OR first_flagged_at IS NOT NULL
                                          UNION SELECT listing_id FROM verdicts)
                      OR c.id IN (SELECT min(id) FROM captures GROUP BY listing_id, kind)
                      OR (c.kind = 'page' AND EXISTS (
                              SELECT 1 FROM listing_changes ch
                              WHERE ch.listing_id = c.listing_id AND ch.run_id = c.run_id))
                      OR (c.kind = 'image' AND c.id IN (
                              SELECT min(id) FROM captures WHERE kind = 'image'
                              GROUP BY listing_id, sha256))""", {"cutoff": cutoff})
            # a delta's bases go only with it (they are first sightings: kept anyway)
            for _ in range(blobs.MAX_DEPTH):
                self.db.execute("""INSERT OR IGNORE INTO temp.keep (sha256)
                                   SELECT b.base_sha256 FROM blobs b
                                   WHERE b.base_sha256 IS NOT NULL
                                     AND b.sha256 IN (SELECT sha256 FROM temp.keep)""")
            doomed = self.db.execute(
                """SELECT b.sha256, b.size FROM blobs b
                   WHERE b.encoding != 'pruned'
                     AND b.sha256 IN (SELECT sha256 FROM captures)
                     AND b.sha256 NOT IN (SELECT sha256 FROM temp.keep)
                   ORDER BY b.sha256""").fetchall()
            self.db.execute("DROP TABLE temp.keep")
            if not doomed:
                return PruneResult(None, 0, 0, cutoff)
            row = {"pruned_at": pruned_at, "pruned_by": pruned_by, "keep_days": keep_days,
                   "cutoff": cutoff, "blobs": len(doomed), "bytes": sum(d[1] for d in doomed),
                   "list_sha256": pruned_list_sha256(d[0] for d in doomed)}
            prune_id = self.db.execute(
                "INSERT INTO prunes (pruned_at, pruned_by, keep_days, cutoff, blobs, bytes, "
                "list_sha256) VALUES (:pruned_at, :pruned_by, :keep_days, :cutoff, :blobs, "
                ":bytes, :list_sha256) RETURNING id", row).fetchone()[0]
            self.db.conn.executemany(
                "INSERT INTO pruned_blobs (sha256, prune_id, size) VALUES (?, ?, ?)",
                [(sha, prune_id, size) for sha, size in doomed])
            self._log(self._chain(), "prune", canonical(prune_content({**row, "id": prune_id})),
                      prune_id=prune_id)
            # the row stays (captures reference it), the bytes go
            self.db.execute("UPDATE blobs SET encoding = 'pruned', data = X'' WHERE sha256 IN "
                            "(SELECT sha256 FROM pruned_blobs WHERE prune_id = ?)", [prune_id])
            self._blobs.clear()
        return PruneResult(prune_id, len(doomed), row["bytes"], cutoff)

    def vacuum(self) -> None:
        """Give the freed pages back to the file system (outside any transaction)."""
        self.db.execute("VACUUM")

    # -- verdicts --------------------------------------------------------------

    def add_verdicts(self, listing_ids: Sequence[int], verdict: str, *, note: str | None,
                     decided_by: str, replace: bool = False, force: bool = False) -> list[str]:
        """Record ``verdict`` on every listing, all or none; returns one line per listing
        naming it (id, site, score, title), so a mistyped id shows.

        A listing's earlier, different verdict is kept as history and only superseded
        with ``replace``; a listing that was never flagged takes a verdict only with
        ``force``. Otherwise the call fails naming the listing.
        """
        lines = []
        now = utcnow()
        with self._transaction():
            chain = self._chain()
            for listing_id in listing_ids:
                shown, ever_flagged = self._listing_shown(listing_id)
                if not ever_flagged and not force:
                    raise NotFlaggedError(
                        f"{shown} was never flagged; check the id (review_queue.listing_id), "
                        "or pass --force to record a verdict on it anyway")
                last, previous = self._latest_verdict(listing_id)
                if previous and previous[1] == verdict:
                    lines.append(f"{shown}: already {verdict} ({previous[2]}, {previous[3]})")
                    continue
                if previous and not replace:
                    raise VerdictConflictError(
                        f"listing {listing_id} is already {previous[1]} ({previous[2]}, "
                        f"{previous[3]}); pass --replace to record {verdict} over it "
                        "(the earlier verdict stays in verdict_history)")
                self._insert_verdict(chain, listing_id, verdict, note, decided_by, now, last)
                was = f" (was {previous[1]})" if previous else ""
                lines.append(f"{shown}: {verdict}{was}")
        return lines

    def decide(self, listing_id: int, verdict: str, *, note: str | None, decided_by: str,
               replaces_id: int | None) -> Decision:
        """One reviewer's decision on one flagged listing (the review page's path).

        ``replaces_id`` is the decision the reviewer saw (None: none). If the listing's
        latest decision is another one (a colleague decided meanwhile), nothing is
        written and VerdictConflictError names it, so that replacing it is a choice.
        """
        if verdict not in DECISIONS:
            raise ValueError(f"verdict {verdict!r}: give one of {', '.join(DECISIONS)}")
        with self._transaction():
            shown, ever_flagged = self._listing_shown(listing_id)
            if not ever_flagged:
                raise NotFlaggedError(f"{shown} was never flagged; review it with "
                                      "`cfmon verdict --force` if you mean it")
            last, previous = self._latest_verdict(listing_id)
            if (previous[0] if previous else None) != replaces_id:
                now_is = (f"is already {previous[1]} (verdict {previous[0]}, {previous[2]}, "
                          f"{previous[3]})" if previous else "has no verdict any more")
                raise VerdictConflictError(
                    f"listing {listing_id} {now_is}; record {verdict} over it only if you "
                    "mean to replace it")
            verdict_id = self._insert_verdict(self._chain(), listing_id, verdict, note,
                                              decided_by, utcnow(), last)
        was = f" (was {previous[1]})" if previous else ""
        return Decision(verdict_id, listing_id, verdict, f"{shown}: {verdict}{was}")

    def undo(self, verdict_id: int, *, decided_by: str) -> Decision:
        """Undo a listing's latest verdict with a new verdict that replaces it: the
        decision it had replaced comes back, or ``undone`` (back in the review queue)
        if there was none. Nothing is deleted."""
        with self._transaction():
            row = self.db.execute("SELECT listing_id, verdict, replaces_id FROM verdicts "
                                  "WHERE id = ?", [verdict_id]).fetchone()
            if row is None or row[1] == UNDONE:
                raise UnknownListingError(f"no verdict {verdict_id} to undo in {self.path}")
            listing_id, undone_word, replaced = row
            last, _ = self._latest_verdict(listing_id)
            if last != verdict_id:
                raise VerdictConflictError(
                    f"verdict {verdict_id} ({undone_word}) on listing {listing_id} is no "
                    f"longer its latest (verdict {last} is); undo that one instead")
            earlier = self.db.execute("SELECT verdict, decided_by FROM verdicts WHERE id = ?",
                                      [replaced]).fetchone() if replaced else None
            restored = earlier[0] if earlier else UNDONE
            note = (f"undoes verdict {verdict_id} ({undone_word})"
                    + (f", restoring {earlier[0]} by {earlier[1]}" if restored != UNDONE else ""))
            new_id = self._insert_verdict(self._chain(), listing_id, restored, note,
                                          decided_by, utcnow(), verdict_id)
            shown, _ = self._listing_shown(listing_id)
        back = "back in the review queue" if restored == UNDONE else f"{restored} again"
        return Decision(new_id, listing_id, restored, f"{shown}: {undone_word} undone, {back}")

    def _listing_shown(self, listing_id: int) -> tuple[str, bool]:
        """How a listing is named in messages, and whether it was ever flagged."""
        listing = self.db.execute(
            "SELECT l.site, l.title, m.score, "
            "coalesce(m.flagged = 1 OR m.first_flagged_at IS NOT NULL, 0) "
            "FROM listings l LEFT JOIN matches m ON m.listing_id = l.id "
            "WHERE l.id = ?", [listing_id]).fetchone()
        if listing is None:
            raise UnknownListingError(f"no listing with id {listing_id} in {self.path}; "
                                      "the ids are in review_queue.listing_id")
        site, title, score, ever_flagged = listing
        return f"listing {listing_id} ({site}, score {score}, {_short(title)})", bool(ever_flagged)

    def _latest_verdict(self, listing_id: int) -> tuple[int | None, tuple | None]:
        """The id of the listing's last verdict row (a new one must name it), and its
        latest decision (id, verdict, decided_by, decided_at), None after an undo."""
        row = self.db.execute("SELECT id, verdict, decided_by, decided_at FROM verdicts "
                              "WHERE listing_id = ? ORDER BY id DESC LIMIT 1",
                              [listing_id]).fetchone()
        if row is None:
            return None, None
        return row[0], (None if row[1] == UNDONE else tuple(row))

    def _insert_verdict(self, chain: list[str], listing_id: int, verdict: str,
                        note: str | None, decided_by: str, now: str,
                        replaces_id: int | None) -> int:
        row = {"listing_id": listing_id, "verdict": verdict, "note": note,
               "decided_by": decided_by, "decided_at": now, "replaces_id": replaces_id}
        verdict_id = self.db.execute(
            "INSERT INTO verdicts (listing_id, verdict, note, decided_by, decided_at, "
            "replaces_id) VALUES (:listing_id, :verdict, :note, :decided_by, "
            ":decided_at, :replaces_id) RETURNING id", row).fetchone()[0]
        url = self.db.execute("SELECT url FROM listings WHERE id = ?",
                              [listing_id]).fetchone()[0]
        # The decision behind a takedown is evidence too: it enters the chain.
        self._log(chain, "verdict",
                  canonical(verdict_content({**row, "id": verdict_id, "listing_url": url})),
                  verdict_id=verdict_id)
        return verdict_id

    def _upsert_image(self, listing: Listing, url: str, analysis: ImageAnalysis | None,
                      error: str | None, now: str) -> None:
        phash, dhash = analysis.hashes.hex() if analysis else (None, None)
        headers = next((c.headers for c in listing.captures
                        if c.kind == "image" and c.url == url), {})
        self.db.execute(
            """INSERT INTO images (url, sha256, width, height, phash, dhash, thumbnail,
                   fetched_at, error, etag, last_modified, variants, match, match_key)
               VALUES (?, ?, ?, ?, ?, ?,
                       -- an analysis reused from the same bytes at another URL comes
                       -- without a thumbnail: that URL's row has it
                       coalesce(nullif(?, X''), (SELECT thumbnail FROM images
                                                 WHERE sha256 = ? AND length(thumbnail) > 0
                                                 LIMIT 1)),
                       ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (url) DO UPDATE SET
                   sha256 = excluded.sha256, width = excluded.width,
                   height = excluded.height, phash = excluded.phash, dhash = excluded.dhash,
                   thumbnail = CASE WHEN length(excluded.thumbnail) > 0
                                    THEN excluded.thumbnail ELSE images.thumbnail END,
                   fetched_at = excluded.fetched_at, error = excluded.error,
                   etag = coalesce(excluded.etag, images.etag),
                   last_modified = coalesce(excluded.last_modified, images.last_modified),
                   variants = coalesce(excluded.variants, images.variants),
                   match = CASE WHEN excluded.match_key IS NOT NULL THEN excluded.match
                                ELSE images.match END,
                   match_key = coalesce(excluded.match_key, images.match_key)""",
            [url, analysis.sha256 if analysis else None,
             analysis.width if analysis else None, analysis.height if analysis else None,
             phash, dhash, analysis.thumbnail if analysis else None,
             analysis.sha256 if analysis else None, now, error,
             (headers.get("ETag") or [None])[0], (headers.get("Last-Modified") or [None])[0],
             json.dumps({k: list(v.hex()) for k, v in analysis.variants.items()})
             if analysis and analysis.variants else None,
             analysis.match.to_json() if analysis and analysis.match else None,
             analysis.match_key if analysis else None])

    def _write_match(self, listing_id: int, listing: Listing, run_id: int, now: str) -> None:
        match = listing.match
        assert match is not None
        image = match.image_match
        verified = match.photo_match
        self.db.execute(
            """INSERT INTO matches (listing_id, run_id, score, flagged, product, reasons,
                   signals, image_distance, reference_photo, matched_at, first_flagged_at,
                   image_url, image_inliers, image_region)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ?4 THEN ?10 END, ?11, ?12, ?13)
               ON CONFLICT (listing_id) DO UPDATE SET
                   run_id = excluded.run_id, score = excluded.score,
                   flagged = excluded.flagged, product = excluded.product,
                   reasons = excluded.reasons, signals = excluded.signals,
                   image_distance = excluded.image_distance,
                   reference_photo = excluded.reference_photo,
                   matched_at = excluded.matched_at,
                   first_flagged_at = coalesce(matches.first_flagged_at,
                                               excluded.first_flagged_at),
                   image_url = excluded.image_url,
                   image_inliers = excluded.image_inliers,
                   image_region = excluded.image_region""",
            [listing_id, run_id, match.score, int(match.flagged), match.product,
             "\n".join(match.reasons),
             json.dumps([{"signal": e.signal, "kind": e.kind, "points": e.points,
                          "reason": e.reason} for e in match.signals]),
             image.distance if image else None,
             verified.photo if verified else image.reference.photo if image else None, now,
             listing.matched_image_url, verified.inliers if verified else None,
             json.dumps([round(v, 4) for v in verified.verification.region])
             if verified else None])


def write_error(path: str, exc: sqlite3.OperationalError, lock_wait: float) -> Exception:
    """The user's words for a write SQLite refused."""
    message = str(exc)
    if "locked" in message or "busy" in message:
        return DatabaseBusyError(
            f"{path} is locked by another program for {lock_wait:g} s (a crawl writing, DB "
            "Browser for SQLite with unwritten changes, a verdict being recorded); nothing "
            "was written; try again when it is done")
    if "full" in message or (("I/O" in message or "disk" in message) and _disk_full(path)):
        return DiskFullError(f"{path}: the disk is full ({message}); nothing was written; "
                             "free some space, then run again")
    return DatabaseWriteError(f"{path}: cannot write ({message}); nothing was written")


def _disk_full(path: str) -> bool:
    """SQLite reports a full disk as an I/O error when the WAL cannot grow."""
    try:
        return shutil.disk_usage(Path(path).resolve().parent).free < 1024 * 1024
    except OSError:
        return False


def _short(title: str | None, width: int = 60) -> str:
    if not title:
        return "no title"
    title = shown(title) or ""
    return repr(title if len(title) <= width else title[: width - 1] + "…")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
