"""How captured bytes are kept: compressed, and a page as a delta against the first
capture of the same listing.

A marketplace serves the same listing page day after day with a few changes (a
rotating block, a timestamp, a price); compressed alone each capture costs its whole
size again. Zstandard with the listing's first captured page as a raw-content
dictionary (the technique of ``zstd --patch-from``) stores only what differs. The
first capture (the base) is stored on its own and is never pruned (retention keeps
first sightings), so a delta is always one step from its bytes.

Encodings (``blobs.encoding``):
- ``zlib``: databases written before this module;
- ``zstd``: Zstandard alone;
- ``zstd-delta``: Zstandard with the bytes of ``blobs.base_sha256`` as dictionary;
- ``identity``: stored as is (a JPEG does not compress);
- ``pruned``: the bytes were dropped by retention (`cfmon prune`); data is empty.
"""

from __future__ import annotations

import sqlite3
import zlib

import zstandard

LEVEL = 9  # about 3x zlib-6's ratio on pages at a similar speed; deltas are small anyway


class BlobError(ValueError):
    """Stored bytes that cannot be decoded (corrupt, or their base is gone)."""


def encode(data: bytes, base: bytes | None = None) -> tuple[str, bytes]:
    """(encoding, stored bytes): a delta against ``base`` when one is given."""
    if base:
        dictionary = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        packed = zstandard.ZstdCompressor(level=LEVEL, dict_data=dictionary).compress(data)
        return "zstd-delta", packed
    packed = zstandard.ZstdCompressor(level=LEVEL).compress(data)
    if len(packed) >= len(data):
        return "identity", data
    return "zstd", packed


def decode(encoding: str, stored: bytes, base: bytes | None = None) -> bytes:
    try:
        if encoding == "zlib":
            return zlib.decompress(stored)
        if encoding == "identity":
            return bytes(stored)
        if encoding == "zstd":
            return zstandard.ZstdDecompressor().decompressobj().decompress(stored)
        if encoding == "zstd-delta":
            if base is None:
                raise BlobError("its base (the dictionary it was compressed against) is missing")
            dictionary = zstandard.ZstdCompressionDict(
                base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            return zstandard.ZstdDecompressor(dict_data=dictionary).decompressobj().decompress(stored)
    except (zlib.error, zstandard.ZstdError) as exc:
        raise BlobError(f"stored bytes do not decompress ({exc})") from None
    raise BlobError(f"unknown encoding {encoding!r}")


def read(conn: sqlite3.Connection, sha256: str, _depth: int = 0) -> bytes | None:
    """The original bytes of a blob, or None when it is not stored (pruned, missing)."""
    row = conn.execute("SELECT encoding, data, base_sha256 FROM blobs WHERE sha256 = ?",
                       [sha256]).fetchone()
    if row is None or row[0] == "pruned":
        return None
    encoding, data, base_sha256 = row[0], row[1], row[2]
    base = None
    if encoding == "zstd-delta" and base_sha256 and _depth < 2:  # bases are never deltas
        base = read(conn, base_sha256, _depth + 1)
    return decode(encoding, data, base)
