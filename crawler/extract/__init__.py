"""Extraction: from a page to listing fields, each field with the source it came from.

Order of trust for a product page: the site's own selectors, then structured data
(JSON-LD, microdata, OpenGraph), then what the results card showed, then the
visible-page heuristics.
"""

from crawler.extract.page import Extracted, extract_card, extract_product

__all__ = ["Extracted", "extract_card", "extract_product"]
