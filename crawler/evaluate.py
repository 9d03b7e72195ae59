"""`cfmon evaluate`: the flags of the config's matchers against labelled listings.

Every listing in the database is scored again with the config as it is now (no
re-crawl, nothing written), so thresholds and weights can be tuned against labels.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from crawler.catalog import build_catalog
from crawler.config import Config
from crawler.errors import LabelsError
from crawler.store.queries import listings_with_photos
from matchers.images import ImageHashes, PhotoMatch
from matchers.score import Catalog, ListingFacts, MatchResult, score_listing


@dataclass
class Outcome:
    url: str
    title: str | None
    counterfeit: bool
    kind: str
    result: MatchResult


@dataclass
class Evaluation:
    outcomes: list[Outcome] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # labelled, not in the database

    def counts(self, kind: str | None = None) -> tuple[int, int, int, int]:
        tp = fp = fn = tn = 0
        for o in self.outcomes:
            if kind is not None and o.kind != kind:
                continue
            flagged = o.result.flagged
            tp += flagged and o.counterfeit
            fp += flagged and not o.counterfeit
            fn += not flagged and o.counterfeit
            tn += not flagged and not o.counterfeit
        return tp, fp, fn, tn

    def scores(self) -> tuple[float, float, float]:
        tp, fp, fn, _ = self.counts()
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1


def load_labels(path: str | Path) -> dict[str, tuple[bool, str]]:
    """Labels as a JSON list of {"url" or "path", "counterfeit", "kind"?} or a JSON
    object {url: true|false}. Keys are full URLs or URL paths."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LabelsError(f"{path}: cannot read labels: {exc}") from None
    labels = {}
    if isinstance(data, dict):
        items = [{"url": k, "counterfeit": v} for k, v in data.items()]
    else:
        items = data
    for i, item in enumerate(items, 1):
        key = item.get("url") or item.get("path") if isinstance(item, dict) else None
        if not key or not isinstance(item.get("counterfeit"), bool):
            raise LabelsError(f"{path}: entry {i}: needs \"url\" (or \"path\") and "
                              "\"counterfeit\": true/false")
        labels[key] = (item["counterfeit"], str(item.get("kind", "counterfeit" if
                                                              item["counterfeit"] else "other")))
    return labels


def evaluate(config: Config, db_path: str, labels: dict[str, tuple[bool, str]]) -> Evaluation:
    catalog = build_catalog(config, db_path)
    rows, photos = listings_with_photos(db_path)
    by_key = {}
    for row in rows:
        parts = urlsplit(row["url"])
        by_key[row["url"]] = row
        by_key.setdefault(parts.path + (f"?{parts.query}" if parts.query else ""), row)
    evaluation = Evaluation()
    for key, (counterfeit, kind) in labels.items():
        row = by_key.get(key)
        if row is None:
            evaluation.missing.append(key)
            continue
        facts = _facts(row, photos.get(row["id"], []), catalog)
        evaluation.outcomes.append(Outcome(row["url"], row["title"], counterfeit, kind,
                                           score_listing(facts, catalog)))
    return evaluation


def _facts(row: sqlite3.Row, photos: list[sqlite3.Row], catalog: Catalog) -> ListingFacts:
    photos = sorted(photos, key=lambda p: p["url"] != row["image_url"])
    hashes, matches = [], []
    for photo in dict((p["url"], p) for p in photos).values():
        variants = {k: ImageHashes.from_hex(*v)
                    for k, v in json.loads(photo["variants"] or "{}").items()}
        hashes.append(variants or ImageHashes.from_hex(photo["phash"], photo["dhash"]))
        # The crawl's verified match, if it was checked against this same catalog.
        same = catalog.images is not None and photo["match_key"] == catalog.images.key
        matches.append(PhotoMatch.from_json(photo["match"]) if same and photo["match"] else None)
    price = Decimal(str(row["price"])) if row["price"] is not None else None
    return ListingFacts(title=row["title"], price=price, currency=row["currency"],
                        seller=row["seller"], site=row["site"], image_hashes=tuple(hashes),
                        photo_matches=tuple(matches))


def render(evaluation: Evaluation) -> str:
    tp, fp, fn, tn = evaluation.counts()
    precision, recall, f1 = evaluation.scores()
    lines = [f"{len(evaluation.outcomes)} labelled listings found in the database"
             + (f" ({len(evaluation.missing)} labelled but not crawled)"
                if evaluation.missing else ""),
             f"precision {precision:.3f}  recall {recall:.3f}  F1 {f1:.3f}  "
             f"(true flags {tp}, false flags {fp}, misses {fn}, rightly left alone {tn})"]
    kinds = sorted({o.kind for o in evaluation.outcomes})
    if len(kinds) > 1:
        lines.append("\nby kind:")
        for kind in kinds:
            k_tp, k_fp, k_fn, k_tn = evaluation.counts(kind)
            lines.append(f"  {kind:<32} flagged {k_tp + k_fp:>3} of {k_tp + k_fp + k_fn + k_tn:>3}")
    for title, wanted in (("false flags", False), ("misses", True)):
        wrong = [o for o in evaluation.outcomes
                 if o.result.flagged != o.counterfeit and o.counterfeit == wanted]
        lines.append(f"\n{title} ({len(wrong)}):")
        for o in sorted(wrong, key=lambda o: -o.result.score):
            lines.append(f"  [{o.result.score}] {o.title} ({o.kind}) {o.url}")
            lines += [f"      - {r}" for r in o.result.reasons] or ["      - (no signal)"]
    for key in evaluation.missing[:20]:
        lines.append(f"  not crawled: {key}")
    return "\n".join(lines) + "\n"
