"""The review page that `cfmon browse` serves inside Datasette: one card per flagged
listing (its photo beside the reference photo it matched, price against the MSRP, the
seller's history, every reason), decided with a button or a key.

Datasette stays the server; these are its routes (registered by the plugin in
``datasette_plugins/review_page.py``). Reads go through Datasette's read-only
connections; verdicts go through cfmon's Store, in its transactions, into the custody
chain, under the database's verdict rules, so the page can do nothing that
`cfmon verdict` could not.
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode

from datasette.utils.asgi import Response
from PIL import Image, ImageDraw

from crawler.errors import (
    CfmonError,
    DatabaseBusyError,
    NotFlaggedError,
    UnknownListingError,
    VerdictConflictError,
)
from crawler.store import blobs
from crawler.store.writer import DECISIONS, Store

PATH = "/-/review"
PAGE_SIZE = 50
# A reviewer waits this long for a crawl's write to finish before being told to retry.
LOCK_WAIT = 10.0

# The page runs no inline code and loads nothing from elsewhere: a hostile listing
# title cannot become a script, and opening the page tells no marketplace anything.
PAGE_CSP = ("default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# A captured page is shown as it was served, but in a sandbox: no script runs, it has
# no origin (so it cannot post verdicts), and nothing is fetched from its site.
CAPTURE_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"

ERROR_STATUS = {UnknownListingError: 404, NotFlaggedError: 400, VerdictConflictError: 409,
                DatabaseBusyError: 503}


@dataclass(frozen=True)
class Filters:
    site: str = ""
    product: str = ""
    seller: str = ""
    min_score: int | None = None
    max_score: int | None = None

    @classmethod
    def from_args(cls, args: Any) -> Filters:
        def score(name: str) -> int | None:
            value = (args.get(name) or "").strip()
            return int(value) if value.lstrip("-").isdigit() else None

        return cls(site=args.get("site") or "", product=args.get("product") or "",
                   seller=args.get("seller") or "", min_score=score("min"),
                   max_score=score("max"))

    def where(self) -> tuple[str, dict[str, Any]]:
        clauses, params = [], {}
        for column in ("site", "product", "seller"):
            if getattr(self, column):
                clauses.append(f"q.{column} = :{column}")
                params[column] = getattr(self, column)
        if self.min_score is not None:
            clauses.append("q.score >= :min_score")
            params["min_score"] = self.min_score
        if self.max_score is not None:
            clauses.append("q.score <= :max_score")
            params["max_score"] = self.max_score
        return (" AND ".join(clauses) or "1"), params

    def query(self, **extra: Any) -> str:
        args = {"site": self.site, "product": self.product, "seller": self.seller,
                "min": "" if self.min_score is None else self.min_score,
                "max": "" if self.max_score is None else self.max_score, **extra}
        return urlencode({k: v for k, v in args.items() if v not in ("", None)})


# One card: the queue's columns, the photos' ids (served by photo()), when it was last
# seen, and what the seller has done on that site.
CARDS_SQL = """
SELECT q.listing_id, q.score, q.title, q.price, q.currency, q.seller,
       q.reasons, q.site, q.product, q.first_seen, q.url, l.last_seen, l.gone_at,
       m.reference_photo, m.image_region, c.msrp, c.currency AS msrp_currency,
       CASE WHEN c.thumbnail IS NOT NULL THEN c.id END AS reference_id,
       (SELECT i.id FROM images i WHERE i.url = coalesce(m.image_url, l.image_url)
          AND i.thumbnail IS NOT NULL) AS image_id,
       (SELECT max(id) FROM captures WHERE listing_id = q.listing_id AND kind = 'page')
          AS capture_id,
       (SELECT count(*) FROM captures WHERE listing_id = q.listing_id) AS captures,
       (SELECT count(*) FROM listings s JOIN matches sm ON sm.listing_id = s.id
          WHERE s.site = q.site AND s.seller = q.seller AND sm.flagged = 1) AS seller_flags,
       (SELECT count(*) FROM listings s JOIN latest_verdicts sv ON sv.listing_id = s.id
          WHERE s.site = q.site AND s.seller = q.seller AND sv.verdict = 'counterfeit')
          AS seller_counterfeits,
       (SELECT count(*) FROM listings s JOIN latest_verdicts sv ON sv.listing_id = s.id
          WHERE s.site = q.site AND s.seller = q.seller AND sv.verdict = 'counterfeit'
            AND s.gone_at IS NOT NULL) AS seller_takedowns
