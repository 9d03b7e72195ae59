"""Reads that happen outside the writer: read-only, and never fatal to a crawl."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def read_rows(db_path: str | None, sql: str, params: tuple[Any, ...] = (),
              what: str = "rows") -> list[sqlite3.Row]:
    """Rows from a read-only connection; [] when there is no database yet, or when it
    cannot be read (an older schema, a locked file), with a warning naming ``what``."""
    if not db_path or not Path(db_path).is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        logger.warning("%s not loaded from %s: %s", what, db_path, exc)
        return []
