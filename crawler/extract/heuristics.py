"""What the visible page says, for fields that selectors and structured data leave open,
and to check structured prices against what a buyer sees.

Price: elements marked as prices (class, id or itemprop containing "price"), minus
those marked as old, list, unit or shipping prices or struck through, ranked by their
distance (in document order) from the product title (the H1): the price a buyer
pays sits next to the title and the buy button, related products' prices do not.
Kept conservative: a wrong price is worse than none, because the matchers read a
low price as a counterfeit signal.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from lxml import etree

from crawler.extract.dom import BRAND_LABEL_WORDS, PageIndex
from crawler.extract.marks import (
    AVAILABILITY,
    CAROUSEL,
    NET,
    NET_FULL,
    NOT_CURRENT,
    NOT_CURRENT_WORDS,
    OLD,
    PRICE,
)
from crawler.extract.price import parse_price
from crawler.extract.rules import DEFAULT, PriceRules
from crawler.extract.selectors import clean
from crawler.extract.structured import strip_site_name

# Words beside a price that say it is net of VAT.
_NET_TEXT = re.compile(
    r"\b(excl\.?|excluding|ex\.?|without|zzgl\.?|ohne|bez|hors|sans|sin|senza|exkl\.?)\s*"
    r"(vat|tax|taxes|mwst|ust|dph|tva|taxe|btw|iva|moms)\b|\bnetto\b|\bnet\s+of\s+(vat|tax)|"
    r"\bHT\b|без\s+НДС", re.I)
_STRUCK = {"s", "del", "strike"}
_SKIP_TEXT_OF = {"script", "style", "noscript", "template", "head", "title", "option"}
_DIGIT = re.compile(r"\d")
# Meta tags that carry a price, in order of trust.
_PRICE_METAS = ("product:price:amount", "og:price:amount", "og:price", "product:sale_price:amount")
_BRAND_LABELS = re.compile(rf"^({'|'.join(BRAND_LABEL_WORDS)})\s*:?$", re.I)
_BYLINE = re.compile(r"^(?:brand|marke|marca|marque)\s*:\s*(.+)$|^visit the (.+?) store$", re.I)

def heuristic_fields(page: PageIndex, url: str, default_currency: str | None) -> dict[str, Any]:
    out: dict[str, tuple[Any, str]] = {}
    h1 = page.title
    title = clean(" ".join(_visible_text(h1))) if h1 is not None else None
    if not title:
        host = urlsplit(url).hostname or ""
        site = _meta(_metas(page), "og:site_name")
        written = next((t.text for t in page.root.iter("title") if t.text), None)
        title = strip_site_name(clean(written), site, host)
    if title:
        out["title"] = (title, "heuristic")
    brand = _brand(page)
    if brand:
        out["brand"] = (brand, "heuristic")
    return out


_HIDDEN = re.compile(r"\b(u-dspn|sr-only|visually-hidden|screen-reader-text|hidden|a-offscreen)\b")


def _visible_text(node: etree._Element) -> list[str]:
    """Text of ``node`` without elements hidden from the eye ("Details about" on eBay)."""
    if not isinstance(node.tag, str) or node.tag in _SKIP_TEXT_OF:
        return []
    style = (node.get("style") or "").replace(" ", "").lower()
    if _HIDDEN.search(node.get("class") or "") or "display:none" in style or \
            node.get("aria-hidden") == "true" or node.get("hidden") is not None:
        return []
    pieces = [node.text or ""]
    for child in node:
        pieces.extend(_visible_text(child))
        pieces.append(child.tail or "")
    return pieces


def meta_price(page: PageIndex,
               default_currency: str | None) -> tuple[Decimal, str | None] | None:
    """A price from meta tags (OpenGraph product:price, og:price) that extruct misses."""
    metas = _metas(page)
    for prop in _PRICE_METAS:
        amount = _meta(metas, prop, by_name=True)
        if not amount:
            continue
        currency_prop = prop.replace(":amount", ":currency") if ":amount" in prop else None
        currency = _meta(metas, currency_prop) if currency_prop else None
        parsed = parse_price(f"{amount} {currency or ''}".strip(), default_currency)
        if parsed.amount:
            return parsed.amount, parsed.currency
    return None


def _metas(page: PageIndex) -> list[tuple[str | None, str | None, str]]:
    """(property, name, content) of the page's meta tags that have a content."""
    return [(meta.get("property"), meta.get("name"), meta.get("content"))
            for meta in page.root.iter("meta") if meta.get("content") is not None]


