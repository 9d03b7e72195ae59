"""The SQLite database: schema by migrations (migrations.py), one writer (writer.py),
read queries (queries.py), how captured bytes are kept (blobs.py)."""
