"""Results-page selectors on real marketplace search pages: every listing found once.

    python bench/search_pages.py

Runs `cfmon extract --results` with bench/search_pages.toml over the saved search
pages in ../shared/real-pages/pages (read from there, never copied) and prints, per
page, the listing cards found against the hand-counted ground truth, the distinct
listings after cfmon's listing identity (redirects unwrapped, tracking parameters
dropped), and the first card's title and price.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGES = Path(os.environ.get("CFMON_SHARED", HERE.parent.parent / "shared")) / "real-pages" / "pages"
SITES = {"ebay__2.html": ("ebay-de", "https://www.ebay.de/sch/i.html?_nkw=ladekabel"),
         "amazon__2.html": ("amazon-de-2022", "https://www.amazon.de/s?k=katzenfutter"),
         "amazon__3.html": ("amazon-de-2019", "https://www.amazon.de/s?k=trinkflasche")}


def main() -> None:
    truth = {e["file"]: e for e in json.loads((PAGES / "ground-truth.json").read_text())}
    print(f"{'page':<16}{'cards':>7}{'expected':>10}{'distinct':>10}   first card")
    for file, (site, url) in SITES.items():
        out = subprocess.run(
            [sys.executable, "-m", "crawler.cli", "extract", "--results", "--config",
             str(HERE / "search_pages.toml"), "--site", site, "--url", url,
             str(PAGES / f"{file}.gz")], capture_output=True, text=True, cwd=HERE.parent)
        cards = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        distinct = len({c["url"] for c in cards if c["url"]})
        first = cards[0] if cards else {}
        print(f"{file:<16}{len(cards):>7}{truth[file]['listings_count']:>10}{distinct:>10}   "
              f"{(first.get('title') or '')[:50]!r} {first.get('price')} {first.get('currency')}")
        notes = truth[file]["notes"]
        print(f"{'':<16}ground truth: {notes[notes.find(str(truth[file]['listings_count'])):][:150]}")


if __name__ == "__main__":
    main()
