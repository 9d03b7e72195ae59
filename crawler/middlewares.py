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
from scrapy.resolver import CachingThreadedResolver
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.error import DNSLookupError
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

    Requests to a host and port the config names (the sites' start and search URLs)
    go through: the user chose them, on 127.0.0.1 too. Anything else (an image CDN, a
    redirect target, the same host on another port) must be a public address, unless
    the config's ``[crawl] allow_private_hosts = true``. Only http(s) is fetched.

    This middleware refuses early, with a clear message. The guarantee is in
    ``VettingResolver``: the address Scrapy connects to is the one that was vetted,
    so a name that answers "public" to this check and "127.0.0.1" to the connection
    (DNS rebinding) still cannot reach inside.
    """

    def __init__(self, crawler: Any, trusted: set[tuple[str, int]]):
        self.crawler = crawler
        self.trusted = trusted
        self.trusted_names = {host for host, _ in trusted}
        self._verdicts: dict[tuple[str, int], str | None] = {}
        self._own: set[tuple[str, int]] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> PrivateAddressMiddleware:
        config = crawler.settings.get("CFMON_CONFIG")
        if config is None or config.crawl.allow_private_hosts:
            raise NotConfigured
        return cls(crawler, trusted_endpoints(config))

    async def process_request(self, request: Request, spider: Any = None) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            raise IgnoreRequest(f"refused {request.url}: only http(s) is fetched")
        host, port = (parts.hostname or "").lower(), _port(parts)
        if (host, port) in self.trusted:
            return None
        if self._own is None:
            # The configured sites' own addresses and ports: "localhost" and "127.0.0.1"
            # name the same site, and a page may link to either.
            self._own = await maybe_deferred_to_future(deferToThread(_addresses, self.trusted))
        if (host, port) not in self._verdicts:
            self._verdicts[host, port] = await maybe_deferred_to_future(
                deferToThread(_private, host, port, self._own))
        reason = self._verdicts[host, port]
        if reason:
            if host in self.trusted_names:
                reason += f" (the config names it on another port than {_port(parts)})"
            site = request.meta.get("cfmon_site")
            if site:
                Counters(self.crawler.stats).error(site, "private_address",
                                                   f"{request.url}: {reason}")
            logger.warning("refused %s: %s (set [crawl] allow_private_hosts = true to allow)",
                           request.url, reason)
            raise IgnoreRequest(f"refused {request.url}: {reason}")
        return None


def trusted_endpoints(config: Any) -> set[tuple[str, int]]:
    """(host, port) of every start and search URL of the config: what the user chose."""
    endpoints = set()
    for site in config.sites:
        for url in site.start_urls:
            parts = urlsplit(url)
            if parts.hostname:
                endpoints.add((parts.hostname.lower(), _port(parts)))
    return endpoints


def _port(parts: Any) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, in any of the forms that reach it:
    IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96),
    6to4 (2002:AABB:CCDD::/48) and Teredo (2001::/32)."""
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    packed = address.packed
    if packed[:12] == bytes(12) and int(address) > 1:  # ::a.b.c.d (not :: or ::1)
        return ipaddress.IPv4Address(packed[12:])
    if packed[:12] == bytes.fromhex("0064ff9b0000000000000000"):
        return ipaddress.IPv4Address(packed[12:])
    return None


def private_reason(text: str) -> str | None:
    """Why an IP address must not be fetched (private, loopback, link-local, ...), or
    None when it is public. IPv6 forms that embed an IPv4 address are judged by it."""
    address = ipaddress.ip_address(text.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            why = private_reason(str(inner))
            return f"{address} embeds {inner}: {why}" if why else None
    if not address.is_global or address.is_multicast:
        return "a private or local address"
    return None


def _addresses(endpoints: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """(address, port) of every configured endpoint."""
    found = set()
    for host, port in endpoints:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError:
            continue
        found |= {(info[4][0], port) for info in infos}
    if any(address in ("127.0.0.1", "::1") for address, _ in found):
        found |= {(a, p) for _, p in found for a in ("127.0.0.1", "::1")}  # "localhost": either
    return found


def _private(host: str, port: int, own: set[tuple[str, int]]) -> str | None:
    """Why ``host``:``port`` must not be fetched, or None when every address it has is
    public or is a configured site's own address on its own port."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return None  # unresolvable: the download fails on its own, with its own message
    for info in infos:
        address = info[4][0]
        if (address, port) in own:
            continue
        why = private_reason(address)
        if why:
            return f"{host} resolves to {address}, {why}"
    return None


class VettingResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, vetting what it answers: the address a connection
    uses is the address that was checked (no second lookup to rebind). Names the
    config chose may resolve anywhere; any other name must resolve to a public
    address, unless ``[crawl] allow_private_hosts``."""

    def __init__(self, reactor: Any, cache_size: int, timeout: float,
                 trusted_names: set[str] | None):
        super().__init__(reactor, cache_size, timeout)
        # The configured hosts and their addresses; None: anything may resolve anywhere.
        self.trusted_names = trusted_names

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> VettingResolver:
        settings = crawler.settings
        config = settings.get("CFMON_CONFIG")
        trusted = None if config is None or config.crawl.allow_private_hosts else \
            {host for host, _ in trusted_endpoints(config)}
        if trusted is not None:  # other names of the configured sites' own addresses
            trusted |= {address for address, _ in _addresses(trusted_endpoints(config))}
        cache_size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        return cls(reactor, cache_size, settings.getfloat("DNS_TIMEOUT"), trusted)

    def getHostByName(self, name: str, timeout: Any = ()) -> Any:  # noqa: N802 - Twisted's
        d = super().getHostByName(name, timeout)
        d.addCallback(self._vet, name)
        return d

    def _vet(self, address: str, name: str) -> str:
        if self.trusted_names is None or name.lower() in self.trusted_names or \
                address in self.trusted_names:
            return address
        why = private_reason(address)
        if why:
            logger.warning("refused a connection to %s: it resolved to %s, %s", name, address, why)
            raise DNSLookupError(f"{name} resolved to {address}, {why}: refused")
        return address


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
        if not counters.errors(site, "over_budget"):  # the first request past the budget
            counters.count(site, TRUNCATED)
            logger.warning("%s: over its budget (%s); its other requests are not made", site,
                           over)
        counters.error(site, "over_budget", f"{over}: {request.url} not fetched")
        raise IgnoreRequest(f"over the budget of site {site}: {over}")