FROM review_queue q
JOIN listings l ON l.id = q.listing_id
JOIN matches m ON m.listing_id = q.listing_id
LEFT JOIN catalog c ON c.product = m.product AND c.photo = m.reference_photo
WHERE {where}
ORDER BY q.score DESC, q.listing_id
LIMIT :limit OFFSET :offset
"""


def _database(datasette: Any) -> Any:
    return datasette.get_database()


def _viewable(view: Any) -> Any:
    """Only for who may see the database (beyond 127.0.0.1: who signed in)."""
    async def guarded(datasette: Any, request: Any) -> Response:
        if not await datasette.permission_allowed(request.actor, "view-instance",
                                                  default=True):
            return Response.html('Sign in first: <a href="/-/login">/-/login</a>', status=403)
        return await view(datasette, request)

    guarded.__doc__ = view.__doc__
    return guarded


def _template(name: str) -> str:
    return resources.files("crawler.review").joinpath("templates", name).read_text("utf-8")


def _static(name: str) -> bytes:
    return resources.files("crawler.review").joinpath("static", name).read_bytes()


async def _render(datasette: Any, request: Any, name: str, context: dict[str, Any]) -> Response:
    template = datasette.jinja_env.from_string(_template(name))
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html, headers={"Content-Security-Policy": PAGE_CSP,
                                        "X-Content-Type-Options": "nosniff",
                                        "Referrer-Policy": "no-referrer",
                                        "Cache-Control": "no-store"})


def _price_line(row: dict[str, Any], rates: Any) -> str:
    """"49.00 EUR = 53.20 USD at ECB 2026-11-24, 41% of MSRP 129.00 USD"."""
    from matchers.price import price_ratio

    if row["price"] is None:
        return "no price"
    shown = f"{row['price']:.2f} {row['currency'] or ''}".strip()
    if row["msrp"] is None:
        return f"{shown} (no MSRP)"
    ratio = price_ratio(Decimal(str(row["price"])), row["currency"], Decimal(str(row["msrp"])),
                        row["msrp_currency"], reference=rates.table() if rates else None)
    msrp = f"MSRP {row['msrp']:.2f} {row['msrp_currency']}"
    if ratio is None:
        return f"{shown}; {msrp} (no exchange rate for {row['currency']})"
    if ratio.converted is not None:
        shown += f" = {ratio.converted:.2f} {ratio.msrp_currency} at {ratio.rates}"
    return f"{shown}, {ratio.percent}% of {msrp}"


def _card(row: dict[str, Any], rates: Any) -> dict[str, Any]:
    card = dict(row)
    card["price_line"] = _price_line(row, rates)
    card["reasons"] = [r for r in (row["reasons"] or "").splitlines() if r.strip()]
    card["site_query"] = urlencode({"site": row["site"], "seller": row["seller"] or ""})
    return card


async def _cards(datasette: Any, filters: Filters, offset: int, limit: int = PAGE_SIZE,
                 ) -> list[dict[str, Any]]:
    from crawler.rates import current

    db = _database(datasette)
    where, params = filters.where()
    rows = await db.execute(CARDS_SQL.format(where=where),
                            {**params, "limit": limit, "offset": offset})
    rates = await asyncio.to_thread(current, db.path)
    return [_card(dict(row), rates) for row in rows]


async def _choices(datasette: Any) -> dict[str, list[str]]:
    db = _database(datasette)
    out = {}
    for column in ("site", "product"):
        rows = await db.execute(f"SELECT DISTINCT {column} FROM review_queue "
                                f"WHERE {column} IS NOT NULL ORDER BY {column}")
        out[column] = [r[0] for r in rows]
    return out


async def _page(datasette: Any, request: Any, filters: Filters, cards: list[dict[str, Any]],
                **context: Any) -> Response:
    """The cards page: the queue (review) or one seller's flags (seller)."""
    return await _render(datasette, request, "review.html", {
        "cards": cards, "filters": filters, "choices": await _choices(datasette),
        "database": _database(datasette).name, "reviewer": (request.actor or {}).get("id"),
        "said": request.args.get("said"), "path": PATH, "decisions": DECISIONS, **context})


