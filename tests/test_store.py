"""The store: schema by migrations, upserts, the review queue, whole-batch transactions."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from crawler.cli import main
from crawler.errors import DatabaseError
from crawler.evidence import GENESIS, canonical, entry_hash, sha256_hex, verdict_content
from crawler.items import Listing
from crawler.store.migrations import migrations
from crawler.store.writer import Store
from matchers.score import MatchResult, Signal


@pytest.fixture
def store(tmp_path: Path):
    store = Store.open(tmp_path / "cfmon.db")
    yield store
    store.close()


def listing(url: str, score: int = 0, title: str = "Nordvik pack", price: str = "10") -> Listing:
    item = Listing(site="bazaar", url=url, title=title, price=Decimal(price), currency="USD",
                   seller="someone", image_url=None, sources={"title": "selector"})
    item.match = MatchResult(score=score, flagged=score >= 50, product="Nordvik Trail Backpack 30L",
                             signals=(Signal("price", "suspicion", 40,
                                                "price 10.00 USD is 8% of MSRP 129.00 USD"),))
    return item


def test_migrations_create_the_schema_once(tmp_path: Path) -> None:
    Store.open(tmp_path / "a.db").close()
    store = Store.open(tmp_path / "a.db")  # reopening applies nothing twice
    tables = set(store.db.table_names())
    assert {"listings", "images", "catalog", "matches", "runs", "verdicts"} <= tables
    assert "review_queue" in store.db.view_names()
    applied = [r["name"] for r in store.db["_sqlite_migrations"].rows]
    assert applied == ["m001_core", "m002_review_and_evidence", "m003_incremental",
                       "m004_verdicts_in_the_chain", "m005_exchange_rates", "m006_signals",
                       "m007_verdict_rules", "m008_queue_for_narrow_windows", "m009_undo",
                       "m010_retention", "m011_verified_photos", "m012_images_by_content"]
    columns = [c.name for c in store.db["review_queue"].columns]
    # Read left to right in a narrow window: what decides first, URLs last.
    assert columns == ["score", "title", "price", "currency", "price_vs_msrp", "seller",
                       "reasons", "listing_image", "reference_image", "site", "product",
                       "listing_id", "first_seen", "url"]
    store.close()


def test_a_listing_seen_again_keeps_first_seen_and_one_row(store: Store) -> None:
    run1 = store.start_run("monitor.toml", ["bazaar"])
    first = store.write_batch([listing("http://m.test/1")], run1)
    run2 = store.start_run("monitor.toml", ["bazaar"])
    second = store.write_batch([listing("http://m.test/1", price="12.5")], run2)
    assert (first.new, second.new) == (1, 0)
    rows = list(store.db["listings"].rows)
    assert len(rows) == 1
    assert rows[0]["price"] == 12.5
    assert rows[0]["first_run_id"] == run1 and rows[0]["last_run_id"] == run2


def test_review_queue_lists_flagged_without_verdict_highest_first(store: Store) -> None:
    run = store.start_run("monitor.toml", ["bazaar"])
    store.write_batch([listing("http://m.test/low", 55), listing("http://m.test/high", 90),
                       listing("http://m.test/clean", 10), listing("http://m.test/judged", 95)],
                      run)
    judged = store.db.execute("SELECT id FROM listings WHERE url = 'http://m.test/judged'"
                              ).fetchone()[0]
    store.db.execute("INSERT INTO verdicts (listing_id, verdict, decided_by, decided_at) "
                     "VALUES (?, 'genuine', 'ana', '2026-01-01')", [judged])
    queue = store.db.execute("SELECT url, score, reasons FROM review_queue").fetchall()
    assert queue == [("http://m.test/high", 90, "price 10.00 USD is 8% of MSRP 129.00 USD"),
                     ("http://m.test/low", 55, "price 10.00 USD is 8% of MSRP 129.00 USD")]


def test_a_failing_batch_writes_nothing(store: Store) -> None:
    run = store.start_run("monitor.toml", ["bazaar"])
    broken = listing("http://m.test/2")
    broken.site = None  # NOT NULL: the second listing of the batch fails
    with pytest.raises(sqlite3.IntegrityError):
        store.write_batch([listing("http://m.test/1"), broken], run)
    assert store.db.execute("SELECT count(*) FROM listings").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM matches").fetchone()[0] == 0


def test_finish_run_records_counts_and_stats(store: Store) -> None:
    run = store.start_run("monitor.toml", ["bazaar"])
    store.write_batch([listing("http://m.test/1", 80), listing("http://m.test/2", 0)], run)
    store.finish_run(run, status="finished", finish_reason="finished",
                     stats={"cfmon/pages": 3, "cfmon/sites/bazaar/errors/product_fetch": 1},
                     site_stats={"bazaar": {"pages": 3, "errors": 1}})
    row = store.db["runs"].get(run)
    assert (row["pages"], row["listings_seen"], row["listings_new"], row["flagged"],
            row["errors"]) == (3, 2, 2, 1, 1)


def test_a_file_that_is_not_sqlite_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database" * 100)
    with pytest.raises(DatabaseError, match="cannot open as a cfmon database"):
        Store.open(path)
    assert path.read_text().startswith("these are my notes")


def test_the_undo_migration_keeps_verdicts_their_chain_and_their_rules(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys=ON")
    migrations.apply(Database(conn), stop_before="m009_undo")  # a database of last week
    # written as that week's cfmon wrote it: a flagged listing, two verdicts, chained
    url, when = "http://bazaar.test/1", "2026-11-18T10:00:00+00:00"
    conn.execute("INSERT INTO listings (id, site, url, title, first_seen, last_seen) "
                 "VALUES (1, 'bazaar', ?, 'Nordvik replica', ?, ?)", [url, when, when])
    conn.execute("INSERT INTO matches (listing_id, score, flagged, reasons, signals, "
                 "matched_at, first_flagged_at) VALUES (1, 90, 1, 'x', '[]', ?, ?)", [when, when])
    prev = GENESIS
    for row in ({"id": 1, "verdict": "counterfeit", "note": "stolen photo", "decided_by": "bo",
                 "replaces_id": None},
                {"id": 2, "verdict": "genuine", "note": None, "decided_by": "ana",
                 "replaces_id": 1}):
        row = {**row, "listing_id": 1, "decided_at": when}
        conn.execute("INSERT INTO verdicts (id, listing_id, verdict, note, decided_by, "
                     "decided_at, replaces_id) VALUES (:id, :listing_id, :verdict, :note, "
                     ":decided_by, :decided_at, :replaces_id)", row)
        content = canonical(verdict_content({**row, "listing_url": url}))
        digest = sha256_hex(content.encode("utf-8"))
        conn.execute("INSERT INTO custody_log (verdict_id, kind, content, content_sha256, "
                     "prev_hash, entry_hash, recorded_at) VALUES (?, 'verdict', ?, ?, ?, ?, ?)",
                     [row["id"], content, digest, prev, entry_hash(prev, digest), when])
        prev = entry_hash(prev, digest)
    conn.close()

    store = Store.open(path)
    assert [(r["verdict"], r["decided_by"], r["replaces_id"]) for r in store.db["verdicts"].rows] \
        == [("counterfeit", "bo", None), ("genuine", "ana", 1)]
    assert list(store.db.query("SELECT verdict FROM latest_verdicts")) == [{"verdict": "genuine"}]
    assert store.db.execute("PRAGMA foreign_keys").fetchone() == (1,)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("DELETE FROM verdicts")
    with pytest.raises(sqlite3.IntegrityError, match="name it in replaces_id"):
        store.db.execute("INSERT INTO verdicts (listing_id, verdict, decided_by, decided_at) "
                         "VALUES (1, 'dismissed', 'ana', 'now')")
    undo = store.undo(2, decided_by="ana")
    assert undo.verdict == "counterfeit"  # the decision the undone one had replaced
    store.close()
    result = CliRunner().invoke(main, ["verify", "--db", str(path)])
    assert result.exit_code == 0, result.output
