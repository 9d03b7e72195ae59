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
                     "negative/accessory", "negative/other-brand"):
        assert negative in kinds


def test_flags_reach_90_percent_precision_and_recall(crawled) -> None:
    config, db = crawled
    result = run_cfmon("evaluate", "--config", str(config), "--labels",
                       str(EVAL / "labels.json"), "--db", str(db), cwd=db.parent)
    assert result.returncode == 0, result.stderr
    found = re.search(r"precision ([\d.]+)  recall ([\d.]+)  F1 ([\d.]+)", result.stdout)
    precision, recall, _ = map(float, found.groups())
    assert precision >= 0.9 and recall >= 0.9, result.stdout
    assert "155 labelled listings found in the database" in result.stdout


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
    assert fake["title"] in block and "borders trimmed" in block


def test_a_bad_labels_file_is_named_with_the_fix(crawled, tmp_path: Path) -> None:
    config, db = crawled
    labels = tmp_path / "labels.json"
    labels.write_text('[{"path": "/evalmart/p/001.html", "counterfeit": "yes"}]', encoding="utf-8")
    result = run_cfmon("evaluate", "--config", str(config), "--labels", str(labels),
                       "--db", str(db), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{labels}: entry 1: needs \"url\" (or \"path\") and \"counterfeit\": true/false" \
        in result.stderr
