"""Hands listings to the Store in batches, on a thread of its own.

The SQLite connection lives on one dedicated thread, so writes never block
Scrapy's reactor and never race each other. A batch is one transaction.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from typing import Any

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from crawler.catalog import catalog_photos
from crawler.errors import CfmonError
from crawler.items import GoneListing, Listing, SeenListing
from crawler.stats import NEW, RUN_ID, STORE_ERROR, STORE_FAILED, STORED, Counters, SiteTally
from crawler.store.writer import Store

logger = logging.getLogger(__name__)


class StorePipeline:
    def __init__(self, crawler: Any, db_path: str, batch_size: int, flush_seconds: float):
        self.crawler = crawler
        self.db_path = db_path
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.config = crawler.settings.get("CFMON_CONFIG")
        self.store: Store | None = None
        self.run_id: int | None = None
        self.lock_wait = crawler.settings.getfloat("CFMON_STORE_LOCK_WAIT")
        self._batch: list[Listing] = []
        self._gone: list[GoneListing] = []
        self._seen: list[SeenListing] = []
        # Set when a write could not be made: the crawl stops, and the sites with
        # listings that were not written are incomplete (nothing of them marked gone).
        self._write_failure: str | None = None
        self._unwritten: set[str] = set()
        self._site_counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._last_flush = time.monotonic()
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="cfmon-store")

    @classmethod
    def from_crawler(cls, crawler):
        settings = crawler.settings
        db_path = settings.get("CFMON_DB")
        if not db_path or settings.get("CFMON_CONFIG") is None:
            raise NotConfigured("StorePipeline needs CFMON_DB and CFMON_CONFIG")
        pipeline = cls(crawler, db_path, settings.getint("CFMON_STORE_BATCH_SIZE"),
                       settings.getfloat("CFMON_STORE_FLUSH_SECONDS"))
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        return pipeline

    def _in_thread(self, fn, *args: Any) -> Deferred:
        from twisted.internet import reactor  # the one Scrapy installed, not a default

        return deferToThreadPool(reactor, self._pool, fn, *args)

    async def open_spider(self, spider: Any = None) -> None:
        from twisted.internet import reactor

        self._pool.start()
        # A second Ctrl-C stops the reactor without closing the spider: the write in
        # progress still finishes (a whole transaction), then the thread ends, so the
        # process can exit.
        reactor.addSystemEventTrigger("during", "shutdown", self._stop_pool)
        sites = [s.name for s in self.crawler.spider.sites]
        photos = catalog_photos(self.config.products, str(self.config.path), self.db_path)

        def opening() -> int:
            self.store = Store.open(self.db_path, self.lock_wait)
            self.store.sync_catalog(photos)
            return self.store.start_run(str(self.config.path.resolve()), sites)

        try:
            self.run_id = await maybe_deferred_to_future(self._in_thread(opening))
        except CfmonError as exc:
            self.crawler.stats.set_value(STORE_ERROR, str(exc))
            raise
        self.crawler.stats.set_value(RUN_ID, self.run_id)

    async def process_item(self, item: Listing, spider: Any = None) -> Listing:
        if self._write_failure is not None:
            self._unwritten.add(item.site)  # the crawl is stopping: not written
            return item
        if isinstance(item, GoneListing):
            self._gone.append(item)
            return item
        if isinstance(item, SeenListing):
            self._seen.append(item)
            return item
        self._batch.append(item)
        due = time.monotonic() - self._last_flush >= self.flush_seconds
        if len(self._batch) >= self.batch_size or due:
            await self._flush()
        return item

    async def _flush(self) -> None:
        batch, self._batch = self._batch, []
        gone, self._gone = self._gone, []
        seen, self._seen = self._seen, []
        self._last_flush = time.monotonic()
        if self.store is None or self._write_failure is not None:
            return
        try:
            await self._write(batch, gone, seen)
        except CfmonError as exc:
            # Nothing of this batch was kept: the crawl stops, failed and loud, and no
            # site whose listings were lost may have anything marked gone.
            self._write_failure = str(exc)
            self._unwritten.update(item.site for item in (*batch, *gone, *seen))
            self.crawler.stats.set_value(STORE_ERROR, str(exc))
            logger.error("stopping the crawl: %s", exc)
            from scrapy.utils.defer import deferred_from_coro

            deferred_from_coro(self.crawler.engine.close_spider_async(reason=STORE_FAILED))

    async def _write(self, batch: list[Listing], gone: list[GoneListing],
                     seen: list[SeenListing]) -> None:
        assert self.store is not None
        if seen:
            await maybe_deferred_to_future(self._in_thread(
                self.store.touch_seen, [s.url for s in seen], self.run_id))
        if batch:
            result = await maybe_deferred_to_future(
                self._in_thread(self.store.write_batch, batch, self.run_id))
            counters = Counters(self.crawler.stats)
            counters.crawl(STORED, result.written)
            counters.crawl(NEW, result.new)
            for site, counts in result.per_site.items():
                self._site_counts[site].update(counts)
        for site in {g.site for g in gone}:
            marked = await maybe_deferred_to_future(self._in_thread(
                self.store.mark_gone, [(g.url, g.reason) for g in gone if g.site == site]))
            self._site_counts[site]["gone"] += marked

    async def close_spider(self, spider: Any = None) -> None:
        await self._flush()

    async def spider_closed(self, spider: Any, reason: str) -> None:
        stats = dict(self.crawler.stats.get_stats())
        status = "finished" if reason == "finished" else "failed"
        sites = [s.name for s in self.crawler.spider.sites]

        def finishing() -> None:
            if self.store is None or self.run_id is None:
                return
            site_stats = {}
            for site in sites:
                counts = self._site_counts[site]
                site_stats[site] = {**SiteTally.from_stats(stats, site).as_json(reason),
                                    "new": counts["new"], "changed": counts["changed"],
                                    "gone": counts["gone"]}
                if site in self._unwritten:
                    site_stats[site]["complete"] = False
                if site_stats[site]["complete"]:
                    site_stats[site]["gone"] += self.store.mark_missing(site, self.run_id)
            self.store.finish_run(self.run_id, status=status, finish_reason=reason,
                                  stats=stats, site_stats=site_stats)
            self.store.close()

        try:
            await maybe_deferred_to_future(self._in_thread(finishing))
        finally:
            self._stop_pool()

    def _stop_pool(self) -> None:
        if self._pool.started:
            self._pool.stop()
