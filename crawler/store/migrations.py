"""The schema, only ever changed by appending a migration here.

sqlite-utils records applied migrations in ``_sqlite_migrations`` and runs each
pending one in its own transaction. Never edit a migration that has shipped:
add the next one.
"""

from __future__ import annotations

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
            matched_at TEXT NOT NULL
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
            m.reasons AS reasons
        FROM matches m
        JOIN listings l ON l.id = m.listing_id
        WHERE m.flagged = 1
          AND NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.listing_id = m.listing_id)
        ORDER BY m.score DESC, m.listing_id
        """,
    ]
    for sql in statements:
        db.execute(sql)
