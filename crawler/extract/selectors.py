"""User-written selectors: CSS by default, XPath with an ``xpath:`` prefix.

Values come back whitespace-normalized. A selector that ends on elements (no
``::text`` / ``::attr()`` / ``text()`` / ``@attr``) yields the elements' whole text,
so ``span.price`` works as well as ``span.price::text`` for prices split in spans;
the text of different elements is kept apart by a space, except in prices.
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


def select_all(node: Selector, query: str, separator: str = " ") -> list[str]:
    """Every non-empty value the selector yields, whitespace-normalized. An element's
    value is its text nodes joined by ``separator``: a space keeps a badge apart from
    the title beside it ("New listing" + "iPad 4" must not read "New listingiPad 4");
    prices pass "" so that ``$<b>37</b><i>.30</i>`` reads "$37.30"."""
    values = []
    for match in select(node, query):
        if isinstance(match.root, str):
            value = match.root
        elif separator:
            value = element_text(match.root, separator)
        else:
            value = match.xpath("string()").get()
        value = clean(value)
        if value:
            values.append(value)
    return values


# Elements that style part of a word ("Nord<b>vik</b>", a highlighted search term):
# their edges join text; the edges of every other element separate it.
_INLINE = frozenset({"a", "abbr", "b", "bdi", "bdo", "cite", "code", "del", "dfn", "em",
                     "font", "i", "ins", "kbd", "mark", "q", "s", "samp", "small", "strike",
                     "strong", "sub", "sup", "u", "var", "wbr"})
_SKIPPED = frozenset({"script", "style", "template", "noscript"})


def element_text(element: etree._Element, separator: str = " ") -> str:
    """The element's visible text; text on either side of a child element's edge is
    joined by ``separator``, unless the child is an inline style element."""
    pieces: list[str] = []

    def walk(node: etree._Element) -> None:
        if node.text:
            pieces.append(node.text)
        for child in node:
            if isinstance(child.tag, str) and child.tag.lower() not in _SKIPPED:
                edge = "" if child.tag.lower() in _INLINE else separator
                pieces.append(edge)
                walk(child)
                pieces.append(edge)
            if child.tail:
                pieces.append(child.tail)

    walk(element)
    return "".join(pieces)


def select_text(node: Selector, query: str, *, join: bool, separator: str = " ") -> str | None:
    """The selector's value. With ``join``, the element's whole text, its pieces joined
    by ``separator``; without it, the first value (an href, a src)."""
    if join:
        query = _whole_text(query)
    values = select_all(node, query, separator)
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
