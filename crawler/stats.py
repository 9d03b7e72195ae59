"""The crawl's counters: every stat name cfmon records, and what they add up to.

Scrapy's stats collector is a flat dict of names. cfmon counts per site under
``cfmon/sites/<site>/<key>`` and, for the crawl, under ``cfmon/<key>``; only this
module spells those names. Each error kind keeps its count and its first example
("DNS lookup failed: ... at https://img.example/1.jpg"), so the summary can say
what went wrong in words, not only how often.

``SiteTally`` reads one site's counters back at the end of a crawl and applies the
rules that depend on them: whether the crawl of the site was complete (only then
may unseen listings be called gone) and, when the site gave nothing usable, why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Counters of a site (``Counters.count``).
PAGES = "pages"  # results and product pages read
CARDS = "cards"  # listing cards found on results pages
LISTINGS = "listings"  # listings handed to the pipelines
RESULTS_FAILED = "results_failed"  # results pages that could not be fetched
PRODUCTS_FAILED = "products_failed"  # product pages not fetched (other than 404/410)
IMAGES_HASHED = "images_hashed"
IMAGES_FAILED = "images_failed"
MISSING_TITLE = "missing/title"
MISSING_PRICE = "missing/price"
TRUNCATED = "truncated"  # max_pages, a card limit or a budget cut the crawl of the site short
BLOCKED = "blocked"  # product pages that were a captcha, bot check or login wall
GONE = "gone"  # listing pages that answered 404/410

# Crawl-wide values (``Counters.crawl`` / stats collector).
RUN_ID = "cfmon/run_id"  # the runs.id of this crawl
MONITORS_FAILED = "cfmon/monitors/failed"  # names of the Spidermon monitors that failed
STORE_ERROR = "cfmon/store_error"  # why a write failed and the crawl stopped
STORE_FAILED = "database_error"  # the finish reason of a crawl stopped by a failed write
FLAGGED = "flagged"
STORED = "stored"
NEW = "new"
THROTTLED = "throttled"  # waits for Retry-After
IMAGES_UNCHANGED = "images/unchanged"  # 304 or same bytes: stored hashes reused
IMAGES_SAME_BYTES = "images/same_bytes"  # bytes analysed already at another URL: reused
IMAGES_IN_PROCESSES = "images/in_processes"  # photos analysed by worker processes
ANALYSIS_RESTARTS = "images/analysis_restarts"  # worker pools replaced after a crash

# Error kinds (``Counters.error``), as the summary names them.
ERRORS: dict[str, str] = {
    "results_fetch": "results pages failed",
    "product_fetch": "product pages failed",
    "image": "images failed",
    "not_html": "responses were not HTML pages",
    "no_listings": "results pages matched no listing card",
    "card": "listing cards could not be read",
    "card_without_url": "listing cards had no URL",
    "bad_field": "fields could not be read",
    "product_page": "product pages could not be read",
    "blocked": "product pages were block pages (captcha, bot check, login wall)",
    "over_budget": "requests not made: over the site's budget",
    "too_many_cards": "results pages had more cards than the limit",
    "redirect_loop": "redirect loops",
    "private_address": "requests refused (private address)",
}


def site_key(site: str, key: str) -> str:
    return f"cfmon/sites/{site}/{key}"


class Counters:
    """Counts into a Scrapy stats collector, for the crawl and for one site at once."""

    def __init__(self, stats: Any):
        self._stats = stats

    def count(self, site: str, key: str, n: int = 1) -> None:
        self._stats.inc_value(f"cfmon/{key}", n)
        self._stats.inc_value(site_key(site, key), n)

    def error(self, site: str, kind: str, example: str) -> None:
        """One error of ``kind`` (a key of ERRORS); the first example of each is kept."""
        assert kind in ERRORS, kind
        self.count(site, f"errors/{kind}")
        key = site_key(site, f"example/{kind}")
        if self._stats.get_value(key) is None:
            self._stats.set_value(key, example)

    def errors(self, site: str, kind: str) -> int:
        """How many errors of ``kind`` the site has had so far."""
        return int(self._stats.get_value(site_key(site, f"errors/{kind}"), 0) or 0)

    def crawl(self, key: str, n: int = 1) -> None:
        """A crawl-wide counter that belongs to no site (``cfmon/<key>``)."""
        self._stats.inc_value(f"cfmon/{key}", n)


@dataclass(frozen=True)
class ErrorCount:
    count: int
    example: str

    def describe(self, kind: str) -> str:
        return f"{self.count} {ERRORS.get(kind, kind)}: {self.example}"


@dataclass
class SiteTally:
    """What one crawl did on one site, read back from the stats."""

    site: str
    pages: int = 0
    cards: int = 0
    listings: int = 0
    results_failed: int = 0
    products_failed: int = 0
    images_hashed: int = 0
    images_failed: int = 0
    missing_title: int = 0
    truncated: int = 0
    blocked: int = 0
    errors: dict[str, ErrorCount] = field(default_factory=dict)

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any], site: str) -> SiteTally:
        def get(key: str) -> int:
            return int(stats.get(site_key(site, key), 0) or 0)

        errors = {kind: ErrorCount(get(f"errors/{kind}"),
                                   str(stats.get(site_key(site, f"example/{kind}"), "")))
                  for kind in ERRORS if get(f"errors/{kind}")}
        return cls(site=site, pages=get(PAGES), cards=get(CARDS), listings=get(LISTINGS),
                   results_failed=get(RESULTS_FAILED), products_failed=get(PRODUCTS_FAILED),
                   images_hashed=get(IMAGES_HASHED), images_failed=get(IMAGES_FAILED),
                   missing_title=get(MISSING_TITLE), truncated=get(TRUNCATED),
                   blocked=get(BLOCKED), errors=errors)

    @property
    def error_count(self) -> int:
        return sum(e.count for e in self.errors.values())

    def _example(self, *kinds: str) -> str:
        return next((self.errors[k].example for k in kinds if k in self.errors), "no detail")

    def failure(self) -> str | None:
        """Why the site gave nothing a reviewer can use, in a user's words; None if it did."""
        if self.listings == 0:
            if self.pages == 0:
                return (f"no page could be read ({self.results_failed} results pages failed: "
                        f"{self._example('results_fetch', 'not_html', 'private_address')})")
            if self.cards == 0:
                return f"selectors matched no listing on {self.pages} pages"
            if self.blocked:
                return (f"{self.cards} listing cards found, 0 product pages usable: "
                        f"{self.blocked} were block pages or showed no title, price or image "
                        f"({self._example('blocked')})")
            return (f"{self.cards} listing cards found, 0 product pages could be read "
                    f"({self._example('product_fetch', 'product_page', 'not_html')})")
        if self.missing_title * 2 > self.listings:
            return (f"{self.missing_title} of {self.listings} listings have no title: the "
                    "page markup has likely changed (check the site's title selector)")
        if self.images_failed and not self.images_hashed:
            return (f"{self.images_failed} images failed, none could be read, so no photo was "
                    f"matched ({self._example('image')})")
        return None

    def complete(self, finish_reason: str | None) -> bool:
        """Whether this crawl of the site may declare the listings it did not see gone.

        Only when it saw everything: the crawl finished, every results page was read
        (none failed, none cut off by max_pages, a card limit or a budget), and every
        listing page answered (a 500, 503, 403, timeout or block page may be the
        marketplace throttling us, or a seller faking a takedown; only 404/410 says a
        listing is gone). The store also marks a site incomplete when any of its
        listings could not be written.
        """
        return (finish_reason == "finished" and self.listings > 0 and not self.results_failed
                and not self.truncated and not self.products_failed and not self.blocked
                and "no_listings" not in self.errors)

    def as_json(self, finish_reason: str | None) -> dict[str, Any]:
        return {
            "pages": self.pages, "cards": self.cards, "listings": self.listings,
            "images": self.images_hashed, "images_failed": self.images_failed,
            "blocked": self.blocked,
            "errors": self.error_count,
            "error_kinds": {k: {"count": e.count, "example": e.example}
                            for k, e in self.errors.items()},
            "complete": self.complete(finish_reason),
            # A crawl stopped early (Ctrl-C, a budget) is incomplete, not a failed site.
            "failed": self.failure() if finish_reason == "finished" else None,
        }
