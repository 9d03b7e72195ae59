"""Scores every listing against the brand's catalog (see matchers.score)."""

from __future__ import annotations

from typing import Any

from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from crawler.catalog import build_catalog
from crawler.items import Listing
from crawler.stats import FLAGGED, Counters
from matchers.score import Catalog, ListingFacts, score_listing


class MatchPipeline:
    def __init__(self, catalog: Catalog, crawler: Any):
        self.catalog = catalog
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        config = crawler.settings.get("CFMON_CONFIG")
        if config is None:
            raise NotConfigured("MatchPipeline needs CFMON_CONFIG")
        return cls(build_catalog(config, crawler.settings.get("CFMON_DB")), crawler)

    async def process_item(self, item: Listing, spider: Any = None) -> Listing:
        if not isinstance(item, Listing):
            return item
        photos = ([(item.image_url, item.image)] if item.image is not None else []) + \
            list(item.extra_images)
        hashes = tuple(analysis.variants or analysis.hashes for _, analysis in photos)
        facts = ListingFacts(title=item.title, price=item.price, currency=item.currency,
                             seller=item.seller, site=item.site, image_hashes=hashes,
                             photo_matches=tuple(analysis.match for _, analysis in photos))
        # In the reactor's thread pool: a listing that is slow to match (a huge catalog,
        # a hostile title) must not pause the downloads of every other site.
        item.match = await maybe_deferred_to_future(
            deferToThread(score_listing, facts, self.catalog))
        if item.match.image_photo is not None:
            item.matched_image_url = photos[item.match.image_photo][0]
        if item.match.flagged:
            Counters(self.crawler.stats).count(item.site, FLAGGED)
        return item
