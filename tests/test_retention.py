"""Evidence that a year fits in: pages as deltas, retention by `cfmon prune`, and
`cfmon verify` telling a capture pruned by retention from one deleted by hand."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.evidence import Capture
from crawler.items import Listing
from crawler.store import blobs
from crawler.store.writer import Store
from matchers.score import MatchResult, Signal
from tests.conftest import db_rows

START = datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
TEMPLATE = "".join(f"<div class='nav'>category {i} and its links</div>" for i in range(3000))


def page(n: int, day: int, price: str) -> bytes:
    """A listing's page as a marketplace serves it: the shared template, the listing,
    a block that rotates every day and a timestamp."""
    rotating = "".join(f"<li>deal {(day * 7 + k) % 97} at {k + day}.99</li>" for k in range(40))
    return (f"<html><body>{TEMPLATE}<h1>Listing {n}</h1><p class=price>${price}</p>"
            f"<ul>{rotating}</ul><footer>served {START + timedelta(days=day)}</footer>"
            "</body></html>").encode()


def day_of_crawls(store: Store, day: int, prices: dict[int, str], flagged: set[int]) -> None:
    when = (START + timedelta(days=day)).isoformat(timespec="milliseconds")
    run = store.start_run("monitor.toml", ["bazaar"])
    items = []
    for n, price in prices.items():
        url = f"http://bazaar.test/item/{n}"
        item = Listing(site="bazaar", url=url, title=f"Listing {n}", price=Decimal(price),
                       currency="USD", seller="someone")
        item.captures.append(Capture("page", url, url, 200, {"Content-Type": ["text/html"]},
                                     page(n, day, price), when))
        score = 90 if n in flagged else 10
        item.match = MatchResult(score=score, flagged=score >= 50, product="Nordvik pack",
                                 signals=(Signal("price", "suspicion", 40, "cheap"),) if
                                 n in flagged else ())
        items.append(item)
    store.write_batch(items, run)
    store.finish_run(run, status="finished", finish_reason="finished", stats={})


@pytest.fixture
def year(tmp_path: Path) -> Path:
    """Sixty days of crawls of three listings: 1 flagged, 2 changes price on day 20,
    3 never changes."""
    db = tmp_path / "year.db"
    store = Store.open(db)
    for day in range(60):
        day_of_crawls(store, day, {1: "19.99", 2: "49.00" if day < 20 else "45.00", 3: "80.00"},
                      flagged={1})
    store.close()
    return db


def verify(db: Path):  # noqa: ANN201
    return CliRunner().invoke(main, ["verify", "--db", str(db)])


def stored(db: Path, listing: int) -> list[tuple]:
    return db_rows(db, "SELECT b.encoding, length(b.data), b.size, b.sha256, b.base_sha256 "
                    "FROM captures c JOIN blobs b ON b.sha256 = c.sha256 "
                    "WHERE c.listing_id = ? ORDER BY c.id LIMIT 2", (listing,))


def test_a_page_seen_again_is_stored_as_a_small_delta_and_reads_back_whole(year: Path) -> None:
    site_first, _ = stored(year, 1)  # the site's first page: stored whole
    first, later = stored(year, 3)
    assert site_first[0] == "zstd"
    # a new listing shares the site's template; its next pages share its first page
    assert first[0] == "zstd-delta" and first[4] == site_first[3]
    assert later[0] == "zstd-delta" and later[4] == first[3]
    assert first[1] < site_first[1] / 5 and later[1] < site_first[1] / 5
    conn = sqlite3.connect(year)
    assert blobs.read(conn, later[3]) == page(3, 1, "80.00")
    assert blobs.read(conn, first[3]) == page(3, 0, "80.00")
    conn.close()


def prune_at(db: Path, day: int, keep_days: int = 30):  # noqa: ANN201
    store = Store.open(db)
    try:
        return store.prune(keep_days, "ana", now=START + timedelta(days=day))
    finally:
        store.close()


def test_prune_keeps_what_proves_something_and_drops_the_rest(year: Path) -> None:
    result = prune_at(year, 59)
    kept = dict(db_rows(year, "SELECT c.listing_id, count(*) FROM captures c JOIN blobs b "
                           "ON b.sha256 = c.sha256 WHERE b.encoding != 'pruned' "
                           "GROUP BY c.listing_id"))
    assert kept[1] == 60  # flagged: every capture
    # 2: first sighting, the day its price changed, and days 29-59 (day 29 at the
    # very cutoff, kept)
    assert kept[2] == 1 + 1 + 31
    assert kept[3] == 1 + 31  # never changed: first sighting and the retention window
    assert result.blobs == 2 * 60 - kept[2] - kept[3]
    assert db_rows(year, "SELECT count(*) FROM captures") == [(180,)]  # records all stay


def test_a_pruned_capture_is_reported_as_pruned_and_a_deleted_one_as_missing(year: Path) -> None:
    prune_at(year, 59)
    ok = verify(year)
    assert ok.exit_code == 0, ok.output
    assert "55 captures pruned by retention (recorded in the chain)" in ok.output
    # Someone deletes the bytes of a capture that was kept (trigger dropped first)
    sha = db_rows(year, "SELECT c.sha256 FROM captures c WHERE c.listing_id = 3 "
                     "ORDER BY c.id DESC LIMIT 1")[0][0]
    conn = sqlite3.connect(year)
    conn.execute("DROP TRIGGER blobs_no_update")
    conn.execute("UPDATE blobs SET encoding = 'pruned', data = X'' WHERE sha256 = ?", [sha])
    conn.commit()
    conn.close()
    result = verify(year)
    assert result.exit_code == 1
    assert f"blobs {sha}: marked pruned by no prune" in result.output
    assert f"its bytes {sha} are missing (not pruned by retention" in result.output
    assert "55 captures pruned" not in result.output


def test_bytes_pruned_by_hand_with_a_forged_record_are_named(year: Path) -> None:
    prune_at(year, 59)
    sha = db_rows(year, "SELECT c.sha256 FROM captures c WHERE c.listing_id = 1 "
                     "ORDER BY c.id LIMIT 1 OFFSET 5")[0][0]  # a flagged listing's capture
    conn = sqlite3.connect(year)  # the triggers stay: the editor goes through the front door
    conn.execute("INSERT INTO pruned_blobs (sha256, prune_id, size) VALUES (?, 1, 1)", [sha])
    conn.execute("UPDATE blobs SET encoding = 'pruned', data = X'' WHERE sha256 = ?", [sha])
    conn.commit()
    conn.close()
    result = verify(year)
    assert result.exit_code == 1
    assert "prunes 1: its list of pruned blobs changed (56 listed, 55 pruned)" in result.output


def test_blobs_stay_append_only_for_everyone_but_prune(year: Path) -> None:
    conn = sqlite3.connect(year)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM blobs")
    with pytest.raises(sqlite3.IntegrityError, match="only cfmon prune removes bytes"):
        conn.execute("UPDATE blobs SET encoding = 'pruned', data = X''")
    conn.close()


def test_the_prune_command_says_what_it_dropped_and_the_file_shrinks(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = Store.open(db)
    for day in range(45):
        day_of_crawls(store, day, {3: "80.00", 4: "12.00"}, flagged=set())
    store.close()
    # crawled long ago: today everything but first sightings is past the window
    before = db.stat().st_size
    result = CliRunner().invoke(main, ["prune", "--db", str(db), "--keep-days", "30",
                                       "--by", "ana"])
    assert result.exit_code == 0, result.output
    assert "pruned the bytes of 88 captured files" in result.output
    assert "prune 1, in the custody chain" in result.output
    assert f"{db}: " in result.output and " MB -> " in result.output
    assert db.stat().st_size < before
    assert db_rows(db, "SELECT pruned_by, keep_days FROM prunes") == [("ana", 30)]
    again = CliRunner().invoke(main, ["prune", "--db", str(db), "--keep-days", "30"])
    assert "nothing to prune" in again.output
    assert verify(db).exit_code == 0
