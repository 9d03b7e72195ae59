"""The schema, only ever changed by appending a migration here.

sqlite-utils records applied migrations in ``_sqlite_migrations`` and runs each
pending one in its own transaction. Never edit a migration that has shipped:
add the next one.
"""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("cfmon")


@migrations()
def m001_core(db: Database) -> None:
    statements = [
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'running',   -- running, finished, failed
            finish_reason TEXT,
            config_path TEXT,
            sites TEXT,                               -- JSON list of site names
            pages INTEGER,
            listings_seen INTEGER,
            listings_new INTEGER,
            flagged INTEGER,
            errors INTEGER,
            stats TEXT                                -- JSON: Scrapy's stats for the run
        )
        """,
        """
        CREATE TABLE listings (
            id INTEGER PRIMARY KEY,
            site TEXT NOT NULL,
            url TEXT NOT NULL UNIQUE,
            title TEXT,
            price REAL,
            currency TEXT,
            seller TEXT,
            brand TEXT,
            sku TEXT,
            availability TEXT,
            image_url TEXT,
            found_on TEXT,
            sources TEXT,                             -- JSON: field -> where it was read
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            first_run_id INTEGER REFERENCES runs(id),
            last_run_id INTEGER REFERENCES runs(id)
        )
        """,
        "CREATE INDEX listings_site ON listings(site)",
        "CREATE INDEX listings_seller ON listings(seller)",
        """
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,
            sha256 TEXT,
            width INTEGER,
            height INTEGER,
            phash TEXT,                               -- 64-bit pHash, 16 hex digits
            dhash TEXT,                               -- 64-bit dHash, 16 hex digits
            thumbnail BLOB,                           -- JPEG, at most 100 KB
            fetched_at TEXT NOT NULL,
            error TEXT                                -- why it could not be hashed
        )
        """,
        """
        CREATE TABLE catalog (
            id INTEGER PRIMARY KEY,
            product TEXT NOT NULL,
            photo TEXT NOT NULL,
            path TEXT NOT NULL,
            msrp REAL,
            currency TEXT,
            sha256 TEXT NOT NULL,
            phash TEXT NOT NULL,
            dhash TEXT NOT NULL,
            thumbnail BLOB,
            updated_at TEXT NOT NULL,
            UNIQUE (product, photo)
        )
        """,
        """
        CREATE TABLE matches (
            listing_id INTEGER PRIMARY KEY REFERENCES listings(id),
            run_id INTEGER REFERENCES runs(id),
            score INTEGER NOT NULL,
            flagged INTEGER NOT NULL,
            product TEXT,
            reasons TEXT NOT NULL,                    -- one reason per line, strongest first
            evidence TEXT NOT NULL,                   -- JSON: signal, points, reason
            image_distance INTEGER,
            reference_photo TEXT,
            matched_at TEXT NOT NULL,
            image_url TEXT                            -- the listing photo that matched
        )
        """,
        "CREATE INDEX matches_flagged ON matches(flagged, score)",
        """
        CREATE TABLE verdicts (
            id INTEGER PRIMARY KEY,
            listing_id INTEGER NOT NULL REFERENCES listings(id),
            verdict TEXT NOT NULL CHECK (verdict IN ('counterfeit', 'genuine', 'dismissed')),
            note TEXT,
            decided_by TEXT,
            decided_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX verdicts_listing ON verdicts(listing_id)",
        """
        CREATE VIEW review_queue AS
        SELECT
            m.listing_id AS listing_id,
            l.site AS site,
            l.url AS url,
            l.title AS title,
            l.price AS price,
            l.currency AS currency,
            l.seller AS seller,
            m.score AS score,
            m.product AS product,
            m.reasons AS reasons,
            i.thumbnail AS listing_image,
            c.thumbnail AS reference_image,
            l.first_seen AS first_seen
        FROM matches m
        JOIN listings l ON l.id = m.listing_id
        LEFT JOIN images i ON i.url = coalesce(m.image_url, l.image_url)
        LEFT JOIN catalog c ON c.product = m.product AND c.photo = m.reference_photo
        WHERE m.flagged = 1
          AND NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.listing_id = m.listing_id)
        ORDER BY m.score DESC, m.listing_id
        """,
    ]
    for sql in statements:
        db.execute(sql)


_APPEND_ONLY = ("verdicts", "blobs", "captures", "custody_log")


