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


config_option = click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False),
    help="The monitor config file (TOML).")
db_option = click.option(
    "--db", "db_path", required=True, type=click.Path(dir_okay=False),
    help="The SQLite database to write (created if missing).")


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
def crawl(config_path: str, db_path: str, sites: tuple[str, ...], log_level: str) -> None:
    """Crawl the configured marketplaces into the database and flag suspects.

    The config is validated before anything is fetched (exit 2 on a bad one).
    Flagged listings land in the database's review_queue view.

    Example:

        cfmon crawl --config monitor.toml --db cfmon.db --site shopmart
    """
    from crawler.run import run_crawl

    config = load_config(config_path)
    summary = run_crawl(config, db_path, list(sites) or None, LOG_LEVEL=log_level)
    click.echo(f"run {summary.run_id} {summary.status} ({summary.finish_reason}): "
               f"{summary.pages} pages, {summary.listings_seen} listings "
               f"({summary.listings_new} new), {summary.flagged} flagged, "
               f"{summary.errors} errors")
    click.echo(f"review: sqlite3 {db_path} 'SELECT * FROM review_queue'  "
               f"(or open it in Datasette / DB Browser for SQLite)")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--url", "base_url", help="The URL the page was saved from (resolves links).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Use a site's [sites.product] selectors from this config...")
@click.option("--site", "site_name", help="...for this site.")
def extract(files: tuple[str, ...], base_url: str | None, config_path: str | None,
            site_name: str | None) -> None:
    """Print what cfmon reads from saved product pages: one JSON object per line.

    Keys, in order: title, price (a decimal string), currency (ISO 4217), brand,
    sku, image, seller, availability, then sources (where each field was read).
    FILE may be gzipped. A file that cannot be read gets a line with an "error"
    key, and the command exits 1.

    Example:

        cfmon extract saved/item-1.html saved/item-2.html.gz
    """
    from scrapy.http import HtmlResponse

    from crawler.extract.page import FIELDS, extract_product

    site: Site | None = None
    if site_name or config_path:
        if not (site_name and config_path):
            raise click.UsageError("--config and --site go together")
        site = load_config(config_path).site(site_name)
    failed = False
    for name in files:
        try:
            body = _read_page(Path(name))
            url = base_url or Path(name).resolve().as_uri()
            response = HtmlResponse(url=url, body=body)
            result = extract_product(response.text, url, site.product if site else None,
                                     site.currency if site else None).as_json()
        except PageFileError as exc:
            failed = True
            click.echo(f"error: {exc}", err=True)
            result = {**dict.fromkeys(FIELDS), "error": str(exc)}
        click.echo(json.dumps(result, ensure_ascii=False))
    if failed:
        sys.exit(1)


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
              type=click.Path(dir_okay=False), help="Where to write the demo database "
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


if __name__ == "__main__":  # pragma: no cover
    main()
