"""The review page in a real browser: Debian's Chromium driven by Playwright, against
`cfmon browse` (the installed command) serving a generated 500-listing database.

Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it and sets
CFMON_BROWSER_TESTS=required, so that there a missing browser fails instead of
skipping). Screenshots go to $CFMON_ARTIFACTS (else the test's tmp folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import CFMON, CFMON_ENV, db_rows, free_port
from tests.reviewdb import make_review_db

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own calls home are refused on a closed network, many at a time: off.
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update"]

if not Path(CHROMIUM).exists():
    if os.environ.get("CFMON_BROWSER_TESTS") == "required":
        raise RuntimeError("CFMON_BROWSER_TESTS=required but no chromium: "
                           "apt-get install chromium")
    pytest.skip("no chromium: apt-get install chromium (.ci/run does)",
                allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[int]]]:
    folder = tmp_path_factory.mktemp("browse")
    db = folder / "review.db"
    flagged = make_review_db(db, listings=500)
    port = free_port()
    server = subprocess.Popen([CFMON, "browse", "--db", "review.db", "--port", str(port),
                               "--reviewer", "ana"], cwd=folder, env=CFMON_ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = server.stdout.readline().strip()
    assert url == f"http://127.0.0.1:{port}/-/review", url  # the first line: the page
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise AssertionError(f"cfmon browse did not answer at {url}: "
                                     f"{server.stdout.read()}") from None
            time.sleep(0.2)
    yield url, db, flagged
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CFMON_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_fifty_listings_decided_with_the_keyboard_alone_then_one_undone(
        served: tuple[str, Path, list[int]], browser: object, artifacts: Path) -> None:
    url, db, flagged = served
    before = db_rows(db, "SELECT count(*) FROM verdicts")[0][0]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    cards = [int(n) for n in page.locator("article.card").evaluate_all(
        "cards => cards.map(c => c.dataset.listing)")]
    assert len(cards) == 50 and cards == [n for n in flagged if n in cards][:50]
    page.screenshot(path=str(artifacts / "review-1280.png"))
    # j and k move between cards
    page.keyboard.press("j")
    assert page.locator("article.card.current").get_attribute("data-listing") == str(cards[1])
    page.keyboard.press("k")
    assert page.locator("article.card.current").get_attribute("data-listing") == str(cards[0])
    words = {"c": "counterfeit", "g": "genuine", "d": "dismissed"}
    keys = ["c", "g", "d"] * 17
    for i, key in enumerate(keys[:50]):
        page.keyboard.press(key)
        # locators, not wait_for_function: the page's CSP forbids evaluating strings
        sync_api.expect(page.locator("article.card.decided")).to_have_count(i + 1)
    got = db_rows(db, "SELECT listing_id, verdict, decided_by, decided_at FROM verdicts "
                   "ORDER BY id LIMIT -1 OFFSET ?", (before,))
    assert [(r[0], r[1]) for r in got] == [(cards[i], words[keys[i]]) for i in range(50)]
    assert {r[2] for r in got} == {"ana"} and all(r[3] for r in got)  # who and when
    chained = db_rows(db, "SELECT count(*) FROM custody_log WHERE kind = 'verdict'")[0][0]
    assert chained == before + 50
    # u undoes the last verdict: a new verdict, the listing back in the queue
    page.keyboard.press("u")
    sync_api.expect(page.locator("article.card.decided")).to_have_count(49)
    last = db_rows(db, "SELECT listing_id, verdict, replaces_id, decided_by FROM verdicts "
                    "ORDER BY id DESC LIMIT 1")[0]
    assert last[:2] == (cards[49], "undone") and last[3] == "ana"
    assert (cards[49],) in db_rows(db, "SELECT listing_id FROM review_queue")
    assert "back in the review queue" in page.locator("#said").inner_text()
    page.close()


def test_a_verdict_for_a_missing_listing_is_refused_on_the_page(
        served: tuple[str, Path, list[int]], browser: object) -> None:
    url, db, _ = served
    before = db_rows(db, "SELECT count(*) FROM verdicts")
    page = browser.new_page()
    page.goto(url)
    card = page.locator("article.card.current")
    card.evaluate("card => { card.dataset.listing = '999999'; }")
    page.keyboard.press("c")
    status = card.locator(".status")
    status.wait_for()
    sync_api.expect(status).to_contain_text("not recorded: no listing with id 999999")
    assert db_rows(db, "SELECT count(*) FROM verdicts") == before
    page.close()


def test_a_colleagues_verdict_is_replaced_only_after_the_page_asks(
        served: tuple[str, Path, list[int]], browser: object) -> None:
    url, db, _ = served
    page = browser.new_page()
    page.goto(url)
    listing = page.locator("article.card.current").get_attribute("data-listing")
    subprocess.run([CFMON, "verdict", "--db", str(db), listing, "genuine", "--by", "bo"],
                   env=CFMON_ENV, cwd=db.parent, check=True, capture_output=True)
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.keyboard.press("c")
    sync_api.expect(page.locator("article.card.decided")).to_have_count(1)
    assert "is already genuine" in asked[0] and "Replace it with counterfeit?" in asked[0]
    assert db_rows(db, "SELECT verdict, decided_by FROM latest_verdicts WHERE listing_id = ?",
                (int(listing),)) == [("counterfeit", "ana")]
    page.close()


class Attacker(BaseHTTPRequestHandler):
    """Another origin's page that posts a verdict to the review page on load."""

    target = ""
    listing = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = (f"<form method=post action='{self.target}/verdict'>"
                f"<input name=listing_id value={self.listing}>"
                "<input name=verdict value=counterfeit></form>"
                "<script>document.forms[0].submit()</script>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("visited", [True, False], ids=["reviewer-had-the-page-open",
                                                        "fresh-browser"])
def test_a_post_from_another_origin_is_refused(served: tuple[str, Path, list[int]],
                                               browser: object, visited: bool) -> None:
    url, db, flagged = served
    listing = next(n for n in reversed(flagged)
                   if not db_rows(db, "SELECT 1 FROM verdicts WHERE listing_id = ?", (n,)))
    Attacker.target, Attacker.listing = url, listing
    evil = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    context = browser.new_context()
    page = context.new_page()
    try:
        if visited:
            page.goto(url)  # the CSRF cookie is set
        page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
        # the form lands on the verdict URL, or is sent back to the page with a message
        page.wait_for_url(lambda address: address.startswith(url))
        page.wait_for_load_state()
        text = page.locator("body").inner_text()
        assert ("refused" in text or "did not match cookie" in text), text
        assert db_rows(db, "SELECT count(*) FROM verdicts WHERE listing_id = ?", (listing,)) == [(0,)]
    finally:
        context.close()
        evil.shutdown()


def test_the_page_reads_on_a_phone(served: tuple[str, Path, list[int]], browser: object,
                                   artifacts: Path) -> None:
    url, _, _ = served
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page.goto(url)
    card = page.locator("article.card").first
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the screen: no sideways scrolling
    box = card.locator("img").first.bounding_box()
    assert box["width"] >= 140  # photos large enough to compare
    page.screenshot(path=str(artifacts / "review-390.png"))
    # / goes to the filters
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "filter-site"
    page.close()
