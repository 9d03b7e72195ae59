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
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from lxml import etree
from parsel import Selector

from crawler.extract.price import parse_price
from crawler.extract.rules import DEFAULT, PriceRules
from crawler.extract.selectors import clean
from crawler.extract.structured import strip_site_name

# Class/id words of prices that are not the price a buyer pays now.
_NOT_CURRENT = re.compile(
    r"old|was|list|strike|regular|compare|rrp|msrp|unit|per-?kg|shipping|delivery|saving|"
    r"save|before|crossed|discount-?amount|installment|monthly|reference|former|original",
    re.I)
# Narrower: containers whose prices a buyer does not pay (checked on every element).
_OLD_PRICE = re.compile(
    r"(old|was|list|regular|compare|strike|crossed|former|rrp|msrp)[-_]?price|"
    r"price[-_]?(old|was|list|regular|before|strike)|strike|crossed|line-?through", re.I)
# Prices net of VAT, by class or id ("price-excluding-tax") or by the words beside them.
_NET_MARK = re.compile(r"excl|excluding|without-?(vat|tax)|ex-?vat|net-?price|price-?net|netto|"
                       r"tax-?free|hors-?tax", re.I)
_NET_TEXT = re.compile(
    r"\b(excl\.?|excluding|ex\.?|without|zzgl\.?|ohne|bez|hors|sans|sin|senza|exkl\.?)\s*"
    r"(vat|tax|taxes|mwst|ust|dph|tva|taxe|btw|iva|moms)\b|\bnetto\b|\bnet\s+of\s+(vat|tax)|"
    r"\bHT\b|без\s+НДС", re.I)
# Containers of other products: their prices are not this product's.
_CAROUSEL = re.compile(
    r"recommend|related|carousel|similar|also-?(bought|viewed|like)|upsell|up-sell|"
    r"cross-?sell|recently-?viewed|sponsored|you-?may|bundle|accessor", re.I)
_PRICE_MARK = re.compile(r"price|preis|prix|precio|prezzo|cena|цена|amount|cost", re.I)
_STRUCK = {"s", "del", "strike"}
_SKIP_TEXT_OF = {"script", "style", "noscript", "template", "head", "title", "option"}
_DIGIT = re.compile(r"\d")
# Meta tags that carry a price, in order of trust.
_PRICE_METAS = ("product:price:amount", "og:price:amount", "og:price", "product:sale_price:amount")
_BRAND_LABELS = re.compile(
    r"^(brand|marke|marca|marque|merk|märke|brand name|бренд|производитель|manufacturer|"
    r"hersteller|fabricante)\s*:?$", re.I)
_BYLINE = re.compile(r"^(?:brand|marke|marca|marque)\s*:\s*(.+)$|^visit the (.+?) store$", re.I)


def heuristic_fields(page: Selector, url: str, default_currency: str | None) -> dict[str, Any]:
    out: dict[str, tuple[Any, str]] = {}
    root = page.root
    h1 = title_anchor(root) if isinstance(root, etree._Element) else None
    title = clean(" ".join(_visible_text(h1))) if h1 is not None else None
    if not title:
        host = urlsplit(url).hostname or ""
        site = page.xpath('//meta[@property="og:site_name"]/@content').get()
        title = strip_site_name(clean(page.css("title::text").get()), site, host)
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


def meta_price(page: Selector, default_currency: str | None) -> tuple[Decimal, str | None] | None:
    """A price from meta tags (OpenGraph product:price, og:price) that extruct misses."""
    for prop in _PRICE_METAS:
        amount = page.xpath(f'//meta[@property="{prop}" or @name="{prop}"]/@content').get()
        if not amount:
            continue
        currency_prop = prop.replace(":amount", ":currency") if ":amount" in prop else None
        currency = page.xpath(f'//meta[@property="{currency_prop}"]/@content').get() \
            if currency_prop else None
        parsed = parse_price(f"{amount} {currency or ''}".strip(), default_currency)
        if parsed.amount:
            return parsed.amount, parsed.currency
    return None


