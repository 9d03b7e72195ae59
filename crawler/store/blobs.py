"""How captured bytes are kept: compressed, and a page as a delta against the first
capture of the same listing.

A marketplace serves the same listing page day after day with a few changes (a
rotating block, a timestamp, a price); compressed alone each capture costs its whole
size again. Zstandard with the listing's first captured page as a raw-content
dictionary (the technique of ``zstd --patch-from``) stores only what differs. A
listing's first page is itself a delta against the first page stored for its site
(pages of one marketplace share their template), which is stored on its own. First
sightings are never pruned (retention keeps them), so bytes are at most two deltas
from a plain blob.

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
from collections import OrderedDict

import zstandard

LEVEL = 3  # level 9 is 7x slower on a 600 KB page for 3% less; deltas are small anyway
MAX_DEPTH = 2  # later page -> listing's first page -> site's first page


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


def read(conn: sqlite3.Connection, sha256: str, bases: Bases | None = None,
         _depth: int = 0) -> bytes | None:
    """The original bytes of a blob, or None when it is not stored (pruned, missing)."""
    row = conn.execute("SELECT encoding, data, base_sha256 FROM blobs WHERE sha256 = ?",
                       [sha256]).fetchone()
    if row is None or row[0] == "pruned":
        return None
    return unpack(conn, row[0], row[1], row[2], bases, _depth)


def unpack(conn: sqlite3.Connection, encoding: str, data: bytes, base_sha256: str | None,
           bases: Bases | None = None, _depth: int = 0) -> bytes:
    """A stored blob's original bytes, its base read from ``conn`` (through ``bases``,
    when given) when it has one."""
    base = None
    if encoding == "zstd-delta" and base_sha256 and _depth < MAX_DEPTH:
        base = (bases.read(base_sha256, _depth + 1) if bases is not None
                else read(conn, base_sha256, None, _depth + 1))
    return decode(encoding, data, base)


class Bases:
    """The bytes of the delta bases read last: a site's first page is the base of every
    new listing's first page, so the writer and `cfmon verify` decompress it once, not
    once per delta. A few suffice (one per site, mostly)."""

    def __init__(self, conn: sqlite3.Connection, size: int = 8):
        self.conn = conn
        self.size = size
        self._bytes: OrderedDict[str, bytes | None] = OrderedDict()

    def read(self, sha256: str, _depth: int = 0) -> bytes | None:
        if sha256 not in self._bytes:
            self._bytes[sha256] = read(self.conn, sha256, self, _depth)
            if len(self._bytes) > self.size:
                self._bytes.popitem(last=False)
        self._bytes.move_to_end(sha256)
        return self._bytes[sha256]
