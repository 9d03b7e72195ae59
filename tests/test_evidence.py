"""Evidence against a hostile database editor: every record in the chain, checked both
ways; a head kept outside the database; RFC 3161 tokens from a real local TSA
(`openssl ts -reply` behind an HTTP handler on 127.0.0.1)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from crawler.evidence import canonical, capture_content, entry_hash, sha256_hex, verdict_content
from tests.conftest import run_cfmon
from tests.mockserver import MockServer
from tests.test_cron import crawl, query, write_config
from tests.test_hostile import counterfeits


@pytest.fixture
def evidence_db(tmp_path: Path) -> tuple[Path, str]:
    """A crawled database with two verdicts; returns it and the head printed then."""
    market = counterfeits(tmp_path, 4)
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        result = crawl(tmp_path, write_config(tmp_path, server), "--quiet")
    assert result.returncode == 0, result.stderr
    verdict = run_cfmon("verdict", "--db", str(db), "1", "2", "counterfeit", "--by", "ana",
                        cwd=tmp_path)
    assert verdict.returncode == 0, verdict.stderr
    head = verdict.stdout.splitlines()[-1]
    assert head.startswith("head ")
    return db, head


def verify(db: Path, *args: str):
    return run_cfmon("verify", "--db", str(db), *args, cwd=db.parent)


def hostile(db: Path, *statements: str) -> None:
    """Someone with write access to the file: triggers dropped, rows changed."""
    conn = sqlite3.connect(db)
    for table in ("verdicts", "blobs", "captures", "custody_log", "chain_heads"):
        for action in ("update", "delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()


def rewrite_chain(db: Path) -> None:
    """Recompute every custody entry from the records as they are now: the chain is
    consistent again, whatever was changed."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    prev = "0" * 64
    for entry in conn.execute("SELECT * FROM custody_log ORDER BY id").fetchall():
        if entry["kind"] == "capture":
            row = conn.execute("SELECT c.*, l.url AS listing_url FROM captures c JOIN listings l "
                               "ON l.id = c.listing_id WHERE c.id = ?", [entry["capture_id"]]
                               ).fetchone()
            content = canonical(capture_content(row["id"], row["listing_url"], dict(row)))
        else:
            row = conn.execute("SELECT v.*, l.url AS listing_url FROM verdicts v JOIN listings l "
                               "ON l.id = v.listing_id WHERE v.id = ?", [entry["verdict_id"]]
                               ).fetchone()
            content = canonical(verdict_content(dict(row)))
        digest = sha256_hex(content.encode())
        new = entry_hash(prev, digest)
        conn.execute("UPDATE custody_log SET content = ?, content_sha256 = ?, prev_hash = ?, "
                     "entry_hash = ? WHERE id = ?", [content, digest, prev, new, entry["id"]])
        prev = new
    conn.commit()
    conn.close()


def test_an_intact_database_verifies_and_ends_with_its_head(evidence_db) -> None:
    db, head = evidence_db
    result = verify(db, "--against", head)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == head
    assert query(db, "SELECT count(*) FROM custody_log WHERE kind = 'verdict'") == [(2,)]


def test_a_deleted_capture_whose_entry_was_kept_is_named(evidence_db) -> None:
    db, _ = evidence_db
    hostile(db, "DELETE FROM captures WHERE id = 3")
    result = verify(db)
    assert result.returncode == 1
    assert "records capture 3, which is missing" in result.stderr


@pytest.mark.parametrize("edit, says", [
    ("UPDATE verdicts SET verdict = 'genuine', decided_by = 'mallory' WHERE id = 1",
     "verdicts 1: differs from its custody log entry"),
    ("DELETE FROM verdicts WHERE id = 2", "records verdict 2, which is missing"),
])
def test_a_changed_or_deleted_verdict_is_named(evidence_db, edit: str, says: str) -> None:
    db, _ = evidence_db
    hostile(db, edit)
    result = verify(db)
    assert result.returncode == 1 and says in result.stderr


def test_a_back_dated_verdict_inserted_with_the_triggers_intact_is_named(evidence_db) -> None:
    db, _ = evidence_db
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO verdicts (listing_id, verdict, decided_by, decided_at) "
                 "VALUES (3, 'genuine', 'mallory', '2020-01-01T00:00:00+00:00')")
    conn.commit()
    conn.close()
    result = verify(db)
    assert result.returncode == 1
    assert "verdicts 3: has no custody log entry" in result.stderr


def test_a_truncated_chain_fails_against_an_earlier_head(evidence_db) -> None:
    db, head = evidence_db
    hostile(db, "DELETE FROM custody_log WHERE id > (SELECT max(id) - 10 FROM custody_log)",
            "DELETE FROM verdicts",
            "DELETE FROM captures WHERE id NOT IN (SELECT capture_id FROM custody_log "
            "WHERE capture_id IS NOT NULL)")
    assert verify(db).returncode == 0  # consistent on its own: only the head tells
    result = verify(db, "--against", head)
    assert result.returncode == 1
    assert "is missing: the chain ends at" in result.stderr


def test_a_consistently_rewritten_chain_fails_against_an_earlier_head(evidence_db) -> None:
    db, head = evidence_db
    page = query(db, "SELECT sha256 FROM captures WHERE kind = 'page' AND listing_id = 1")[0][0]
    forged = b"<html><h1>Nordvik Trail Backpack 30L</h1>price 129.00</html>"
    import zlib
    hostile(db, f"INSERT INTO blobs (sha256, size, encoding, data, stored_at) VALUES "
                f"('{sha256_hex(forged)}', {len(forged)}, 'zlib', X'{zlib.compress(forged).hex()}',"
                f" '2026-01-01')",
            f"UPDATE captures SET sha256 = '{sha256_hex(forged)}' WHERE sha256 = '{page}' "
            "AND listing_id = 1")
    rewrite_chain(db)
    assert verify(db).returncode == 0
    result = verify(db, "--against", head)
    assert result.returncode == 1
    assert "the chain was rewritten since that head" in result.stderr