def _append_only(tables: tuple[str, ...]) -> list[str]:
    """Triggers that refuse UPDATE and DELETE on ``tables``."""
    return [f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: record a new row instead'); END"
            for table in tables for action in ("UPDATE", "DELETE")]


@migrations()
def m002_review_and_evidence(db: Database) -> None:
    statements = [
        # -- evidence ------------------------------------------------------------
        """
        CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY,                  -- of the original bytes
            size INTEGER NOT NULL,                    -- original size in bytes
            encoding TEXT NOT NULL DEFAULT 'zlib',
            media_type TEXT,
            data BLOB NOT NULL,                       -- zlib-compressed bytes
            stored_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE captures (
            id INTEGER PRIMARY KEY,
            listing_id INTEGER NOT NULL REFERENCES listings(id),
            run_id INTEGER REFERENCES runs(id),
            kind TEXT NOT NULL CHECK (kind IN ('page', 'image')),
            url TEXT NOT NULL,
            final_url TEXT NOT NULL,
            status INTEGER NOT NULL,
            headers TEXT NOT NULL,                    -- JSON: header -> list of values
            captured_at TEXT NOT NULL,                -- UTC, ISO 8601
            sha256 TEXT NOT NULL REFERENCES blobs(sha256)
        )
        """,
        "CREATE INDEX captures_listing ON captures(listing_id)",
        """
        CREATE TABLE custody_log (
            id INTEGER PRIMARY KEY,
            capture_id INTEGER REFERENCES captures(id),
            kind TEXT NOT NULL,                       -- capture
            content TEXT NOT NULL,                    -- canonical JSON of the record
            content_sha256 TEXT NOT NULL,
            prev_hash TEXT NOT NULL,                  -- entry_hash of the entry before
            entry_hash TEXT NOT NULL,                 -- sha256(prev_hash || content_sha256)
            recorded_at TEXT NOT NULL
        )
        """,
        # -- review --------------------------------------------------------------
        "ALTER TABLE verdicts ADD COLUMN replaces_id INTEGER REFERENCES verdicts(id)",
        """
        CREATE VIEW latest_verdicts AS
        SELECT v.* FROM verdicts v
        WHERE v.id = (SELECT max(id) FROM verdicts w WHERE w.listing_id = v.listing_id)
        """,
        """
        CREATE VIEW confirmed_counterfeits AS
        SELECT
            l.id AS listing_id, l.site AS site, l.url AS url, l.title AS title,
            l.price AS price, l.currency AS currency, l.seller AS seller,
            m.product AS product, m.score AS score, m.reasons AS reasons,
            v.decided_at AS confirmed_at, v.decided_by AS confirmed_by, v.note AS note,
            l.first_seen AS first_seen, l.last_seen AS last_seen,
            i.thumbnail AS listing_image
        FROM latest_verdicts v
        JOIN listings l ON l.id = v.listing_id
        LEFT JOIN matches m ON m.listing_id = l.id
        LEFT JOIN images i ON i.url = coalesce(m.image_url, l.image_url)
        WHERE v.verdict = 'counterfeit'
        ORDER BY v.decided_at DESC
        """,
        """
        CREATE VIEW verdict_history AS
        SELECT v.id AS verdict_id, v.listing_id, l.site, l.title, v.verdict, v.note,
               v.decided_by, v.decided_at, v.replaces_id
        FROM verdicts v JOIN listings l ON l.id = v.listing_id
        ORDER BY v.listing_id, v.id
        """,
        # -- full-text search over titles (Datasette finds it by its content=) -----
        'CREATE VIRTUAL TABLE listings_fts USING fts5(title, content="listings", content_rowid="id")',
        "INSERT INTO listings_fts (rowid, title) SELECT id, title FROM listings",
        """
        CREATE TRIGGER listings_ai AFTER INSERT ON listings BEGIN
            INSERT INTO listings_fts (rowid, title) VALUES (new.id, new.title);
        END
        """,
        """
        CREATE TRIGGER listings_ad AFTER DELETE ON listings BEGIN
            INSERT INTO listings_fts (listings_fts, rowid, title) VALUES ('delete', old.id, old.title);
        END
        """,
        """
        CREATE TRIGGER listings_au AFTER UPDATE ON listings BEGIN
            INSERT INTO listings_fts (listings_fts, rowid, title) VALUES ('delete', old.id, old.title);
            INSERT INTO listings_fts (rowid, title) VALUES (new.id, new.title);
        END
        """,
    ]
    # Evidence and verdicts are history: a SQLite browser must not rewrite them.
    statements += _append_only(_APPEND_ONLY)
    for sql in statements:
        db.execute(sql)