def _meta(metas: list[tuple[str | None, str | None, str]], prop: str,
          by_name: bool = False) -> str | None:
    """The content of the first meta tag whose property (or, ``by_name``, name) is
    ``prop``."""
    return next((content for property_, name, content in metas
                 if property_ == prop or (by_name and name == prop)), None)


@dataclass(frozen=True)
class Layout:
    """A page with the elements whose prices are not the product's (carousels, net of
    VAT) under a set of rules."""

    page: PageIndex
    elsewhere: set[etree._Element]


def page_layout(page: PageIndex, rules: PriceRules = DEFAULT) -> Layout:
    return Layout(page, _elsewhere(page.marked, rules))


def visible_price(layout: Layout, default_currency: str | None,
                  rules: PriceRules = DEFAULT) -> tuple[Decimal, str | None] | None:
    """The price element nearest the product title, or None."""
    order, anchor, elsewhere = layout.page.order, layout.page.anchor, layout.elsewhere
    best: tuple[int, Decimal, str | None] | None = None
    for el, bits in layout.page.marked:
        if not bits & PRICE or bits & NOT_CURRENT or el in elsewhere or _is_struck(el):
            continue
        text = _own_price_text(el)
        if not text or len(text) > rules.max_price_text:
            continue
        if rules.skip_net and (bits & NET_FULL or _NET_TEXT.search(text)):
            continue
        parsed = parse_price(text, default_currency)
        has_currency = parse_price(text).currency is not None or el.get("itemprop") == "price"
        if parsed.amount is None or parsed.amount <= 0 or not has_currency:
            continue
        distance = abs(order.get(el, 0) - anchor)
        if rules.max_title_distance is not None and distance > rules.max_title_distance:
            continue
        if best is None or distance < best[0]:
            best = (distance, parsed.amount, parsed.currency)
    return (best[1], best[2]) if best else None


# What an availability element says of an item nobody can buy now.
_UNAVAILABLE_TEXT = re.compile(
    r"currently unavailable|out of stock|sold out|no longer available|not available|"
    r"discontinued|nicht (mehr )?verfügbar|ausverkauft|nicht lieferbar|agotado|"
    r"no disponible|épuisé|indisponible|rupture de stock|esaurito|non disponibile|"
    r"niedostępny|wyprzedany|uitverkocht|niet leverbaar|slutsåld|udsolgt|utsolgt|"
    r"нет в наличии|распродано|немає в наявності|stokta yok|tükendi|"
    r"在庫切れ|売り切れ|품절|缺货|售罄|hết hàng|สินค้าหมด|stok habis", re.I)


def says_unavailable(page: PageIndex) -> str | None:
    """The words of the page's availability element when it says the item cannot be
    bought now, else None. Only elements marked as availability (class, id, itemprop)
    are read: a review or a description that mentions "sold out" is no such element."""
    for el, bits in page.marked:
        if not bits & AVAILABILITY:
            continue
        text = clean(" ".join(_visible_text(el)))
        if text and len(text) <= 80:
            found = _UNAVAILABLE_TEXT.search(text)
            if found:
                return found.group(0)
    return None


def _elsewhere(marked: list[tuple[etree._Element, int]],
               rules: PriceRules) -> set[etree._Element]:
    """Elements whose prices are not this product's price to a buyer: inside a
    carousel of other products, or labelled net of VAT (with the rules that say so)."""
    out: set[etree._Element] = set()
    wanted = (CAROUSEL if rules.skip_carousels else 0) | (NET if rules.skip_net else 0)
    for el, bits in marked:
        if bits & wanted and el not in out:
            out.update(el.iter())
    return out


