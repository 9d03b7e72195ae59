"""Listing fields from a results card or a product page, each with its source.

Sources: ``selector`` (the site's config), ``jsonld``, ``microdata``,
``opengraph``, ``card`` (the results page), ``heuristic`` (the visible page).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

from parsel import Selector

from crawler.extract.dom import PageIndex, index_page, parse_page
from crawler.extract.heuristics import (
    heuristic_fields,
    meta_price,
    page_layout,
    says_unavailable,
    shown_amounts,
    visible_price,
)
from crawler.extract.price import normalize_currency, parse_price
from crawler.extract.rules import DEFAULT, PriceRules
from crawler.extract.selectors import clean, select_text
from crawler.extract.state import attribute_offers, state_offers
from crawler.extract.structured import (
    Offer,
    price_candidates,
    read_structured,
    structured_fields,
    unreadable_prices,
)

FIELDS = ("title", "price", "currency", "brand", "sku", "image", "seller", "availability")
# Kept with the sources: why this price of several the page holds, or why none.
REASONS = ("price_reason",)
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
        out["sources"] = {k: self.sources[k] for k in (*FIELDS, *REASONS) if k in self.sources}
        return out


def extract_card(card: Selector, selectors: dict[str, str], page_url: str,
                 default_currency: str | None = None,
                 listing_path: str | None = None) -> Extracted:
    """One listing card on a results page, read with the site's ``[results]`` selectors.

    ``listing_path``: the site's regex for the identifying part of a listing URL."""
    out = Extracted()
    raw = {name: _read(card, name, q) for name, q in selectors.items()
           if name not in ("listing", "next_page")}
    if raw.get("url"):
        out.offer("url", listing_url(raw["url"], page_url, listing_path), "selector")
    if raw.get("image"):
        out.offer("image", image_url(raw["image"], page_url), "selector")
    for name in ("title", "seller"):
        out.offer(name, clean(raw.get(name)), "selector")
    _offer_price(out, raw.get("price"), None, default_currency, "selector")
    return out


# Availability that leaves nothing to buy: any price on the page is a past or another
# seller's price.
_UNAVAILABLE = {"OutOfStock", "SoldOut", "Discontinued"}


def extract_product(html: str, url: str, selectors: dict[str, str] | None = None,
                    default_currency: str | None = None,
                    rules: PriceRules = DEFAULT, page: Selector | None = None) -> Extracted:
    """A product page: the site's selectors, then structured data, then heuristics.

    ``page``: ``html`` already parsed by ``parse_page``, for a caller that reads more of
    it (a real page's parse is ~5 ms)."""
    if page is None:
        page = parse_page(html, url)
    out = Extracted()
    selectors = selectors or {}
    raw = {name: _read(page, name, q) for name, q in selectors.items()}
    for name in ("title", "brand", "sku", "seller", "availability"):
        out.offer(name, clean(raw.get(name)), "selector")
    if raw.get("image"):
        out.offer("image", image_url(raw["image"], url), "selector")
    _offer_price(out, raw.get("price"), raw.get("currency"), default_currency, "selector")

    data = read_structured(html, url, page.root)
    index = index_page(page.root, html)
    for name, (value, source) in structured_fields(data).items():
        if name == "image":
            value = image_url(value, url)
        elif name == "images":
            value = [u for u in (image_url(v, url) for v in value) if u]
        out.offer(name, value, source)
    unavailable = out.values.get("availability") in _UNAVAILABLE
    if out.values.get("price") is None and unavailable and rules.unavailable_no_price \
            and not price_candidates(data):
        out.problems["price"] = out.sources["price_reason"] = (
            f"no price: the item cannot be bought (availability "
            f"{out.values['availability']}, no priced offer)")
    elif out.values.get("price") is None:
        _choose_price(out, index, data, default_currency, rules)
    if out.values.get("price") is None and "price" not in out.problems:
        for problem in unreadable_prices(data)[:1]:
            out.problems["price"] = problem

    heuristic = heuristic_fields(index, url, default_currency)
    title = out.values.get("title")
    if title and out.sources.get("title") != "selector" and "title" in heuristic:
        # Structured names cut short ("... Car Seat Pad Pain..."): the H1 is whole.
        stem = title.rstrip(".…").rstrip()
        if stem != title and heuristic["title"][0].startswith(stem):
            out.values["title"], out.sources["title"] = heuristic["title"]
    for name, (value, source) in heuristic.items():
        if name not in ("price", "currency"):
            out.offer(name, value, source)
    return out


def _read(node: Selector, name: str, query: str) -> str | None:
    """A field's raw text: one attribute value, or the element's whole text (a price's
    pieces glued, other fields' pieces spaced)."""
    if name in _SINGLE_VALUE:
        return select_text(node, query, join=False)
    return select_text(node, query, join=True, separator="" if name == "price" else " ")