@migrations()
def m003_incremental(db: Database) -> None:
    statements = [
        "ALTER TABLE listings ADD COLUMN gone_at TEXT",      # empty while the listing is live
        "ALTER TABLE listings ADD COLUMN gone_reason TEXT",  # HTTP 404, not listed in run N
        "ALTER TABLE images ADD COLUMN etag TEXT",
        "ALTER TABLE images ADD COLUMN last_modified TEXT",
        "ALTER TABLE images ADD COLUMN variants TEXT",  # JSON: variant -> [phash, dhash]
        "ALTER TABLE matches ADD COLUMN first_flagged_at TEXT",
        "ALTER TABLE runs ADD COLUMN site_stats TEXT",       # JSON: site -> pages, listings, ...
        "ALTER TABLE runs ADD COLUMN exit_code INTEGER",
        """
        CREATE TABLE listing_changes (
            id INTEGER PRIMARY KEY,
            listing_id INTEGER NOT NULL REFERENCES listings(id),
            run_id INTEGER REFERENCES runs(id),
            changed_at TEXT NOT NULL,
            field TEXT NOT NULL,                      -- title, price, currency, seller
            old_value TEXT,
            new_value TEXT
        )
        """,
        "CREATE INDEX listing_changes_listing ON listing_changes(listing_id)",
        "UPDATE matches SET first_flagged_at = matched_at WHERE flagged = 1",
        """
        CREATE VIEW takedown_status AS
        SELECT
            cc.listing_id, cc.site, cc.url, cc.seller, cc.product, cc.confirmed_at,
            m.first_flagged_at AS flagged_at, cc.last_seen, l.gone_at,
            CASE WHEN l.gone_at IS NOT NULL THEN 'taken down'
                 ELSE 'still listed' END AS status,
            round(julianday(l.gone_at) - julianday(coalesce(m.first_flagged_at,
                  cc.confirmed_at)), 1) AS days_to_takedown
        FROM confirmed_counterfeits cc
        JOIN listings l ON l.id = cc.listing_id
        LEFT JOIN matches m ON m.listing_id = cc.listing_id
        ORDER BY cc.confirmed_at
        """,
        """
        CREATE VIEW takedown_times AS
        SELECT site,
               count(*) AS confirmed,
               sum(status = 'taken down') AS taken_down,
               round(avg(days_to_takedown), 1) AS avg_days_to_takedown,
               max(days_to_takedown) AS max_days_to_takedown
        FROM takedown_status GROUP BY site ORDER BY site
        """,
    ]
    for sql in statements:
        db.execute(sql)



@migrations()
def m004_verdicts_in_the_chain(db: Database) -> None:
    """Verdicts enter the custody chain (they are the decision behind every takedown),
    and the chain's head is recorded, with its RFC 3161 token where configured."""
    from crawler.evidence import GENESIS, canonical, entry_hash, sha256_hex, verdict_content

    statements = [
        "ALTER TABLE custody_log ADD COLUMN verdict_id INTEGER REFERENCES verdicts(id)",
        "CREATE INDEX custody_log_capture ON custody_log(capture_id)",
        "CREATE INDEX custody_log_verdict ON custody_log(verdict_id)",
        """
        CREATE TABLE chain_heads (
            id INTEGER PRIMARY KEY,
            entry_id INTEGER NOT NULL,                -- custody_log.id of the head
            entry_hash TEXT NOT NULL,                 -- its entry_hash
            recorded_at TEXT NOT NULL,                -- UTC
            reason TEXT NOT NULL,                     -- "run 3", "verdicts on 12, 15"
            tsa_url TEXT,                             -- the RFC 3161 Time-Stamp Authority
            token BLOB                                -- its TimeStampResp (DER) for entry_hash
        )
        """,
    ]
    statements += _append_only(("chain_heads",))
    for sql in statements:
        db.execute(sql)
    # Verdicts recorded before this migration join the chain now, in their order.
    last = db.execute("SELECT entry_hash FROM custody_log ORDER BY id DESC LIMIT 1").fetchone()
    prev = last[0] if last else GENESIS
    cursor = db.execute("SELECT v.*, l.url AS listing_url FROM verdicts v "
                        "JOIN listings l ON l.id = v.listing_id ORDER BY v.id")
    columns = [d[0] for d in cursor.description]
    for values in cursor.fetchall():
        row = dict(zip(columns, values, strict=True))
        content = canonical(verdict_content(row))
        content_sha256 = sha256_hex(content.encode("utf-8"))
        entry = entry_hash(prev, content_sha256)
        db.execute("INSERT INTO custody_log (verdict_id, kind, content, content_sha256, "
                   "prev_hash, entry_hash, recorded_at) VALUES (?, 'verdict', ?, ?, ?, ?, "
                   "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'))",
                   [row["id"], content, content_sha256, prev, entry])
        prev = entry


