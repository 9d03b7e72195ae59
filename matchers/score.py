"""Signals -> one 0-100 score with its reasons, by a fusion a reviewer can redo by hand.

Two sums, each capped, then added:

* **relevance** (cap 40): is this listing about the brand's products at all?
  image copy of a reference photo, verified by geometry (matchers.geometry) 35 (40
  when unedited), brand named in the title
  25, product name matched 15 (only together with the brand or an image: generic
  words alone such as "backpack 30L" prove nothing).
* **suspicion** (cap 60): does it look counterfeit? price at most 35% of MSRP 40,
  at most 50% 30, at most 70% 15 (other currencies through the config's exchange
  rates, else the ECB's reference rates); counterfeit vocabulary 40 (+5 per further
  term), "Nordvik-style" counts as vocabulary; a disguised brand name ("N0rdvik") 20; the photo of a listing a
  reviewer confirmed counterfeit 40; a seller with a confirmed counterfeit 30.

A listing with no relevance scores 0 whatever its vocabulary ("replica watch" of
another brand is not ours). A listing by an authorized seller scores 0: the exact name
only (NFC, case folded; per site where the config says so). A shop name that folds to
an authorized seller's without being it ("Nordvik Оfficial Store" with a Cyrillic О,
"NORDVIK-OFFICIAL-STORE") is a suspicion of 40, not an exemption. A
third-party accessory ("rain cover for Nordvik ...") names the brand but its price
is not compared with the product's, and a used one's only below 35%. Because relevance is capped at 40, a
genuine-looking listing (official photo, right name, retail price) stays under the
default threshold of 50 until some suspicion adds up. Every weight can be changed
in the config's ``[matching.weights]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from matchers.images import ImageHashes, ImageMatch, ImageMatcher, PhotoMatch, ReferenceIndex
from matchers.price import RateTable, price_ratio
from matchers.text import (
    TITLE_LIMIT,
    ProductIndex,
    brand_style,
    exact_name,
    find_brand,
    find_vocabulary,
    is_accessory,
    is_used,
    normalize_seller,
)

RELEVANCE_CAP = 40
SUSPICION_CAP = 60
WEIGHTS = {
    "image_exact": 40,  # the official photo itself, resized at most (or within 8 bits)
    "image_near": 35,  # a copy cut, turned, framed or mirrored (or a re-listing)
    "brand": 25,
    "product": 15,
    "price_35": 40,
    "price_50": 30,
    "price_70": 15,
    "vocabulary": 40,
    "vocabulary_more": 5,
    "disguised_brand": 20,
    "known_counterfeit": 40,  # the photo of a listing a reviewer confirmed counterfeit
    "known_seller": 30,  # a seller with a listing a reviewer confirmed counterfeit
    "seller_imitation": 40,  # a shop name that folds to an authorized seller's, not it
}
PRODUCT_SIMILARITY = 80  # rapidfuzz token_set_ratio at which a product name counts


@dataclass(frozen=True)
class CatalogProduct:
    name: str
    msrp: Decimal | None
    currency: str | None
    aliases: tuple[str, ...] = ()


@dataclass
class Catalog:
    """Everything the matchers know about the brand."""

    brand_names: tuple[str, ...]
    products: tuple[CatalogProduct, ...]
    references: ReferenceIndex  # photos of confirmed counterfeits (hashes)
    # The brand's reference photos (hashes propose, geometry decides); the crawl's
    # images pipeline checks each listing photo against it.
    images: ImageMatcher | None = None
    authorized_sellers: tuple[str, ...] = ()
    vocabulary: tuple[str, ...] = ()
    threshold: int = 50
    image_score: int = 12  # bits to a confirmed counterfeit's photo (crawler.config)
    exchange_rates: dict[str, float] = field(default_factory=dict)
    # Rates for currencies the config does not price (the ECB's), with their date.
    reference_rates: RateTable | None = None
    weights: dict[str, int] = field(default_factory=lambda: dict(WEIGHTS))
    # normalized seller name -> what reviewers found ("confirmed counterfeit #12")
    flagged_sellers: dict[str, str] = field(default_factory=dict)
    # Sellers authorized on one marketplace only: site name -> names.
    site_sellers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Built on first use (see product_index, product).
    _index: ProductIndex | None = field(default=None, init=False, repr=False, compare=False)
    _by_name: dict[str, CatalogProduct] | None = field(default=None, init=False, repr=False,
                                                      compare=False)

    def _authorized_on(self, site: str | None) -> tuple[str, ...]:
        return (*self.authorized_sellers, *self.site_sellers.get(site or "", ()))

    def is_authorized(self, seller: str | None, site: str | None = None) -> bool:
        """Only the exact name (Unicode NFC, case folded) is exempt: a shop that merely
        looks like an authorized one is not it (see ``imitated``)."""
        return bool(seller) and exact_name(seller) in {
            exact_name(s) for s in self._authorized_on(site)}

    def imitated(self, seller: str | None, site: str | None = None) -> str | None:
        """The authorized seller whose name ``seller`` folds to without being it
        (homoglyphs, accents, spacing, punctuation, full-width letters): a strong tell."""
        if not seller or self.is_authorized(seller, site):
            return None
        folded = normalize_seller(seller)
        if not folded:
            return None
        # Any authorized name counts here, on any site: imitating the brand's own shop
        # is a tell wherever it happens.
        every = (*self.authorized_sellers, *(n for ns in self.site_sellers.values() for n in ns))
        return next((s for s in every if normalize_seller(s) == folded), None)

    def product(self, name: str) -> CatalogProduct | None:
        return self._products_by_name().get(name)

    def _products_by_name(self) -> dict[str, CatalogProduct]:
        if self._by_name is None:
            self._by_name = {}
            for product in self.products:
                self._by_name.setdefault(product.name, product)
        return self._by_name

    def product_index(self) -> ProductIndex:
        """Product names normalized and indexed once, for every listing of a crawl."""
        if self._index is None:
            self._index = ProductIndex([(p.name, p.aliases) for p in self.products],
                                       self.brand_names)
        return self._index


@dataclass(frozen=True)
class ListingFacts:
    """What the matchers need of a listing."""

    title: str | None
    price: Decimal | None = None
    currency: str | None = None
    seller: str | None = None
    site: str | None = None  # the marketplace (sellers may be authorized on one only)
    # Per listing photo: its hashes, or its variants ("full", "trimmed", "center"),
    # compared with photos of confirmed counterfeits (re-listings).
    image_hashes: tuple[ImageHashes | dict[str, ImageHashes], ...] = ()
    # Per listing photo (same order): the reference photo it was verified to show.
    photo_matches: tuple[PhotoMatch | None, ...] = ()


@dataclass(frozen=True)
class Signal:
    signal: str  # image, brand, product, price, vocabulary, disguise, seller
    kind: str  # "relevance" or "suspicion" (or "override")
    points: int
    reason: str


@dataclass(frozen=True)
class MatchResult:
    score: int
    flagged: bool
    product: str | None
    signals: tuple[Signal, ...]
    image_match: ImageMatch | None = None  # a confirmed counterfeit's photo, by hashes
    photo_match: PhotoMatch | None = None  # a reference photo, verified by geometry
    image_photo: int | None = None  # which of the listing's photos matched

    @property
    def reasons(self) -> list[str]:
        return [e.reason for e in self.signals]


def score_listing(facts: ListingFacts, catalog: Catalog) -> MatchResult:
    signals: list[Signal] = []
    title = (facts.title or "")[:TITLE_LIMIT]
    w = catalog.weights

    photo, verified = _best_verified(facts.photo_matches)
    image: ImageMatch | None = None
    if verified is not None:
        # A copy not cut, turned or framed is the official photo itself (resized at most).
        exact = verified.describe() == "the whole photo" and verified.verification.agreement >= 0.9
        signals.append(Signal("image", "relevance", w["image_exact"] if exact else w["image_near"],
                              f"image: {verified.reason()} ({verified.product})"))
    else:
        photo, image = _best_known(facts.image_hashes, catalog)
    if image is not None:
        ref = image.reference
        points = w["image_exact"] if image.score <= 8 else w["image_near"]
        bits = "bit" if image.distance == 1 else "bits"
        signals.append(Signal(
            "image", "relevance", points,
            f"image: {image.distance} {bits} from the photo of {ref.photo} ({ref.product})"))
        signals.append(Signal("known_counterfeit", "suspicion", w["known_counterfeit"],
                              f"same photo as {ref.photo}: a re-listing"))

    brand = find_brand(title, catalog.brand_names) if title else None
    accessory = brand is not None and is_accessory(title, brand.found)
    if brand is not None:
        signals.append(Signal("brand", "relevance", w["brand"],
                                 f"title names the brand {brand.name!r}"))
        if not brand.exact:
            signals.append(Signal(
                "disguise", "suspicion", w["disguised_brand"],
                f"title disguises the brand: {brand.found!r} for {brand.name!r}"))

    product_name = (verified.product if verified else
                    image.reference.product if image else None)
    match = catalog.product_index().best(title) if title else None
    if match is not None and match.similarity >= PRODUCT_SIMILARITY:
        product_name = product_name or match.name
        if (brand is not None or verified is not None or image is not None) and not accessory:
            signals.append(Signal(
                "product", "relevance", w["product"],
                f"title matches product {match.name!r} ({match.similarity:.0f}%)"))

    product = catalog.product(product_name) if product_name else None
    if product is not None and not accessory:
        ratio = price_ratio(facts.price, facts.currency, product.msrp, product.currency,
                            catalog.exchange_rates, catalog.reference_rates)
        if ratio is not None:
            used = is_used(title)
            points = (w["price_35"] if ratio.ratio <= 0.35 else
                      0 if used else  # second-hand: only a giveaway price is suspicious
                      w["price_50"] if ratio.ratio <= 0.50 else
                      w["price_70"] if ratio.ratio <= 0.70 else 0)
            if points:
                shown = f"price {ratio.price:.2f} {ratio.currency}"
                if ratio.converted is not None:
                    shown += (f" = {ratio.converted:.2f} {ratio.msrp_currency} at "
                              f"{ratio.rates},")
                else:
                    shown += " is"
                signals.append(Signal(
                    "price", "suspicion", points,
                    f"{shown} {ratio.percent}% of MSRP {ratio.msrp:.2f} {ratio.msrp_currency}"))
    elif accessory:
        signals.append(Signal("accessory", "relevance", 0,
                                 "an accessory for the brand's product: price not compared"))

    terms = find_vocabulary(title, catalog.vocabulary) if title else []
    if brand is not None:
        style = brand_style(title, brand.found)
        if style and style not in terms:
            terms.append(style)
    if terms:
        points = w["vocabulary"] + w["vocabulary_more"] * (len(terms) - 1)
        quoted = ", ".join(repr(t) for t in terms)
        signals.append(Signal("vocabulary", "suspicion", points,
                                 f"title contains {quoted}"))

    history = catalog.flagged_sellers.get(normalize_seller(facts.seller)) \
        if facts.seller else None
    if history:
        signals.append(Signal("seller_history", "suspicion", w["known_seller"],
                                 f"seller {facts.seller!r} sold {history}"))
    imitated = catalog.imitated(facts.seller, facts.site)
    if imitated:
        signals.append(Signal("seller_imitation", "suspicion", w["seller_imitation"],
                                 f"seller {facts.seller!r} imitates authorized seller "
                                 f"{imitated!r}"))

    signals.sort(key=lambda e: -e.points)
    relevance = min(RELEVANCE_CAP, sum(e.points for e in signals if e.kind == "relevance"))
    suspicion = min(SUSPICION_CAP, sum(e.points for e in signals if e.kind == "suspicion"))
    score = relevance + suspicion if relevance else 0

    if catalog.is_authorized(facts.seller, facts.site):
        signals.insert(0, Signal("seller", "override", 0,
                                    f"seller {facts.seller!r} is authorized: never flagged"))
        score = 0

    return MatchResult(
        score=score,
        flagged=score >= catalog.threshold,
        product=product_name,
        signals=tuple(signals),
        image_match=image,
        photo_match=verified,
        image_photo=photo,
    )


def _best_verified(matches: Sequence[PhotoMatch | None]) -> tuple[int | None, PhotoMatch | None]:
    """The listing photo with the most keypoints agreeing with a reference photo."""
    best, best_index = None, None
    for index, match in enumerate(matches):
        if match is not None and (best is None or match.inliers > best.inliers):
            best, best_index = match, index
    return best_index, best


def _best_known(photos: Sequence[ImageHashes | dict[str, ImageHashes]],
                catalog: Catalog) -> tuple[int | None, ImageMatch | None]:
    """The listing photo closest to a confirmed counterfeit's photo (its index), and the
    match: a re-listing shows the same photo again, within ``image_score`` bits."""
    best, best_index = None, None
    for index, photo in enumerate(photos):
        variants = photo if isinstance(photo, dict) else {"full": photo}
        found = catalog.references.nearest_variants(variants)
        if found is not None and found.score <= catalog.image_score:
            if best is None or found.score < best.score:
                best, best_index = found, index
    return best_index, best
