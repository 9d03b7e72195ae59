"""A listing's price against the product's retail price (MSRP), across currencies.

Conversion goes through one table of rates (the value of one unit of each currency in
a common unit): the config's own when it names both currencies, else the reference
table (the ECB's, with its date), and the reason says which was used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class RateTable:
    values: Mapping[str, float]  # value of one unit of each currency in a common unit
    label: str  # what the reason names: "ECB 2026-11-24", "the configured exchange rates"

    def convert(self, amount: Decimal, currency: str, to: str) -> Decimal | None:
        if currency not in self.values or to not in self.values:
            return None
        return Decimal(str(float(amount) * self.values[currency] / self.values[to]))


@dataclass(frozen=True)
class PriceRatio:
    price: Decimal
    currency: str
    msrp: Decimal
    msrp_currency: str
    ratio: float  # price / msrp, in one currency
    converted: Decimal | None = None  # the price in the MSRP's currency, when converted
    rates: str | None = field(default=None)  # the table used to convert

    @property
    def percent(self) -> int:
        return round(self.ratio * 100)


def price_ratio(price: Decimal | None, currency: str | None,
                msrp: Decimal | None, msrp_currency: str | None,
                rates: Mapping[str, float] | None = None,
                reference: RateTable | None = None) -> PriceRatio | None:
    """The ratio, when both prices exist and share a currency or can be converted:
    through the config's ``rates`` when it has both currencies, else the ``reference``
    table. A missing price, or one that cannot be converted, is evidence of nothing:
    it yields None, no penalty."""
    if price is None or not msrp or currency is None or msrp_currency is None:
        return None
    if currency == msrp_currency:
        return PriceRatio(price, currency, msrp, msrp_currency, float(price / msrp))
    for table in (RateTable(rates or {}, "the configured exchange rates"), reference):
        if table is None:
            continue
        converted = table.convert(price, currency, msrp_currency)
        if converted is not None:
            return PriceRatio(price, currency, msrp, msrp_currency, float(converted / msrp),
                              converted, table.label)
    return None
