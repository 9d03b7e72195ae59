"""User-written selectors: CSS by default, XPath with an ``xpath:`` prefix.

Values come back whitespace-normalized. A selector that ends on elements (no
``::text`` / ``::attr()`` / ``text()`` / ``@attr``) yields the elements' whole text,
so ``span.price`` works as well as ``span.price::text`` for prices split in spans.
"""

from __future__ import annotations

import re
from functools import lru_cache

from cssselect import SelectorError
from lxml import etree
from parsel import Selector, SelectorList
from parsel.csstranslator import css2xpath

XPATH_PREFIX = "xpath:"
_SPACE = re.compile(r"\s+")


class SelectorSyntaxError(ValueError):
    """A selector in the config is not valid CSS or XPath."""


@lru_cache(maxsize=512)
def compile_selector(query: str) -> str:
    """Return the XPath for ``query``; raise SelectorSyntaxError naming the problem."""
    if query.startswith(XPATH_PREFIX):
        xpath = query[len(XPATH_PREFIX):].strip()
        try:
            etree.XPath(xpath)
        except etree.XPathSyntaxError as exc:
            raise SelectorSyntaxError(f"invalid XPath {xpath!r}: {exc}") from None
        return xpath
    try:
        return css2xpath(query)
    except SelectorError as exc:
        raise SelectorSyntaxError(
            f"invalid CSS selector {query!r}: {exc} (prefix XPath with 'xpath:')"
        ) from None


def select(node: Selector, query: str) -> SelectorList:
    return node.xpath(compile_selector(query))


def select_all(node: Selector, query: str) -> list[str]:
    """Every non-empty value the selector yields, whitespace-normalized."""
    values = []
    for match in select(node, query):
        value = match.root if isinstance(match.root, str) else match.xpath("string()").get()
        value = clean(value)
        if value:
            values.append(value)
    return values


def select_text(node: Selector, query: str, *, join: bool) -> str | None:
    """The selector's value. With ``join``, text pieces are joined so that a price
    split over spans (``$`` ``37`` ``.30``) reads whole; without it, the first value
    (an href, a src)."""
    if join:
        query = _whole_text(query)
    values = select_all(node, query)
    if not values:
        return None
    return clean(" ".join(values)) if join else values[0]


def _whole_text(query: str) -> str:
    """``a.title::text`` stops at nested tags ("Nordvik <b>Trail</b> Backpack" would
    lose "Trail"); for text fields, read the element's whole text instead. XPath and
    explicit descendant text (``a.title ::text``) are taken as written."""
    if query.startswith(XPATH_PREFIX) or not query.endswith("::text"):
        return query
    element = query[: -len("::text")]
    if not element or element.endswith((" ", ">", "+", "~", "*")):
        return query
    return element


def clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = _SPACE.sub(" ", str(value)).strip()
    return value or None
