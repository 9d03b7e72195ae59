"""Prices a page keeps outside schema.org: in its inline application state (Next.js
``__NEXT_DATA__``, ``window.__INITIAL_STATE__``, Nuxt, Apollo, ``dataLayer``/gtag
ecommerce pushes, Shopify's product JSON) and in ``data-*`` attributes of its buy box.

These are candidates only. State holds every price the application knows (regular,
sale, per variant, recommended products, cents), so page.py takes one only when the
page shows that amount to the buyer, like every other source. JavaScript object
literals are parsed with chompjs, not with regexes over the script text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import chompjs

from crawler.extract.dom import DATA_PRICE_ATTRIBUTES, PageIndex
from crawler.extract.price import AmountError, normalize_currency, parse_amount
from crawler.extract.structured import Offer

# Keys of the price a buyer pays now ("price", "salePrice", "final_price", "amount" in
# a price object); regular, list, compare-at and unit prices are not.
_PRICE_KEY = re.compile(
    r"^(price|(sale|final|current|selling|offer|special|discounted|actual|display|"
    r"promo|deal|now|your|min|low|from)_?price|price_?(amount|value|now|incl\w*|gross))$",
    re.I)
_AMOUNT_KEYS = ("value", "amount", "raw", "price", "centAmount", "cents")
_CURRENCY_KEYS = ("currency", "currencyCode", "currency_code", "priceCurrency",
                  "currencyIso", "currencyISO")
# A script worth parsing is application state (a JSON script, or one of the names
# frameworks and analytics give their state) and names a price key.
# Searched as plain words first: one regex of them all tried every pattern at every
# position of every script's start (~1 ms a real page).
_STATE_WORDS = ("__NEXT_DATA__", "__NUXT__", "__INITIAL_STATE__", "__PRELOADED_STATE__",
                "__APOLLO_STATE__", "__STATE__", "__DATA__", "dataLayer", "gtag(",
                "ShopifyAnalytics", "digitalData", "utag_data")
_STATE_ASSIGNED = (("var meta", re.compile(r"var meta\s*=")),
                   ("window.", re.compile(r"window\.\w+\s*=\s*[{\[]")))
_HAS_PRICE = re.compile(r"""price\w*["']?\s*[:=]""", re.I)
# Bounds: state can be megabytes; a page is read in tens of milliseconds.
MAX_SCRIPT = 2_000_000
MAX_NODES = 100_000


def state_offers(page: PageIndex) -> list[Offer]:
    """Priced candidates from inline state scripts, in document order."""
    offers: list[Offer] = []
    for script in page.root.iter("script"):
        if script.get("src") is not None:
            continue
        kind = (script.get("type") or "").lower()
        if "ld+json" in kind or kind.startswith("text/template"):
            continue  # JSON-LD is read by structured.py; templates hold no data
        text = "".join(script.itertext())
        if len(text) > MAX_SCRIPT:
            continue
        if kind != "application/json" and not _is_state(text[:5000]) \
                and script.get("id") != "__NEXT_DATA__":
            continue  # a library or a widget's code, not the page's state
        if not _HAS_PRICE.search(text):
            continue
        for value in _parse(text, kind):
            offers.extend(_walk(value))
    return offers


def _is_state(start: str) -> bool:
    """Whether a script's start names application state (a framework's or analytics')."""
    return any(word in start for word in _STATE_WORDS) or any(
        word in start and pattern.search(start) for word, pattern in _STATE_ASSIGNED)


def attribute_offers(page: PageIndex) -> list[Offer]:
    """Priced candidates from data-* attributes (Magento's data-price-amount, ...)."""
    offers = []
    for node in page.priced:
        for name in DATA_PRICE_ATTRIBUTES:
            amount = _amount(node.get(name))
            if amount is not None:
                currency = normalize_currency(node.get("data-currency")
                                              or node.get("data-price-currency"))
                offers.append(Offer(amount, currency))
    return offers


def _parse(text: str, kind: str) -> Iterator[Any]:
    stripped = text.strip()
    if kind == "application/json" or stripped.startswith(("{", "[")):
        try:
            yield json.loads(stripped)
            return
        except ValueError:
            pass
    try:
        yield from chompjs.parse_js_objects(text)
    except (ValueError, RecursionError):
        return


def _walk(root: Any) -> Iterator[Offer]:
    stack, seen = [root], 0
    while stack and seen < MAX_NODES:
        node = stack.pop()
        seen += 1
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        currency = _currency(node)
        for key, value in node.items():
            if isinstance(key, str) and _PRICE_KEY.match(key):
                yield from _offers_of(value, currency)
            if isinstance(value, (dict, list)):
                stack.append(value)


def _offers_of(value: Any, currency: str | None) -> Iterator[Offer]:
    if isinstance(value, dict):
        currency = _currency(value) or currency
        value = next((value[k] for k in _AMOUNT_KEYS if k in value), None)
    amount = _amount(value)
    if amount is None:
        return
    yield Offer(amount, currency)
    # Shopify and many APIs count in cents: the page decides which one it shows.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 100:
        yield Offer(amount / 100, currency)


def _currency(node: dict) -> str | None:
    for key in _CURRENCY_KEYS:
        value = node.get(key)
        if isinstance(value, str):
            found = normalize_currency(value)
            if found:
                return found
    return None


def _amount(raw: Any) -> Decimal | None:
    if raw is None or isinstance(raw, bool) or isinstance(raw, (dict, list)):
        return None
    try:
        amount = parse_amount(raw if isinstance(raw, (int, float)) else str(raw))
    except AmountError:
        return None
    return amount if amount is not None and amount > 0 else None