def _choose_price(out: Extracted, page: PageIndex, data: dict,
                  default_currency: str | None, rules: PriceRules) -> None:
    """The price a buyer is asked to pay.

    Candidates: structured data, then (with rules.state) inline application state and
    data-* attributes. Each is checked against the visible page, where old, struck,
    net-of-VAT prices and carousels of other products do not count as shown: of
    several offers or a range, the lowest price the page shows; of sources that
    disagree, the one the page shows nearest the title (a starting bid in JSON-LD
    loses to the current bid in OpenGraph shown next to the title). State is only ever
    taken when shown. When the page shows none of them, the most trusted structured
    price stands; with no structured price at all, the price element next to the title
    is read. Why is recorded in ``out.sources["price_reason"]``.
    """
    trusted = price_candidates(data)
    meta = meta_price(page, default_currency)
    if meta is not None:
        trusted.append((Offer(meta[0], meta[1]), "opengraph"))
    candidates = list(trusted)
    if rules.state:
        candidates += [(o, "state") for o in state_offers(page)]
        candidates += [(o, "data-attribute") for o in attribute_offers(page)]
    chosen: tuple[Decimal, str | None, str, str | None] | None = None
    why = ""
    layout = page_layout(page, rules)
    shown = shown_amounts(layout, rules, [o.price for o, _ in candidates]) if candidates else {}
    # Per source, its lowest price that the page shows (several offers, a range);
    # across sources that disagree, the one shown nearest the title.
    per_source: dict[str, tuple[Offer, int]] = {}
    for offer, src in candidates:
        seen = shown.get(offer.price.normalize())
        if seen is None:
            continue
        if src in ("state", "data-attribute"):
            # as the page writes it ("64.00", not 64.0), in the currency shown with it
            # when the state leaves it implicit
            offer = Offer(seen.amount, offer.currency or seen.currency, offer.seller)
        if src not in per_source or offer.price < per_source[src][0].price:
            per_source[src] = (offer, seen.distance)
    if per_source:
        source, (offer, _) = min(per_source.items(),
                                 key=lambda item: (item[1][1], item[1][0].price))
        others = sorted(set(per_source) - {source})
        why = (f"{source} price shown on the page"
               + (f", nearer the title than {', '.join(others)}" if others else ""))
        chosen = (offer.price, offer.currency, source, offer.seller)
    elif trusted:
        offer, source = trusted[0]
        why = f"{source} price (the page shows none of the candidates)"
        # A range the page does not show as such, but a price inside it next to
        # the title ("from 28.50"): that is the price asked.
        found = visible_price(layout, default_currency, rules)
        amounts = [o.price for o, _ in trusted]
        if found is not None and min(amounts) <= found[0] <= max(amounts) \
                and found[0] not in amounts:
            offer, source = Offer(found[0], found[1] or offer.currency), "heuristic"
            why = "the price shown next to the title, inside the structured range"
        chosen = (offer.price, offer.currency, source, offer.seller)
    else:
        said = says_unavailable(page) if rules.unavailable_text else None
        if said:
            out.problems["price"] = out.sources["price_reason"] = \
                f"no price: the page says the item is {said!r}"
            return
        found = visible_price(layout, default_currency, rules)
        if found is not None:
            chosen = (found[0], found[1], "heuristic", None)
            why = "the price element nearest the title"
    if chosen is None:
        return
    price, currency, source, seller = chosen
    if seller and out.sources.get("seller") in (None, "jsonld", "microdata"):
        out.values["seller"], out.sources["seller"] = seller, source  # the chosen offer's
    if currency is None:
        currency = next((o.currency for o, _ in candidates if o.currency), None) or default_currency
    out.offer("price", price, source)
    out.offer("currency", currency, source)
    out.sources["price_reason"] = why


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


# Query parameters that say where a click came from, not which listing it is: the same
# listing shown on page 1 and page 2 of the results must be one listing.
_TRACKING = re.compile(
    r"^(utm_\w+|ref|ref_|refsrc|spm|scm|_trk\w*|trk|tracking\w*|hash|qid|sr|crid|sprefix|"
    r"pf_rd_\w+|pd_rd_\w+|fbclid|gclid|msclkid|mc_cid|mc_eid|position|pos|searchid|"
    r"search_id|from|source|src|keywords)$", re.I)
# A path segment that only says where the click came from ("/dp/B0.../ref=sr_1_1").
_TRACKING_SEGMENT = re.compile(r"/ref=[^/]*$")


# Query parameters of click-tracking redirects that carry the real destination.
_REDIRECT_TARGET = ("url", "u", "redirect", "redirect_url", "target", "dest", "destination")


def listing_url(value: str, base: str, listing_path: str | None = None) -> str | None:
    """A listing's identity: its absolute URL, unwrapped from an ad or click redirect
    ("/sspa/click?...&url=%2Fitem%2F7"), without tracking parameters; or, when the site
    says which part of the path identifies a listing, scheme://host + that part."""
    url = absolute_url(value, base)
    if url is None:
        return None
    parts = urlsplit(url)
    for key, target in parse_qsl(parts.query):
        if key.lower() in _REDIRECT_TARGET and target.startswith(("/", "http://", "https://")):
            unwrapped = absolute_url(target, url)
            if unwrapped is not None and urlsplit(unwrapped).netloc == parts.netloc:
                parts = urlsplit(unwrapped)  # only within the marketplace: no open redirect
                break
    if listing_path:
        found = re.search(listing_path, parts.path)
        if found:
            return f"{parts.scheme}://{parts.netloc}{found.group(0)}"
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING.match(k)]
    path = _TRACKING_SEGMENT.sub("", parts.path) or "/"
    return parts._replace(path=path, query=urlencode(kept)).geturl()


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
