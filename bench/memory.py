"""Memory of a crawl against its size: peak RSS of `cfmon crawl` over 2,000 and 20,000
listings.

    python bench/memory.py [--small 2000] [--large 20000]

The marketplace is bench/crawl_throughput.py's (results pages of 50, JSON-LD product
pages, one JPEG each; 400x400 here, since memory per listing, not per image, is the
question), served on 127.0.0.1. Each crawl runs in its own process into a new
database. Two peaks: the crawl process's own RSS (the kernel's, wait4's ru_maxrss),
and the crawl with its photo analysis workers (pipelines/analysis.py): the sum of
the proportional set size (PSS: pages shared between processes counted once) of the
crawl and every process under it, sampled every 0.2 s. The last line holds the ratio
large/small of the whole, against the goal of issue 15 (within 1.2x).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from crawl_throughput import CONFIG, build  # noqa: E402

from crawler.demo import serve  # noqa: E402


def descendants(pid: int) -> list[int]:
    """``pid`` and every process under it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue  # ended between the listing and the read
    return total / 1024


def crawl(config: Path, db: Path) -> tuple[float, float, float]:
    """(peak RSS of the crawl process, peak PSS of it and its workers, both in MB;
    seconds) of one `cfmon crawl`."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "crawler.cli", "crawl", "--config",
                                str(config), "--db", str(db), "--quiet"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], pss_mb(descendants(process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    done.set()
    sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"cfmon crawl exited {process.returncode}: {process.stderr.read()[-2000:]}")
    return usage.ru_maxrss / 1024, peak[0], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=20000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cfmon-memory-"))
    catalog = ROOT / "crawler" / "demo" / "brand" / "catalog" / "trail-30.jpg"
    peaks, own = {}, {}
    for n in (args.small, args.large):
        site = work / f"www-{n}"
        build(site, n, photo=400)
        with serve(site) as base:
            config = work / f"monitor-{n}.toml"
            config.write_text(CONFIG.replace("{server}", base).replace("{catalog}", str(catalog)))
            own[n], peaks[n], seconds = crawl(config, work / f"crawl-{n}.db")
        print(f"{n:>6} listings: crawl process peak RSS {own[n]:6.1f} MB; with its analysis "
              f"workers peak PSS {peaks[n]:6.1f} MB ({seconds:.0f} s, "
              f"{n / seconds:.1f} listings/s)", flush=True)
    ratio = peaks[args.large] / peaks[args.small]
    per = (peaks[args.large] - peaks[args.small]) * 1024 / (args.large - args.small)
    print(f"crawl process alone: {own[args.large] / own[args.small]:.2f}x")
    print(f"{args.large} / {args.small} listings, crawl and workers: {ratio:.2f}x ({per:.1f} KB "
          f"more per listing; goal within 1.2x: {'met' if ratio <= 1.2 else 'NOT met'})")


if __name__ == "__main__":
    main()