async def review(datasette: Any, request: Any) -> Response:
    """The queue as cards, highest score first, PAGE_SIZE at a time."""
    filters = Filters.from_args(request.args)
    raw = request.args.get("offset") or "0"
    offset = int(raw) if raw.isdigit() else 0
    where, params = filters.where()
    total = (await _database(datasette).execute(
        f"SELECT count(*) FROM review_queue q WHERE {where}", params)).first()[0]
    cards = await _cards(datasette, filters, offset)
    more = filters.query(offset=offset + PAGE_SIZE) if offset + len(cards) < total else None
    return await _page(datasette, request, filters, cards, total=total, more=more,
                       seller_view=None, back=f"{PATH}?{filters.query(offset=offset)}")


async def seller(datasette: Any, request: Any) -> Response:
    """One seller on one site: every open flag as a card, decided one by one or all at
    once, and what was decided before."""
    site, name = request.args.get("site") or "", request.args.get("seller") or ""
    filters = Filters(site=site, seller=name)
    cards = await _cards(datasette, filters, 0, limit=1000)
    history = [dict(r) for r in await _database(datasette).execute(
        """SELECT v.listing_id, v.verdict, v.decided_by, v.decided_at, l.title
           FROM latest_verdicts v JOIN listings l ON l.id = v.listing_id
           WHERE l.site = :site AND l.seller = :seller ORDER BY v.id DESC LIMIT 200""",
        {"site": site, "seller": name})]
    return await _page(datasette, request, filters, cards, total=len(cards), more=None,
                       seller_view={"site": site, "seller": name, "history": history},
                       back=f"{PATH}/seller?{filters.query()}")


async def photo(datasette: Any, request: Any) -> Response:
    """A thumbnail the crawl stored: a listing's (images.id) or a catalog photo's."""
    table = {"listing": "images", "reference": "catalog"}.get(request.url_vars["kind"])
    if table is None:
        return Response.text("no such photo", status=404)
    row = (await _database(datasette).execute(
        f"SELECT thumbnail FROM {table} WHERE id = ?", [int(request.url_vars["id"])])).first()
    if row is None or not row[0]:
        return Response.text("no such photo", status=404)
    return Response(bytes(row[0]), content_type="image/jpeg",
                    headers={"X-Content-Type-Options": "nosniff",
                             "Cache-Control": "private, max-age=3600"})


async def match_photo(datasette: Any, request: Any) -> Response:
    """A flagged listing's photo with the region where the reference photo was found
    outlined (the screenshot or meme it sits in stays visible around it)."""
    row = (await _database(datasette).execute(
        "SELECT i.thumbnail, m.image_region FROM matches m "
        "JOIN listings l ON l.id = m.listing_id "
        "JOIN images i ON i.url = coalesce(m.image_url, l.image_url) WHERE m.listing_id = ?",
        [int(request.url_vars["id"])])).first()
    if row is None or not row[0]:
        return Response.text("no such photo", status=404)
    data = await asyncio.get_running_loop().run_in_executor(
        None, outline, bytes(row[0]), row[1])
    return Response(data, content_type="image/jpeg",
                    headers={"X-Content-Type-Options": "nosniff",
                             "Cache-Control": "private, max-age=3600"})


def outline(thumbnail: bytes, region: str | None) -> bytes:
    """The thumbnail with ``region`` (JSON [x0, y0, x1, y1], shares) drawn on it."""
    try:
        x0, y0, x1, y1 = (min(1.0, max(0.0, float(v))) for v in json.loads(region or ""))
    except (ValueError, TypeError):
        return thumbnail
    image = Image.open(io.BytesIO(thumbnail)).convert("RGB")
    w, h = image.size
    width = max(2, round(min(w, h) / 80))
    ImageDraw.Draw(image).rectangle([x0 * w, y0 * h, x1 * w - 1, y1 * h - 1],
                                    outline=(255, 0, 140), width=width)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


