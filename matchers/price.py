"""A listing's price against the product's retail price (MSRP)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class PriceRatio:
    price: Decimal
    msrp: Decimal
    currency: str
    ratio: float  # price / msrp

    @property
    def percent(self) -> int:
        return round(self.ratio * 100)


def price_ratio(price: Decimal | None, currency: str | None,
                msrp: Decimal | None, msrp_currency: str | None) -> PriceRatio | None:
    """The ratio, when both prices exist and share a currency; a missing price is not
    evidence of anything, so it yields None rather than a penalty."""
    if price is None or msrp is None or not msrp or currency is None:
        return None
    if currency != msrp_currency:
        return None
    return PriceRatio(price, msrp, currency, float(price / msrp))
