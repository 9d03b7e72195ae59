"""Price strings -> (Decimal amount, ISO 4217 currency), through price-parser.

price-parser finds the number and the currency *text* ("US $", "€", "руб."); this
module maps that text to an ISO 4217 code. Symbols shared by several currencies
("$", "¥", "kr", "Rs") resolve to the site's configured currency when it is one of
them, else to the most common one, else stay unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from price_parser import Price

# Currency text (casefolded, without dots and spaces) -> ISO code.
_UNAMBIGUOUS = {
    "us$": "USD", "usd": "USD", "c$": "CAD", "ca$": "CAD", "cad": "CAD", "a$": "AUD",
    "au$": "AUD", "nz$": "NZD", "hk$": "HKD", "s$": "SGD", "r$": "BRL", "mx$": "MXN",
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "£": "GBP", "gbp": "GBP",
    "jp¥": "JPY", "円": "JPY", "cn¥": "CNY", "元": "CNY", "rmb": "CNY", "₽": "RUB",
    "руб": "RUB", "р": "RUB", "rur": "RUB", "rub": "RUB", "₹": "INR", "zł": "PLN",
    "zl": "PLN", "pln": "PLN", "kč": "CZK", "czk": "CZK", "ft": "HUF", "huf": "HUF",
    "₺": "TRY", "tl": "TRY", "₴": "UAH", "грн": "UAH", "chf": "CHF",
    "fr": "CHF", "₪": "ILS", "lei": "RON", "₫": "VND", "฿": "THB", "₱": "PHP",
    "rm": "MYR", "rp": "IDR", "zar": "ZAR", "₦": "NGN", "원": "KRW", "₩": "KRW",
    "лв": "BGN", "kn": "HRK", "dh": "MAD", "sar": "SAR", "aed": "AED", "₸": "KZT",
}
# Legacy codes still seen in structured data.
LEGACY_CODES = {"RUR": "RUB", "BYR": "BYN", "TRL": "TRY", "MXP": "MXN"}
_AMBIGUOUS = {
    "$": ("USD", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN", "ARS", "CLP", "COP", "TWD"),
    "¥": ("JPY", "CNY"),
    "kr": ("SEK", "NOK", "DKK", "ISK"),
    "rs": ("INR", "PKR", "LKR", "NPR"),
}
# The reading of an ambiguous symbol when the site's currency says nothing.
_AMBIGUOUS_DEFAULT = {"$": "USD", "¥": "JPY", "rs": "INR"}


# No listing costs more; a larger amount is a page's error or a trap.
MAX_AMOUNT = Decimal("1e12")


@dataclass(frozen=True)
class ParsedPrice:
    amount: Decimal | None
    currency: str | None


def parse_price(text: str | None, default_currency: str | None = None) -> ParsedPrice:
    """Parse a visible price string such as "US $1,299.00" or "1.299,00 €"."""
    if not text:
        return ParsedPrice(None, None)
    parsed = Price.fromstring(str(text))
    currency = normalize_currency(parsed.currency, default_currency)
    if currency is None and parsed.currency is None:
        currency = default_currency
    amount = parsed.amount
    if amount is not None and (amount < 0 or not amount.is_finite() or amount > MAX_AMOUNT):
        amount = None
    return ParsedPrice(amount, currency)


class AmountError(ValueError):
    """A price that is present but is no finite amount (NaN, Infinity, 1e400)."""


def parse_amount(value: object) -> Decimal | None:
    """A structured-data price (number, or string with separators) as a Decimal.

    None when there is no price (or a negative one); AmountError when the page gives
    a price that is not a finite amount: JSON allows NaN and Infinity, and a page can
    use them to keep itself out of the price comparison."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        amount = Decimal(str(value))
    else:
        text = str(value).strip().casefold()
        if text.lstrip("+-") in ("nan", "inf", "infinity", "snan"):
            raise AmountError(f"price {value!r} is not a finite amount")
        amount = Price.fromstring(str(value)).amount
    if amount is not None and (not amount.is_finite() or amount > MAX_AMOUNT):
        raise AmountError(f"price {value!r} is not a finite amount")
    return amount if amount is None or amount >= 0 else None


def normalize_currency(text: str | None, default: str | None = None) -> str | None:
    """ISO 4217 code for currency text; None when it cannot be told."""
    if not text:
        return None
    raw = str(text).strip()
    if len(raw) == 3 and raw.isalpha() and raw.isupper():
        return LEGACY_CODES.get(raw, raw)
    key = raw.casefold().replace(".", "").replace(" ", "")
    if key in _UNAMBIGUOUS:
        return _UNAMBIGUOUS[key]
    if key.isalpha() and len(key) == 3 and key.isascii():
        return LEGACY_CODES.get(key.upper(), key.upper())
    for symbol, choices in _AMBIGUOUS.items():
        if key == symbol:
            if default in choices:
                return default
            return _AMBIGUOUS_DEFAULT.get(symbol)
    return None