def test_a_back_dated_append_fails_against_an_earlier_head(evidence_db) -> None:
    db, head = evidence_db
    hostile(db, "INSERT INTO captures (listing_id, run_id, kind, url, final_url, status, "
                "headers, captured_at, sha256) SELECT listing_id, run_id, kind, url, final_url, "
                "status, headers, '2020-03-01T00:00:00.000+00:00', sha256 FROM captures "
                "WHERE id = 1",
            "INSERT INTO custody_log (capture_id, kind, content, content_sha256, prev_hash, "
            "entry_hash, recorded_at) VALUES ((SELECT max(id) FROM captures), 'capture', '', "
            "'', '', '', '2020-03-01')")
    rewrite_chain(db)
    assert verify(db).returncode == 0
    result = verify(db, "--against", head)
    assert result.returncode == 1
    assert "before the anchored head" in result.stderr and "appended back-dated" in result.stderr


# -- RFC 3161: a real local Time-Stamp Authority ---------------------------------------------

TSA_CONFIG = """[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = .
serial = ./tsaserial
crypto_device = builtin
signer_cert = ./tsa.pem
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@pytest.fixture
def tsa(tmp_path: Path):
    """`openssl ts -reply` answering RFC 3161 requests over HTTP on 127.0.0.1; yields
    (URL, CA certificate path)."""
    home = tmp_path / "tsa"
    home.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=home, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-subj", "/CN=cfmon test CA", "-days", "2", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
            "-subj", "/CN=cfmon test TSA")
    (home / "ext.cnf").write_text("extendedKeyUsage=critical,timeStamping\n"
                                  "keyUsage=critical,digitalSignature\n")
    openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "tsa.pem", "-days", "2", "-extfile", "ext.cnf")
    (home / "tsaserial").write_text("01\n")
    (home / "tsa.cnf").write_text(TSA_CONFIG)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            query_der = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                (home / "q.tsq").write_bytes(query_der)
                subprocess.run(["openssl", "ts", "-reply", "-config", "tsa.cnf", "-queryfile",
                                "q.tsq", "-out", "r.tsr"], cwd=home, check=True,
                               capture_output=True)
                body = (home / "r.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa?token=s3cret", home / "ca.pem"
    finally:
        server.shutdown()
        server.server_close()


def test_each_run_time_stamps_its_head_and_the_token_catches_a_rewrite(tmp_path: Path, tsa) -> None:
    url, ca = tsa
    market = counterfeits(tmp_path, 3)
    db = tmp_path / "c.db"
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server, extra_sites="")
        config.write_text(config.read_text() + f'\n[evidence]\ntimestamp_url = "{url}"\n')
        result = crawl(tmp_path, config, "--quiet")
    assert result.returncode == 0, result.stderr
    (entry, digest, token, tsa_url) = query(db, "SELECT entry_id, entry_hash, token, tsa_url "
                                                "FROM chain_heads")[0]
    assert f"head {entry} {digest}" in result.stdout
    assert tsa_url.startswith("http://127.0.0.1:") and "s3cret" not in tsa_url
    # A third party checks the token with openssl alone.
    (tmp_path / "token.tsr").write_bytes(token)
    (tmp_path / "head.txt").write_text(f"head {entry} {digest}")
    check = subprocess.run(["openssl", "ts", "-verify", "-data", "head.txt", "-in", "token.tsr",
                            "-CAfile", str(ca), "-untrusted", str(ca.parent / "tsa.pem")],
                           cwd=tmp_path, capture_output=True, text=True)
    assert "Verification: OK" in check.stdout, check.stderr
    ok = verify(db, "--tsa-ca", str(ca))
    assert ok.returncode == 0, ok.stderr
    assert f"time-stamped: head {entry} at " in ok.stdout
    # A bundle carries the token: a third party checks it without cfmon.
    bundle = run_cfmon("evidence", "--db", str(db), "1", "--out", "bundle", cwd=tmp_path)
    assert bundle.returncode == 0, bundle.stderr
    check = subprocess.run(["openssl", "ts", "-verify", "-data", "head.txt", "-in", "head.tsr",
                            "-CAfile", str(ca), "-untrusted", str(ca.parent / "tsa.pem")],
                           cwd=tmp_path / "bundle", capture_output=True, text=True)
    assert "Verification: OK" in check.stdout, check.stderr
    # The editor rewrites the chain consistently: the token-anchored head says no.
    hostile(db, "UPDATE captures SET status = 404 WHERE id = 1")
    rewrite_chain(db)
    assert verify(db).returncode == 0
    caught = verify(db, "--tsa-ca", str(ca))
    assert caught.returncode == 1
    assert "the chain was rewritten since that head" in caught.stderr


def test_the_alert_carries_the_head(tmp_path: Path) -> None:
    from crawler.alerts import RunAlert

    alert = RunAlert(3, "c.db", [], {"x": "down"}, "head 12 " + "a" * 64)
    assert alert.as_json()["head"] == "head 12 " + "a" * 64
    assert "evidence chain head 12 " in alert.as_text()
    assert json.dumps(alert.as_json())
