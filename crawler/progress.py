"""A live progress table for `cfmon crawl` on a terminal (rich).

Per site: pages read, listings, flagged, errors; redrawn a few times a second from
the crawl's counters (crawler/stats.py), so a long crawl shows it is alive. Log
lines still print, above the table. Off with --quiet, with --log-file, and when
the output is not a terminal (cron, pipes): CFMON_PROGRESS is set by `cfmon crawl`.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from scrapy import signals
from scrapy.exceptions import NotConfigured

from crawler.stats import ERRORS, FLAGGED, LISTINGS, PAGES, site_key


class ProgressDisplay:
    def __init__(self, crawler: Any, interval: float):
        self.crawler = crawler
        self.interval = interval
        self._live: Any = None
        self._loop: Any = None
        self._streams: list[tuple[logging.StreamHandler, Any]] = []
        self._started = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler: Any) -> ProgressDisplay:
        if not crawler.settings.getbool("CFMON_PROGRESS"):
            raise NotConfigured
        display = cls(crawler, crawler.settings.getfloat("CFMON_PROGRESS_INTERVAL"))
        crawler.signals.connect(display.start, signal=signals.engine_started)
        crawler.signals.connect(display.stop, signal=signals.spider_closed)
        return display

    def start(self) -> None:
        from rich.console import Console
        from rich.live import Live
        from twisted.internet.task import LoopingCall

        console = Console(file=sys.stderr)
        self._live = Live(self.table(), console=console, redirect_stderr=True,
                          refresh_per_second=4, transient=False)
        self._live.start()
        # Scrapy's log handler holds the terminal's stream from before the display
        # began: point it at the display's proxy, so log lines print above the table.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and \
                    handler.stream is sys.__stderr__:
                self._streams.append((handler, handler.setStream(sys.stderr)))
        self._loop = LoopingCall(self.refresh)
        self._loop.start(self.interval, now=False)

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.table())

    def stop(self, spider: Any = None, reason: str | None = None) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._live is not None:
            self._live.update(self.table())
            self._live.stop()
            self._live = None
        for handler, stream in self._streams:
            handler.setStream(stream)
        self._streams.clear()

    def table(self) -> Any:
        from rich.table import Table

        stats = self.crawler.stats.get_stats()
        spider = getattr(self.crawler, "spider", None)
        sites = [s.name for s in getattr(spider, "sites", [])]
        elapsed = int(time.monotonic() - self._started)
        table = Table(title=f"cfmon crawl: {elapsed // 60}m{elapsed % 60:02d}s", title_justify="left")
        for column in ("site", "pages", "listings", "flagged", "errors"):
            table.add_column(column, justify="left" if column == "site" else "right")
        for site in sites:
            errors = sum(int(stats.get(site_key(site, f"errors/{k}"), 0)) for k in ERRORS)
            table.add_row(site, *(str(int(stats.get(site_key(site, key), 0)))
                                  for key in (PAGES, LISTINGS, FLAGGED)), str(errors))
        return table
