"""The monitor config: one TOML file -> validated, frozen dataclasses.

Validation collects every problem before raising, so a user fixes the file in one
pass; each problem names the line (where it can be found), the key, and what is
expected there.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from crawler.errors import ConfigError
from crawler.extract.selectors import SelectorSyntaxError, compile_selector

RESULT_FIELDS = ("listing", "url", "title", "price", "image", "seller", "next_page")
PRODUCT_FIELDS = ("title", "price", "currency", "image", "seller", "brand", "sku", "availability")
# Upper bounds: a results page or a site past these is a trap or a config mistake.
MAX_PAGES = 1000
MAX_CARDS_PER_PAGE = 50_000
SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Brand:
    name: str
    aliases: tuple[str, ...] = ()
    authorized_sellers: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Product:
    name: str
    msrp: Decimal | None = None
    currency: str | None = None
    images: tuple[Path, ...] = ()
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Matching:
    threshold: int = 50
    # pHash + dHash distance (bits of 128, best variant pair) at or below which a
    # listing photo is the photo of a listing a reviewer confirmed counterfeit (a
    # re-listing). Reference photos are not matched by distance: by keypoints.
    image_score: int = 12
    vocabulary: tuple[str, ...] = ()
    # Value of one unit of each currency in one common unit, for comparing prices
    # with an MSRP in another currency.
    exchange_rates: dict[str, float] = field(default_factory=dict)
    weights: dict[str, int] = field(default_factory=dict)  # overrides of score.WEIGHTS


@dataclass(frozen=True)
class CrawlOptions:
    user_agent: str | None = None
    download_delay: float | None = None
    concurrent_requests_per_domain: int | None = None
    autothrottle: bool = True
    obey_robots: bool = True
    timeout: float | None = None
    # Let pages send cfmon to hosts on private or loopback addresses (off: a page
    # must not make cfmon fetch an internal address).
    allow_private_hosts: bool = False
    # Seconds a write waits for another program's write lock on the database.
    database_wait: float | None = None
    # Budgets: a site past its own is left incomplete; the crawl stops at max_minutes.
    site_max_requests: int | None = None
    site_max_minutes: float | None = None
    max_minutes: float | None = None
    # Worker processes analysing photos; None: one per core, started when photos queue
    # up; 0: none (photos are analysed in the crawl's threads).
    analysis_processes: int | None = None


@dataclass(frozen=True)
class EmailAlert:
    host: str
    to: tuple[str, ...]
    sender: str
    port: int = 25
    starttls: bool = False
    ssl: bool = False  # implicit TLS from the first byte (port 465)
    username: str | None = None
    password_env: str | None = None  # the password is read from this environment variable
    # Extra CA certificates (PEM) to trust for this server, e.g. a company's own CA.
    ca_file: Path | None = None
    # Send the password over a connection without TLS (refused unless said here).
    allow_plaintext_auth: bool = False


@dataclass(frozen=True)
class Alerts:
    min_score: int = 70
    webhook: str | None = None
    email: EmailAlert | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.webhook or self.email)


@dataclass(frozen=True)
class EvidenceOptions:
    # An RFC 3161 Time-Stamp Authority: the chain's head is time-stamped after each run.
    timestamp_url: str | None = None
    # Its CA certificate (PEM), to check tokens (`cfmon verify`).
    timestamp_ca: Path | None = None
    # Retention (`cfmon prune`): bytes of captures that prove nothing new (not flagged,
    # not a first sighting, not a change) are dropped after this many days.
    keep_days: int = 30


@dataclass(frozen=True)
class Site:
    name: str
    start_urls: tuple[str, ...]
    results: dict[str, str]
    product: dict[str, str] | None = None
    max_pages: int = 10
    # Cards read per results page; more are left out and the site counts as incomplete.
    max_cards_per_page: int = 1000
    currency: str | None = None
    # Regex for the part of a listing URL's path that identifies the listing
    # ("/dp/\w{10}", "/itm/\d+"); the listing's URL becomes scheme://host + that part.
    listing_path: str | None = None
    # Sellers authorized on this marketplace only (the brand's list applies everywhere).
    authorized_sellers: tuple[str, ...] = ()

    @property
    def follows_product_pages(self) -> bool:
        return self.product is not None


@dataclass(frozen=True)
class Config:
    path: Path
    brand: Brand
    products: tuple[Product, ...]
    sites: tuple[Site, ...]
    matching: Matching = field(default_factory=Matching)
    crawl: CrawlOptions = field(default_factory=CrawlOptions)
    alerts: Alerts = field(default_factory=Alerts)
    evidence: EvidenceOptions = field(default_factory=EvidenceOptions)

    def site(self, name: str) -> Site:
        for site in self.sites:
            if site.name == name:
                return site
        known = ", ".join(s.name for s in self.sites)
        raise ConfigError(str(self.path), [f"no site named {name!r}; sites are: {known}"])


def load_config(path: str | Path) -> Config:
    """Read and validate a monitor config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc}"]) from None
    return parse_config(text, path)


