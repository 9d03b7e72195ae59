"""The review page (/-/review) as Datasette serves it, without a browser: what a card
shows, and that every verdict it records obeys the rules, names who decided and enters
the custody chain. tests/test_browser.py drives the same page in Chromium."""

from __future__ import annotations

import asyncio
import io
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from datasette.app import Datasette
from datasette_auth_passwords.utils import hash_password

from crawler.cli import main
from crawler.review.datasette import PLUGINS_DIR, browse_metadata
from crawler.store.writer import Store
from tests.conftest import db_rows
from tests.reviewdb import make_review_db


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    path = tmp_path_factory.mktemp("page") / "review.db"
    return path, make_review_db(path, listings=60)


@pytest.fixture
def db(built: tuple[Path, list[int]], tmp_path: Path) -> Path:
    copy = tmp_path / "review.db"
    source = sqlite3.connect(built[0])
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    return copy


@pytest.fixture
def flagged(built: tuple[Path, list[int]]) -> list[int]:
    return built[1]


def serve(db: Path, **kwargs: object) -> Datasette:
    return Datasette([str(db)], metadata=browse_metadata(db, **kwargs),
                     plugins_dir=str(PLUGINS_DIR))


class Reviewer:
    """A browser's session: the page's cookie and CSRF token, then its POSTs."""

    def __init__(self, datasette: Datasette, cookies: dict[str, str] | None = None):
        self.datasette = datasette
        self.cookies = dict(cookies or {})

    def get(self, path: str):  # noqa: ANN201
        response = asyncio.run(self.datasette.client.get(path, cookies=self.cookies))
        self.cookies.update(dict(response.cookies))
        return response

    def open(self) -> str:
        page = self.get("/-/review").text
        self.token = re.search(r'name="csrftoken" content="([^"]+)"', page).group(1)
        return page

    def post(self, action: str, headers: dict[str, str] | None = None, **form: object):  # noqa: ANN201
        return asyncio.run(self.datasette.client.post(
            f"/-/review/{action}", data={"csrftoken": self.token, **form},
            cookies=self.cookies, headers={"accept": "application/json", **(headers or {})}))


def queue(db: Path) -> list[int]:
    return [r[0] for r in db_rows(db, "SELECT listing_id FROM review_queue")]


def test_cards_come_highest_score_first_with_both_photos(db: Path, flagged: list[int]) -> None:
    page = Reviewer(serve(db, reviewer="ana")).open()
    shown = [int(n) for n in re.findall(r'data-listing="(\d+)"', page)]
    assert shown == flagged[:50]  # one page of cards
    card = page[page.index(f'id="listing-{flagged[0]}"'):page.index(f'id="listing-{flagged[1]}"')]
    assert re.search(r'src="/-/review/photo/listing/\d+"', card)
    assert re.search(r'src="/-/review/photo/reference/\d+" alt="reference photo \w', card)
    assert "% of MSRP" in card and "title contains &#39;replica&#39;" in card
    assert re.search(r"on \w+:\s+\d+ flagged, 0 confirmed counterfeit, 0 taken down", card)
    assert "page as captured" in card and "full row" in card
    assert "Deciding as <strong>ana</strong>" in page