def _own_price_text(el: etree._Element) -> str | None:
    """The element's text, leaving out nested old, list or struck prices."""
    if el.get("itemprop") == "price" and el.get("content"):
        return el.get("content")
    return clean(" ".join(_kept_text(el, top=True)))


def _kept_text(node: etree._Element, top: bool = False) -> list[str]:
    if not isinstance(node.tag, str) or node.tag in _SKIP_TEXT_OF:
        return []
    if not top and (node.tag in _STRUCK or NOT_CURRENT_WORDS.search(
            f"{node.get('class', '')} {node.get('id', '')}")):
        return []
    pieces = [node.text or ""]
    for child in node:
        pieces.extend(_kept_text(child))
        pieces.append(child.tail or "")  # the tail belongs to ``node``, kept with it
    return pieces


def _is_struck(el: etree._Element) -> bool:
    node = el
    while node is not None:
        if isinstance(node.tag, str) and node.tag in _STRUCK:
            return True
        node = node.getparent()
    return False


class Shown(NamedTuple):
    distance: int  # elements (document order) from the title
    currency: str | None  # the currency written with the amount, where one was
    amount: Decimal  # as written ("64.00", not "64")


def shown_amounts(layout: Layout, rules: PriceRules = DEFAULT,
                  amounts: Collection[Decimal] | None = None) -> dict[Decimal, Shown]:
    """Every amount written in the page's visible text (however it is split over
    elements: "$" "37" "." "30"), mapped to its distance in document order from the
    product title. Old, list and struck-through prices do not count as shown, nor
    (with the rules that say so) net-of-VAT prices or prices in carousels of other
    products.

    Read from the text nodes that hold a digit: each one alone (an element's text, or
    the text after an element), and each short element around it whole. With
    ``amounts``, only those are looked for: a text whose digits do not spell one of them
    is not parsed (most of a page's numbers are not prices).
    """
    page, elsewhere = layout.page, layout.elsewhere
    order, top, limit = page.order, page.body, rules.max_price_text
    old: dict[etree._Element, bool] = {}
    # (document position, 0 text / 1 text after / 2 whole element, text): applied in
    # the order a walk of the page meets them, so ties between equal distances resolve
    # the same way whichever text node led here.
    found: list[tuple[int, int, str]] = []
    climbed: set[etree._Element] = set()
    for owner, is_tail, text in page.digit_texts:
        container = owner.getparent() if is_tail else owner
        if isinstance(owner.tag, str) and owner.tag not in _SKIP_TEXT_OF and \
                len(text) <= 80 and not _is_old(container, page, elsewhere, old):
            found.append((order[owner], 1 if is_tail else 0, text))
        # (the text after a comment is read only with the element around it)
        el = container
        while el is not None and el not in climbed:
            climbed.add(el)
            size = 0
            for piece in el.itertext():
                size += len(piece)
                if size > limit:
                    break
            if size > limit:
                break  # an ancestor holds at least as much text
            if el.tag not in _SKIP_TEXT_OF and 1 <= len(el) <= 8 \
                    and not _is_old(el, page, elsewhere, old):
                whole = "".join(el.itertext())
                if _DIGIT.search(whole):
                    found.append((order[el], 2, "".join(_current_text(el, elsewhere, page.bits))))
            el = None if el is top else el.getparent()
    shown: dict[Decimal, Shown] = {}
    spelled = None if amounts is None else {_spelled(amount) for amount in amounts}
    for position, _, written in sorted(found, key=lambda f: f[:2]):
        if spelled is not None:
            digits = _NON_DIGITS.sub("", written)
            if not any(needle in digits for needle in spelled):
                continue
        _add_amount(shown, written, abs(position - page.anchor), rules.skip_net)
    return shown


_NON_DIGITS = re.compile(r"\D+")


def _spelled(amount: Decimal) -> str:
    """The digits any writing of ``amount`` holds in a row: 37.30 is written "37.30",
    "37,3" or "$37.30", and every one holds "373"."""
    return format(abs(amount).normalize(), "f").replace(".", "").lstrip("0") or "0"


