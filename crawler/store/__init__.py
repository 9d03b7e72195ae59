"""The SQLite database: schema by migrations, one writer, read queries."""

from crawler.store.writer import Store

__all__ = ["Store"]
