"""The choices zero-config price extraction makes, in one place, so that each one is
chosen by held-out F1 rather than by fit: `python bench/extraction.py --cv` tries the
values in GRID, picks on one half of the real pages, scores on the other half, both
ways, and prints the fit and held-out F1 side by side (README: "Zero-config
extraction, measured"). DEFAULT holds the values that cross-validation chose.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class PriceRules:
    # Inline application state (__NEXT_DATA__, window.__INITIAL_STATE__, dataLayer,
    # Shopify's product JSON) and data-* price attributes as candidates: only ever
    # taken when the page shows the amount.
    state: bool = True
    # A price labelled net of VAT ("excl. VAT", "netto", "HT") is not what a buyer pays.
    skip_net: bool = True
    # Prices inside recommendation carousels ("related", "you may also like") are other
    # products' prices.
    skip_carousels: bool = True
    # No price for an item that cannot be bought and has no current offer: structured
    # availability out of stock, sold out or discontinued, and no priced offer in the
    # structured data (a price left on such a page is a past or another seller's).
    unavailable_no_price: bool = True
    # The same when the page's availability element says so ("Currently unavailable",
    # "Ausverkauft") and there is no structured price.
    unavailable_text: bool = True
    # The longest text an element may hold to be read as a price (a sentence with a
    # number in it is not a price).
    max_price_text: int = 40
    # A visible price farther than this many elements (document order) from the title
    # is not the product's; None: no limit.
    max_title_distance: int | None = None


DEFAULT = PriceRules()

# The values cross-validation chooses among.
GRID: dict[str, tuple] = {
    "state": (False, True),
    "skip_net": (False, True),
    "skip_carousels": (False, True),
    "unavailable_no_price": (False, True),
    "unavailable_text": (False, True),
    "max_price_text": (24, 40, 64),
    "max_title_distance": (None, 400, 1500),
}


def variants(rules: PriceRules, name: str) -> list[PriceRules]:
    """``rules`` with each value GRID offers for ``name``."""
    return [replace(rules, **{name: value}) for value in GRID[name]]


RULE_NAMES = tuple(f.name for f in fields(PriceRules))
