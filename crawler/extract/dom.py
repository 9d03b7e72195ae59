"""One walk over a parsed page, kept for every reader of the visible page.

libxml2 answers an XPath query at about a microsecond per node of the page, and a real
product page has thousands of nodes: the readers of the visible page (prices shown,
price elements, availability, brand labels, data-* prices) asked it six times, which
was most of a page's extraction time. One walk in Python collects what they all read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import count

import lxml.html
from lxml import etree
from parsel import Selector

from crawler.extract.marks import NO_KEY, Key, key_of, marks_of

_DIGIT = re.compile(r"\d")
# What a brand label says ("Brand:", "Marke"); heuristics.py reads the whole label,
# the walk keeps the texts that start with one of them.
BRAND_LABEL_WORDS = ("brand", "marke", "marca", "marque", "merk", "märke", "brand name",
                     "бренд", "производитель", "manufacturer", "hersteller", "fabricante")
_LABEL_START = re.compile(rf"\s*({'|'.join(BRAND_LABEL_WORDS)})", re.I)
# Attributes holding a price in a buy box (Magento's data-price-amount), in the order
# state.py reads them on one element.
DATA_PRICE_ATTRIBUTES = ("data-price", "data-price-amount", "data-product-price",
                         "data-sale-price", "data-final-price", "data-current-price",
                         "data-price-value")
_DATA_PRICE_SET = frozenset(DATA_PRICE_ATTRIBUTES)
# Searched with the prefix as written (a case-insensitive search of a whole page costs
# ~7 ms, a literal prefix ~0.5 ms); a page writing DATA- or Data- is searched whole.
_DATA_PRICE_NAMES = re.compile(
    rf"data-(?i:{'|'.join(name.removeprefix('data-') for name in DATA_PRICE_ATTRIBUTES)})")
_NO_TEXT = {"script", "style"}


@dataclass
class PageIndex:
    """What the readers of a page's visible part need, from one walk of its tree."""

    root: etree._Element
    # The body (the root when the page has none): what a buyer sees.
    body: etree._Element
    # Every node's position in document order, comments included.
    order: Positions
    # The product title's element (the longest H1) and its position.
    title: etree._Element | None
    anchor: int
    # Elements inside the body with a class, id or itemprop, with those values.
    attributed: list[tuple[etree._Element, Key]] = field(default_factory=list)
    # Those of them whose words mark something (marks.py), with their marks, in
    # document order; and the same marks by element, the body's own included.
    marked: list[tuple[etree._Element, int]] = field(default_factory=list)
    bits: dict[etree._Element, int] = field(default_factory=dict)
    # Text nodes of the body with a digit, outside scripts and styles:
    # (element, is its tail, text).
    digit_texts: list[tuple[etree._Element, bool, str]] = field(default_factory=list)
    # Text nodes of the body that start like a brand label ("Brand:"), in the same form.
    label_texts: list[tuple[etree._Element, bool, str]] = field(default_factory=list)
    # Elements of the body with a data-* price attribute (Magento's data-price-amount).
    priced: list[etree._Element] = field(default_factory=list)


class Positions(dict):
    """Nodes' positions in document order. The walk of the body numbers its nodes as it
    meets them; a node outside the body (the head, a byline found by id) is numbered
    when first asked for, by a walk of the whole page."""

    def __init__(self, root: etree._Element):
        super().__init__()
        self.root = root
        self.whole = False

    def __missing__(self, node: etree._Element) -> int:
        if not self.whole:
            self.whole = True
            self.update(zip(self.root.iter(), count()))
            if node in self:
                return self[node]
        raise KeyError(node)


def index_page(root: etree._Element, html: str | None = None) -> PageIndex:
    """Walk the page once. Nodes met from here on are lxml's plain elements: lxml.html
    looks up a Python class for every node Python touches (about a microsecond each,
    thousands of nodes a page), and nothing after structured data needs that class."""
    parser = root.getroottree().parser
    if parser is not None:
        parser.set_element_class_lookup()
    body = root.find("body")
    if body is None:
        body = root.find(".//body")
    top = body if body is not None else root
    order = Positions(root)
    # The body's nodes follow each other in document order from the body's position.
    position = 0
    for position, node in enumerate(root.iter()):  # noqa: B007 (used after the loop)
        if node is top:
            break
    title = title_anchor(root)
    index = PageIndex(root, top, order, title, 0)
    digits, labels, priced = index.digit_texts, index.label_texts, index.priced
    keyed = index.attributed
    # Only a page that writes one of the names can have a data-* price attribute.
    data_prices = html is None or _DATA_PRICE_NAMES.search(html) is not None or \
        "DATA-" in html or "Data-" in html
    digit, label = _DIGIT.search, _LABEL_START.match
    # The hottest loop of extraction: a real page has thousands of nodes.
    for el in top.iter():
        order[el] = position
        position += 1
        tag = el.tag
        if tag.__class__ is str:
            if el is not top:
                get = el.get  # (key_of, inlined: a call per node costs ~10% here)
                key = (get("class"), get("id"), get("itemprop"))
                if key != NO_KEY:
                    keyed.append((el, key))
                if data_prices and not _DATA_PRICE_SET.isdisjoint(el.keys()):
                    priced.append(el)
            # (a script's text is not read: an inline state script can be 100 KB,
            # and lxml makes a Python string of all of it)
            text = el.text if tag not in _NO_TEXT else None
            if text and not text.isspace():
                if digit(text):
                    digits.append((el, False, text))
                elif label(text):
                    labels.append((el, False, text))
            if el is top:
                continue  # the text after the body is not in it
        tail = el.tail
        if tail and not tail.isspace():
            if digit(tail):
                digits.append((el, True, tail))
            elif label(tail):
                labels.append((el, True, tail))
    own = key_of(top)
    bits = marks_of({key for _, key in keyed} | ({own} if own else set()))
    index.marked.extend((el, found) for el, key in keyed if (found := bits[key]))
    index.bits.update(index.marked)
    if own and bits[own]:
        index.bits[top] = bits[own]
    if title is not None:
        index.anchor = order[title]
    return index


def parse_page(html: str, url: str | None = None) -> Selector:
    """``html`` parsed as parsel parses it (lxml.html, for extruct's readers, which
    use what lxml.html's elements add); index_page then turns that off."""
    # (as parsel does; each copy of a real page costs ~0.3 ms, so only when needed)
    if "\x00" in html:
        html = html.replace("\x00", "")
    if html[:1].isspace() or html[-1:].isspace():
        html = html.strip()
    body = html.encode("utf-8") or b"<html/>"
    # a parser per page: index_page changes it, and lxml parsers are not for sharing
    # between threads
    parser = lxml.html.HTMLParser(recover=True, encoding="utf-8", huge_tree=True)
    try:
        root = etree.fromstring(body, parser=parser, base_url=url)
    except etree.XMLSyntaxError:
        root = None
    if root is None:  # nothing but a comment, or unparseable
        root = etree.fromstring(b"<html/>", parser=parser, base_url=url)
    return Selector(root=root, type="html", base_url=url)


def title_anchor(root: etree._Element) -> etree._Element | None:
    """The product title's element: the H1 with the most text (the first H1 is often
    the shop's logo)."""
    best, best_len = None, 0
    for h1 in root.iter("h1"):
        length = len(" ".join("".join(h1.itertext()).split()))
        if length > best_len:
            best, best_len = h1, length
    return best
