"""Trusted time for the custody chain's head: RFC 3161 time-stamp tokens.

A Time-Stamp Authority signs "this data existed at this time" (RFC 3161, "Internet
X.509 Public Key Infrastructure Time-Stamp Protocol", 2001). cfmon asks it to sign
the chain's head (``head <entry> <sha256>``) after each run; the token is stored with
the head (table chain_heads) and in evidence bundles. Anyone holding the TSA's
certificate can check it (``openssl ts -verify``), without trusting cfmon or the
database: the chain held that entry with that hash no later than the token's time.
The request and response are built and parsed by rfc3161-client.
"""

from __future__ import annotations

import urllib.request
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import rfc3161_client
from cryptography import x509

from crawler.errors import TimestampError


def head_message(entry: int, entry_hash: str) -> bytes:
    """The bytes a token signs for a head: what `openssl ts -verify -data` is given."""
    return f"head {entry} {entry_hash}".encode("ascii")


def request_token(url: str, message: bytes, timeout: float = 30) -> bytes:
    """The TSA's signed response (DER) for ``message``; TimestampError naming the TSA
    (scheme and host only: a URL may carry a secret) when it cannot be had."""
    query = rfc3161_client.TimestampRequestBuilder().data(message).nonce(nonce=True) \
        .cert_request(cert_request=True).build()
    request = urllib.request.Request(url, data=query.as_bytes(), method="POST", headers={
        "Content-Type": "application/timestamp-query", "User-Agent": "cfmon"})
    where = shown_url(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            token = response.read()
    except OSError as exc:
        raise TimestampError(f"time-stamp authority {where}: {exc}") from None
    try:
        parsed = rfc3161_client.decode_timestamp_response(token)
    except ValueError as exc:
        raise TimestampError(f"time-stamp authority {where} answered no token: {exc}") from None
    if parsed.status not in (0, 1):  # granted, granted with modifications
        raise TimestampError(f"time-stamp authority {where} refused: status {parsed.status}")
    return token


def check_token(token: bytes, message: bytes, ca_pem: bytes) -> datetime:
    """The time the TSA vouches for; TimestampError when the token does not sign
    ``message`` or is not signed by a certificate under ``ca_pem``."""
    try:
        parsed = rfc3161_client.decode_timestamp_response(token)
        root = x509.load_pem_x509_certificate(ca_pem)
        verifier = rfc3161_client.VerifierBuilder().add_root_certificate(root).build()
        verifier.verify_message(parsed, message)
    except (ValueError, rfc3161_client.VerificationError) as exc:
        raise TimestampError(f"the time-stamp token does not verify: {exc}") from None
    return parsed.tst_info.gen_time


def shown_url(url: str) -> str:
    """A URL as messages show it: scheme and host, never a path or query with a token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def read_ca(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TimestampError(f"{path}: cannot read the TSA certificate: {exc.strerror}") from None
