"""The one shape that crosses the pipeline: a Listing, as a dataclass item."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crawler.evidence import Capture
    from matchers.images import ImageAnalysis
    from matchers.score import MatchResult


@dataclass
class Listing:
    site: str
    url: str
    title: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    seller: str | None = None
    brand: str | None = None
    sku: str | None = None
    availability: str | None = None
    image_url: str | None = None
    found_on: str | None = None  # the results page that listed it
    sources: dict[str, str] = field(default_factory=dict)
    # ImagesPipeline's input and output fields.
    image_urls: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    # Filled by cfmon's pipelines.
    image: ImageAnalysis | None = None  # of image_url, the main photo
    # The listing's other photos: (url, analysis), matched too.
    extra_images: list[tuple[str, ImageAnalysis]] = field(default_factory=list)
    image_error: str | None = None
    match: MatchResult | None = None
    matched_image_url: str | None = None  # the photo that matched a reference
    # The responses this listing was read from, kept as evidence.
    captures: list[Capture] = field(default_factory=list)


@dataclass
class GoneListing:
    """A listing whose own page answered 404 or 410: taken down."""

    site: str
    url: str
    reason: str  # "HTTP 404"


@dataclass
class SeenListing:
    """A listing whose card was on this run's results pages but whose own page could
    not be read (an error other than 404/410, a block page): still listed, so seen."""

    site: str
    url: str
    reason: str
