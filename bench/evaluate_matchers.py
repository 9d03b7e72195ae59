"""Precision and recall of cfmon's flags on the labelled evaluation marketplace.

    python bench/evaluate_matchers.py [--keep DIR]

Serves fixtures/eval/site on 127.0.0.1, crawls it with fixtures/eval/monitor.toml
through the real `cfmon crawl`, then prints `cfmon evaluate` against
fixtures/eval/labels.json (197 listings: every edit and disguise of issue 3, genuine
listings by authorized sellers and resellers, hard negatives, listings only their photo
gives away and look-alikes shot in the same studio).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.demo import serve  # noqa: E402

EVAL = ROOT / "fixtures" / "eval"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the database and config here")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cfmon-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "eval.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with serve(EVAL / "site") as base:
        text = (EVAL / "monitor.toml").read_text(encoding="utf-8")
        text = text.replace("{server}", base).replace(
            '"../../crawler/demo/brand/catalog/',
            f'"{(ROOT / "crawler" / "demo" / "brand" / "catalog").as_posix()}/')
        config = work / "monitor.toml"
        config.write_text(text, encoding="utf-8")
        started = time.perf_counter()
        crawl = subprocess.run([sys.executable, "-m", "crawler.cli", "crawl", "--config",
                                str(config), "--db", str(db), "--quiet"], cwd=ROOT,
                               capture_output=True, text=True)
        elapsed = time.perf_counter() - started
    print(crawl.stdout.strip())
    if crawl.returncode != 0:
        sys.exit(f"crawl failed ({crawl.returncode}):\n{crawl.stderr[-3000:]}")
    print(f"crawl took {elapsed:.1f}s\n")
    result = subprocess.run([sys.executable, "-m", "crawler.cli", "evaluate", "--config",
                             str(config), "--labels", str(EVAL / "labels.json"), "--db", str(db)],
                            cwd=ROOT, capture_output=True, text=True)
    print(result.stdout, end="")
    if result.returncode != 0:
        sys.exit(result.stderr)


if __name__ == "__main__":
    main()
