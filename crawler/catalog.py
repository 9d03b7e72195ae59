"""The brand's reference catalog, built once from the config for matchers and store."""

from __future__ import annotations

from functools import lru_cache

from crawler.config import Config, Product
from crawler.errors import ConfigError
from crawler.store.writer import CatalogPhoto
from matchers.images import ImageError, ReferenceIndex, analyse_image
from matchers.score import Catalog, CatalogProduct


@lru_cache(maxsize=8)
def catalog_photos(products: tuple[Product, ...], config_path: str) -> tuple[CatalogPhoto, ...]:
    """Analyse every reference photo; an unreadable one is a config error."""
    photos, problems = [], []
    for i, product in enumerate(products, 1):
        for path in product.images:
            try:
                analysis = analyse_image(path.read_bytes())
            except (OSError, ImageError) as exc:
                problems.append(f"products[{i}].images: {path}: {exc}")
                continue
            photos.append(CatalogPhoto(product.name, path,
                                       float(product.msrp) if product.msrp else None,
                                       product.currency, analysis))
    if problems:
        raise ConfigError(config_path, problems)
    return tuple(photos)


def build_catalog(config: Config) -> Catalog:
    photos = [(p.product, p.path) for p in catalog_photos(config.products, str(config.path))]
    return Catalog(
        brand_names=config.brand.names,
        products=tuple(CatalogProduct(p.name, p.msrp, p.currency, p.aliases)
                       for p in config.products),
        references=ReferenceIndex.from_photos(photos),
        authorized_sellers=config.brand.authorized_sellers,
        vocabulary=config.matching.vocabulary,
        threshold=config.matching.threshold,
        image_distance=config.matching.image_distance,
    )
