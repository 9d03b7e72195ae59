"""`cfmon demo`: the bundled marketplaces served on loopback, crawled, and shown."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import click

from crawler.config import parse_config


def fixtures_dir() -> Path:
    """The fixtures folder: installed as cfmon_fixtures, or beside crawler/ in a checkout."""
    try:
        path = Path(str(resources.files("cfmon_fixtures")))
        if (path / "demo").is_dir():
            return path
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "fixtures"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serve(root: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``root`` over HTTP on a free port of ``host``; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="cfmon-demo-http", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def demo_config_text(base_url: str) -> tuple[str, Path]:
    path = fixtures_dir() / "demo" / "monitor.toml"
    return path.read_text(encoding="utf-8").replace("{server}", base_url), path


def run_demo(db_path: str, verbose: bool = False) -> None:
    from crawler.run import run_crawl

    for suffix in ("", "-wal", "-shm"):
        Path(db_path + suffix).unlink(missing_ok=True)
    with serve(fixtures_dir() / "sites") as base_url:
        text, path = demo_config_text(base_url)
        config = parse_config(text, path)
        click.echo(f"serving {len(config.sites)} demo marketplaces at {base_url}; crawling...")
        summary = run_crawl(config, db_path, LOG_LEVEL="INFO" if verbose else "WARNING")
    click.echo(f"\n{summary.pages} pages, {summary.listings_seen} listings, "
               f"{summary.flagged} flagged, {summary.errors} errors logged "
               "(the demo includes a broken page, a 404 image and an unreadable price)\n")
    print_review_queue(db_path)
    click.echo(f"\nOpen {db_path} in a SQLite browser and start with the review_queue view:\n"
               f"  cfmon browse --db {db_path}                 (Datasette, with thumbnails)\n"
               f"  sqlitebrowser -t review_queue {db_path}     (DB Browser for SQLite)")


def print_review_queue(db_path: str, limit: int = 50) -> None:
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(
            "SELECT score, site, title, price, currency, seller, reasons FROM review_queue "
            "LIMIT ?", [limit]).fetchall()
    finally:
        conn.close()
    if not rows:
        click.echo("review queue: empty")
        return
    click.echo(f"review queue ({len(rows)} flagged, highest score first):")
    header = f"{'score':>5}  {'site':<9} {'price':>12}  {'title':<48} reasons"
    click.echo(header)
    click.echo("-" * len(header))
    for score, site, title, price, currency, _seller, reasons in rows:
        shown_price = f"{price:.2f} {currency or ''}".strip() if price is not None else "-"
        first_reasons = "; ".join((reasons or "").splitlines()[:2])
        click.echo(f"{score:>5}  {site:<9} {shown_price:>12}  {_cut(title or '', 48):<48} "
                   f"{first_reasons}")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
