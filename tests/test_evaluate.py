"""`cfmon evaluate` on the labelled evaluation marketplace, crawled for real."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from crawler.demo import serve
from tests.conftest import DEMO, FIXTURES, run_cfmon

EVAL = FIXTURES / "eval"


@pytest.fixture(scope="module")
def crawled(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("eval")
    shutil.copytree(DEMO / "brand" / "catalog", tmp / "catalog")
    with serve(EVAL / "site") as base:
        text = (EVAL / "monitor.toml").read_text(encoding="utf-8")
        config = tmp / "monitor.toml"
        text = text.replace("{server}", base)
        config.write_text(text.replace("../../crawler/demo/brand/catalog/", "catalog/"),
                          encoding="utf-8")
        result = run_cfmon("crawl", "--config", str(config), "--db", str(tmp / "eval.db"),
                           "--quiet", cwd=tmp)
    assert result.returncode == 0, result.stderr[-2000:]
    return config, tmp / "eval.db"


def test_the_labelled_set_is_big_and_varied() -> None:
    labels = json.loads((EVAL / "labels.json").read_text(encoding="utf-8"))
    kinds = {label["kind"] for label in labels}
    assert len(labels) >= 150
    for edit in ("resized", "recompressed", "cropped", "mirrored", "padded", "watermarked",
                 "recoloured", "tilted", "own-photo", "eur"):
        assert f"counterfeit/{edit}" in kinds
    for negative in ("genuine/authorized", "genuine/reseller", "negative/generic",
                     "negative/accessory", "negative/other-brand", "negative/look-alike/original",
                     "negative/look-alike/screenshot", "negative/look-alike/meme"):
        assert negative in kinds
    for edit in ("cropped-20", "tilted-10", "perspective", "meme", "screenshot", "stickers",
                 "mirrored-cropped", "padded-grey"):
        assert f"counterfeit/image-only/{edit}" in kinds


def evaluation(crawled) -> str:
    config, db = crawled
    result = run_cfmon("evaluate", "--config", str(config), "--labels",
                       str(EVAL / "labels.json"), "--db", str(db), cwd=db.parent)
    assert result.returncode == 0, result.stderr
    return result.stdout


def flagged_of(out: str, kind: str) -> tuple[int, int]:
    found = re.search(rf"  {re.escape(kind)}\s+flagged\s+(\d+) of\s+(\d+)", out)
    assert found, kind
    return int(found.group(1)), int(found.group(2))


def test_a_counterfeit_only_its_photo_gives_away_is_flagged(crawled) -> None:
    # Clean title, unauthorized seller, 55-68% of MSRP: without the photo matched as a
    # copy of a reference photo through its edit, none of these is flagged.
    out = evaluation(crawled)
    for edit in ("cropped-20", "tilted-10", "perspective", "meme", "screenshot", "stickers",
                 "mirrored-cropped", "padded-grey"):
        flagged, total = flagged_of(out, f"counterfeit/image-only/{edit}")
        assert flagged == total == 3, (edit, out)


def test_a_look_alike_shot_the_same_way_is_left_alone(crawled) -> None:
    # Other products in the same studio, colour and framing, at the same prices: a
    # matcher that takes a layout for a photo flags them.
    out = evaluation(crawled)
    for edit in ("original", "screenshot", "meme"):
        flagged, total = flagged_of(out, f"negative/look-alike/{edit}")
        assert flagged == 0 and total == 6, (edit, out)


def test_flags_reach_95_percent_precision_and_recall(crawled) -> None:
    config, db = crawled
    result = run_cfmon("evaluate", "--config", str(config), "--labels",
                       str(EVAL / "labels.json"), "--db", str(db), cwd=db.parent)
    assert result.returncode == 0, result.stderr
    found = re.search(r"precision ([\d.]+)  recall ([\d.]+)  F1 ([\d.]+)", result.stdout)
    precision, recall, _ = map(float, found.groups())
    assert precision >= 0.95 and recall >= 0.95, result.stdout
    assert "197 labelled listings found in the database" in result.stdout


def test_evaluate_names_false_flags_and_misses_with_reasons(crawled, tmp_path: Path) -> None:
    config, db = crawled
    labels = json.loads((EVAL / "labels.json").read_text(encoding="utf-8"))
    # Swap two labels: one real counterfeit becomes a "miss" of ours, one genuine a false flag.
    fake = next(lab for lab in labels if lab["kind"] == "counterfeit/padded")
    fake["counterfeit"] = False
    wrong = tmp_path / "labels.json"
    wrong.write_text(json.dumps(labels), encoding="utf-8")
    result = run_cfmon("evaluate", "--config", str(config), "--labels", str(wrong),
                       "--db", str(db), cwd=tmp_path)
    out = result.stdout
    assert "false flags (1):" in out
    block = out.split("false flags (1):")[1]
    assert fake["title"] in block and "inside a larger picture" in block


def test_a_bad_labels_file_is_named_with_the_fix(crawled, tmp_path: Path) -> None:
    config, db = crawled
    labels = tmp_path / "labels.json"
    labels.write_text('[{"path": "/evalmart/p/001.html", "counterfeit": "yes"}]', encoding="utf-8")
    result = run_cfmon("evaluate", "--config", str(config), "--labels", str(labels),
                       "--db", str(db), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{labels}: entry 1: needs \"url\" (or \"path\") and \"counterfeit\": true/false" \
        in result.stderr
