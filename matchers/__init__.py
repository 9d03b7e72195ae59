"""Matching a listing against the brand's catalog: pure functions, no Scrapy, no SQLite."""

from matchers.score import Catalog, Evidence, ListingFacts, MatchResult, score_listing

__all__ = ["Catalog", "Evidence", "ListingFacts", "MatchResult", "score_listing"]
