"""Extraction, field by field, on pages written for cfmon under fixtures/pages."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from parsel import Selector

from crawler.cli import main
from crawler.extract.page import extract_card, extract_product, image_url
from crawler.extract.price import normalize_currency, parse_price
from tests.conftest import DEMO

PAGES = Path(__file__).resolve().parent.parent / "fixtures" / "pages"
EXPECTED = json.loads((PAGES / "expected.json").read_text(encoding="utf-8"))
BASE = "https://shop.example.test/item/1"


# One saved page per trap of real product pages (what each page holds is in its name).
TRAPS = {
    "several offers: the lowest the page shows, with its seller": "jsonld-several-offers.html",
    "AggregateOffer range in a nested @graph, price string with separators":
        "jsonld-graph-aggregate.html",
    "schema.org microdata with a protocol-relative image": "microdata-offer.html",
    "old data-vocabulary.org microdata (offerDetails, currency)": "data-vocabulary.html",
    "OpenGraph only, legacy currency code RUR": "opengraph-only.html",
    "hidden title prefix and SEO suffix": "hidden-prefix-seo-suffix.html",
    "structured price disagreeing with the price shown": "auction-bid.html",
    "visible page only: sale price over struck list price, shipping left alone":
        "visible-only.html",
    "price next to the title, not the logo H1's, a unit price or related products'":
        "price-near-title.html",
    "broken JSON-LD: the visible page still answers": "broken-jsonld.html",
    "Next.js state, price split over spans, a carousel of accessories": "next-data-state.html",
    "Shopify product JSON in cents, compare-at price struck": "shopify-cents.html",
    "dataLayer ecommerce push, price element without a price class": "datalayer-ecommerce.html",
    "Magento data-price-amount, net price before the gross": "magento-vat.html",
    "net price (zzgl. MwSt.) nearer the title than the gross": "net-price-first.html",
    "JSON-LD regular price struck, sale price in window.__INITIAL_STATE__": "sale-in-state.html",
    "out of stock, no offer: a third party's price is no price": "unavailable-no-offer.html",
    "sold out, no structured data: the last price is no price": "sold-out-text.html",
    "a carousel between the title and the buy box": "carousel-before-buybox.html",
}


def test_every_trap_has_its_page() -> None:
    assert sorted(TRAPS.values()) == sorted(EXPECTED)


@pytest.mark.parametrize("page", sorted(EXPECTED))
@pytest.mark.parametrize("field", ["title", "price", "currency", "brand", "sku", "image",
                                   "seller", "availability", "sources"])
def test_saved_page_field(page: str, field: str) -> None:
    html = (PAGES / page).read_text(encoding="utf-8")
    got = extract_product(html, BASE).as_json()
    assert got[field] == EXPECTED[page][field]


def test_extract_command_prints_one_json_line_per_page_in_order(tmp_path: Path) -> None:
    gz = tmp_path / "boots.html.gz"
    gz.write_bytes(gzip.compress((PAGES / "microdata-offer.html").read_bytes()))
    pages = [str(PAGES / "jsonld-graph-aggregate.html"), str(gz)]
    result = CliRunner().invoke(main, ["extract", "--url", BASE, *pages])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["title"] for line in lines] == ["Lumo Desk Lamp", "Wanderer Hiking Boots"]
    assert list(lines[0])[:7] == ["title", "price", "currency", "brand", "sku", "image", "seller"]
    assert lines[1]["price"] == "89.95"


def test_extract_command_reports_an_unreadable_file_and_goes_on(tmp_path: Path) -> None:
    missing = tmp_path / "missing.html"
    result = CliRunner().invoke(main, ["extract", str(missing), str(PAGES / "visible-only.html")])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert str(missing) in lines[0]["error"]
    assert lines[1]["title"] == "Canvas tote bag"


def test_extract_command_uses_a_sites_product_selectors(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text("""
[brand]
name = "Lumo"
[[sites]]
name = "lighthouse"
start_urls = ["https://shop.example.test/"]
currency = "SEK"
[sites.results]
listing = "li"
url = "a::attr(href)"
[sites.product]
title = "title::text"
price = "p"
""", encoding="utf-8")
    result = CliRunner().invoke(main, ["extract", "--config", str(config), "--site", "lighthouse",
                                       str(PAGES / "jsonld-graph-aggregate.html")])
    got = json.loads(result.output)
    assert got["title"] == "Lumo Desk Lamp | LightHouse Shop"
    assert got["sources"]["title"] == "selector"
    assert (got["price"], got["currency"], got["sources"]["price"]) == ("1049.50", "SEK", "selector")


@pytest.mark.parametrize(("text", "amount", "currency"), [
    ("US $1,299.00", "1299.00", "USD"),
    ("1.299,00 €", "1299.00", "EUR"),
    ("£48.99", "48.99", "GBP"),
    ("249 руб.", "249", "RUB"),
    ("CHF 12.50", "12.50", "CHF"),
    ("12,99 zł", "12.99", "PLN"),
    ("$ 37 . 30", "37.30", "USD"),
    ("Call for price", None, None),
])
def test_price_strings(text: str, amount: str | None, currency: str | None) -> None:
    parsed = parse_price(text)
    assert parsed.amount == (Decimal(amount) if amount else None)
    assert parsed.currency == currency


def test_ambiguous_symbols_follow_the_sites_currency() -> None:
    assert parse_price("$15.00", default_currency="CAD").currency == "CAD"
    assert parse_price("$15.00", default_currency="EUR").currency == "USD"
    assert parse_price("15.00", default_currency="EUR").currency == "EUR"
    assert normalize_currency("RUR") == "RUB"


def test_card_reads_lazy_image_and_resolves_relative_urls() -> None:
    card = Selector(text="""<li class="r"><a class="t" href="../item/7?ref=s#top">Pack</a>
        <span class="p">US $<b>39</b>.00</span><img src="data:image/gif;base64,R0l"
        data-src="/img/7.jpg"><b class="shop"> Shop
        A </b></li>""")
    selectors = {"listing": "li.r", "url": "a.t::attr(href)", "title": "a.t::text",
                 "price": "span.p", "image": "img::attr(data-src)", "seller": "b.shop::text"}
    got = extract_card(card, selectors, "https://m.example.test/search/page-2")
    assert got.values == {"url": "https://m.example.test/item/7", "title": "Pack",
                          "price": Decimal("39.00"), "currency": "USD",
                          "image": "https://m.example.test/img/7.jpg", "seller": "Shop A"}


def test_bad_price_on_a_card_is_a_named_problem_not_a_crash() -> None:
    card = Selector(text='<li><a href="/x">X</a><span>price on request</span></li>')
    got = extract_card(card, {"listing": "li", "url": "a::attr(href)", "price": "span::text"},
                       "https://m.example.test/")
    assert "price" not in got.values
    assert got.problems == {"price": "price 'price on request' has no readable amount"}


def test_image_url_from_srcset_takes_the_largest() -> None:
    assert image_url("/a.jpg 320w, /b.jpg 1024w, /c.jpg 640w", "https://x.test/p") == \
        "https://x.test/b.jpg"
    assert image_url("//cdn.x.test/a.jpg", "https://x.test/p") == "https://cdn.x.test/a.jpg"
    assert image_url("data:image/gif;base64,AAAA", "https://x.test/p") is None


def test_listing_identity_drops_tracking_parameters() -> None:
    from crawler.extract.page import listing_url

    assert listing_url("/itm/123?hash=item1c&_trksid=p2&var=7&utm_source=x#photos",
                       "https://m.example.test/s?q=a") == "https://m.example.test/itm/123?var=7"
    assert listing_url("../dp/B0?ref=sr_1_1&qid=99", "https://m.example.test/s/x") == \
        "https://m.example.test/dp/B0"


def test_text_selectors_read_the_whole_text_of_nested_tags() -> None:
    card = Selector(text='<li><a class="t" href="/x">Nordvik <b>Trail</b> Backpack</a>'
                         '<span class="p">US $<b>39</b>.00</span></li>')
    got = extract_card(card, {"listing": "li", "url": "a.t::attr(href)", "title": "a.t::text",
                              "price": "span.p::text"}, "https://m.example.test/")
    assert got.values["title"] == "Nordvik Trail Backpack"
    assert got.values["price"] == Decimal("39.00")


def test_listing_path_gives_one_identity_to_a_listings_many_urls() -> None:
    from crawler.extract.page import listing_url

    pattern = r"/dp/\w{10}"
    urls = ["/-/en/Cat-Food/dp/B07D4RV7PQ?rdc=1&sp_csd=d2lk&psc=1",
            "/Cat-Food/dp/B07D4RV7PQ/ref=sr_1_3/258-2175373?ie=UTF8",
            "/sspa/click?ie=UTF8&url=%2FCat-Food%2Fdp%2FB07D4RV7PQ%2Fref%3Dsr_1_1_sspa"]
    assert {listing_url(u, "https://www.amazon.de/s?k=cat", pattern) for u in urls} == \
        {"https://www.amazon.de/dp/B07D4RV7PQ"}


def test_extract_results_prints_one_line_per_card(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    text = (DEMO / "brand" / "monitor.toml").read_text(encoding="utf-8")
    config.write_text(text.replace("{server}", "http://127.0.0.1:1").replace(
        "catalog/", str(DEMO / "brand" / "catalog") + "/"), encoding="utf-8")
    page = DEMO / "sites" / "bazaar" / "search-1.html"
    result = CliRunner().invoke(main, ["extract", "--results", "--config", str(config), "--site",
                                       "bazaar", "--url", "https://bazaar.test/search-1.html",
                                       str(page)])
    assert result.exit_code == 0, result.output
    cards = [json.loads(line) for line in result.output.splitlines()]
    assert [c["position"] for c in cards] == [1, 2, 3, 4, 5]
    assert cards[0] == {"page": str(page), "position": 1, "url": "https://bazaar.test/bazaar/item/b1",
                        "title": "Nordvik Trail Backpack 30L - Forest Green", "price": "129.00",
                        "currency": "USD", "image": "https://bazaar.test/bazaar/img/b1.jpg",
                        "seller": "Nordvik Official Store"}


CARDS = Path(__file__).resolve().parent.parent / "fixtures" / "cards"


def test_a_badge_and_the_title_beside_it_stay_apart_and_a_split_price_reads_whole() -> None:
    page = Selector(text=(CARDS / "ebay-style-search.html").read_text(encoding="utf-8"))
    selectors = {"listing": "li.s-item", "url": "a.s-item__link::attr(href)",
                 "title": "div.s-item__title span[role=heading]::text",
                 "price": "span.s-item__price", "seller": "span.s-item__seller-info-text"}
    (card,) = page.css("li.s-item")
    got = extract_card(card, selectors, "https://www.ebay.de/sch/i.html?_nkw=ipad+4", "EUR",
                       r"/itm/\d+")
    assert got.values["title"] == "Neues Angebot IPad 4. Generation 16GB WiFi Schwarz"
    assert got.values["price"] == Decimal("89.00")
    assert got.values["currency"] == "EUR"
    assert got.values["url"] == "https://www.ebay.de/itm/1234567890"
    assert got.values["seller"] == "techhaus-berlin (1.234) 99,1%"  # <b> inside a word


# Each of the extractor's rules (crawler/extract/rules.py) and a page that needs it:
# with the rule off, the page reads wrong.
RULE_PAGES = [
    ("state", "shopify-cents.html"),
    ("state", "sale-in-state.html"),
    ("skip_net", "magento-vat.html"),
    ("skip_net", "net-price-first.html"),
    ("skip_carousels", "carousel-before-buybox.html"),
    ("skip_carousels", "next-data-state.html"),
    ("unavailable_text", "sold-out-text.html"),
]


@pytest.mark.parametrize("rule, page", RULE_PAGES)
def test_each_price_rule_is_needed_by_a_page(rule: str, page: str) -> None:
    from dataclasses import replace

    from crawler.extract.rules import DEFAULT

    html = (PAGES / page).read_text(encoding="utf-8")
    assert extract_product(html, BASE).as_json()["price"] == EXPECTED[page]["price"]
    without = extract_product(html, BASE, rules=replace(DEFAULT, **{rule: False}))
    assert without.as_json()["price"] != EXPECTED[page]["price"]


def test_no_price_for_an_item_that_cannot_be_bought_says_why() -> None:
    got = extract_product((PAGES / "unavailable-no-offer.html").read_text(encoding="utf-8"), BASE)
    assert got.get("price") is None
    assert "cannot be bought (availability OutOfStock, no priced offer)" in got.problems["price"]


def test_the_chosen_price_says_why() -> None:
    got = extract_product((PAGES / "sale-in-state.html").read_text(encoding="utf-8"), BASE)
    assert got.as_json()["sources"]["price_reason"] == "state price shown on the page"


def test_every_rule_has_values_for_cross_validation() -> None:
    from crawler.extract.rules import DEFAULT, GRID, RULE_NAMES

    assert set(GRID) == set(RULE_NAMES)
    assert all(getattr(DEFAULT, name) in GRID[name] for name in RULE_NAMES)


def test_an_elements_marks_are_what_its_whole_class_id_and_itemprop_say() -> None:
    """marks.py classifies class and id words one at a time (and caches them): on every
    element of every fixture page, and on names made to straddle words, the bits must
    be what the patterns say of the whole attributes."""
    import re

    from lxml import etree

    from crawler.extract import marks as m

    def whole(cls: str, ident: str, prop: str) -> int:
        short, full = f"{cls} {ident}", f"{cls} {ident} {prop}"
        checks = ((m._PRICE_MARK, full, m.PRICE), (m.NOT_CURRENT_WORDS, full, m.NOT_CURRENT),
                  (m._OLD_PRICE, short, m.OLD), (m._CAROUSEL, short, m.CAROUSEL),
                  (m._NET_MARK, short, m.NET), (m._NET_MARK, full, m.NET_FULL),
                  (m._AVAILABILITY_MARK, full, m.AVAILABILITY))
        return sum(bits for pattern, text, bits in checks if re.search(pattern, text))

    elements = [etree.fromstring(
        f'<p class="{c}" id="{i}" itemprop="{p}"/>') for c, i, p in (
            ("Product-Price--OLD", "", ""), ("price old", "was", ""), ("a b", "", "netPrice"),
            ("RecentlyViewed", "STOCK", "availability"), ("", "", "price"))]
    for page in PAGES.glob("*.html"):
        elements += [el for el in Selector(text=page.read_text(encoding="utf-8")).root.iter()
                     if isinstance(el.tag, str) and m.key_of(el) is not None]
    assert len(elements) > 90
    m._KNOWN.clear()
    m._WORDS.clear()
    for el in elements:
        key = m.key_of(el)
        cls, ident, prop = (value or "" for value in key)
        assert m.marks_of([key])[key] == whole(cls, ident, prop), (cls, ident, prop)


def test_a_page_reads_the_same_when_the_class_word_tables_were_emptied() -> None:
    from crawler.extract import marks as m

    html = (PAGES / "next-data-state.html").read_text(encoding="utf-8")
    first = extract_product(html, BASE).as_json()
    m._KNOWN.clear()
    m._WORDS.clear()
    assert extract_product(html, BASE).as_json() == first


def test_positions_outside_the_body_are_the_whole_pages_document_order() -> None:
    """The walk numbers the body's nodes; a node outside it (a byline script in the head)
    is numbered when asked for, with the number a walk of the whole page gives it."""
    from crawler.extract.dom import index_page, parse_page

    html = ('<html><head><title>t</title><script id="brand">Brand: Nordvik</script></head>'
            '<body><!-- c --><h1>Nordvik Trail Backpack</h1><p class="price">$129.00</p>'
            '<div><span>In stock</span></div></body></html>')
    root = parse_page(html).root
    index = index_page(root, html)
    whole = {node: position for position, node in enumerate(root.iter())}
    assert {node: index.order[node] for node in index.body.iter()} == \
        {node: whole[node] for node in index.body.iter()}
    script = root.find(".//script")
    assert index.order[script] == whole[script]
    assert index.anchor == whole[index.title]
    assert extract_product(html, BASE).values["brand"] == "Nordvik"