@migrations()
def m005_exchange_rates(db: Database) -> None:
    db.execute("""
        CREATE TABLE exchange_rates (
            date TEXT NOT NULL,                       -- the ECB's reference date
            currency TEXT NOT NULL,                   -- ISO 4217
            per_eur REAL NOT NULL,                    -- units of it for one euro
            source TEXT NOT NULL,                     -- where they were fetched from
            fetched_at TEXT NOT NULL,
            PRIMARY KEY (date, currency)
        )""")


@migrations()
def m006_signals(db: Database) -> None:
    """Scoring signals get their own name: "evidence" is the custody record."""
    db.execute("ALTER TABLE matches RENAME COLUMN evidence TO signals")


_VERDICT_RULES = (
    """
    CREATE TRIGGER verdicts_listing_exists BEFORE INSERT ON verdicts
    WHEN NOT EXISTS (SELECT 1 FROM listings WHERE id = NEW.listing_id)
    BEGIN SELECT RAISE(ABORT, 'no listing with this id: take listing_id from the review queue'); END
    """,
    """
    CREATE TRIGGER verdicts_who BEFORE INSERT ON verdicts
    WHEN coalesce(trim(NEW.decided_by), '') = ''
    BEGIN SELECT RAISE(ABORT, 'a verdict records who decided: decided_by is empty'); END
    """,
    """
    CREATE TRIGGER verdicts_replace_explicitly BEFORE INSERT ON verdicts
    WHEN coalesce(NEW.replaces_id, -1) IS NOT coalesce(
        (SELECT max(id) FROM verdicts WHERE listing_id = NEW.listing_id), -1)
    BEGIN SELECT RAISE(ABORT, 'the listing has a later verdict: name it in replaces_id'); END
    """,
)

_UNDO_RULE = """
    CREATE TRIGGER verdicts_undo_replaces BEFORE INSERT ON verdicts
    WHEN NEW.verdict = 'undone' AND NEW.replaces_id IS NULL
    BEGIN SELECT RAISE(ABORT, 'undone undoes a verdict: name it in replaces_id'); END
    """


@migrations()
def m007_verdict_rules(db: Database) -> None:
    """The rules of a verdict, enforced by the database: the same for `cfmon verdict`,
    Datasette and any SQL tool (Datasette does not turn foreign keys on)."""
    for sql in _VERDICT_RULES:
        db.execute(sql)


@migrations()
def m008_queue_for_narrow_windows(db: Database) -> None:
    """The review queue's columns in the order a reviewer reads them in a narrow window
    (DB Browser for SQLite): score, title, price against the MSRP, seller, reasons
    first; photos next; URLs last."""
    db.execute("DROP VIEW review_queue")
    db.execute("""
        CREATE VIEW review_queue AS
        SELECT
            m.score AS score,
            l.title AS title,
            l.price AS price,
            l.currency AS currency,
            CASE WHEN l.price IS NULL THEN 'no price'
                 WHEN c.msrp IS NULL THEN 'no MSRP'
                 WHEN l.currency = c.currency
                 THEN printf('%d%% of MSRP %.2f %s', round(100.0 * l.price / c.msrp),
                             c.msrp, c.currency)
                 ELSE printf('MSRP %.2f %s', c.msrp, c.currency) END AS price_vs_msrp,
            l.seller AS seller,
            m.reasons AS reasons,
            i.thumbnail AS listing_image,
            c.thumbnail AS reference_image,
            l.site AS site,
            m.product AS product,
            m.listing_id AS listing_id,
            l.first_seen AS first_seen,
            l.url AS url
        FROM matches m
        JOIN listings l ON l.id = m.listing_id
        LEFT JOIN images i ON i.url = coalesce(m.image_url, l.image_url)
        LEFT JOIN catalog c ON c.product = m.product AND c.photo = m.reference_photo
        WHERE m.flagged = 1
          AND NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.listing_id = m.listing_id)
        ORDER BY m.score DESC, m.listing_id
    """)