def title_anchor(root: etree._Element) -> etree._Element | None:
    """The product title's element: the H1 with the most text (the first H1 is often
    the shop's logo)."""
    best, best_len = None, 0
    for h1 in root.iter("h1"):
        length = len(" ".join("".join(h1.itertext()).split()))
        if length > best_len:
            best, best_len = h1, length
    return best


@dataclass(frozen=True)
class Layout:
    """Where things are on a page, worked out once per page and rules: each element's
    position in document order, the title's, and the elements whose prices are not
    the product's (carousels, net of VAT)."""

    order: dict[etree._Element, int]
    anchor: int
    elsewhere: set[etree._Element]


def page_layout(page: Selector, rules: PriceRules = DEFAULT) -> Layout | None:
    root = page.root
    if not isinstance(root, etree._Element):
        return None
    order, anchor = _document_order(root)
    return Layout(order, anchor, _elsewhere(root, rules))


def _document_order(root: etree._Element) -> tuple[dict[etree._Element, int], int]:
    order = {el: i for i, el in enumerate(root.iter())}
    anchor = title_anchor(root)
    return order, order.get(anchor, 0) if anchor is not None else 0


def visible_price(page: Selector, default_currency: str | None,
                  rules: PriceRules = DEFAULT,
                  layout: Layout | None = None) -> tuple[Decimal, str | None] | None:
    """The price element nearest the product title, or None."""
    layout = layout or page_layout(page, rules)
    if layout is None:
        return None
    order, anchor, elsewhere = layout.order, layout.anchor, layout.elsewhere
    best: tuple[int, Decimal, str | None] | None = None
    for node in page.xpath("//body//*[@class or @id or @itemprop]"):
        el = node.root
        marker = f"{el.get('class', '')} {el.get('id', '')} {el.get('itemprop', '')}"
        if not _PRICE_MARK.search(marker) or _NOT_CURRENT.search(marker) or _is_struck(el) \
                or el in elsewhere:
            continue
        text = _own_price_text(el)
        if not text or len(text) > rules.max_price_text:
            continue
        if rules.skip_net and (_NET_MARK.search(marker) or _NET_TEXT.search(text)):
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
_AVAILABILITY_MARK = re.compile(r"avail|stock|sold-?out|inventory|verfueg|lieferbar", re.I)


def says_unavailable(page: Selector) -> str | None:
    """The words of the page's availability element when it says the item cannot be
    bought now, else None. Only elements marked as availability (class, id, itemprop)
    are read: a review or a description that mentions "sold out" is no such element."""
    for node in page.xpath("//body//*[@class or @id or @itemprop]"):
        el = node.root
        marker = f"{el.get('class', '')} {el.get('id', '')} {el.get('itemprop', '')}"
        if not _AVAILABILITY_MARK.search(marker):
            continue
        text = clean(" ".join(_visible_text(el)))
        if text and len(text) <= 80:
            found = _UNAVAILABLE_TEXT.search(text)
            if found:
                return found.group(0)
    return None


