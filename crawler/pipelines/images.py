"""Listing images, fetched through Scrapy's ImagesPipeline and hashed once.

Nothing is written to disk: the hashes and a small thumbnail travel with the item
to the store pipeline, which keeps them in SQLite. Decoding, hashing and the check
against the catalog run in the reactor's thread pool, and in worker processes once
photos queue up (pipelines/analysis.py), so that a large crawl is not slowed by
them. Scrapy's media cache makes an image shared by several listings download and
hash only once per crawl; across crawls, an image already in the database is asked
for conditionally (If-None-Match / If-Modified-Since) and, when the server answers
304 or sends the same bytes again (same SHA-256), its stored hashes are reused
without decoding. Bytes are analysed once whatever their URL: the same photo at
another URL (a seller's copy of the brand's photo on another listing or site) reuses
the analysis of this crawl or of an earlier one.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from itemadapter import ItemAdapter
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response
from scrapy.http.request import NO_CALLBACK
from scrapy.pipelines.files import FilesPipeline
from scrapy.pipelines.images import ImagesPipeline
from scrapy.pipelines.media import MediaPipeline
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred, DeferredSemaphore
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from crawler.catalog import image_matcher
from crawler.evidence import Capture, capture_response
from crawler.pipelines.analysis import PoolUnavailable, analyse_photo
from crawler.pipelines.analysis import from_settings as analysis_pool
from crawler.stats import (
    ANALYSIS_RESTARTS,
    IMAGES_FAILED,
    IMAGES_HASHED,
    IMAGES_IN_PROCESSES,
    IMAGES_SAME_BYTES,
    IMAGES_UNCHANGED,
    Counters,
)
from crawler.store.queries import hashed_images
from matchers.images import ImageAnalysis, ImageError, ImageHashes, PhotoMatch

logger = logging.getLogger(__name__)


class RecentResults(OrderedDict):
    """A dict that forgets its oldest entry beyond ``size`` (Scrapy's media cache)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        if len(self) > self.size:
            self.popitem(last=False)


class DatabaseImageStore:
    """A FilesStore that keeps nothing on disk: image data goes to SQLite instead."""

    def __init__(self, uri: str):
        self.uri = uri

    def persist_file(self, path: str, buf: Any, info: Any, meta: Any = None,
                     headers: Any = None) -> None:
        return None

    def stat_file(self, path: str, info: Any) -> dict[str, Any]:
        return {}  # never cached on disk: always fetch


@dataclass(frozen=True)
class KnownImage:
    """An image hashed by an earlier crawl."""

    sha256: str
    phash: str
    dhash: str
    width: int
    height: int
    etag: str | None
    last_modified: str | None
    variants: str | None  # JSON: variant -> [phash hex, dhash hex]
    match: str | None = None  # JSON: the verified PhotoMatch
    match_key: str | None = None  # the catalog it was checked against

    def analysis(self) -> ImageAnalysis:
        # No thumbnail: the stored one stays (the store keeps a non-empty thumbnail).
        variants = {k: ImageHashes.from_hex(*v)
                    for k, v in json.loads(self.variants or "{}").items()}
        return ImageAnalysis(self.sha256, self.width, self.height,
                             ImageHashes.from_hex(self.phash, self.dhash), b"", variants,
                             match=PhotoMatch.from_json(self.match) if self.match else None,
                             match_key=self.match_key)


def known_images(db_path: str | None) -> dict[str, KnownImage]:
    return {row[0]: KnownImage(*tuple(row)[1:]) for row in hashed_images(db_path)}


class Backlog:
    """Photos waiting for their analysis, with the crawl paused while too many wait.

    Scrapy fetches pages and photos faster than photos are analysed, and its own brake
    (SCRAPER_SLOT_MAX_ACTIVE_SIZE, 5 MB of responses) lets thousands of small product
    pages' items wait with their photos' bytes: memory grew with the crawl. Past
    ``limit`` waiting photos the engine stops taking requests from the scheduler (what
    is being fetched still arrives) until half of them are done.
    """

    def __init__(self, engine: Any, limit: int):
        self.engine, self.limit = engine, max(1, limit)
        self.waiting, self.paused = 0, False

    def add(self) -> None:
        self.waiting += 1
        if self.waiting >= self.limit and not self.paused and not self.engine.paused:
            self.engine.pause()
            self.paused = True

    def done(self) -> None:
        self.waiting -= 1
        if self.paused and self.waiting <= self.limit // 2:
            self.engine.unpause()
            self.paused = False
            # The engine looks for work when a download ends or every 5 s; nothing may
            # be downloading now, so ask it to look at once.
            slot = getattr(self.engine, "_slot", None)
            if slot is not None:
                slot.nextcall.schedule()


class ListingImagesPipeline(ImagesPipeline):
    STORE_SCHEMES = {**FilesPipeline.STORE_SCHEMES, "cfmon": DatabaseImageStore}

    @classmethod
    def from_crawler(cls, crawler):
        if not crawler.settings.getbool("CFMON_IMAGES_ENABLED"):
            raise NotConfigured("CFMON_IMAGES_ENABLED is off")
        return cls("cfmon://sqlite", crawler=crawler)

    async def _analysed(self, data: bytes, sha256: str) -> ImageAnalysis:
        """The photo's analysis, once per content: bytes that another URL already sent
        to analysis (the same stolen product photo on several sellers' listings) wait
        for that result instead of being analysed twice."""
        waiting = self._in_flight.get(sha256)
        if waiting is not None:
            shared: Deferred = Deferred()
            waiting.append(shared)
            return await maybe_deferred_to_future(shared)
        self._in_flight[sha256] = waiting = []
        self._backlog.add()
        try:
            analysis = await maybe_deferred_to_future(self._analyse(data))
        except BaseException as exc:  # (a cancelled crawl too: no photo waits forever)
            for shared in self._in_flight.pop(sha256):
                shared.errback(Failure(exc))
            raise
        finally:
            self._backlog.done()
        self._in_flight.pop(sha256, None)
        self._recent[sha256] = analysis
        for shared in waiting:
            shared.callback(analysis)
        return analysis

    def _same_bytes(self, sha256: str) -> ImageAnalysis | None:
        """The analysis of the same bytes at another URL, from this crawl or, checked
        against this catalog, an earlier one (its thumbnail is the store's to copy)."""
        analysis = self._recent.get(sha256)
        if analysis is not None:
            return analysis
        known = self._known_bytes.get(sha256)
        return known.analysis() if self._reusable(known) else None

    def _analyse(self, data: bytes) -> Deferred:
        # Photos queueing up means analysis is what the crawl waits for: from then on
        # it runs in worker processes, on every core.
        if self._pool is not None and not self._pool.started \
                and self._backlog.waiting >= self._pool_after:
            try:
                self._pool.start()
            except PoolUnavailable as exc:
                self._no_pool(exc)
        if self._pool is not None and self._pool.started:
            analysing = self._pool_slots.run(self._pool.analyse, data)
            analysing.addCallback(self._in_process)
            analysing.addErrback(self._without_pool, data)
            return analysing
        return self._in_thread(data)

    def _in_thread(self, data: bytes) -> Deferred:
        # In the thread pool, a few at a time: decoding is where memory goes.
        return self._decodes.run(deferToThread, analyse_photo, data, self._matcher)

    def _in_process(self, analysis: ImageAnalysis) -> ImageAnalysis:
        self._counters.crawl(IMAGES_IN_PROCESSES)
        return analysis

    def _without_pool(self, failure: Failure, data: bytes) -> Deferred:
        failure.trap(PoolUnavailable)
        self._no_pool(failure.value)
        return self._in_thread(data)

    def _no_pool(self, reason: Exception) -> None:
        if self._pool is not None:
            logger.warning("photos are analysed in the crawl's threads: worker processes "
                           "could not start (%s)", reason)
            self._pool.close()
            self._pool = None

    def _reusable(self, known: KnownImage | None) -> bool:
        """A stored analysis answers for this crawl only if it was checked against the
        same catalog: a new reference photo means every photo is checked again."""
        return known is not None and (self._matcher is None
                                      or known.match_key == self._matcher.key)

    def get_media_requests(self, item: Any, info: MediaPipeline.SpiderInfo) -> list[Request]:
        requests = []
        for url in ItemAdapter(item).get(self.images_urls_field, []):
            known = self._known.get(url)
            if not self._reusable(known):
                known = None  # fetched in full, to be checked
            headers = {}
            if known is not None and known.etag:
                headers["If-None-Match"] = known.etag
            if known is not None and known.last_modified:
                headers["If-Modified-Since"] = known.last_modified
            requests.append(Request(url, headers=headers, callback=NO_CALLBACK,
                                    meta={"cfmon_kind": "image",
                                          "cfmon_site": ItemAdapter(item).get("site")}))
        return requests

    async def media_downloaded(self, response: Response, request: Request,
                               info: MediaPipeline.SpiderInfo, *, item: Any = None) -> Any:
        known = self._known.get(request.url)
        if not self._reusable(known):
            known = None
        capture = capture_response(response, kind="image")
        if response.status == 304 and known is not None:
            self._counters.crawl(IMAGES_UNCHANGED)
            return self._result(request, known.analysis(), replace(capture, sha256=known.sha256))
        # A bad image is an expected event on marketplaces: answer it with a one-line
        # warning and a result that says why, instead of Scrapy's logged traceback.
        if response.status != 200 or not response.body:
            what = f"HTTP {response.status}" if response.status != 200 else "empty body"
            return self._failed(request, what)
        if known is not None and capture.sha256 == known.sha256:
            self._counters.crawl(IMAGES_UNCHANGED)
            return self._result(request, known.analysis(), capture)
        same = self._same_bytes(capture.sha256)
        if same is not None:
            self._counters.crawl(IMAGES_SAME_BYTES)
            return self._result(request, same, capture)
        shared = capture.sha256 in self._in_flight  # another URL's analysis of these bytes
        try:
            analysis = await self._analysed(response.body, capture.sha256)
        except ImageError as exc:
            return self._failed(request, str(exc))
        if shared:
            self._counters.crawl(IMAGES_SAME_BYTES)
        else:
            self.inc_stats("downloaded")
        return self._result(request, analysis, capture)

    def _result(self, request: Request, analysis: ImageAnalysis, capture: Capture) -> dict:
        return {"url": request.url, "path": "", "checksum": analysis.sha256,
                "status": "downloaded", "analysis": analysis, "capture": capture}

    def media_failed(self, failure: Any, request: Request, info: MediaPipeline.SpiderInfo) -> None:
        # Returning (not raising) keeps Scrapy from logging a traceback; the media
        # cache then holds None for this URL, read as "failed" in item_completed.
        self._failures[request.url] = failure.getErrorMessage() or type(failure.value).__name__

    def _failed(self, request: Request, reason: str) -> dict[str, Any]:
        self._failures[request.url] = reason
        return {"url": request.url, "path": "", "checksum": None, "status": "failed",
                "analysis": None}

    def open_spider(self, spider: Any = None) -> None:
        super().open_spider()
        # Scrapy keeps every image's result for the whole crawl (an image shown by
        # several listings is fetched once): memory would grow with the crawl. The
        # last CFMON_IMAGE_CACHE results are what repeats in practice (a shop's
        # placeholder, a seller's listings in a row).
        self.spiderinfo.downloaded = RecentResults(
            self.crawler.settings.getint("CFMON_IMAGE_CACHE"))
        self._failures: dict[str, str] = {}
        self._known = known_images(self.crawler.settings.get("CFMON_DB"))
        self._known_bytes = {known.sha256: known for known in self._known.values()}
        # Analyses of this crawl by content, thumbnails included (the store may not
        # have written the first listing's yet), and the analyses under way.
        self._recent: RecentResults = RecentResults(
            self.crawler.settings.getint("CFMON_IMAGE_CONTENT_CACHE"))
        self._in_flight: dict[str, list[Deferred]] = {}
        self._counters = Counters(self.crawler.stats)
        self._decodes = DeferredSemaphore(self.crawler.settings.getint("CFMON_IMAGE_DECODES"))
        self._backlog = Backlog(self.crawler.engine,
                                self.crawler.settings.getint("CFMON_IMAGE_BACKLOG"))
        config = self.crawler.settings.get("CFMON_CONFIG")
        self._matcher = (image_matcher(config, self.crawler.settings.get("CFMON_DB"))
                         if config is not None else None)
        self._pool, self._pool_after = analysis_pool(self.crawler.settings, self._matcher)
        # Two photos per worker: one being analysed, the next one already sent.
        self._pool_slots = DeferredSemaphore(2 * self._pool.workers if self._pool else 1)

    def close_spider(self, spider: Any = None) -> None:
        if self._pool is not None:
            self._pool.close()
            if self._pool.restarts:
                self._counters.crawl(ANALYSIS_RESTARTS, self._pool.restarts)

    def item_completed(self, results: list, item: Any, info: MediaPipeline.SpiderInfo) -> Any:
        adapter = ItemAdapter(item)
        main = adapter.get("image_url")
        site = adapter.get("site")
        for url, (ok, value) in zip(adapter.get("image_urls") or [], results, strict=False):
            analysis = value.get("analysis") if ok and value else None
            if analysis is None:
                reason = self._failures.get(url, "download failed")
                if url == main:
                    adapter["image_error"] = reason
                logger.warning("image skipped (%s) at %s for listing %s", reason, url,
                               adapter.get("url"))
                self._counters.error(site, "image", f"{reason} at {url}")
                self._counters.count(site, IMAGES_FAILED)
                continue
            if url == main:
                adapter["image"] = analysis
            else:
                adapter["extra_images"].append((url, analysis))
            capture = value.get("capture")
            if capture is not None:
                adapter["captures"].append(capture)
                # Scrapy caches this result for every listing that shows the same image,
                # for the whole crawl: keep the bytes once (the first listing stores
                # them), and the thumbnail too (the store keeps a stored one), or the
                # cache grows by a thumbnail per listing.
                value["capture"] = replace(capture, body=b"")
                value["analysis"] = replace(analysis, thumbnail=b"")
            self._counters.count(site, IMAGES_HASHED)
        return item
