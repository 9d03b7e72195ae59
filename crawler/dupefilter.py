"""Scrapy's duplicate filter, plus a warning when what it drops is a redirect loop.

A redirect back to a page already fetched is dropped by the filter, silently; for a
monitor that runs unattended, a listing page that loops is a fault worth a line in
the log and a count in the run's stats.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy.dupefilters import RFPDupeFilter
from scrapy.http import Request

from crawler.stats import Counters

logger = logging.getLogger(__name__)


class LoopReportingDupeFilter(RFPDupeFilter):
    @classmethod
    def from_crawler(cls, crawler: Any) -> LoopReportingDupeFilter:
        dupefilter = super().from_crawler(crawler)
        dupefilter.crawler = crawler
        return dupefilter

    def log(self, request: Request, spider: Any) -> None:
        chain = request.meta.get("redirect_urls")
        if chain:
            logger.warning("redirect loop: %s redirects back to %s; skipped", chain[0],
                           request.url)
            crawler = getattr(self, "crawler", None)
            site = request.meta.get("cfmon_site")
            if crawler is not None and site:
                Counters(crawler.stats).error(site, "redirect_loop",
                                              f"{chain[0]} redirects back to {request.url}")
            return
        super().log(request, spider)