@migrations(transactional=False)
def m009_undo(db: Database) -> None:
    """Undo is a verdict too: ``undone`` replaces a listing's latest verdict and puts the
    listing back in the review queue, keeping the history. SQLite cannot change a CHECK
    constraint in place, so ``verdicts`` is rebuilt the way SQLite's ALTER TABLE page
    describes (foreign keys off, new table, copy, rename, triggers again), in one
    transaction. A verdict is still one of three decisions; ``undone`` only ever replaces."""
    conn = db.conn
    shown = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'verdicts'").fetchone()[0]
    if "'undone'" in shown:  # rebuilt already; the crash came before sqlite-utils noted it
        return
    fks = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    # Both pragmas are no-ops inside a transaction: set them before BEGIN.
    conn.execute("PRAGMA foreign_keys=OFF")
    # Views name `verdicts`: without the legacy rule, the RENAME re-parses them while no
    # table of that name exists and fails.
    conn.execute("PRAGMA legacy_alter_table=ON")
    try:
        conn.execute("BEGIN IMMEDIATE")
        for sql in (
            """
            CREATE TABLE verdicts_new (
                id INTEGER PRIMARY KEY,
                listing_id INTEGER NOT NULL REFERENCES listings(id),
                verdict TEXT NOT NULL
                    CHECK (verdict IN ('counterfeit', 'genuine', 'dismissed', 'undone')),
                note TEXT,
                decided_by TEXT,
                decided_at TEXT NOT NULL,
                replaces_id INTEGER REFERENCES verdicts(id)
            )
            """,
            "INSERT INTO verdicts_new (id, listing_id, verdict, note, decided_by, decided_at, "
            "replaces_id) SELECT id, listing_id, verdict, note, decided_by, decided_at, "
            "replaces_id FROM verdicts",
            "DROP TABLE verdicts",
            "ALTER TABLE verdicts_new RENAME TO verdicts",
            "CREATE INDEX verdicts_listing ON verdicts(listing_id)",
            *_append_only(("verdicts",)),
            *_VERDICT_RULES,
            _UNDO_RULE,
            "DROP VIEW latest_verdicts",
            # A listing whose latest verdict is `undone` has no decision.
            """
            CREATE VIEW latest_verdicts AS
            SELECT v.* FROM verdicts v
            WHERE v.id = (SELECT max(id) FROM verdicts w WHERE w.listing_id = v.listing_id)
              AND v.verdict != 'undone'
            """,
            "DROP VIEW review_queue",
            # m008's view, restated (a shipped migration is never edited, nor made to
            # depend on code that may change): only its last condition differs.
            """
            CREATE VIEW review_queue AS
            SELECT
                m.score AS score,
                l.title AS title,
                l.price AS price,
                l.currency AS currency,
                CASE WHEN l.price IS NULL THEN 'no price'
                     WHEN c.msrp IS NULL THEN 'no MSRP'
                     WHEN l.currency = c.currency
                     THEN printf('%d%% of MSRP %.2f %s', round(100.0 * l.price / c.msrp),
                                 c.msrp, c.currency)
                     ELSE printf('MSRP %.2f %s', c.msrp, c.currency) END AS price_vs_msrp,
                l.seller AS seller,
                m.reasons AS reasons,
                i.thumbnail AS listing_image,
                c.thumbnail AS reference_image,
                l.site AS site,
                m.product AS product,
                m.listing_id AS listing_id,
                l.first_seen AS first_seen,
                l.url AS url
            FROM matches m
            JOIN listings l ON l.id = m.listing_id
            LEFT JOIN images i ON i.url = coalesce(m.image_url, l.image_url)
            LEFT JOIN catalog c ON c.product = m.product AND c.photo = m.reference_photo
            WHERE m.flagged = 1
              AND NOT EXISTS (SELECT 1 FROM latest_verdicts v WHERE v.listing_id = m.listing_id)
            ORDER BY m.score DESC, m.listing_id
            """,
        ):
            conn.execute(sql)
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise sqlite3.IntegrityError(f"m009: foreign keys broken by the rebuild: {broken[:3]}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("PRAGMA legacy_alter_table=OFF")
        conn.execute(f"PRAGMA foreign_keys={'ON' if fks else 'OFF'}")


@migrations()
def m010_retention(db: Database) -> None:
    """Evidence that a year fits in: pages stored as Zstandard deltas against the
    listing's first capture (``base_sha256``), and retention: `cfmon prune` drops the
    bytes of captures that prove nothing new (the blob row stays, its encoding becomes
    ``pruned`` and its data empty, so captures keep their foreign key), recording each
    in ``pruned_blobs`` under a ``prunes`` row that enters the custody chain: `cfmon
    verify` tells a capture pruned by retention from one whose bytes were deleted by
    hand."""
    statements = [
        "ALTER TABLE blobs ADD COLUMN base_sha256 TEXT",  # the dictionary of a zstd-delta
        "CREATE INDEX blobs_base ON blobs(base_sha256)",
        """
        CREATE TABLE prunes (
            id INTEGER PRIMARY KEY,
            pruned_at TEXT NOT NULL,
            pruned_by TEXT NOT NULL,
            keep_days INTEGER NOT NULL,
            cutoff TEXT NOT NULL,                     -- captures older than this could go
            blobs INTEGER NOT NULL,
            bytes INTEGER NOT NULL,                   -- original size of what was dropped
            list_sha256 TEXT NOT NULL                 -- sha256 of the sorted hashes, one a line
        )
        """,
        """
        CREATE TABLE pruned_blobs (
            sha256 TEXT PRIMARY KEY,
            prune_id INTEGER NOT NULL REFERENCES prunes(id),
            size INTEGER NOT NULL
        )
        """,
        "CREATE INDEX pruned_blobs_prune ON pruned_blobs(prune_id)",
        "ALTER TABLE custody_log ADD COLUMN prune_id INTEGER REFERENCES prunes(id)",
        "CREATE INDEX custody_log_prune ON custody_log(prune_id)",
        "DROP TRIGGER blobs_no_update",
        """
        CREATE TRIGGER blobs_no_update BEFORE UPDATE ON blobs
        WHEN NOT (NEW.encoding = 'pruned' AND NEW.data = X'' AND NEW.sha256 = OLD.sha256
                  AND NEW.size = OLD.size
                  AND EXISTS (SELECT 1 FROM pruned_blobs p WHERE p.sha256 = OLD.sha256))
        BEGIN SELECT RAISE(ABORT, 'blobs is append-only: only cfmon prune removes bytes'); END
        """,
        *_append_only(("prunes", "pruned_blobs")),
    ]
    for sql in statements:
        db.execute(sql)


@migrations()
def m011_verified_photos(db: Database) -> None:
    """Photo matches verified by geometry (matchers.geometry): each listing photo's
    verified match is kept with the image (``match``, JSON) under the catalog it was
    checked against (``match_key``: a new reference photo or matcher makes the next
    crawl fetch and check the photo again); a flag's match records how many keypoints
    agreed and where in the listing photo the reference was found; reference photos'
    keypoints are computed once per photo (by its SHA-256) in ``reference_features``."""
    statements = [
        "ALTER TABLE images ADD COLUMN match TEXT",
        "ALTER TABLE images ADD COLUMN match_key TEXT",
        "ALTER TABLE matches ADD COLUMN image_inliers INTEGER",
        "ALTER TABLE matches ADD COLUMN image_region TEXT",  # JSON [x0, y0, x1, y1], 0-1
        """
        CREATE TABLE reference_features (
            sha256 TEXT NOT NULL,
            version TEXT NOT NULL,                    -- matchers.images.FEATURES_VERSION
            hashes TEXT NOT NULL,                     -- JSON: [kind, variant, phash, dhash]
            features BLOB NOT NULL,
            mirrored BLOB NOT NULL,
            tiny BLOB NOT NULL,                       -- float32 [2, 432]: as is, mirrored
            PRIMARY KEY (sha256, version)
        )
        """,
    ]
    for sql in statements:
        db.execute(sql)


@migrations()
def m012_images_by_content(db: Database) -> None:
    """Images by SHA-256: a photo whose bytes were analysed at another URL is stored
    with that analysis and takes its thumbnail from the row that has one."""
    db.execute("CREATE INDEX images_sha256 ON images(sha256)")
