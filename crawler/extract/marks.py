"""What an element's class, id and itemprop say about the prices inside it.

Marketplaces name their price elements for their stylesheets ("price-old",
"a-price", "recommendations-carousel"): the words are the one hint a page gives about
which of its amounts a buyer pays. Read once per distinct (class, id, itemprop): a
page repeats a few hundred class names over thousands of elements.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_right
from collections.abc import Collection

from lxml import etree

# Class/id words of prices that are not the price a buyer pays now.
NOT_CURRENT_WORDS = re.compile(
    r"old|was|list|strike|regular|compare|rrp|msrp|unit|per-?kg|shipping|delivery|saving|"
    r"save|before|crossed|discount-?amount|installment|monthly|reference|former|original",
    re.I)
# Narrower: containers whose prices a buyer does not pay (checked on every element).
_OLD_PRICE = re.compile(
    r"(old|was|list|regular|compare|strike|crossed|former|rrp|msrp)[-_]?price|"
    r"price[-_]?(old|was|list|regular|before|strike)|strike|crossed|line-?through", re.I)
# Prices net of VAT, by class or id ("price-excluding-tax").
_NET_MARK = re.compile(r"excl|excluding|without-?(vat|tax)|ex-?vat|net-?price|price-?net|netto|"
                       r"tax-?free|hors-?tax", re.I)
# Containers of other products: their prices are not this product's.
_CAROUSEL = re.compile(
    r"recommend|related|carousel|similar|also-?(bought|viewed|like)|upsell|up-sell|"
    r"cross-?sell|recently-?viewed|sponsored|you-?may|bundle|accessor", re.I)
_PRICE_MARK = re.compile(r"price|preis|prix|precio|prezzo|cena|цена|amount|cost", re.I)
_AVAILABILITY_MARK = re.compile(r"avail|stock|sold-?out|inventory|verfueg|lieferbar", re.I)

# The marks, as bits. PRICE, NOT_CURRENT, NET_FULL and AVAILABILITY read class, id and
# itemprop; OLD, CAROUSEL and NET class and id only.
PRICE, NOT_CURRENT, OLD, CAROUSEL, NET, NET_FULL, AVAILABILITY = (1 << i for i in range(7))

# Marks that read the itemprop too.
_FULL = PRICE | NOT_CURRENT | NET_FULL | AVAILABILITY
# Each pattern with its bits, matched against lower-cased words (Python's re is several
# times slower with IGNORECASE).
_PATTERNS = tuple((re.compile(pattern.pattern.lower()), bits) for pattern, bits in (
    (_PRICE_MARK, PRICE), (NOT_CURRENT_WORDS, NOT_CURRENT), (_OLD_PRICE, OLD),
    (_CAROUSEL, CAROUSEL), (_NET_MARK, NET | NET_FULL), (_AVAILABILITY_MARK, AVAILABILITY)))

Key = tuple[str | None, str | None, str | None]
_KNOWN: dict[Key, int] = {}
_WORDS: dict[str, int] = {}
NO_KEY: Key = (None, None, None)  # an element with no class, id or itemprop
_LOCK = threading.Lock()
_KEPT = 50_000  # bounded: a long crawl meets many sites' class names


def key_of(el: etree._Element) -> Key | None:
    """``el``'s class, id and itemprop; None when it has none of them."""
    get = el.get
    key = (get("class"), get("id"), get("itemprop"))
    return None if key == NO_KEY else key


def marks_of(keys: Collection[Key]) -> dict[Key, int]:
    """The bits of many (class, id, itemprop) at once: a page's new words are matched
    in one string, a pattern at a time."""
    with _LOCK:  # pages may be read in several threads; the tables are shared
        return _marks_of(keys)


def _marks_of(keys: Collection[Key]) -> dict[Key, int]:
    if len(_WORDS) >= _KEPT or len(_KNOWN) >= _KEPT:
        _WORDS.clear()
        _KNOWN.clear()  # (a page adds at most its own words and keys past the bound)
    _learn({word for key in keys if key not in _KNOWN
            for value in key if value for word in value.split() if word not in _WORDS})
    out: dict[Key, int] = {}
    for key in keys:
        found = _KNOWN.get(key)
        if found is None:
            # No pattern spans white space, so a value's marks are its words' marks,
            # and words repeat across sites far more than whole attributes do.
            cls, ident, prop = (value or "" for value in key)
            found = 0
            for word in cls.split():
                found |= _WORDS[word]
            for word in ident.split():
                found |= _WORDS[word]
            for word in prop.split():
                found |= _WORDS[word] & _FULL
            _KNOWN[key] = found
        out[key] = found
    return out


def _learn(words: set[str]) -> None:
    if not words:
        return
    listed = list(words)
    lowered = [word.lower() for word in listed]
    starts, position = [], 0
    for word in lowered:
        starts.append(position)
        position += len(word) + 1
    text = "\n".join(lowered)
    found = dict.fromkeys(listed, 0)
    for pattern, bits in _PATTERNS:
        for match in pattern.finditer(text):
            word = listed[bisect_right(starts, match.start()) - 1]
            found[word] |= bits
    _WORDS.update(found)
