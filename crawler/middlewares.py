"""Downloader middlewares for running unattended against sites cfmon does not control."""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Request, Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from crawler.stats import THROTTLED, TRUNCATED, Counters

logger = logging.getLogger(__name__)


class RetryAfterMiddleware:
    """Answers 429 (and 503) with a Retry-After header by waiting as asked, capped at
    CFMON_RETRY_AFTER_MAX seconds, then retrying, at most CFMON_RETRY_AFTER_TIMES times.

    Sits before Scrapy's RetryMiddleware, which would retry at once and so earn
    another 429; a response without Retry-After is left to it.
    """

    def __init__(self, crawler: Any, max_wait: float, max_times: int):
        self.crawler = crawler
        self.max_wait = max_wait
        self.max_times = max_times

    @classmethod
    def from_crawler(cls, crawler: Any) -> RetryAfterMiddleware:
        settings = crawler.settings
        if not settings.getbool("CFMON_RETRY_AFTER_ENABLED"):
            raise NotConfigured
        return cls(crawler, settings.getfloat("CFMON_RETRY_AFTER_MAX"),
                   settings.getint("CFMON_RETRY_AFTER_TIMES"))

    async def process_response(self, request: Request, response: Response,
                               spider: Any = None) -> Request | Response:
        if response.status not in (429, 503) or b"Retry-After" not in response.headers:
            return response
        tries = request.meta.get("cfmon_retry_after", 0)
        if tries >= self.max_times:
            logger.warning("HTTP %s at %s: still throttled after %d waits; giving up",
                           response.status, request.url, tries)
            return response
        delay = min(self.max_wait, retry_after_seconds(response.headers[b"Retry-After"]))
        logger.info("HTTP %s at %s: waiting %.1fs as Retry-After asks", response.status,
                    request.url, delay)
        Counters(self.crawler.stats).crawl(THROTTLED)
        from twisted.internet import reactor

        await maybe_deferred_to_future(deferLater(reactor, delay, lambda: None))
        retry = request.replace(dont_filter=True)
        retry.meta["cfmon_retry_after"] = tries + 1
        return retry


def retry_after_seconds(value: bytes) -> float:
    """Retry-After as seconds: either delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    text = value.decode("latin-1").strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class PrivateAddressMiddleware:
    """Keeps a marketplace page from making cfmon fetch an internal address.

    Requests to a host the config names (the sites' start and search URLs) go
    through: the user chose them, on 127.0.0.1 too. Any other host (an image CDN, a
    redirect target) must resolve to public addresses only, unless the config's
    ``[crawl] allow_private_hosts = true``. Only http(s) is ever fetched.
    """

    def __init__(self, crawler: Any, trusted_hosts: set[str]):
        self.crawler = crawler
        self.trusted_hosts = trusted_hosts
        self._verdicts: dict[str, str | None] = {}
        self._trusted_addresses: set[str] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> PrivateAddressMiddleware:
        config = crawler.settings.get("CFMON_CONFIG")
        if config is None or config.crawl.allow_private_hosts:
            raise NotConfigured
        hosts = {urlsplit(url).hostname for site in config.sites for url in site.start_urls}
        return cls(crawler, {h for h in hosts if h})

    async def process_request(self, request: Request, spider: Any = None) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            raise IgnoreRequest(f"refused {request.url}: only http(s) is fetched")
        host = parts.hostname or ""
        if host in self.trusted_hosts:
            return None
        if self._trusted_addresses is None:
            # The configured sites' own addresses: "localhost" and "127.0.0.1" name
            # the same site, and a page may link to either.
            self._trusted_addresses = await maybe_deferred_to_future(
                deferToThread(_addresses, self.trusted_hosts))
        if host not in self._verdicts:
            self._verdicts[host] = await maybe_deferred_to_future(
                deferToThread(_private, host, self._trusted_addresses))
        reason = self._verdicts[host]
        if reason:
            site = request.meta.get("cfmon_site")
            if site:
                Counters(self.crawler.stats).error(site, "private_address",
                                                   f"{request.url}: {reason}")
            logger.warning("refused %s: %s (set [crawl] allow_private_hosts = true to allow)",
                           request.url, reason)
            raise IgnoreRequest(f"refused {request.url}: {reason}")
        return None


def _addresses(hosts: set[str]) -> set[str]:
    found: set[str] = set()
    for host in hosts:
        try:
            found |= {info[4][0] for info in socket.getaddrinfo(host, None,
                                                                 proto=socket.IPPROTO_TCP)}
        except OSError:
            continue
    if found & {"127.0.0.1", "::1"}:
        found |= {"127.0.0.1", "::1"}  # "localhost" is either, by the resolver's mood
    return found


def _private(host: str, trusted: set[str]) -> str | None:
    """Why ``host`` must not be fetched, or None when all its addresses are public (or
    are the configured sites' own)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return None  # unresolvable: the download fails on its own, with its own message
    for info in infos:
        if info[4][0] in trusted:
            continue
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            return f"{host} resolves to {address}, a private or local address"
    return None


class SiteBudgetMiddleware:
    """A budget of requests and of time per site (CFMON_SITE_MAX_REQUESTS,
    CFMON_SITE_MAX_MINUTES): one marketplace that never ends (endless pagination,
    pages that each take a timeout) must not hold the crawl, and the database's lock,
    for hours. Requests past the budget are not made; the site is then incomplete
    (nothing of it marked gone) and the summary says why. The whole crawl has
    Scrapy's CLOSESPIDER_TIMEOUT.
    """

    def __init__(self, crawler: Any, max_requests: int, max_seconds: float):
        self.crawler = crawler
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self._requests: dict[str, int] = {}
        self._started: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> SiteBudgetMiddleware:
        settings = crawler.settings
        max_requests = settings.getint("CFMON_SITE_MAX_REQUESTS")
        max_minutes = settings.getfloat("CFMON_SITE_MAX_MINUTES")
        if max_requests <= 0 and max_minutes <= 0:
            raise NotConfigured
        return cls(crawler, max_requests, max_minutes * 60)

    def process_request(self, request: Request, spider: Any = None) -> None:
        site = request.meta.get("cfmon_site")
        if not site:
            return None  # robots.txt: Scrapy's own
        now = time.monotonic()
        started = self._started.setdefault(site, now)
        count = self._requests[site] = self._requests.get(site, 0) + 1
        over = None
        if self.max_requests > 0 and count > self.max_requests:
            over = f"more than {self.max_requests} requests"
        elif self.max_seconds > 0 and now - started > self.max_seconds:
            over = f"more than {self.max_seconds / 60:g} minutes"
        if over is None:
            return None
        counters = Counters(self.crawler.stats)
        if self.crawler.stats.get_value(f"cfmon/sites/{site}/truncated_by_budget") is None:
            self.crawler.stats.set_value(f"cfmon/sites/{site}/truncated_by_budget", over)
            counters.count(site, TRUNCATED)
            logger.warning("%s: over its budget (%s); its other requests are not made", site,
                           over)
        counters.error(site, "over_budget", f"{over}: {request.url} not fetched")
        raise IgnoreRequest(f"over the budget of site {site}: {over}")