def parse_config(text: str, path: str | Path) -> Config:
    """Validate config ``text``; relative image paths resolve against ``path``'s folder."""
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    checker = _Checker(text, path.parent)
    config = checker.config(data, path)
    if checker.problems:
        raise ConfigError(str(path), checker.problems)
    assert config is not None
    return config


class _Checker:
    """Walks the parsed TOML, converting what is valid and noting what is not."""

    def __init__(self, text: str, base: Path):
        self.lines = text.splitlines()
        self.base = base
        self.problems: list[str] = []
        # Search queries default to the brand name and each product name.
        self.default_queries: tuple[str, ...] = ()

    # -- reporting -------------------------------------------------------------

    def problem(self, key: str, message: str) -> None:
        line = self._line_of(key)
        where = f"line {line}: " if line else ""
        self.problems.append(f"{where}{key}: {message}")

    def _line_of(self, key: str) -> int | None:
        """Best-effort line number of a dotted key such as ``sites[2].results.url``."""
        parts = re.findall(r"([A-Za-z_][\w-]*)(?:\[(\d+)\])?", key)
        header_path: list[str] = []
        start = 0
        for i, (name, index) in enumerate(parts):
            last = i == len(parts) - 1
            if index:
                header = r"\[\[\s*" + r"\.".join([*header_path, name]) + r"\s*\]\]"
                found = self._nth_line(header, int(index), start)
                if found is None:
                    return None
                start = found
                header_path.append(name)
                if last:
                    return start + 1
                continue
            if not last:
                table = r"\[\s*" + r"\.".join([*header_path, name]) + r"\s*\]"
                found = self._nth_line(table, 1, start)
                if found is not None:
                    start = found
                    header_path.append(name)
                    continue
            key_re = rf"^\s*{re.escape(name)}\s*="
            for n in range(start, len(self.lines)):
                if n > start and self.lines[n].lstrip().startswith("[") and "=" not in self.lines[n]:
                    break
                if re.match(key_re, self.lines[n]):
                    return n + 1
            return start + 1 if start or header_path else None
        return None

    def _nth_line(self, pattern: str, nth: int, start: int) -> int | None:
        seen = 0
        for n in range(start, len(self.lines)):
            if re.match(r"^\s*" + pattern + r"\s*(#.*)?$", self.lines[n]):
                seen += 1
                if seen == nth:
                    return n
        return None

    # -- typed getters ---------------------------------------------------------

    def table(self, data: dict, key: str, where: str, required: bool = False) -> dict | None:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(where, "missing; add a table [" + where + "]")
            return None
        if not isinstance(value, dict):
            self.problem(where, f"expected a table, got {_kind(value)}")
            return None
        return value

    def string(self, data: dict, key: str, where: str, required: bool = False) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(where, "missing; it is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(where, f"expected a non-empty string, got {_kind(value)}")
            return None
        return value.strip()

    def strings(self, data: dict, key: str, where: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.problem(where, f"expected a list of non-empty strings, got {_kind(value)}")
            return ()
        return tuple(v.strip() for v in value)

    def number(
        self, data: dict, key: str, where: str, *, integer: bool = False,
        low: float | None = None, high: float | None = None,
    ) -> Any:
        value = data.get(key)
        if value is None:
            return None
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            self.problem(where, f"expected {'an integer' if integer else 'a number'}, "
                                f"got {_kind(value)}")
            return None
        if not math.isfinite(value):
            # TOML allows nan and inf; no setting of cfmon means anything with them.
            self.problem(where, f"expected a finite number, got {value}")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problem(where, f"expected a number {bounds}, got {value}")
            return None
        return value

    def boolean(self, data: dict, key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.problem(where, f"expected true or false, got {_kind(value)}")
            return default
        return value

    def unknown_keys(self, data: dict, allowed: tuple[str, ...], where: str) -> None:
        for key in data:
            if key not in allowed:
                prefix = f"{where}." if where else ""
                self.problem(f"{prefix}{key}", "unknown key; expected one of: " + ", ".join(allowed))

    def currency(self, data: dict, key: str, where: str) -> str | None:
        value = self.string(data, key, where)
        if value is not None and not CURRENCY.match(value.upper()):
            self.problem(where, f"expected an ISO 4217 code such as USD or EUR, got {value!r}")
            return None
        return value.upper() if value else None

    def url(self, value: str, where: str) -> str | None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.problem(where, f"expected an absolute http(s) URL, got {value!r}")
            return None
        return value

    # -- sections --------------------------------------------------------------

    def config(self, data: dict, path: Path) -> Config | None:
        self.unknown_keys(data, ("brand", "products", "matching", "crawl", "alerts", "evidence",
                                 "sites"), "")
        brand = self.brand(self.table(data, "brand", "brand", required=True))
        products = self.products(data.get("products", []))
        matching = self.matching(self.table(data, "matching", "matching") or {})
        crawl = self.crawl(self.table(data, "crawl", "crawl") or {})
        alerts = self.alerts(self.table(data, "alerts", "alerts") or {})
        evidence = self.evidence(self.table(data, "evidence", "evidence") or {})
        if brand is not None:
            self.default_queries = (brand.name, *(p.name for p in products))
        sites = self.sites(data.get("sites"))
        if self.problems or brand is None:
            return None
        return Config(path=path, brand=brand, products=products, sites=sites,
                      matching=matching, crawl=crawl, alerts=alerts, evidence=evidence)

    def brand(self, data: dict | None) -> Brand | None:
        if data is None:
            return None
        self.unknown_keys(data, ("name", "aliases", "authorized_sellers"), "brand")
        name = self.string(data, "name", "brand.name", required=True)
        aliases = self.strings(data, "aliases", "brand.aliases")
        sellers = self.strings(data, "authorized_sellers", "brand.authorized_sellers")
        return Brand(name, aliases, sellers) if name else None

    def products(self, value: Any) -> tuple[Product, ...]:
        if not isinstance(value, list):
            self.problem("products", "expected [[products]] tables, one per genuine product")
            return ()
        products = []
        for i, data in enumerate(value, 1):
            where = f"products[{i}]"
            if not isinstance(data, dict):
                self.problem(where, f"expected a table, got {_kind(data)}")
                continue
            self.unknown_keys(data, ("name", "msrp", "currency", "images", "aliases"), where)
            name = self.string(data, "name", f"{where}.name", required=True)
            msrp = self.number(data, "msrp", f"{where}.msrp", low=0, high=1e9)
            currency = self.currency(data, "currency", f"{where}.currency")
            if msrp is not None and currency is None:
                self.problem(f"{where}.currency", "missing; msrp needs a currency such as \"USD\"")
            images = []
            for image in self.strings(data, "images", f"{where}.images"):
                image_path = (self.base / image).resolve()
                if not image_path.is_file():
                    self.problem(f"{where}.images", f"no such file {image!r} "
                                                    f"(looked for {image_path})")
                else:
                    images.append(image_path)
            aliases = self.strings(data, "aliases", f"{where}.aliases")
            if name:
                products.append(Product(
                    name=name,
                    msrp=_decimal(msrp),
                    currency=currency,
                    images=tuple(images),
                    aliases=aliases,
                ))
        return tuple(products)

    def matching(self, data: dict) -> Matching:
        self.unknown_keys(data, ("threshold", "image_score", "vocabulary", "exchange_rates",
                                 "weights"), "matching")
        threshold = self.number(data, "threshold", "matching.threshold", integer=True,
                                low=0, high=100)
        image_score = self.number(data, "image_score", "matching.image_score",
                                  integer=True, low=0, high=128)
        vocabulary = self.strings(data, "vocabulary", "matching.vocabulary")
        defaults = Matching()
        return Matching(
            threshold=defaults.threshold if threshold is None else threshold,
            image_score=defaults.image_score if image_score is None else image_score,
            vocabulary=vocabulary,
            exchange_rates=self.rates(self.table(data, "exchange_rates",
                                                 "matching.exchange_rates") or {}),
            weights=self.weights(self.table(data, "weights", "matching.weights") or {}),
        )

    def rates(self, data: dict) -> dict[str, float]:
        rates = {}
        for code in data:
            where = f"matching.exchange_rates.{code}"
            if not CURRENCY.match(code):
                self.problem(where, "expected an ISO 4217 code such as EUR as the key")
                continue
            rate = self.number(data, code, where, high=1e6)
            if rate is not None and rate < 1e-6:
                self.problem(where, f"expected a positive number of at least 1e-06, got {rate}")
            elif rate is not None:
                rates[code] = float(rate)
        return rates

    def weights(self, data: dict) -> dict[str, int]:
        from matchers.score import WEIGHTS

        self.unknown_keys(data, tuple(WEIGHTS), "matching.weights")
        out = {}
        for name in data:
            if name in WEIGHTS:
                value = self.number(data, name, f"matching.weights.{name}", integer=True,
                                    low=0, high=100)
                if value is not None:
                    out[name] = value
        return out

    def crawl(self, data: dict) -> CrawlOptions:
        keys = ("user_agent", "download_delay", "concurrent_requests_per_domain",
                "autothrottle", "obey_robots", "timeout", "allow_private_hosts",
                "database_wait", "site_max_requests", "site_max_minutes", "max_minutes",
                "analysis_processes")
        self.unknown_keys(data, keys, "crawl")
        return CrawlOptions(
            user_agent=self.string(data, "user_agent", "crawl.user_agent"),
            download_delay=self.number(data, "download_delay", "crawl.download_delay", low=0,
                                       high=3600),
            concurrent_requests_per_domain=self.number(
                data, "concurrent_requests_per_domain", "crawl.concurrent_requests_per_domain",
                integer=True, low=1, high=64),
            autothrottle=self.boolean(data, "autothrottle", "crawl.autothrottle", True),
            obey_robots=self.boolean(data, "obey_robots", "crawl.obey_robots", True),
            timeout=self.number(data, "timeout", "crawl.timeout", low=1, high=3600),
            allow_private_hosts=self.boolean(data, "allow_private_hosts",
                                             "crawl.allow_private_hosts", False),
            database_wait=self.number(data, "database_wait", "crawl.database_wait", low=1,
                                      high=3600),
            site_max_requests=self.number(data, "site_max_requests", "crawl.site_max_requests",
                                          integer=True, low=1, high=10_000_000),
            site_max_minutes=self.number(data, "site_max_minutes", "crawl.site_max_minutes",
                                         low=0.1, high=7 * 24 * 60),
            max_minutes=self.number(data, "max_minutes", "crawl.max_minutes", low=0.1,
                                    high=7 * 24 * 60),
            analysis_processes=self.number(data, "analysis_processes",
                                           "crawl.analysis_processes", integer=True, low=0,
                                           high=256),
        )

    def alerts(self, data: dict) -> Alerts:
        self.unknown_keys(data, ("min_score", "webhook", "email"), "alerts")
        min_score = self.number(data, "min_score", "alerts.min_score", integer=True,
                                low=0, high=100)
        webhook = self.string(data, "webhook", "alerts.webhook")
        if webhook:
            webhook = self.url(webhook, "alerts.webhook")
        email = None
        table = self.table(data, "email", "alerts.email")
        if table is not None:
            where = "alerts.email"
            self.unknown_keys(table, ("host", "port", "starttls", "ssl", "username",
                                      "password_env", "ca_file", "allow_plaintext_auth",
                                      "from", "to"), where)
            host = self.string(table, "host", f"{where}.host", required=True)
            sender = self.string(table, "from", f"{where}.from", required=True)
            to = self.strings(table, "to", f"{where}.to")
            if not to:
                self.problem(f"{where}.to", "missing; give the addresses to alert")
            port = self.number(table, "port", f"{where}.port", integer=True, low=1, high=65535)
            starttls = self.boolean(table, "starttls", f"{where}.starttls", False)
            implicit = self.boolean(table, "ssl", f"{where}.ssl", False)
            username = self.string(table, "username", f"{where}.username")
            plaintext = self.boolean(table, "allow_plaintext_auth",
                                     f"{where}.allow_plaintext_auth", False)
            if starttls and implicit:
                self.problem(f"{where}.ssl", "choose one: ssl (implicit TLS, port 465) or "
                                             "starttls (port 587)")
            if username and not (starttls or implicit or plaintext):
                self.problem(f"{where}.username", "the password would cross the network in "
                             "clear: set starttls = true or ssl = true (or, knowingly, "
                             "allow_plaintext_auth = true)")
            ca = self.string(table, "ca_file", f"{where}.ca_file")
            ca_file = (self.base / ca).resolve() if ca else None
            if ca_file is not None and not ca_file.is_file():
                self.problem(f"{where}.ca_file", f"no such file {ca!r} (looked for {ca_file})")
            if host and sender and to:
                email = EmailAlert(
                    host=host, to=to, sender=sender, port=port or (465 if implicit else 25),
                    starttls=starttls, ssl=implicit, username=username,
                    password_env=self.string(table, "password_env", f"{where}.password_env"),
                    ca_file=ca_file, allow_plaintext_auth=plaintext)
        return Alerts(min_score=70 if min_score is None else min_score, webhook=webhook,
                      email=email)

    def evidence(self, data: dict) -> EvidenceOptions:
        self.unknown_keys(data, ("timestamp_url", "timestamp_ca", "keep_days"), "evidence")
        url = self.string(data, "timestamp_url", "evidence.timestamp_url")
        if url:
            url = self.url(url, "evidence.timestamp_url")
        ca = self.string(data, "timestamp_ca", "evidence.timestamp_ca")
        ca_path = (self.base / ca).resolve() if ca else None
        if ca_path is not None and not ca_path.is_file():
            self.problem("evidence.timestamp_ca", f"no such file {ca!r} (looked for {ca_path})")
        keep_days = self.number(data, "keep_days", "evidence.keep_days", integer=True, low=1,
                                high=36500)
        return EvidenceOptions(timestamp_url=url, timestamp_ca=ca_path,
                               keep_days=keep_days or EvidenceOptions.keep_days)

    def sites(self, value: Any) -> tuple[Site, ...]:
        if value is None:
            self.problem("sites", "missing; add at least one [[sites]] table")
            return ()
        if not isinstance(value, list) or not value:
            self.problem("sites", "expected [[sites]] tables, one per marketplace")
            return ()
        sites: list[Site] = []
        names: set[str] = set()
        for i, data in enumerate(value, 1):
            where = f"sites[{i}]"
            if not isinstance(data, dict):
                self.problem(where, f"expected a table, got {_kind(data)}")
                continue
            site = self.site(data, where)
            if site is None:
                continue
            if site.name in names:
                self.problem(f"{where}.name", f"duplicate site name {site.name!r}; "
                                              "each site needs its own name")
                continue
            names.add(site.name)
            sites.append(site)
        return tuple(sites)

    def site(self, data: dict, where: str) -> Site | None:
        self.unknown_keys(data, ("name", "start_urls", "search_url", "queries", "max_pages",
                                 "max_cards_per_page", "currency", "listing_path", "results",
                                 "product", "authorized_sellers"), where)
        name = self.string(data, "name", f"{where}.name", required=True)
        if name and not SITE_NAME.match(name):
            self.problem(f"{where}.name", f"use letters, digits, '-', '_' or '.', got {name!r}")
        start_urls = [u for u in self.strings(data, "start_urls", f"{where}.start_urls")
                      if self.url(u, f"{where}.start_urls")]
        search_url = self.string(data, "search_url", f"{where}.search_url")
        queries = self.strings(data, "queries", f"{where}.queries")
        if search_url:
            if "{query}" not in search_url:
                self.problem(f"{where}.search_url", "must contain {query} where the search "
                                                    "words go")
            elif self.url(search_url.replace("{query}", "q"), f"{where}.search_url"):
                start_urls.extend(self._search_urls(search_url, queries))
        elif queries:
            self.problem(f"{where}.queries", "queries need a search_url with {query} in it")
        if not start_urls and "start_urls" not in data and not search_url:
            self.problem(where, "needs start_urls, or a search_url with {query}")
        max_pages = self.number(data, "max_pages", f"{where}.max_pages", integer=True, low=1,
                                high=MAX_PAGES)
        max_cards = self.number(data, "max_cards_per_page", f"{where}.max_cards_per_page",
                                integer=True, low=1, high=MAX_CARDS_PER_PAGE)
        listing_path = self.string(data, "listing_path", f"{where}.listing_path")
        if listing_path:
            try:
                re.compile(listing_path)
            except re.error as exc:
                self.problem(f"{where}.listing_path", f"not a valid regular expression: {exc}")
                listing_path = None
        currency = self.currency(data, "currency", f"{where}.currency")
        results = self.selectors(
            self.table(data, "results", f"{where}.results", required=True) or {},
            RESULT_FIELDS, f"{where}.results", required=("listing", "url"))
        product = None
        if "product" in data:
            product = self.selectors(self.table(data, "product", f"{where}.product") or {},
                                     PRODUCT_FIELDS, f"{where}.product", required=())
        if not name:
            return None
        return Site(
            name=name,
            start_urls=tuple(dict.fromkeys(start_urls)),
            results=results,
            product=product,
            max_pages=max_pages or 10,
            max_cards_per_page=max_cards or Site.max_cards_per_page,
            currency=currency,
            listing_path=listing_path,
            authorized_sellers=self.strings(data, "authorized_sellers",
                                            f"{where}.authorized_sellers"),
        )

    def _search_urls(self, search_url: str, queries: tuple[str, ...]) -> list[str]:
        if not queries:
            queries = self.default_queries
        return [search_url.replace("{query}", quote_plus(q)) for q in queries]

    def selectors(self, data: dict, allowed: tuple[str, ...], where: str,
                  required: tuple[str, ...]) -> dict[str, str]:
        self.unknown_keys(data, allowed, where)
        out: dict[str, str] = {}
        for key in allowed:
            value = self.string(data, key, f"{where}.{key}", required=key in required)
            if value is None:
                continue
            try:
                compile_selector(value)
            except SelectorSyntaxError as exc:
                self.problem(f"{where}.{key}", str(exc))
                continue
            out[key] = value
        return out


def _decimal(value: float | int | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:  # pragma: no cover - number() already checked it
        return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__