def _elsewhere(root: etree._Element, rules: PriceRules) -> set[etree._Element]:
    """Elements whose prices are not this product's price to a buyer: inside a
    carousel of other products, or labelled net of VAT (with the rules that say so)."""
    out: set[etree._Element] = set()
    if not (rules.skip_carousels or rules.skip_net):
        return out
    for el in root.xpath("//body//*[@class or @id]"):
        if el in out:
            continue
        marker = f"{el.get('class', '')} {el.get('id', '')}"
        if (rules.skip_carousels and _CAROUSEL.search(marker)) or \
                (rules.skip_net and _NET_MARK.search(marker)):
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
    if not top and (node.tag in _STRUCK or _NOT_CURRENT.search(
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


def shown_amounts(page: Selector, rules: PriceRules = DEFAULT,
                  layout: Layout | None = None) -> dict[Decimal, Shown]:
    """Every amount written in the page's visible text (however it is split over
    elements: "$" "37" "." "30"), mapped to its distance in document order from the
    product title. Old, list and struck-through prices do not count as shown, nor
    (with the rules that say so) net-of-VAT prices or prices in carousels of other
    products."""
    root = page.root
    shown: dict[Decimal, Shown] = {}
    layout = layout or page_layout(page, rules)
    if layout is None:
        return shown
    order, anchor, elsewhere = layout.order, layout.anchor, layout.elsewhere
    body = root.find(".//body")
    elements = list((body if body is not None else root).iter())
    # Text length under each element, children first: only short texts are joined
    # (joining every container's whole text costs a page's depth times its size).
    length: dict[etree._Element, int] = {}
    for el in reversed(elements):
        size = len(el.text or "") if isinstance(el.tag, str) else 0
        for child in el:
            size += length.get(child, 0) + len(child.tail or "")
        length[el] = size
    old: dict[etree._Element, bool] = {}
    net = rules.skip_net
    for el in elements:
        if not isinstance(el.tag, str) or el.tag in _SKIP_TEXT_OF:
            continue
        parent = el.getparent()
        marker = el.get("class") or el.get("id")
        old[el] = old.get(parent, False) or el.tag in _STRUCK or el in elsewhere or bool(
            marker and _OLD_PRICE.search(f"{el.get('class', '')} {el.get('id', '')}"))
        distance = abs(order[el] - anchor)
        if el.text and not old[el] and _DIGIT.search(el.text) and len(el.text) <= 80:
            _add_amount(shown, el.text, distance, net)
        if el.tail and not old.get(parent, False) and _DIGIT.search(el.tail) \
                and len(el.tail) <= 80:
            _add_amount(shown, el.tail, distance, net)
        if len(el) and len(el) <= 8 and not old[el] and length[el] <= rules.max_price_text:
            whole = "".join(el.itertext())
            if _DIGIT.search(whole) and len(whole) <= rules.max_price_text:
                _add_amount(shown, "".join(_current_text(el, elsewhere)), distance, net)
    return shown


def _current_text(el: etree._Element, elsewhere: set[etree._Element]) -> list[str]:
    """Text of ``el`` and its descendants, without struck, old or elsewhere prices: a
    price split over elements reads whole ("$" "37" ".30"), a struck one beside the
    sale price does not join it."""
    pieces = [el.text or ""]
    for child in el:
        if isinstance(child.tag, str) and child.tag not in _SKIP_TEXT_OF and \
                child.tag not in _STRUCK and child not in elsewhere and \
                not _OLD_PRICE.search(f"{child.get('class', '')} {child.get('id', '')}"):
            pieces.extend(_current_text(child, elsewhere))
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


def _brand(page: Selector) -> str | None:
    """A brand from a "Brand: X" byline or a "Brand | X" specification row."""
    for text in page.css("#bylineInfo::text, #brand::text, .po-brand .po-break-word::text").getall():
        match = _BYLINE.match(" ".join(text.split()))
        if match:
            return clean(match.group(1) or match.group(2))
    labels = ("//body//*[self::th or self::td or self::dt or self::span or self::div or "
              "self::label or self::b or self::strong][string-length(normalize-space(.)) < 24]")
    root = page.root
    if not isinstance(root, etree._Element):
        return None
    # lxml itself, not parsel: a page has thousands of short elements to look at.
    for node in root.xpath(labels):
        label = clean(" ".join(node.itertext()))
        if not label or not _BRAND_LABELS.match(label):
            continue
        sibling = node.getnext()
        while sibling is not None and not isinstance(sibling.tag, str):
            sibling = sibling.getnext()
        value = clean(" ".join(sibling.itertext())) if sibling is not None else None
        if value and len(value) <= 60 and not _BRAND_LABELS.match(value):
            return value
    return None
