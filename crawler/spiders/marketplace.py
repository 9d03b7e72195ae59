"""The one generic spider: every site comes from the monitor config.

results page -> listing cards (site selectors) -> [product page] -> Listing item.
A page, card or field that cannot be read is logged with its URL, counted (see
crawler/stats.py) and skipped; the crawl goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import cached_property
from typing import Any

import scrapy
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response, TextResponse
from twisted.python.failure import Failure

from crawler.config import Config, Site
from crawler.evidence import Capture, capture_response
from crawler.extract.blocked import blocked_reason
from crawler.extract.dom import parse_page
from crawler.extract.page import Extracted, absolute_url, extract_card, extract_product
from crawler.extract.selectors import select, select_text
from crawler.items import GoneListing, Listing, SeenListing
from crawler.stats import (
    BLOCKED,
    CARDS,
    GONE,
    LISTINGS,
    MISSING_PRICE,
    MISSING_TITLE,
    PAGES,
    PRODUCTS_FAILED,
    RESULTS_FAILED,
    TRUNCATED,
    Counters,
)
from matchers.text import TITLE_LIMIT


class MarketplaceSpider(scrapy.Spider):
    name = "marketplace"

    def __init__(self, config: Config, sites: list[str] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.sites = [config.site(name) for name in sites] if sites else list(config.sites)
        # Listing URLs already emitted: a listing shown on two results pages (or for
        # two queries) is one listing.
        self._seen: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler, *args: Any, **kwargs: Any) -> MarketplaceSpider:
        config = kwargs.pop("config", None) or crawler.settings.get("CFMON_CONFIG")
        if config is None:
            raise NotConfigured("the marketplace spider needs CFMON_CONFIG (use `cfmon crawl`)")
        sites = kwargs.pop("sites", None) or crawler.settings.getlist("CFMON_SITES") or None
        spider = super().from_crawler(crawler, *args, config=config, sites=sites, **kwargs)
        return spider

    @cached_property
    def counters(self) -> Counters:
        # Not in from_crawler: Scrapy sets crawler.stats only when the crawl starts.
        return Counters(self.crawler.stats)

    async def start(self) -> AsyncIterator[Request]:
        for site in self.sites:
            for url in site.start_urls:
                yield self._results_request(url, site, page=1)

    def _results_request(self, url: str, site: Site, page: int) -> Request:
        return Request(url, callback=self.parse_results, errback=self.on_error,
                       cb_kwargs={"site": site, "page": page},
                       meta={"cfmon_site": site.name, "cfmon_kind": "results"})

    def parse_results(self, response: Response, site: Site, page: int) -> Iterator[Any]:
        if not self._is_page(response, site):
            return
        self.counters.count(site.name, PAGES)
        capture = capture_response(response)
        cards = select(response, site.results["listing"])
        if len(cards) > site.max_cards_per_page:
            self.logger.warning("%d listing cards at %s: reading the first %d (max_cards_per_page)",
                                len(cards), response.url, site.max_cards_per_page)
            self.counters.error(site.name, "too_many_cards",
                                f"{len(cards)} cards at {response.url}, limit "
                                f"{site.max_cards_per_page}")
            self.counters.count(site.name, TRUNCATED)
            cards = cards[: site.max_cards_per_page]
        self.counters.count(site.name, CARDS, len(cards))
        if not cards:
            self.logger.warning("no listings: selector %r matched nothing at %s",
                                site.results["listing"], response.url)
            self.counters.error(site.name, "no_listings",
                                f"selector {site.results['listing']!r} matched nothing at "
                                f"{response.url}")
        for position, card in enumerate(cards, 1):
            try:
                extracted = extract_card(card, site.results, response.url, site.currency,
                                         site.listing_path)
            except Exception as exc:
                self.logger.exception("listing card %d unreadable at %s", position, response.url)
                self.counters.error(site.name, "card", f"{exc} (card {position} at {response.url})")
                continue
            url = extracted.values.pop("url", None)
            if not url:
                self.logger.warning("listing card %d at %s has no URL (selector %r)",
                                    position, response.url, site.results["url"])
                self.counters.error(site.name, "card_without_url",
                                    f"selector {site.results['url']!r} found nothing in card "
                                    f"{position} at {response.url}")
                continue
            if url in self._seen:
                continue
            self._seen.add(url)
            if site.follows_product_pages:
                # Before the next results page (priority): the requests waiting in
                # the scheduler stay a page's worth instead of the whole site's.
                yield Request(url, callback=self.parse_product, errback=self.on_error,
                              priority=1,
                              cb_kwargs={"site": site, "card": extracted,
                                         "found_on": response.url},
                              meta={"cfmon_site": site.name, "cfmon_kind": "product"})
            else:
                yield self._listing(site, url, extracted, response.url, capture)

        next_query = site.results.get("next_page")
        if next_query:
            href = select_text(response, next_query, join=False)
            next_url = absolute_url(href, response.url) if href else None
            if next_url and next_url != response.url:
                if page < site.max_pages:
                    yield self._results_request(next_url, site, page + 1)
                else:
                    # Listings beyond max_pages were not seen: not a complete crawl, so
                    # none of the site's listings may be called gone this run.
                    self.counters.count(site.name, TRUNCATED)

    def parse_product(self, response: Response, site: Site, card: Extracted,
                      found_on: str) -> Iterator[Listing | SeenListing]:
        url = response.request.url if response.request else response.url
        if not self._is_page(response, site):
            yield SeenListing(site.name, url, "not an HTML page")
            return
        self.counters.count(site.name, PAGES)
        try:
            # One parse for extraction and for the block-page check below (Scrapy's
            # response.css would parse the page a second time).
            page = parse_page(response.text, response.url)
            extracted = extract_product(response.text, response.url, site.product,
                                        site.currency, page=page)
        except Exception as exc:
            self.logger.exception("product page unreadable at %s", response.url)
            self.counters.error(site.name, "product_page", f"{exc} at {response.url}")
            self.counters.count(site.name, PRODUCTS_FAILED)
            yield SeenListing(site.name, url, "unreadable page")
            return
        blocked = blocked_reason(page.css("title::text").get(),
                                 page.xpath("string(//h1[1])").get(), extracted, card)
        if blocked:
            # Not the listing: its stored data and evidence stand; it is still listed.
            self.logger.warning("blocked: %s at %s", blocked, response.url)
            self.counters.error(site.name, "blocked", f"{blocked} at {response.url}")
            self.counters.count(site.name, BLOCKED)
            yield SeenListing(site.name, url, blocked)
            return
        extracted.merge(card, "card")
        yield self._listing(site, url, extracted, found_on, capture_response(response))

    def _listing(self, site: Site, url: str, extracted: Extracted, found_on: str,
                 capture: Capture) -> Listing:
        for problem in extracted.unresolved_problems().values():
            self.logger.warning("%s at %s", problem, url)
            self.counters.error(site.name, "bad_field", f"{problem} at {url}")
        values = extracted.values
        for name, key in (("title", MISSING_TITLE), ("price", MISSING_PRICE)):
            if values.get(name) is None:
                self.logger.info("listing without %s at %s", name, url)
                self.counters.count(site.name, key)
        image = values.get("image")
        # The main photo first, then the others the page gives, a few at most.
        photos = list(dict.fromkeys(u for u in [image, *(values.get("images") or [])] if u))
        photos = photos[: self.crawler.settings.getint("CFMON_IMAGES_PER_LISTING")]
        self.counters.count(site.name, LISTINGS)
        title = values.get("title")
        return Listing(
            site=site.name,
            url=url,
            title=title[:TITLE_LIMIT] if title else title,  # a 1 MB "title" is a trap
            price=values.get("price"),
            currency=values.get("currency"),
            seller=values.get("seller"),
            brand=values.get("brand"),
            sku=values.get("sku"),
            availability=values.get("availability"),
            image_url=image,
            found_on=found_on,
            sources=dict(extracted.sources),
            image_urls=photos,
            captures=[capture],
        )

    def _is_page(self, response: Response, site: Site) -> bool:
        content_type = response.headers.get("Content-Type", b"").decode(errors="replace").lower()
        # Servers mislabel pages both ways: trust a declared HTML type, else the body,
        # which must open with markup ("%PDF", an image or JSON is not a page).
        declared_html = "html" in content_type or "xml" in content_type
        looks_html = response.body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")
        if not isinstance(response, TextResponse) or not (declared_html or looks_html):
            declared = response.headers.get("Content-Type", b"?").decode(errors="replace")
            self.logger.warning("not an HTML page (%s) at %s", declared, response.url)
            self.counters.error(site.name, "not_html", f"{declared} at {response.url}")
            if response.meta.get("cfmon_kind") == "results":
                self.counters.count(site.name, RESULTS_FAILED)
            else:
                self.counters.count(site.name, PRODUCTS_FAILED)
            return False
        return True

    def on_error(self, failure: Failure) -> Iterator[GoneListing | SeenListing]:
        request = failure.request  # type: ignore[attr-defined]
        site = request.meta.get("cfmon_site", "?")
        kind = request.meta.get("cfmon_kind", "page")
        response = getattr(failure.value, "response", None)
        what = f"HTTP {response.status}" if response is not None else \
            f"{type(failure.value).__name__}: {failure.getErrorMessage()}"
        if kind == "product" and response is not None and response.status in (404, 410):
            # The marketplace says the listing is no more: taken down.
            self.logger.info("listing gone (HTTP %s) at %s", response.status, request.url)
            self.counters.count(site, GONE)
            yield GoneListing(site=site, url=request.url, reason=f"HTTP {response.status}")
            return
        self.logger.warning("%s page failed (%s) at %s", kind, what, request.url)
        if kind == "results":
            self.counters.error(site, "results_fetch", f"{what} at {request.url}")
            self.counters.count(site, RESULTS_FAILED)
        else:
            self.counters.error(site, "product_fetch", f"{what} at {request.url}")
            self.counters.count(site, PRODUCTS_FAILED)
            # Its card was on this run's results page: still listed, whatever its page did.
            yield SeenListing(site, request.url, what)

