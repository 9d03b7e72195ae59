"""Running one crawl in this process, and reading back what it did."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from crawler.catalog import catalog_photos
from crawler.config import Config
from crawler.errors import WriteFailedError
from crawler.settings import crawl_settings
from crawler.stats import RUN_ID, STORE_ERROR
from crawler.store.queries import run_row


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    status: str
    finish_reason: str | None
    pages: int
    listings_seen: int
    listings_new: int
    flagged: int
    errors: int
    stats: dict[str, Any]
    site_stats: dict[str, dict[str, Any]]

    def failed_sites(self) -> dict[str, str]:
        """Sites that gave nothing usable, with why (see crawler.stats.SiteTally.failure)."""
        return {site: st["failed"] for site, st in self.site_stats.items() if st.get("failed")}


# Seconds a first Ctrl-C waits for downloads already under way before letting them go.
SHUTDOWN_GRACE = 3.0


class _PendingNone(set):
    """The engine's set of requests in progress, emptied at a forced close: requests
    that answer later are simply no longer awaited."""

    def remove(self, item: Any) -> None:
        self.discard(item)


def _crawler_process(settings: dict[str, Any]) -> Any:
    """Scrapy's CrawlerProcess, with a Ctrl-C that stops within seconds and says so.

    First Ctrl-C: Scrapy's graceful stop (listings in hand are written, the run is
    recorded as stopped, nothing is marked gone), but a download still under way
    after SHUTDOWN_GRACE seconds (a slow page may take DOWNLOAD_TIMEOUT) is no longer
    awaited. Second Ctrl-C: Scrapy stops the reactor at once; every write is a
    transaction, so nothing is half-written, and the next crawl marks the run
    interrupted.
    """
    from scrapy.crawler import CrawlerProcess

    class Process(CrawlerProcess):
        def _signal_shutdown(self, signum: int, frame: Any) -> None:
            from twisted.internet import reactor

            super()._signal_shutdown(signum, frame)
            reactor.callFromThread(_say, "stopping: writing what was read so far "
                                         "(Ctrl-C again to stop at once)")
            reactor.callFromThread(reactor.callLater, SHUTDOWN_GRACE, self._stop_waiting)

        def _signal_kill(self, signum: int, frame: Any) -> None:
            from twisted.internet import reactor

            super()._signal_kill(signum, frame)
            reactor.callFromThread(_say, "stopped at once; the next crawl marks this run "
                                         "interrupted")

        def _stop_waiting(self) -> None:
            for crawler in self.crawlers:
                slot = getattr(crawler.engine, "_slot", None)
                if slot is not None and getattr(slot, "inprogress", None):
                    slot.inprogress = _PendingNone()
                    slot._maybe_fire_closing()

    return Process(settings)


def _say(message: str) -> None:
    import click

    click.echo(message, err=True)


def run_crawl(config: Config, db_path: str, sites: list[str] | None = None,
              **overrides: Any) -> RunSummary:
    """Crawl ``config``'s sites into ``db_path``; blocks until the crawl ends.

    Starts Twisted's reactor, so it can run once per process.
    """
    import warnings

    from scrapy.exceptions import ScrapyDeprecationWarning

    from crawler.spiders.marketplace import MarketplaceSpider

    if sites:
        for name in sites:
            config.site(name)  # raises ConfigError naming the known sites
    catalog_photos(config.products, str(config.path), db_path)  # bad photo: fail first
    # Spidermon still calls Spider.log(); nothing for a cfmon user to act on.
    warnings.filterwarnings("ignore", message=r"Spider\.log\(\) is deprecated",
                            category=ScrapyDeprecationWarning)
    process = _crawler_process(crawl_settings(config, db_path, sites, **overrides))
    crawler = process.create_crawler(MarketplaceSpider)
    process.crawl(crawler)
    process.start()
    failure = crawler.stats.get_value(STORE_ERROR)
    if failure:
        raise WriteFailedError(f"the crawl stopped: {failure}. Listings not written are "
                               "crawled again next time; nothing was marked gone")
    return read_run(db_path, crawler.stats.get_value(RUN_ID))


def read_run(db_path: str, run_id: int | None) -> RunSummary:
    row = run_row(db_path, run_id)
    if row is None:
        raise RuntimeError(f"{db_path}: the crawl recorded no run")
    return RunSummary(
        run_id=row["id"], status=row["status"], finish_reason=row["finish_reason"],
        pages=row["pages"] or 0, listings_seen=row["listings_seen"] or 0,
        listings_new=row["listings_new"] or 0, flagged=row["flagged"] or 0,
        errors=row["errors"] or 0, stats=json.loads(row["stats"] or "{}"),
        site_stats=json.loads(row["site_stats"] or "{}"),
    )
