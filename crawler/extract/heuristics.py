"""Fallbacks from the visible page, for fields no selector or structured data gave.

Kept deliberately conservative: a wrong price is worse than no price, because the
matchers read a low price as a counterfeit signal.
"""

from __future__ import annotations

from typing import Any

from parsel import Selector

from crawler.extract.price import normalize_currency, parse_price
from crawler.extract.selectors import clean

# Class/id words of prices that are not the price a buyer pays now.
_NOT_CURRENT = ("old", "was", "list", "strike", "regular", "compare", "rrp", "msrp",
                "unit", "shipping", "saving", "save", "before")


def heuristic_fields(page: Selector, url: str, default_currency: str | None) -> dict[str, Any]:
    out: dict[str, tuple[Any, str]] = {}
    title = clean(" ".join(page.css("h1 ::text").getall())) or clean(page.css("title::text").get())
    if title:
        out["title"] = (title, "heuristic")
    price_text, currency_text = _price_text(page)
    if price_text:
        parsed = parse_price(price_text, default_currency)
        if parsed.amount is not None and parsed.amount > 0:
            currency = normalize_currency(currency_text, default_currency) or parsed.currency
            out["price"] = (parsed.amount, "heuristic")
            if currency:
                out["currency"] = (currency, "heuristic")
    return out


def _price_text(page: Selector) -> tuple[str | None, str | None]:
    itemprop = page.css("[itemprop=price]")
    if itemprop:
        node = itemprop[0]
        text = node.attrib.get("content") or clean(" ".join(node.css("::text").getall()))
        currency = page.css("[itemprop=priceCurrency]::attr(content)").get() or \
            clean(page.css("[itemprop=priceCurrency]::text").get())
        if text:
            return text, currency
    for prop in ("product:price:amount", "og:price:amount"):
        amount = page.css(f'meta[property="{prop}"]::attr(content)').get()
        if amount:
            currency = page.css(
                f'meta[property="{prop.replace("amount", "currency")}"]::attr(content)').get()
            return amount, currency
    for node in page.xpath(
        "//body//*[contains(translate(@class, 'PRICE', 'price'), 'price')"
        " or contains(translate(@id, 'PRICE', 'price'), 'price')]"
    ):
        marker = f"{node.attrib.get('class', '')} {node.attrib.get('id', '')}".lower()
        if any(word in marker for word in _NOT_CURRENT):
            continue
        if node.xpath("self::s or self::del or self::strike or "
                      "ancestor::*[self::s or self::del or self::strike]").get() == "1":
            continue
        if node.xpath(".//*[contains(translate(@class, 'PRICE', 'price'), 'price')]"):
            continue  # a container of prices; its inner elements say which is which
        text = clean(" ".join(node.css("::text").getall()))
        if text and len(text) <= 40 and parse_price(text).currency:
            return text, None
    return None, None