def _is_old(el: etree._Element | None, page: PageIndex, elsewhere: set[etree._Element],
            old: dict[etree._Element, bool]) -> bool:
    """Whether prices inside ``el`` are not current: it or an ancestor up to the body
    is struck, marked as an old price or elsewhere. Script-like elements pass nothing
    on. Remembered per element in ``old``."""
    top, bits = page.body, page.bits
    chain = []
    while el is not None and el not in old:
        chain.append(el)
        if el is top:
            break
        el = el.getparent()
    value = old.get(el, False) if el is not None else False
    for node in reversed(chain):
        if not isinstance(node.tag, str) or node.tag in _SKIP_TEXT_OF:
            value = old[node] = False
            continue
        value = old[node] = value or node.tag in _STRUCK or node in elsewhere or \
            bool(bits.get(node, 0) & OLD)
    return value


def _current_text(el: etree._Element, elsewhere: set[etree._Element],
                  bits: dict[etree._Element, int]) -> list[str]:
    """Text of ``el`` and its descendants, without struck, old or elsewhere prices: a
    price split over elements reads whole ("$" "37" ".30"), a struck one beside the
    sale price does not join it."""
    pieces = [el.text or ""]
    for child in el:
        if isinstance(child.tag, str) and child.tag not in _SKIP_TEXT_OF and \
                child.tag not in _STRUCK and child not in elsewhere and \
                not bits.get(child, 0) & OLD:
            pieces.extend(_current_text(child, elsewhere, bits))
        pieces.append(child.tail or "")
    return pieces


def _add_amount(shown: dict[Decimal, Shown], text: str, distance: int, net: bool) -> None:
    if net and _NET_TEXT.search(text):
        return
    parsed = parse_price(text)
    if parsed.amount is not None and parsed.amount > 0:
        key = parsed.amount.normalize()
        before = shown.get(key)
        if before is None or distance < before.distance:
            currency = parsed.currency or (before.currency if before else None)
            shown[key] = Shown(distance, currency, parsed.amount)
        elif before.currency is None and parsed.currency:
            shown[key] = Shown(before.distance, parsed.currency, before.amount)


# "#bylineInfo::text, #brand::text, .po-brand .po-break-word::text" (Amazon's byline
# and its "Brand" row), without a walk of the page: id() is a lookup, and the rows are
# among the index's elements with a class.
_BYLINE_IDS = etree.XPath("id('bylineInfo')/text() | id('brand')/text()")
_ROW_VALUES = etree.XPath(
    ".//*[contains(concat(' ', normalize-space(@class), ' '), ' po-break-word ')]/text()")
_LABEL_TAGS = {"th", "td", "dt", "span", "div", "label", "b", "strong"}


def _brand(page: PageIndex) -> str | None:
    """A brand from a "Brand: X" byline or a "Brand | X" specification row."""
    texts = list(_BYLINE_IDS(page.root))
    for el, (classes, _, _) in page.attributed:
        if classes and "po-brand" in classes and "po-brand" in classes.split():
            texts.extend(_ROW_VALUES(el))
    for text in sorted(texts, key=lambda t: page.order[t.getparent()]):
        match = _BYLINE.match(" ".join(text.split()))
        if match:
            return clean(match.group(1) or match.group(2))
    # The elements that read as a label ("Brand:"), found from the short texts that do
    # and out to the outermost element around them that still does (th, td, dt, ...),
    # tried in document order: the next sibling holds the value.
    labels: set[etree._Element] = set()
    for owner, is_tail, text in page.label_texts:
        if not _BRAND_LABELS.match(" ".join(text.split())):
            continue
        el = owner.getparent() if is_tail else owner
        while el is not None and el is not page.body and isinstance(el.tag, str):
            label = clean(" ".join(el.itertext()))
            if not label or not _BRAND_LABELS.match(label):
                break
            if el.tag in _LABEL_TAGS:
                labels.add(el)
            el = el.getparent()
    for node in sorted(labels, key=page.order.__getitem__):
        sibling = node.getnext()
        while sibling is not None and not isinstance(sibling.tag, str):
            sibling = sibling.getnext()
        value = clean(" ".join(sibling.itertext())) if sibling is not None else None
        if value and len(value) <= 60 and not _BRAND_LABELS.match(value):
            return value
    return None
