"""Product fields from a page's structured data, read with extruct.

JSON-LD first, then microdata, then OpenGraph: JSON-LD is what marketplaces write
for search engines and is the most complete. Shapes handled: ``@graph``, lists of
nodes, ``mainEntity``, a Product nested in another node, offers as one Offer, a
list, an AggregateOffer (``lowPrice``), or a ``priceSpecification``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import extruct
from extruct.utils import parse_html

from crawler.extract.price import AmountError, normalize_currency, parse_amount

logger = logging.getLogger(__name__)

SYNTAXES = ("json-ld", "microdata", "opengraph")
# How pages write it (a case-insensitive search of a real page costs ~7 ms).
_ITEMSCOPE = ("itemscope", "itemScope", "ITEMSCOPE", "ItemScope")
SOURCE_NAMES = {"json-ld": "jsonld", "microdata": "microdata", "opengraph": "opengraph"}


@dataclass(frozen=True)
class Offer:
    price: Decimal
    currency: str | None
    seller: str | None = None


def read_structured(html: str, url: str, tree: Any = None) -> dict[str, list[Any]]:
    """extruct's uniform output; a syntax that fails to parse is skipped, not fatal.

    ``tree``: the page already parsed by lxml (a parsel Selector's root), read as it is
    rather than parsed again (a real page: ~7 ms a parse)."""
    out: dict[str, list[Any]] = {}
    if tree is None:
        try:
            tree = parse_html(html, encoding="utf-8")  # once for the three syntaxes
        except Exception:  # extruct's own parse failing: let each syntax try the text
            tree = html
    for syntax in SYNTAXES:
        if syntax == "microdata" and not any(word in html for word in _ITEMSCOPE):
            out[syntax] = []  # extruct's search of the tree costs ~2 ms a real page
            continue
        try:
            data = extruct.extract(tree, base_url=url, syntaxes=[syntax], uniform=True,
                                   errors="ignore")
        except Exception as exc:  # extruct raises many kinds on malformed markup
            logger.warning("structured data (%s) unreadable at %s: %s", syntax, url, exc)
            continue
        out[syntax] = data.get(syntax) or []
    return out


def structured_fields(data: dict[str, list[Any]]) -> dict[str, tuple[Any, str]]:
    """Map field name -> (value, source) from extruct output.

    Fields: title, brand, sku, image, seller, availability (prices: price_candidates).
    The first source that has a field wins, in SYNTAXES order.
    """
    fields: dict[str, tuple[Any, str]] = {}
    for syntax in ("json-ld", "microdata"):
        source = SOURCE_NAMES[syntax]
        for product in _products(data.get(syntax, [])):
            for name, value in _product_fields(product).items():
                if value not in (None, "") and name not in fields:
                    fields[name] = (value, source)
            if "title" in fields:
                break
    for og in data.get("opengraph", []):
        for name, value in _opengraph_fields(og).items():
            if name in ("price", "currency"):
                continue  # a price candidate like the others (price_candidates)
            if value not in (None, "") and name not in fields:
                fields[name] = (value, "opengraph")
    return fields


def price_candidates(data: dict[str, list[Any]]) -> list[tuple[Offer, str]]:
    """Every priced offer in the structured data with its source, most trusted first."""
    found: list[tuple[Offer, str]] = []
    for syntax in ("json-ld", "microdata"):
        for product in _products(data.get(syntax, [])):
            offers = sorted(_offers(_offer_field(product)), key=lambda o: o.price)
            found.extend((offer, SOURCE_NAMES[syntax]) for offer in offers)
    for og in data.get("opengraph", []):
        fields = _opengraph_fields(og)
        if fields["price"]:
            found.append((Offer(fields["price"], fields["currency"]), "opengraph"))
    return found


def _products(nodes: Any) -> Iterator[dict]:
    """Every schema.org Product node, however deeply nested."""
    if isinstance(nodes, list):
        for node in nodes:
            yield from _products(node)
        return
    if not isinstance(nodes, dict):
        return
    if _is_type(nodes, "Product"):
        yield nodes
    for key, value in nodes.items():
        if key in ("@graph", "mainEntity", "itemListElement", "item", "about",
                   "mainEntityOfPage", "hasVariant"):
            yield from _products(value)


def _is_type(node: dict, wanted: str) -> bool:
    types = node.get("@type")
    if not isinstance(types, list):
        types = [types]
    return any(isinstance(t, str) and t.rsplit("/", 1)[-1] == wanted for t in types)


def _offer_field(product: dict) -> Any:
    # data-vocabulary.org (Google's retired vocabulary, still on old shops) says
    # offerDetails where schema.org says offers.
    return product.get("offers") or product.get("offerDetails")


def _product_fields(product: dict) -> dict[str, Any]:
    # Prices are not here: every offer is a candidate (price_candidates), and the page
    # decides among them.
    return {
        "title": _text(product.get("name")),
        "brand": _name(product.get("brand")),
        "sku": _text(product.get("sku") or product.get("mpn") or product.get("productID")),
        "image": _image(product.get("image")),
        "images": _images(product.get("image")),
        "seller": _seller(_offer_field(product)),
        "availability": _availability(_offer_field(product)),
    }


def _offers(value: Any) -> Iterator[Offer]:
    """Every priced offer; a zero price is a placeholder, not an offer."""
    if isinstance(value, list):
        for item in value:
            yield from _offers(item)
        return
    if not isinstance(value, dict):
        return
    currency = normalize_currency(_text(value.get("priceCurrency") or value.get("currency")))
    spec = value.get("priceSpecification")
    if isinstance(spec, list):
        spec = next((s for s in spec if isinstance(s, dict)), None)
    candidates = [value.get("price"), value.get("lowPrice")]
    if isinstance(spec, dict):
        candidates.append(spec.get("price"))
        currency = currency or normalize_currency(_text(spec.get("priceCurrency")))
    primary = None
    for raw in candidates:
        amount = _amount(raw)
        if amount is not None and amount > 0:
            primary = Offer(amount, currency, _name(value.get("seller")))
            yield primary
            break
    # The top of a range is an offered price too; whether the page shows it decides.
    high = value.get("highPrice")
    high = _amount(high)
    if high is not None and high > 0 and (primary is None or high != primary.price):
        yield Offer(high, currency, _name(value.get("seller")))
    if "offers" in value:  # AggregateOffer listing its offers
        yield from _offers(value["offers"])


def _amount(raw: Any) -> Decimal | None:
    """An offer's amount; one that is no finite number is no offer (see unreadable_prices)."""
    try:
        return parse_amount(_text(raw) if not isinstance(raw, (int, float)) else raw)
    except AmountError:
        return None


def unreadable_prices(data: dict[str, list[Any]]) -> list[str]:
    """Prices in the structured data that are present but no finite amount."""
    problems = []
    for product in _products(data.get("json-ld", []) + data.get("microdata", [])):
        offers = _offer_field(product)
        for offer in offers if isinstance(offers, list) else [offers]:
            if not isinstance(offer, dict):
                continue
            for key in ("price", "lowPrice", "highPrice"):
                raw = offer.get(key)
                try:
                    parse_amount(_text(raw) if not isinstance(raw, (int, float)) else raw)
                except AmountError as exc:
                    problems.append(str(exc))
    return problems


def _seller(offers: Any) -> str | None:
    for offer in offers if isinstance(offers, list) else [offers]:
        if isinstance(offer, dict):
            name = _name(offer.get("seller")) or _seller(offer.get("offers"))
            if name:
                return name
    return None


_AVAILABILITY = {"instock": "InStock", "in stock": "InStock", "in_stock": "InStock",
                 "outofstock": "OutOfStock", "out of stock": "OutOfStock",
                 "out_of_stock": "OutOfStock", "soldout": "SoldOut", "sold out": "SoldOut",
                 "preorder": "PreOrder", "pre-order": "PreOrder", "discontinued": "Discontinued",
                 "limitedavailability": "LimitedAvailability"}


def normalize_availability(value: str | None) -> str | None:
    """schema.org's ItemAvailability names, from URLs or shop spellings."""
    if not value:
        return None
    word = str(value).rsplit("/", 1)[-1].strip()
    return _AVAILABILITY.get(word.casefold(), word)


def _availability(offers: Any) -> str | None:
    for offer in offers if isinstance(offers, list) else [offers]:
        if isinstance(offer, dict) and offer.get("availability"):
            return normalize_availability(_text(offer["availability"]))
    return None


def _opengraph_fields(og: dict) -> dict[str, Any]:
    amount = og.get("product:price:amount") or og.get("og:price:amount")
    currency = og.get("product:price:currency") or og.get("og:price:currency")
    price = _amount(amount)
    return {
        "title": strip_site_name(_text(og.get("og:title")), _text(og.get("og:site_name"))),
        "price": price if price else None,
        "currency": normalize_currency(_text(currency)) if price else None,
        "brand": _text(og.get("product:brand") or og.get("og:brand")),
        "image": _image(og.get("og:image")),
        "sku": _text(og.get("product:retailer_item_id")),
        "availability": normalize_availability(
            _text(og.get("product:availability") or og.get("og:availability"))),
    }


_TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " : ")


def strip_site_name(title: str | None, site_name: str | None, host: str = "") -> str | None:
    """Drop an SEO suffix naming the shop: "Lens 50mm | eBay" -> "Lens 50mm"."""
    if not title:
        return title
    for sep in _TITLE_SEPARATORS:
        head, found, tail = title.rpartition(sep)
        if not found or not head.strip():
            continue
        shop = tail.strip().casefold()
        compact = shop.replace(" ", "").replace(".", "")
        if (site_name and shop == site_name.strip().casefold()) or \
                (compact and compact in host.replace(".", "").casefold()):
            return head.strip()
    return title


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = next((v for v in value if v not in (None, "")), None)
    if isinstance(value, dict):
        value = value.get("@value") or value.get("name")
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _name(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        return _text(value.get("name") or value.get("legalName"))
    return _text(value)


def _images(value: Any) -> list[str]:
    """Every image URL given (a listing often shows the stolen photo second)."""
    values = value if isinstance(value, list) else [value]
    return [url for url in (_image(v) for v in values) if url]


def _image(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("url") or value.get("contentUrl") or value.get("@id")
    return _text(value)