def test_where_the_reference_photo_was_found_is_outlined(db: Path) -> None:
    from PIL import Image

    reviewer = Reviewer(serve(db, reviewer="ana"))
    page = reviewer.open()
    found = re.search(r'src="(/-/review/photo/match/(\d+))"', page)
    assert found, "no card shows a matched region"
    ((region,),) = db_rows(db, "SELECT image_region FROM matches WHERE listing_id = ?",
                           (int(found.group(2)),))
    assert region == "[0.25, 0.2, 0.75, 0.8]"
    response = reviewer.get(found.group(1))
    assert response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content)).convert("RGB")
    w, h = image.size
    r, g, b = image.getpixel((int(w * 0.25) + 1, h // 2))  # on the outline's left side
    assert r > 180 and g < 90 and b > 90, (r, g, b)


def test_photos_and_captured_pages_are_served_safely(db: Path, flagged: list[int]) -> None:
    reviewer = Reviewer(serve(db, reviewer="ana"))
    page = reviewer.open()
    photo = re.search(r'src="(/-/review/photo/listing/\d+)"', page).group(1)
    response = reviewer.get(photo)
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content[:2] == b"\xff\xd8"
    captured = re.search(r'href="(/-/review/capture/\d+)"', page).group(1)
    response = reviewer.get(captured)
    assert b"<h1>Nordvik" in response.content
    # the captured page runs no script and has no origin of ours
    assert response.headers["content-security-policy"].startswith("sandbox")
    assert "script-src 'self'" in reviewer.get("/-/review").headers["content-security-policy"]


def test_a_verdict_from_the_page_is_in_the_chain_and_names_the_reviewer(
        db: Path, flagged: list[int]) -> None:
    reviewer = Reviewer(serve(db, reviewer="ana"))
    reviewer.open()
    answer = reviewer.post("verdict", listing_id=flagged[0], verdict="counterfeit",
                           note="stolen photo", replaces_id="")
    assert answer.status_code == 200, answer.text
    assert answer.json()["decided_by"] == "ana"
    assert flagged[0] not in queue(db)
    assert db_rows(db, "SELECT listing_id, verdict, note, decided_by FROM verdicts") == \
        [(flagged[0], "counterfeit", "stolen photo", "ana")]
    assert db_rows(db, "SELECT count(*) FROM custody_log WHERE kind = 'verdict'") == [(1,)]
    verify = CliRunner().invoke(main, ["verify", "--db", str(db)])
    assert verify.exit_code == 0, verify.output


@pytest.mark.parametrize("form, status, says", [
    ({"listing_id": "999999", "verdict": "counterfeit"}, 404, "no listing with id 999999"),
    ({"listing_id": "1", "verdict": "counterfeit"}, 400, "was never flagged"),
    ({"verdict": "counterfeit"}, 400, "give listing_id and a verdict"),
    ({"listing_id": "FLAGGED", "verdict": "maybe"}, 400, "give listing_id and a verdict"),
])
def test_a_wrong_verdict_is_refused_with_a_message(db: Path, flagged: list[int], form: dict,
                                                   status: int, says: str) -> None:
    reviewer = Reviewer(serve(db, reviewer="ana"))
    reviewer.open()
    if form.get("listing_id") == "FLAGGED":
        form = {**form, "listing_id": str(flagged[0])}
    answer = reviewer.post("verdict", **form)
    assert answer.status_code == status
    assert says in answer.json()["message"]
    assert db_rows(db, "SELECT count(*) FROM verdicts") == [(0,)]


@pytest.mark.parametrize("headers, cookie, says", [
    ({"sec-fetch-site": "cross-site"}, True, "from another site"),
    ({"origin": "http://evil.example"}, True, "from another origin"),
    # a cross-site form: the browser holds back the SameSite cookie, Datasette's own
    # CSRF check then lets it through, and on 127.0.0.1 the reviewer needs no cookie
    ({}, False, "no CSRF token"),
])
def test_a_post_that_is_not_the_reviewers_own_is_refused(db: Path, flagged: list[int],
                                                         headers: dict, cookie: bool,
                                                         says: str) -> None:
    reviewer = Reviewer(serve(db, reviewer="ana"))
    reviewer.open()
    if not cookie:
        reviewer.cookies.clear()
    answer = reviewer.post("verdict", headers=headers, listing_id=flagged[0],
                           verdict="counterfeit")
    assert answer.status_code == 403 and says in answer.json()["message"]
    assert db_rows(db, "SELECT count(*) FROM verdicts") == [(0,)]


def test_a_post_without_the_pages_token_fails_datasettes_csrf_check(
        db: Path, flagged: list[int]) -> None:
    reviewer = Reviewer(serve(db, reviewer="ana"))
    reviewer.open()
    reviewer.token = "forged"
    answer = reviewer.post("verdict", listing_id=flagged[0], verdict="counterfeit")
    assert answer.status_code == 403 and "POST field did not match cookie" in answer.text
    assert db_rows(db, "SELECT count(*) FROM verdicts") == [(0,)]


def test_a_colleagues_verdict_is_replaced_only_when_the_reviewer_says_so(
        db: Path, flagged: list[int]) -> None:
    reviewer = Reviewer(serve(db, reviewer="ana"))
    reviewer.open()  # the card was open when bo decided it from the command line
    CliRunner().invoke(main, ["verdict", "--db", str(db), str(flagged[0]), "genuine",
                              "--by", "bo"])
    answer = reviewer.post("verdict", listing_id=flagged[0], verdict="counterfeit",
                           replaces_id="")
    assert answer.status_code == 409
    current = answer.json()["current_id"]
    assert "is already genuine" in answer.json()["message"] and "bo" in answer.json()["message"]
    answer = reviewer.post("verdict", listing_id=flagged[0], verdict="counterfeit",
                           replaces_id=current)
    assert answer.status_code == 200
    assert db_rows(db, "SELECT verdict, decided_by, replaces_id FROM verdicts ORDER BY id") == \
        [("genuine", "bo", None), ("counterfeit", "ana", current)]


def test_undo_is_a_new_verdict_and_the_listing_is_back_in_the_queue(
        db: Path, flagged: list[int]) -> None:
    reviewer = Reviewer(serve(db, reviewer="ana"))
    reviewer.open()
    decided = reviewer.post("verdict", listing_id=flagged[0], verdict="dismissed").json()
    assert flagged[0] not in queue(db)
    undone = reviewer.post("undo", verdict_id=decided["verdict_id"])
    assert undone.status_code == 200 and undone.json()["verdict"] == "undone"
    assert flagged[0] in queue(db)
    assert db_rows(db, "SELECT verdict, replaces_id FROM verdicts ORDER BY id") == \
        [("dismissed", None), ("undone", decided["verdict_id"])]
    again = reviewer.post("undo", verdict_id=decided["verdict_id"])
    assert again.status_code == 409 and "no longer its latest" in again.json()["message"]
    # decided again after the undo: it replaces the undo, explicitly
    assert reviewer.post("verdict", listing_id=flagged[0], verdict="genuine").status_code == 200
    assert CliRunner().invoke(main, ["verify", "--db", str(db)]).exit_code == 0


def test_undo_of_a_replacement_brings_back_the_earlier_decision(db: Path,
                                                                 flagged: list[int]) -> None:
    store = Store.open(db)
    first = store.decide(flagged[0], "genuine", note=None, decided_by="bo", replaces_id=None)
    second = store.decide(flagged[0], "counterfeit", note=None, decided_by="ana",
                          replaces_id=first.id)
    back = store.undo(second.id, decided_by="ana")
    store.close()
    assert back.verdict == "genuine" and "genuine again" in back.line
    assert db_rows(db, f"SELECT verdict FROM latest_verdicts WHERE listing_id = {flagged[0]}") == \
        [("genuine",)]


def test_the_seller_view_decides_all_of_a_sellers_flags(db: Path, flagged: list[int]) -> None:
    seller, site = db_rows(db, f"SELECT seller, site FROM listings WHERE id = {flagged[0]}")[0]
    theirs = [r[0] for r in db_rows(db, "SELECT listing_id FROM review_queue WHERE seller = "
                                     f"'{seller}' AND site = '{site}'")]
    reviewer = Reviewer(serve(db, reviewer="ana"))
    reviewer.open()
    page = reviewer.get(f"/-/review/seller?site={site}&seller={seller}").text
    assert sorted(int(n) for n in re.findall(r'data-listing="(\d+)"', page)) == sorted(theirs)
    answer = reviewer.post("verdict", listing_id=theirs, verdict="counterfeit",
                           note="same seller, same stolen photos")
    assert answer.status_code == 200, answer.text
    assert not set(theirs) & set(queue(db))
    page = reviewer.get(f"/-/review/seller?site={site}&seller={seller}").text
    assert f"{len(theirs)} confirmed counterfeit" not in page  # no open cards left...
    assert page.count("<strong>counterfeit</strong> by ana") == len(theirs)  # ...but history


def test_filters_narrow_the_cards(db: Path) -> None:
    reviewer = Reviewer(serve(db, reviewer="ana"))
    page = reviewer.get("/-/review?site=marketo&min=60&max=80").text
    shown = [int(n) for n in re.findall(r'data-listing="(\d+)"', page)]
    expected = [r[0] for r in db_rows(db, "SELECT listing_id FROM review_queue WHERE site = "
                                       "'marketo' AND score BETWEEN 60 AND 80")]
    assert shown == expected and shown


def test_hostile_titles_are_shown_not_run(db: Path, flagged: list[int]) -> None:
    conn = sqlite3.connect(db)
    conn.execute("UPDATE listings SET title = '<img src=x onerror=alert(1)>' WHERE id = ?",
                 [flagged[0]])
    conn.commit()
    conn.close()
    page = Reviewer(serve(db, reviewer="ana")).get("/-/review").text
    assert "<img src=x onerror" not in page and "&lt;img src=x onerror" in page


def test_a_request_addressed_to_another_host_name_is_refused(db: Path) -> None:
    # DNS rebinding: a page of evil.example re-pointed at 127.0.0.1
    response = asyncio.run(serve(db, reviewer="ana").client.get(
        "/-/review", headers={"host": "evil.example:8001"}))
    assert response.status_code == 421


def test_beyond_loopback_nothing_shows_before_sign_in_and_the_signed_in_name_decides(
        db: Path, flagged: list[int]) -> None:
    datasette = serve(db, accounts={"bo": hash_password("correct horse")})
    stranger = Reviewer(datasette)
    assert stranger.get("/review/review_queue").status_code == 403
    assert stranger.get("/-/review").status_code == 403
    bo = Reviewer(datasette)
    bo.get("/-/login")
    login = asyncio.run(datasette.client.post(
        "/-/login", data={"username": "bo", "password": "correct horse",
                          "csrftoken": bo.cookies.get("ds_csrftoken", "")},
        cookies=bo.cookies))
    bo.cookies.update(dict(login.cookies))
    assert "Deciding as <strong>bo</strong>" in bo.open()
    assert bo.post("verdict", listing_id=flagged[0], verdict="counterfeit").status_code == 200
    assert db_rows(db, "SELECT decided_by FROM verdicts") == [("bo",)]


def test_browse_refuses_to_listen_beyond_loopback_without_sign_in(db: Path) -> None:
    result = CliRunner().invoke(main, ["browse", "--db", str(db), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "refusing to serve the database beyond 127.0.0.1 without sign-in" in result.output


def test_a_passwords_file_line_that_is_not_name_and_hash_is_named(db: Path,
                                                                   tmp_path: Path) -> None:
    accounts = tmp_path / "reviewers.txt"
    accounts.write_text("# reviewers\nbo:correct horse\n")
    result = CliRunner().invoke(main, ["browse", "--db", str(db), "--host", "0.0.0.0",
                                       "--passwords", str(accounts)])
    assert result.exit_code == 2
    assert f"{accounts}, line 2: expected 'name:hash'" in result.output


def test_a_listings_row_in_datasette_shows_its_stored_photo(db: Path, flagged: list[int]) -> None:
    page = Reviewer(serve(db, reviewer="ana")).get(f"/review/listings/{flagged[0]}").text
    photo = re.search(r'<img src="(/-/review/photo/listing/\d+)"', page)
    assert photo, "no photo on the listing's row page"
