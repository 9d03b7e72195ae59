"""The `cfmon` command: one function per subcommand; each docstring is its --help."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import click

from crawler import __version__
from crawler.config import Site, load_config
from crawler.errors import CfmonError, PageFileError


class _Group(click.Group):
    """Prints cfmon's own errors as a message and their exit code, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CfmonError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="cfmon")
def main() -> None:
    """cfmon: find counterfeits of your products on marketplaces.

    Crawl the marketplaces named in a config file, match every listing against
    your catalog, and review the flagged ones in a SQLite browser.
    """


def _new_or_existing_db(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A database path whose folder exists: a usage error (exit 2) otherwise, said in one
    line, before any lock file or crawl."""
    from crawler.errors import DatabaseError

    if value is None:
        return value
    folder = Path(value).resolve().parent
    if not folder.is_dir():
        raise DatabaseError(f"--db {value}: folder {folder} does not exist; create it or "
                            "choose another path")
    return value


config_option = click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False),
    help="The monitor config file (TOML).")
db_option = click.option(
    "--db", "db_path", required=True, type=click.Path(dir_okay=False),
    callback=_new_or_existing_db, help="The SQLite database to write (created if missing).")


@main.command("check-config")
@click.argument("config_path", type=click.Path(dir_okay=False))
def check_config(config_path: str) -> None:
    """Validate a config file and name every problem in it.

    Exits 0 when the file is valid, 2 when it is not.

    Example:

        cfmon check-config monitor.toml
    """
    from crawler.catalog import catalog_photos

    config = load_config(config_path)
    catalog_photos(config.products, str(config.path))
    photos = sum(len(p.images) for p in config.products)
    click.echo(f"{config_path}: ok: brand {config.brand.name!r}, {len(config.products)} "
               f"products ({photos} photos), {len(config.sites)} sites: "
               + ", ".join(s.name for s in config.sites))


@main.command()
@config_option
@db_option
@click.option("--site", "sites", multiple=True, help="Crawl only this site (repeatable).")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@click.option("--log-file", type=click.Path(dir_okay=False),
              help="Write the crawl log to this file instead of the terminal.")
@click.option("--quiet", is_flag=True, help="Print only the summary (for cron).")
def crawl(config_path: str, db_path: str, sites: tuple[str, ...], log_level: str,
          log_file: str | None, quiet: bool) -> None:
    """Crawl the configured marketplaces into the database and flag suspects.

    The config is validated before anything is fetched. On a terminal a live table
    shows progress per site; Ctrl-C stops within seconds, keeping what was read
    (twice: at once). Exit codes: 0 ok; 1 the crawl ran but a site failed (no
    listings, no readable product page, no title, no readable image: the message
    says which) or it was stopped early; 2 bad config or usage; 3 another crawl
    holds the database. Flagged listings land in the review_queue view.

    Example:

        cfmon crawl --config monitor.toml --db cfmon.db --site shopmart --quiet
    """
    from crawler.errors import SiteFailedError
    from crawler.lock import DatabaseLock
    from crawler.run import run_crawl
    from crawler.stats import MONITORS_FAILED, ErrorCount
    from crawler.store.writer import LOCK_WAIT, Store

    config = load_config(config_path)
    for name in sites:
        config.site(name)
    logging_settings: dict[str, object] = {"LOG_LEVEL": log_level}
    if log_file:
        logging_settings["LOG_FILE"] = log_file
    elif quiet:
        logging_settings["LOG_ENABLED"] = False
    elif sys.stderr.isatty():
        # A person watches: a live table of progress, and only the log lines that
        # need them (unless they asked for a level).
        logging_settings["CFMON_PROGRESS"] = True
        source = click.get_current_context().get_parameter_source("log_level")
        if source is click.core.ParameterSource.DEFAULT:
            logging_settings["LOG_LEVEL"] = "WARNING"
    lock_wait = config.crawl.database_wait or LOCK_WAIT
    with DatabaseLock(db_path, command=" ".join(["cfmon", *sys.argv[1:]])):
        store = Store.open(db_path, lock_wait)
        interrupted = store.interrupt_stale_runs()
        store.close()
        if interrupted and not quiet:
            click.echo(f"{interrupted} earlier run(s) had been killed; marked interrupted")
        summary = run_crawl(config, db_path, list(sites) or None, **logging_settings)
        failed = summary.failed_sites()
        if summary.finish_reason != "finished":
            why = {"shutdown": "by Ctrl-C",
                   "closespider_timeout": "at its time budget ([crawl] max_minutes)",
                   }.get(summary.finish_reason or "", f"({summary.finish_reason})")
            failed.setdefault("(crawl)", f"early {why}: listings read so far are stored, "
                                         "nothing was marked gone")
        store = Store.open(db_path, lock_wait)
        try:
            store.set_exit_code(summary.run_id, 1 if failed else 0)
            head = _anchor(store, f"run {summary.run_id}", config.evidence.timestamp_url)
        finally:
            store.close()
    click.echo(f"run {summary.run_id} {summary.status} ({summary.finish_reason}): "
               f"{summary.pages} pages, {summary.listings_seen} listings "
               f"({summary.listings_new} new), {summary.flagged} flagged, "
               f"{summary.errors} errors")
    for site, st in summary.site_stats.items():
        click.echo(f"  {site}: {st['pages']} pages, {st['listings']} listings, {st['new']} new, "
                   f"{st['changed']} changed, {st['gone']} gone, {st['errors']} errors"
                   + ("" if st.get("complete") else " (incomplete: nothing marked gone)"))
        for kind, error in st.get("error_kinds", {}).items():
            click.echo(f"    {ErrorCount(**error).describe(kind)}")
    if head is not None:
        click.echo(str(head))  # keep a copy: `cfmon verify --against` checks it later
    monitors = summary.stats.get(MONITORS_FAILED)
    if monitors:
        click.echo(f"warning: run monitors failed: {monitors} (see the crawl log)", err=True)
    if not quiet:
        click.echo(f"review: sqlite3 {db_path} 'SELECT * FROM review_queue'  "
                   f"(or cfmon browse --db {db_path})")
    if config.alerts.enabled:
        from crawler.alerts import collect, send

        alert = collect(db_path, summary.run_id, config.alerts.min_score, failed,
                        str(head) if head else None)
        if alert.worth_sending:
            for problem in send(alert, config.alerts):
                click.echo(f"warning: alert not sent: {problem}", err=True)
            if not quiet:
                click.echo(f"alerted: {len(alert.new_flags)} new flags, "
                           f"{len(alert.failed_sites)} failed sites")
    if failed:
        stopped = failed.pop("(crawl)", None)
        lines = [f"the crawl stopped {stopped}"] if stopped else []
        if failed:
            noun = "site" if len(failed) == 1 else "sites"
            lines.append(f"{len(failed)} {noun} failed:"
                         + "".join(f"\n  {k}: {v}" for k, v in failed.items()))
        raise SiteFailedError("\n".join(lines))


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--url", "base_url", help="The URL the page was saved from (resolves links).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Use a site's selectors from this config...")
@click.option("--site", "site_name", help="...for this site.")
@click.option("--results", is_flag=True,
              help="The files are results pages: print one line per listing card, read "
                   "with the site's [sites.results] selectors.")
def extract(files: tuple[str, ...], base_url: str | None, config_path: str | None,
            site_name: str | None, results: bool) -> None:
    """Print what cfmon reads from saved pages: one JSON object per line.

    Product pages (default): one line per page, keys in order: title, price (a
    decimal string), currency (ISO 4217), brand, sku, image, seller, availability,
    then sources (where each field was read, and price_reason: why this price of
    several the page holds, or why none). Results pages (--results, with
    --config and --site): one line per listing card: page, position, url, title,
    price, currency, image, seller. FILE may be gzipped. A file that cannot be read
    gets a line with an "error" key, and the command exits 1.

    Example:

        cfmon extract saved/item-1.html saved/item-2.html.gz
        cfmon extract --results --config monitor.toml --site shopmart saved/search.html
    """
    from scrapy.http import HtmlResponse

    from crawler.extract.page import FIELDS, extract_product

    site: Site | None = None
    if site_name or config_path:
        if not (site_name and config_path):
            raise click.UsageError("--config and --site go together")
        site = load_config(config_path).site(site_name)
    if results and site is None:
        raise click.UsageError("--results needs --config and --site (the selectors to use)")
    failed = False
    for name in files:
        try:
            body = _read_page(Path(name))
            url = base_url or Path(name).resolve().as_uri()
            response = HtmlResponse(url=url, body=body)
            if results:
                for line in _cards(response, site, name):
                    click.echo(json.dumps(line, ensure_ascii=False))
                continue
            result = extract_product(response.text, url, site.product if site else None,
                                     site.currency if site else None).as_json()
        except PageFileError as exc:
            failed = True
            click.echo(f"error: {exc}", err=True)
            result = {**dict.fromkeys(FIELDS), "error": str(exc)}
        click.echo(json.dumps(result, ensure_ascii=False))
    if failed:
        sys.exit(1)


def _cards(response, site: Site, name: str):
    from decimal import Decimal

    from crawler.extract.page import extract_card
    from crawler.extract.selectors import select

    for position, card in enumerate(select(response, site.results["listing"]), 1):
        got = extract_card(card, site.results, response.url, site.currency, site.listing_path)
        line = {"page": name, "position": position}
        for key in ("url", "title", "price", "currency", "image", "seller"):
            value = got.values.get(key)
            line[key] = format(value, "f") if isinstance(value, Decimal) else value
        if got.problems:
            line["problems"] = got.problems
        yield line


def _read_page(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PageFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise PageFileError(f"{path}: broken gzip file: {exc}") from None
    return data


@main.command()
@click.option("--db", "db_path", default="cfmon-demo.db", show_default=True,
              type=click.Path(dir_okay=False), callback=_new_or_existing_db,
              help="Where to write the demo database "
              "(replaced if it exists).")
@click.option("--verbose", is_flag=True, help="Show Scrapy's log.")
def demo(db_path: str, verbose: bool) -> None:
    """Crawl the bundled demo marketplaces and show what cfmon flags.

    Serves three small demo marketplaces on 127.0.0.1 (a free port), crawls them
    with the demo brand's config, writes the database and prints the review queue.

    Example:

        cfmon demo && datasette cfmon-demo.db
    """
    from crawler.demo import run_demo

    run_demo(db_path, verbose=verbose)


@main.command()
@config_option
@click.option("--labels", "labels_path", required=True, type=click.Path(dir_okay=False),
              help="JSON: a list of {\"url\" or \"path\", \"counterfeit\": true|false}.")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="A database written by `cfmon crawl` of the labelled listings.")
def evaluate(config_path: str, labels_path: str, db_path: str) -> None:
    """Measure the flags against labelled listings: precision, recall, F1.

    Every crawled listing is scored again with the config as it is now (nothing is
    written), so thresholds, weights and vocabulary can be tuned without crawling
    again. Prints the false flags and the misses with their reasons.

    Example:

        cfmon evaluate --config monitor.toml --labels labels.json --db eval.db
    """
    from crawler.evaluate import evaluate as run_evaluation
    from crawler.evaluate import load_labels, render

    config = load_config(config_path)
    _connect(db_path).close()
    click.echo(render(run_evaluation(config, db_path, load_labels(labels_path))), nl=False)


existing_db = click.option(
    "--db", "db_path", required=True, type=click.Path(dir_okay=False),
    help="A database written by `cfmon crawl`.")


def _anchor(store, reason: str, timestamp_url: str | None):
    """Record the chain's head (and time-stamp it where configured); returns it. A TSA
    that cannot be reached is a warning: the head is still recorded and printed."""
    from crawler.errors import TimestampError
    from crawler.evidence import chain_head
    from crawler.timestamp import head_message, request_token, shown_url

    head = chain_head(store.db.conn)
    if head is None:
        return None
    token = None
    if timestamp_url:
        try:
            token = request_token(timestamp_url, head_message(head.entry, head.hash))
        except TimestampError as exc:
            click.echo(f"warning: head not time-stamped: {exc}", err=True)
    # The head that was stamped, even if a verdict has extended the chain since.
    return store.record_head(reason, head, shown_url(timestamp_url) if token else None, token)


def _existing(db_path: str) -> str:
    from crawler.errors import DatabaseError

    if not Path(db_path).is_file():
        raise DatabaseError(f"{db_path}: no such database; run `cfmon crawl --db {db_path}` first")
    return db_path


def _connect(db_path: str):
    import sqlite3

    from crawler.store.writer import Store

    Store.open(_existing(db_path)).close()  # migrations up to date before reading
    return sqlite3.connect(db_path)


@main.command()
@existing_db
@click.argument("listing_ids", nargs=-1, required=True, type=int)
@click.argument("verdict", type=click.Choice(["counterfeit", "genuine", "dismissed"]))
@click.option("--note", help="Why: shown in verdict_history, exports and bundles.")
@click.option("--by", "decided_by", help="Who decides (default: your user name).")
@click.option("--replace", is_flag=True,
              help="Record over a different earlier verdict (the earlier one stays in history).")
@click.option("--force", is_flag=True,
              help="Record a verdict on a listing that was never flagged.")
@click.option("--wait", default=60.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to wait while a crawl or another program is writing.")
def verdict(db_path: str, listing_ids: tuple[int, ...], verdict: str, note: str | None,
            decided_by: str | None, replace: bool, force: bool, wait: float) -> None:
    """Record a verdict on one or more listings; they leave the review queue.

    Verdicts are history: a different earlier verdict is only superseded with
    --replace, and both stay in verdict_history. Each listing recorded is printed
    (id, site, score, title); a listing that was never flagged is refused unless
    --force, since its id is most likely mistyped. Counterfeit verdicts teach the next
    crawl: their images join the known-counterfeit set.

    Example:

        cfmon verdict --db cfmon.db 12 15 counterfeit --note "stolen photo, 23% of MSRP"
    """
    import getpass

    from crawler.store.writer import Store

    store = Store.open(_existing(db_path), lock_wait=wait)
    try:
        lines = store.add_verdicts(list(listing_ids), verdict, note=note,
                                   decided_by=decided_by or getpass.getuser(), replace=replace,
                                   force=force)
        head = _anchor(store, "verdicts on " + ", ".join(map(str, listing_ids)), None)
    finally:
        store.close()
    for line in lines:
        click.echo(line)
    if head is not None:
        click.echo(str(head))


@main.command()
@existing_db
@click.option("--against", "heads", multiple=True, metavar="'N HASH'",
              help="A head printed earlier (after a crawl, a verdict, in an alert): fail "
                   "unless the chain still holds entry N with that hash and only extends it.")
@click.option("--tsa-ca", type=click.Path(dir_okay=False, exists=True),
              help="The Time-Stamp Authority's CA certificate (PEM): check every stored "
                   "RFC 3161 token, and the chain against each time-stamped head.")
def verify(db_path: str, heads: tuple[str, ...], tsa_ca: str | None) -> None:
    """Recompute every evidence hash and the custody chain, both ways.

    Every blob against its SHA-256; every capture and verdict against its custody-log
    entry and every entry against its record; the chain link by link. With --against,
    a head kept outside the database: truncation, a consistent rewrite and back-dated
    appends since then fail. With --tsa-ca, every time-stamped head likewise, and its
    token. Exits 0 when all holds, 1 naming the first problem (then the others). The
    last line is the current head: `head <entry> <sha256>`.

    Example:

        cfmon verify --db cfmon.db --against '1207 3f2a...c9'
    """
    from itertools import islice

    from crawler.errors import VerifyError
    from crawler.evidence import Head, Problem, chain_head, check_against
    from crawler.evidence import verify as verify_db
    from crawler.store.queries import evidence_counts, timestamped_heads
    from crawler.timestamp import check_token, head_message, read_ca

    try:
        anchors = [Head.parse(h) for h in heads]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--against") from None
    conn = _connect(db_path)
    try:
        problems = list(islice(verify_db(conn), 100))
        for anchor in anchors:
            problems += check_against(conn, anchor)
        stamped = 0
        if tsa_ca:
            ca = read_ca(tsa_ca)
            for row in timestamped_heads(conn):
                where = f"chain_heads {row['id']}"
                try:
                    when = check_token(row["token"], head_message(row["entry_id"],
                                                                  row["entry_hash"]), ca)
                except CfmonError as exc:
                    problems.append(Problem(where, str(exc)))
                    continue
                stamped += 1
                problems += check_against(conn, Head(row["entry_id"], row["entry_hash"]))
                click.echo(f"time-stamped: head {row['entry_id']} at {when.isoformat()}")
        counts = evidence_counts(conn)
        head = chain_head(conn)
    finally:
        conn.close()
    if problems:
        rest = "".join(f"\n  {p}" for p in problems[1:])
        raise VerifyError(f"{db_path}: first mismatch: {problems[0]}{rest}")
    click.echo(f"{db_path}: ok: {counts[0]} blobs, {counts[1]} captures, "
               f"{counts[2]} custody log entries verified"
               + (f", {counts[3]} captures pruned by retention (recorded in the chain)"
                  if counts[3] else "")
               + (f", against {len(anchors)} earlier head(s)" if anchors else "")
               + (f", {stamped} time-stamp token(s)" if tsa_ca else ""))
    click.echo(str(head) if head else "head 0 " + "0" * 64)


@main.command()
@existing_db
@click.option("--keep-days", type=click.IntRange(min=1),
              help="Keep the bytes of every capture younger than this (default: the "
                   "config's [evidence] keep_days, else 30).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Read keep_days from this monitor config.")
@click.option("--by", "pruned_by", help="Who prunes (recorded; default: your user name).")
@click.option("--no-vacuum", is_flag=True, help="Leave the file its size (VACUUM needs as "
                                                "much free disk as the database).")
def prune(db_path: str, keep_days: int | None, config_path: str | None, pruned_by: str | None,
          no_vacuum: bool) -> None:
    """Apply evidence retention: drop the bytes of captures that prove nothing new.

    Kept whatever their age: every capture of a listing ever flagged or given a
    verdict, each listing's first sighting, the page of every change of title,
    price, currency or seller, and every new photo. Other captures older than
    --keep-days lose their bytes; their URL, headers, time and SHA-256 stay in the
    custody chain, and the prune itself enters the chain, so `cfmon verify` reports
    them as pruned (a capture whose bytes were deleted by hand stays "missing").

    Example:

        cfmon prune --db cfmon.db --keep-days 30
    """
    import getpass
    import os

    from crawler.config import EvidenceOptions
    from crawler.store.writer import Store

    if keep_days is None:
        keep_days = load_config(config_path).evidence.keep_days if config_path \
            else EvidenceOptions.keep_days
    before = os.path.getsize(db_path)
    store = Store.open(_existing(db_path))
    try:
        result = store.prune(keep_days, pruned_by or getpass.getuser())
        head = _anchor(store, f"prune {result.prune_id}", None) if result.prune_id else None
        if result.prune_id and not no_vacuum:
            store.vacuum()
    finally:
        store.close()
    after = os.path.getsize(db_path)
    if result.prune_id is None:
        click.echo(f"nothing to prune: every capture older than {keep_days} days "
                   f"(before {result.cutoff[:10]}) is kept (flagged, first sighting, change)")
        return
    click.echo(f"pruned the bytes of {result.blobs} captured files "
               f"({result.bytes / 1e6:.1f} MB as captured) older than {keep_days} days "
               f"(before {result.cutoff[:10]}): prune {result.prune_id}, in the custody chain; "
               f"{db_path}: {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB")
    if head is not None:
        click.echo(str(head))


@main.command()
@existing_db
@click.argument("listing_id", type=int)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to write the bundle into (created).")
def evidence(db_path: str, listing_id: int, out_dir: str) -> None:
    """Write one listing's evidence bundle: pages, images, manifest, README.

    The bundle can be checked with `sha256sum -c SHA256SUMS` alone; its README
    explains the custody-log hashes.

    Example:

        cfmon evidence --db cfmon.db 12 --out evidence-12
    """
    from crawler.review.bundle import write_bundle
    from crawler.store.writer import utcnow

    conn = _connect(db_path)
    try:
        out = write_bundle(conn, listing_id, Path(out_dir), utcnow())
    finally:
        conn.close()
    click.echo(f"wrote {out}: check it with: cd {out} && sha256sum -c SHA256SUMS")


@main.command()
@existing_db
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True)
@click.option("--status", default="counterfeit", show_default=True,
              type=click.Choice(["counterfeit", "genuine", "dismissed", "flagged", "all"]),
              help="Latest verdict; 'flagged' = flagged and not yet reviewed.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), help="File (default: stdout).")
def export(db_path: str, fmt: str, status: str, out_file: str | None) -> None:
    """Export a takedown list with the fields platform notice forms ask for.

    Fields: listing URL, seller, marketplace, product infringed, the brand's
    reference photo, reasons, verdict, evidence id, SHA-256 and custody hash, first
    seen, captured at.

    Example:

        cfmon export --db cfmon.db --format csv --status counterfeit > takedowns.csv
    """
    from crawler.review.export import render, takedown_rows

    conn = _connect(db_path)
    try:
        text = render(takedown_rows(conn, status), fmt)
    finally:
        conn.close()
    if out_file:
        Path(out_file).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@main.command()
@existing_db
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False))
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=1),
              help="Counterfeit verdicts of this many days (open flags: all of them).")
@click.option("--all", "everything", is_flag=True, help="Every counterfeit verdict ever.")
@click.option("--photos", default=200, show_default=True, type=click.IntRange(min=0),
              help="Rows whose photos are inlined; the rest name where to see them.")
def report(db_path: str, out_file: str, days: int, everything: bool, photos: int) -> None:
    """Write a self-contained HTML report for a manager (images inlined).

    Open flags and the counterfeit verdicts of the last --days, reference photo beside
    listing photo (for the first --photos rows), score and reasons, counts per site and
    per verdict, flags over time. Bounded by default: a year of flags stays a file
    that mail carries.

    Example:

        cfmon report --db cfmon.db --out report.html --days 7
    """
    from datetime import datetime, timedelta, timezone

    from crawler.review.report import render_report
    from crawler.store.writer import utcnow

    since = None if everything else \
        (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="seconds")
    conn = _connect(db_path)
    try:
        Path(out_file).write_text(render_report(conn, utcnow(), since, photos), encoding="utf-8")
    finally:
        conn.close()
    click.echo(f"wrote {out_file}")


@main.group()
def rates() -> None:
    """Exchange rates for comparing prices with an MSRP in another currency.

    cfmon ships the European Central Bank's reference rates (of the date they were
    packaged) and uses the newest it has; the config's [matching.exchange_rates]
    wins for the currencies it names.

    Example:

        cfmon rates update --db cfmon.db
    """


@rates.command("update")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              callback=_new_or_existing_db, help="The database to keep them in.")
@click.option("--url", default=None, help="The ECB's daily feed (eurofxref-daily.xml).")
def rates_update(db_path: str, url: str | None) -> None:
    """Fetch the ECB's reference rates of today into the database.

    Example:

        cfmon rates update --db cfmon.db
    """
    from crawler.rates import ECB_DAILY_URL, fetch
    from crawler.store.writer import Store
    from crawler.timestamp import shown_url

    got = fetch(url or ECB_DAILY_URL)
    store = Store.open(db_path)
    try:
        count = store.save_rates(got.date, got.per_eur, shown_url(url or ECB_DAILY_URL))
    finally:
        store.close()
    usd = f"; 1 EUR = {got.per_eur['USD']} USD" if "USD" in got.per_eur else ""
    click.echo(f"ECB reference rates of {got.date}: {count} currencies{usd}")


@main.command()
@existing_db
@click.option("--port", default=8001, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Where to listen. Beyond 127.0.0.1 (0.0.0.0, a LAN address) every "
                   "page needs sign-in: give --passwords.")
@click.option("--reviewer", help="On 127.0.0.1: who decides the verdicts recorded here "
                                 "(default: your user name).")
@click.option("--passwords", "passwords_path", type=click.Path(dir_okay=False, exists=True),
              help="Reviewer accounts, one 'name:hash' per line, the hash as "
                   "`datasette hash-password` prints it. Verdicts carry the signed-in name.")
def browse(db_path: str, port: int, host: str, reviewer: str | None,
           passwords_path: str | None) -> None:
    """Serve the review page and the database in Datasette.

    The first line printed is the review page's URL: one card per flagged listing,
    its photo beside the reference photo, decided with buttons or keys (j/k, c/g/d,
    u to undo). Datasette also shows every table, described, and canned queries.
    On 127.0.0.1 the reviewer is --reviewer (or you); on any other address cfmon
    refuses to serve without --passwords, and the reviewer is who signed in.

    Example:

        cfmon browse --db cfmon.db --port 8001
        cfmon browse --db cfmon.db --host 0.0.0.0 --passwords reviewers.txt
    """
    import getpass
    import ipaddress
    import os
    import tempfile

    from crawler.review.datasette import PLUGINS_DIR, browse_metadata

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    accounts = _accounts(passwords_path) if passwords_path else None
    if not loopback and accounts is None:
        raise click.UsageError(
            f"--host {host}: refusing to serve the database beyond 127.0.0.1 without "
            "sign-in; give --passwords FILE (lines 'name:hash', hashes from "
            "`datasette hash-password`)")
    _connect(db_path).close()
    meta = Path(tempfile.mkdtemp(prefix="cfmon-browse-")) / "metadata.json"
    meta.write_text(json.dumps(browse_metadata(db_path, reviewer or getpass.getuser(),
                                               accounts)), encoding="utf-8")
    shown_host = "127.0.0.1" if loopback else host
    click.echo(f"http://{shown_host}:{port}/-/review")
    click.echo(f"the review page: one card per flagged listing; the tables: "
               f"http://{shown_host}:{port}/{Path(db_path).stem}")
    if accounts is not None:
        click.echo(f"sign in at http://{shown_host}:{port}/-/login "
                   f"({len(accounts)} reviewer accounts)")
    sys.stdout.flush()
    os.execvp(sys.executable, [sys.executable, "-m", "datasette", "serve", db_path,
                               "--metadata", str(meta), "--host", host,
                               "--port", str(port), "--plugins-dir", str(PLUGINS_DIR),
                               # facet suggestions cost most of a big queue page's time
                               "--setting", "suggest_facets", "off"])


def _accounts(path: str) -> dict[str, str]:
    """Reviewer accounts from a --passwords file: 'name:hash' lines, # comments."""
    from crawler.errors import PasswordsFileError

    accounts = {}
    for number, line in enumerate(Path(path).read_text("utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, hashed = line.partition(":")
        if not name.strip() or not hashed.strip().startswith("pbkdf2_sha256$"):
            raise PasswordsFileError(f"{path}, line {number}: expected 'name:hash' with the hash "
                              "from `datasette hash-password` (pbkdf2_sha256$...)")
        accounts[name.strip()] = hashed.strip()
    if not accounts:
        raise PasswordsFileError(f"{path}: no reviewer accounts ('name:hash' lines)")
    return accounts


if __name__ == "__main__":  # pragma: no cover
    main()