async def capture(datasette: Any, request: Any) -> Response:
    """A captured page, as the crawl received it, inside a sandbox."""
    db = _database(datasette)
    row = (await db.execute("SELECT sha256 FROM captures WHERE id = ? AND kind = 'page'",
                            [int(request.url_vars["id"])])).first()
    data = await db.execute_fn(lambda conn: blobs.read(conn, row[0])) if row else None
    if data is None:
        return Response.text("no such captured page (or its bytes were pruned)", status=404)
    return Response(data, content_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": CAPTURE_CSP,
                             "X-Content-Type-Options": "nosniff",
                             "Referrer-Policy": "no-referrer"})


async def static(datasette: Any, request: Any) -> Response:
    name = request.url_vars["name"]
    types = {"review.js": "text/javascript", "review.css": "text/css"}
    if name not in types:
        return Response.text("not found", status=404)
    return Response(_static(name), content_type=f"{types[name]}; charset=utf-8",
                    headers={"X-Content-Type-Options": "nosniff"})


def _refusal(request: Any) -> str | None:
    """Why a POST is not a reviewer's own, or None. Datasette's CSRF check passes a
    POST that carries no cookie at all (a cross-site form, whose SameSite cookie the
    browser holds back, is such a POST), and on 127.0.0.1 the reviewer is known
    without a cookie: so a verdict also needs the CSRF cookie (the check then compared
    it with the form's token) and must not come from another site."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site not in (None, "same-origin", "none"):
        return f"refused: the request came from another site ({fetch_site})"
    origin = request.headers.get("origin")
    if origin and origin != f"{request.scheme}://{request.host}":
        return f"refused: the request came from another origin ({origin})"
    if "ds_csrftoken" not in request.cookies:
        return "refused: no CSRF token; reload the review page and decide from there"
    if not (request.actor or {}).get("id"):
        return "refused: sign in first (/-/login); a verdict records who decided"
    return None


def _answer(request: Any, ok: bool, message: str, status: int, back: str,
            **extra: Any) -> Response:
    """JSON for the page's script; for a plain form, back to the page, saying what
    happened."""
    if "application/json" in request.headers.get("accept", ""):
        return Response.json({"ok": ok, "message": message, **extra}, status=status)
    if not back.startswith(PATH):
        back = PATH
    anchor = f"#listing-{extra['listing_id']}" if extra.get("listing_id") else ""
    joiner = "&" if "?" in back else "?"
    return Response.redirect(f"{back}{joiner}{urlencode({'said': message})}{anchor}",
                             status=303)


async def _write(db_path: str, work: Any) -> Any:
    """Run ``work(store)`` in a thread, on a Store of its own (the page's requests may
    overlap; a Store's connection is not shared between them)."""
    def run() -> Any:
        store = Store.open(db_path, lock_wait=LOCK_WAIT)
        try:
            result = work(store)
            store.record_head("verdict from cfmon browse")
            return result
        finally:
            store.close()

    return await asyncio.to_thread(run)


async def verdict(datasette: Any, request: Any) -> Response:
    """Record a verdict: one listing (the card's buttons and keys, with the decision the
    reviewer saw in replaces_id), or several at once (the seller view)."""
    form = parse_qs((await request.post_body()).decode("utf-8", "replace"))
    first = {k: v[0] for k, v in form.items()}
    back = first.get("back") or PATH
    refused = _refusal(request)
    if refused:
        return _answer(request, False, refused, 403, back)
    word = first.get("verdict", "")
    note = (first.get("note") or "").strip() or None
    try:
        ids = [int(v) for v in form.get("listing_id", [])]
    except ValueError:
        return _answer(request, False, "refused: listing_id must be a number", 400, back)
    if word not in DECISIONS or not ids:
        return _answer(request, False, f"refused: give listing_id and a verdict "
                       f"({', '.join(DECISIONS)})", 400, back)
    replaces = first.get("replaces_id", "")
    who = request.actor["id"]
    try:
        if len(ids) == 1:
            decision = await _write(_database(datasette).path, lambda store: store.decide(
                ids[0], word, note=note, decided_by=who,
                replaces_id=int(replaces) if replaces.isdigit() else None))
            return _answer(request, True, decision.line, 200, back, listing_id=ids[0],
                           verdict_id=decision.id, verdict=decision.verdict, decided_by=who)
        lines = await _write(_database(datasette).path, lambda store: store.add_verdicts(
            ids, word, note=note, decided_by=who))
        return _answer(request, True, f"{len(lines)} listings: {word}", 200, back,
                       lines=lines)
    except CfmonError as exc:
        status = ERROR_STATUS.get(type(exc), 400)
        extra = {"listing_id": ids[0]} if len(ids) == 1 else {}
        if isinstance(exc, VerdictConflictError) and len(ids) == 1:
            extra["current_id"] = await _current_decision(datasette, ids[0])
        return _answer(request, False, f"not recorded: {exc}", status, back, **extra)


async def _current_decision(datasette: Any, listing_id: int) -> int | None:
    row = (await _database(datasette).execute(
        "SELECT id FROM latest_verdicts WHERE listing_id = ?", [listing_id])).first()
    return row[0] if row else None


async def undo(datasette: Any, request: Any) -> Response:
    """Undo a verdict: a new verdict replaces it (see Store.undo)."""
    form = parse_qs((await request.post_body()).decode("utf-8", "replace"))
    back = (form.get("back") or [PATH])[0]
    refused = _refusal(request)
    if refused:
        return _answer(request, False, refused, 403, back)
    raw = (form.get("verdict_id") or [""])[0]
    if not raw.isdigit():
        return _answer(request, False, "refused: verdict_id must be a number", 400, back)
    try:
        decision = await _write(_database(datasette).path,
                                lambda store: store.undo(int(raw), decided_by=request.actor["id"]))
    except CfmonError as exc:
        return _answer(request, False, f"not undone: {exc}", ERROR_STATUS.get(type(exc), 400),
                       back)
    return _answer(request, True, decision.line, 200, back, listing_id=decision.listing_id,
                   verdict_id=decision.id, verdict=decision.verdict)


ROUTES = [
    (rf"^{PATH}$", _viewable(review)),
    (rf"^{PATH}/seller$", _viewable(seller)),
    (rf"^{PATH}/verdict$", verdict),
    (rf"^{PATH}/undo$", undo),
    (rf"^{PATH}/photo/(?P<kind>listing|reference)/(?P<id>\d+)$", _viewable(photo)),
    (rf"^{PATH}/photo/match/(?P<id>\d+)$", _viewable(match_photo)),
    (rf"^{PATH}/capture/(?P<id>\d+)$", _viewable(capture)),
    (rf"^{PATH}/static/(?P<name>[a-z.]+)$", static),
]


def loopback_only(app: Any) -> Any:
    """Served on 127.0.0.1, answer only requests addressed to 127.0.0.1 or localhost:
    a web page whose host name an attacker re-points at 127.0.0.1 (DNS rebinding)
    would otherwise read the database and act as the reviewer."""
    allowed = {b"127.0.0.1", b"localhost", b"[::1]"}

    async def guarded(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"127.0.0.1")
            if host.rsplit(b":", 1)[0] not in allowed and host not in allowed:
                await Response.text("cfmon browse answers only at 127.0.0.1",
                                    status=421).asgi_send(send)
                return
        await app(scope, receive, send)

    return guarded



async def listing_photo_cell(datasette: Any, url: str) -> Any:
    """A listing's row in Datasette shows its photo, from the stored thumbnail (the
    marketplace's link may be dead by the time anyone looks)."""
    from markupsafe import Markup, escape

    row = (await _database(datasette).execute(
        "SELECT id FROM images WHERE url = ? AND thumbnail IS NOT NULL", [url])).first()
    link = f'<a href="{escape(url)}" rel="noopener noreferrer">{escape(url)}</a>'
    if row is None:
        return Markup(link)
    return Markup(f'{link}<br><img src="{PATH}/photo/listing/{row[0]}" alt="listing photo" '
                  'style="max-width: 240px">')
