"""The brand's reference catalog, built once from the config for matchers and store."""

from __future__ import annotations

import json
import logging
from functools import lru_cache

import numpy as np

from crawler.config import Config, Product
from crawler.errors import ConfigError
from crawler.store.queries import counterfeit_photos, counterfeit_sellers, reference_features
from crawler.store.writer import CatalogPhoto
from matchers.geometry import Features
from matchers.images import (
    FEATURES_VERSION,
    ImageError,
    ImageHashes,
    ImageMatcher,
    Reference,
    ReferenceIndex,
    ReferencePhoto,
    analyse_reference,
    catalog_analysis,
)
from matchers.price import RateTable
from matchers.score import WEIGHTS, Catalog, CatalogProduct
from matchers.text import normalize_seller


@lru_cache(maxsize=8)
def catalog_photos(products: tuple[Product, ...], config_path: str,
                   db_path: str | None = None) -> tuple[CatalogPhoto, ...]:
    """Analyse every reference photo; an unreadable one is a config error. Keypoints and
    hash variants of a photo an earlier crawl analysed (same bytes, same matcher) are
    read back from the database instead of computed again."""
    cached = reference_features(db_path, FEATURES_VERSION)
    photos, problems = [], []
    for i, product in enumerate(products, 1):
        for path in product.images:
            try:
                data = path.read_bytes()
                # One decode: hashes and thumbnail for the catalog table; keypoints
                # only when reference_features does not hold them yet.
                analysis, image = catalog_analysis(data)
                row = cached.get(analysis.sha256)
                reference = (_reference_from_row(product.name, path.name, row) if row
                             else analyse_reference(product.name, path.name, data, image))
            except (OSError, ImageError) as exc:
                problems.append(f"products[{i}].images: {path}: {exc}")
                continue
            photos.append(CatalogPhoto(product.name, path,
                                       float(product.msrp) if product.msrp else None,
                                       product.currency, analysis, reference))
    if problems:
        raise ConfigError(config_path, problems)
    return tuple(photos)


def _reference_from_row(product: str, name: str, row) -> ReferencePhoto:
    hashes = tuple(Reference(product, name, variant, ImageHashes.from_hex(phash, dhash), kind)
                   for kind, variant, phash, dhash in json.loads(row["hashes"]))
    return ReferencePhoto(product, name, Features.from_bytes(row["features"]),
                          Features.from_bytes(row["mirrored"]), hashes, row["sha256"],
                          np.frombuffer(row["tiny"], dtype="<f4").reshape(2, -1))


def image_matcher(config: Config, db_path: str | None = None) -> ImageMatcher:
    photos = catalog_photos(config.products, str(config.path), db_path)
    return _matcher(tuple(p.reference for p in photos))


@lru_cache(maxsize=8)
def _matcher(references: tuple[ReferencePhoto, ...]) -> ImageMatcher:
    return ImageMatcher(references)


def build_catalog(config: Config, db_path: str | None = None) -> Catalog:
    matcher = image_matcher(config, db_path)
    known = known_counterfeits(db_path, matcher.index, config.matching.image_score)
    return Catalog(
        brand_names=config.brand.names,
        products=tuple(CatalogProduct(p.name, p.msrp, p.currency, p.aliases)
                       for p in config.products),
        references=ReferenceIndex(known),
        images=matcher,
        authorized_sellers=config.brand.authorized_sellers,
        vocabulary=config.matching.vocabulary,
        threshold=config.matching.threshold,
        image_score=config.matching.image_score,
        exchange_rates=config.matching.exchange_rates,
        reference_rates=_reference_rates(db_path),
        weights={**WEIGHTS, **config.matching.weights},
        flagged_sellers=flagged_sellers(db_path),
        site_sellers={s.name: s.authorized_sellers for s in config.sites if s.authorized_sellers},
    )


logger = logging.getLogger(__name__)


def known_counterfeits(db_path: str | None, official: ReferenceIndex,
                       image_score: int) -> list[Reference]:
    """Photos of listings a reviewer confirmed as counterfeit, so that a re-listing is
    caught even when its photo no longer looks like the official one.

    A confirmed counterfeit that used an official photo adds nothing: the official
    photo is already a reference, and treating it as a counterfeit's photo would flag
    every genuine reseller that shows it.
    """
    known = []
    for listing_id, product, phash, dhash in counterfeit_photos(db_path):
        hashes = ImageHashes.from_hex(phash, dhash)
        nearest = official.nearest(hashes)
        if nearest is not None and nearest.score <= image_score:
            continue
        known.append(Reference(product or "unknown product",
                               f"confirmed counterfeit #{listing_id}", "known-counterfeit", hashes))
    if known:
        logger.info("matching against %d photos of confirmed counterfeits", len(known))
    return known


def flagged_sellers(db_path: str | None) -> dict[str, str]:
    """Sellers with a listing a reviewer confirmed counterfeit: normalized name ->
    what to tell the reviewer ("confirmed counterfeit #12")."""
    out = {}
    for seller, first_id, count, gone_at in counterfeit_sellers(db_path):
        more = f" and {count - 1} more" if count > 1 else ""
        # After a takedown, the seller's next listing is the likely re-listing.
        down = f", taken down {gone_at[:10]}: a re-listing?" if gone_at else ""
        out[normalize_seller(seller)] = f"confirmed counterfeit #{first_id}{more}{down}"
    return out


def _reference_rates(db_path: str | None) -> RateTable | None:
    from crawler.rates import current

    rates = current(db_path)
    return rates.table() if rates else None
