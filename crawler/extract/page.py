"""Listing fields from a results card or a product page, each with its source.

Sources: ``selector`` (the site's config), ``jsonld``, ``microdata``,
``opengraph``, ``card`` (the results page), ``heuristic`` (the visible page).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin, urlsplit

from parsel import Selector

from crawler.extract.heuristics import heuristic_fields
from crawler.extract.price import normalize_currency, parse_price
from crawler.extract.selectors import clean, select_text
from crawler.extract.structured import read_structured, structured_fields

FIELDS = ("title", "price", "currency", "brand", "sku", "image", "seller", "availability")
# Fields whose selector yields one value (an attribute); the others join text pieces.
_SINGLE_VALUE = {"url", "image", "next_page"}
_SRCSET_ITEM = re.compile(r"(\S+)\s+(\d+(?:\.\d+)?)([wx])")


@dataclass
class Extracted:
    """What one page (or card) says about a listing."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    # Field -> what could not be read ("price 'call us' has no readable amount").
    problems: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def offer(self, name: str, value: Any, source: str) -> None:
        """Set ``name`` unless a more trusted source already did."""
        if value in (None, "") or self.values.get(name) not in (None, ""):
            return
        self.values[name] = value
        self.sources[name] = source

    def merge(self, other: Extracted, source: str) -> None:
        """Fill fields still missing from ``other``, recorded as coming from ``source``."""
        for name, value in other.values.items():
            self.offer(name, value, source)
        for name, problem in other.problems.items():
            self.problems.setdefault(name, problem)

    def unresolved_problems(self) -> dict[str, str]:
        """Problems with fields that no other source filled in."""
        return {k: v for k, v in self.problems.items() if self.values.get(k) is None}

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in FIELDS:
            value = self.values.get(name)
            out[name] = format(value, "f") if isinstance(value, Decimal) else value
        out["sources"] = {k: self.sources[k] for k in FIELDS if k in self.sources}
        return out


def extract_card(card: Selector, selectors: dict[str, str], page_url: str,
                 default_currency: str | None = None) -> Extracted:
    """One listing card on a results page, read with the site's ``[results]`` selectors."""
    out = Extracted()
    raw = {name: select_text(card, q, join=name not in _SINGLE_VALUE)
           for name, q in selectors.items() if name not in ("listing", "next_page")}
    if raw.get("url"):
        out.offer("url", absolute_url(raw["url"], page_url), "selector")
    if raw.get("image"):
        out.offer("image", image_url(raw["image"], page_url), "selector")
    for name in ("title", "seller"):
        out.offer(name, clean(raw.get(name)), "selector")
    _offer_price(out, raw.get("price"), None, default_currency, "selector")
    return out


def extract_product(html: str, url: str, selectors: dict[str, str] | None = None,
                    default_currency: str | None = None) -> Extracted:
    """A product page: the site's selectors, then structured data, then heuristics."""
    page = Selector(text=html, base_url=url)
    out = Extracted()
    selectors = selectors or {}
    raw = {name: select_text(page, q, join=name not in _SINGLE_VALUE)
           for name, q in selectors.items()}
    for name in ("title", "brand", "sku", "seller", "availability"):
        out.offer(name, clean(raw.get(name)), "selector")
    if raw.get("image"):
        out.offer("image", image_url(raw["image"], url), "selector")
    _offer_price(out, raw.get("price"), raw.get("currency"), default_currency, "selector")

    structured = structured_fields(read_structured(html, url))
    for name, (value, source) in structured.items():
        if name == "image":
            value = image_url(value, url)
        if name == "currency":
            continue  # taken together with its price, never alone
        if name == "price" and value is not None and out.values.get("price") is None:
            currency = structured.get("currency", (None, ""))[0] or default_currency
            out.offer("currency", currency, source)
        out.offer(name, value, source)

    heuristic = heuristic_fields(page, url, default_currency)
    if out.values.get("price") is None and "price" in heuristic:
        out.offer("currency", heuristic.get("currency", (None, ""))[0], "heuristic")
    for name, (value, source) in heuristic.items():
        if name != "currency":
            out.offer(name, value, source)
    return out


def _offer_price(out: Extracted, price_text: str | None, currency_text: str | None,
                 default_currency: str | None, source: str) -> None:
    if not price_text:
        return
    parsed = parse_price(price_text, default_currency)
    if parsed.amount is None:
        out.problems["price"] = f"price {price_text!r} has no readable amount"
        return
    currency = normalize_currency(currency_text, default_currency) if currency_text else None
    out.offer("price", parsed.amount, source)
    out.offer("currency", currency or parsed.currency, source)


def absolute_url(value: str, base: str) -> str | None:
    """Resolve ``value`` against ``base``; drop fragments; only http(s) survives."""
    url = urljoin(base, value.strip())
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts._replace(fragment="").geturl()


def image_url(value: str, base: str) -> str | None:
    """An image URL from a src, data-src or srcset value (largest candidate wins)."""
    value = value.strip()
    if value.startswith("data:"):
        return None  # inline placeholder of a lazy-loading image
    candidates = _SRCSET_ITEM.findall(value)
    if candidates:
        value = max(candidates, key=lambda c: float(c[1]))[0]
    elif "," in value and " " in value:
        value = value.split(",")[0].split()[0]
    return absolute_url(value, base)
