from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.cli import main
from crawler.config import load_config, parse_config
from crawler.demo import demo_config_text
from crawler.errors import ConfigError
from tests.conftest import DEMO

VALID = """
[brand]
name = "Acme"
aliases = ["ACME Outdoor"]
authorized_sellers = ["Acme Official Store"]

[[products]]
name = "Acme Trail Backpack 30L"
msrp = 129.0
currency = "USD"
images = ["catalog/trail-30.jpg"]

[matching]
threshold = 60

[[sites]]
name = "shopmart"
search_url = "https://shopmart.example/search?q={query}"
max_pages = 3

[sites.results]
listing = "li.result"
url = "a.title::attr(href)"
title = "a.title::text"
next_page = "a[rel=next]::attr(href)"

[[sites]]
name = "structured"
start_urls = ["https://other.example/list"]

[sites.results]
listing = "xpath://div[@class='tile']"
url = "xpath:./a/@href"

[sites.product]
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "catalog").mkdir()
    shutil.copy(DEMO / "brand" / "catalog" / "trail-30.jpg", tmp_path / "catalog")
    return tmp_path


def write(config_dir: Path, text: str) -> Path:
    path = config_dir / "monitor.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(config_dir: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(config_dir, text))
    return str(caught.value)


def test_valid_config_is_read_into_dataclasses(config_dir: Path) -> None:
    config = load_config(write(config_dir, VALID))
    assert config.brand.names == ("Acme", "ACME Outdoor")
    product = config.products[0]
    assert product.msrp == Decimal("129.0")
    assert product.images == ((config_dir / "catalog" / "trail-30.jpg").resolve(),)
    assert config.matching.threshold == 60
    assert [s.name for s in config.sites] == ["shopmart", "structured"]
    assert config.sites[1].product == {}  # empty table: structured data only
    assert config.sites[0].product is None  # no table: results cards only


def test_search_url_queries_default_to_brand_and_product_names(config_dir: Path) -> None:
    config = load_config(write(config_dir, VALID))
    assert config.sites[0].start_urls == (
        "https://shopmart.example/search?q=Acme",
        "https://shopmart.example/search?q=Acme+Trail+Backpack+30L",
    )


def test_every_problem_is_named_with_its_key_and_line(config_dir: Path) -> None:
    text = VALID.replace('name = "Acme"\n', "").replace("threshold = 60", "treshold = 60")
    text = text.replace('url = "a.title::attr(href)"', 'url = "a.title::attr(href"')
    message = problems(config_dir, text)
    assert str(config_dir / "monitor.toml") in message
    assert "brand.name: missing; it is required" in message
    assert "matching.treshold: unknown key; expected one of: threshold" in message
    assert "sites[1].results.url: invalid CSS selector" in message
    assert "3 problems" in message
    lines = text.splitlines()
    treshold_line = next(i for i, line in enumerate(lines, 1) if "treshold" in line)
    assert f"line {treshold_line}: matching.treshold" in message


def test_missing_image_and_bad_types_are_reported(config_dir: Path) -> None:
    text = VALID.replace("catalog/trail-30.jpg", "catalog/nope.jpg").replace(
        "max_pages = 3", 'max_pages = "three"')
    message = problems(config_dir, text)
    assert "products[1].images: no such file 'catalog/nope.jpg'" in message
    assert "sites[1].max_pages: expected an integer, got string 'three'" in message


def test_analysis_processes_is_a_count_of_workers(config_dir: Path) -> None:
    from crawler.config import parse_config
    from crawler.settings import crawl_settings

    message = problems(config_dir, VALID + "\n[crawl]\nanalysis_processes = -1\n")
    assert "crawl.analysis_processes: expected a number between 0 and 256, got -1" in message
    config = parse_config(VALID + "\n[crawl]\nanalysis_processes = 0\n",
                          config_dir / "monitor.toml")
    assert crawl_settings(config, "c.db")["CFMON_IMAGE_PROCESSES"] == 0
    default = parse_config(VALID, config_dir / "monitor.toml")
    assert crawl_settings(default, "c.db")["CFMON_IMAGE_PROCESSES"] is None  # one per core


def test_duplicate_site_names_and_relative_urls_are_rejected(config_dir: Path) -> None:
    text = VALID.replace('name = "structured"', 'name = "shopmart"').replace(
        "https://other.example/list", "/list")
    message = problems(config_dir, text)
    assert "sites[2].start_urls: expected an absolute http(s) URL, got '/list'" in message
    assert "sites[2].name: duplicate site name 'shopmart'" in message


def test_a_site_needs_listing_and_url_selectors(config_dir: Path) -> None:
    text = VALID.replace('listing = "li.result"\n', "")
    assert "sites[1].results.listing: missing; it is required" in problems(config_dir, text)


def test_toml_syntax_error_names_the_line(config_dir: Path) -> None:
    message = problems(config_dir, VALID.replace("threshold = 60", "threshold = = 60"))
    assert "not valid TOML" in message and "line 14" in message


def test_search_url_without_placeholder(config_dir: Path) -> None:
    text = VALID.replace("search?q={query}", "search?q=acme")
    assert "sites[1].search_url: must contain {query}" in problems(config_dir, text)


def test_check_config_command_exits_2_and_lists_problems(config_dir: Path) -> None:
    path = write(config_dir, VALID.replace("threshold = 60", "threshold = 160"))
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 2
    assert "matching.threshold: expected a number between 0 and 100, got 160" in result.output


def test_check_config_command_accepts_a_valid_file(config_dir: Path) -> None:
    result = CliRunner().invoke(main, ["check-config", str(write(config_dir, VALID))])
    assert result.exit_code == 0, result.output
    assert "ok: brand 'Acme', 1 products (1 photos), 2 sites: shopmart, structured" \
        in result.output


def test_the_demo_config_is_valid_once_served() -> None:
    config = parse_config(*demo_config_text("http://127.0.0.1:8000"))
    assert [s.name for s in config.sites] == ["bazaar", "trendhub", "marketo"]
    assert config.sites[0].start_urls == ("http://127.0.0.1:8000/bazaar/search-1.html",)
    assert all(image.is_file() for p in config.products for image in p.images)


def test_unreadable_reference_photo_is_a_config_error(config_dir: Path) -> None:
    (config_dir / "catalog" / "trail-30.jpg").write_bytes(b"not a jpeg")
    result = CliRunner().invoke(main, ["check-config", str(write(config_dir, VALID))])
    assert result.exit_code == 2
    assert "products[1].images:" in result.output and "not a readable image" in result.output


def test_parse_config_resolves_images_against_the_given_path(config_dir: Path) -> None:
    config = parse_config(VALID, config_dir / "elsewhere.toml")
    assert config.products[0].images[0].parent == (config_dir / "catalog").resolve()


def test_listing_path_must_be_a_regular_expression(config_dir: Path) -> None:
    text = VALID.replace('name = "shopmart"', 'name = "shopmart"\nlisting_path = "/dp/(\\\\w{10}"')
    assert "sites[1].listing_path: not a valid regular expression" in problems(config_dir, text)
