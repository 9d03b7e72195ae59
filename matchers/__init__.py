"""Matching a listing against the brand's catalog: pure functions, no Scrapy, no SQLite."""

from matchers.score import Catalog, ListingFacts, MatchResult, Signal, score_listing

__all__ = ["Catalog", "Signal", "ListingFacts", "MatchResult", "score_listing"]
