"""A listing's price against the product's retail price (MSRP), across currencies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class PriceRatio:
    price: Decimal
    currency: str
    msrp: Decimal
    msrp_currency: str
    ratio: float  # price / msrp, in one currency

    @property
    def percent(self) -> int:
        return round(self.ratio * 100)


def price_ratio(price: Decimal | None, currency: str | None,
                msrp: Decimal | None, msrp_currency: str | None,
                rates: Mapping[str, float] | None = None) -> PriceRatio | None:
    """The ratio, when both prices exist and share a currency or both currencies have
    an exchange rate (value of one unit in a common unit). A missing price, or one in
    a currency without a rate, is evidence of nothing: it yields None, no penalty."""
    if price is None or not msrp or currency is None or msrp_currency is None:
        return None
    if currency == msrp_currency:
        return PriceRatio(price, currency, msrp, msrp_currency, float(price / msrp))
    rates = rates or {}
    if currency not in rates or msrp_currency not in rates:
        return None
    ratio = float(price) * rates[currency] / (float(msrp) * rates[msrp_currency])
    return PriceRatio(price, currency, msrp, msrp_currency, ratio)
