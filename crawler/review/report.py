"""`cfmon report`: one self-contained HTML page for a manager.

Images are inlined as data: URIs and the chart is inline SVG, so the file can be
mailed as it is. Every scraped string goes through ``html.escape``.
"""

from __future__ import annotations

import base64
import sqlite3
from collections import Counter
from html import escape as _escape

from crawler.review.safe import shown


def escape(text: str, quote: bool = True) -> str:
    """HTML-escaped, with bidi controls made visible: scraped text cannot reorder itself."""
    return _escape(shown(text) or "", quote=quote)


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:6px;
vertical-align:top;text-align:left}th{background:#f6f6f6}.num{text-align:right}
.pair{white-space:nowrap}
.pair img{width:120px;height:120px;object-fit:contain;background:#fafafa;border:1px solid #ddd}
.reasons{margin:0;padding-left:1.1em}.score{font-weight:bold;font-size:1.2em}
.muted{color:#777}.bar{fill:#c0392b}.axis{font-size:11px;fill:#555}
"""


def _img(blob: bytes | None, alt: str) -> str:
    if not blob:
        return f'<span class="muted">no {escape(alt)}</span>'
    data = base64.b64encode(blob).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/jpeg;base64,{data}">'


def _chart(days: list[tuple[str, int]]) -> str:
    """Flags per day as an inline SVG bar chart."""
    if not days:
        return '<p class="muted">No flags yet.</p>'
    width, height, pad = 900, 180, 30
    bar = min(60, max(4, (width - 2 * pad) // max(len(days), 1) - 4))
    top = max(n for _, n in days)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" '
             f'role="img" aria-label="Flags per day">']
    for i, (day, n) in enumerate(days):
        h = int((height - pad) * n / top)
        x = pad + i * (bar + 4)
        parts.append(f'<rect class="bar" x="{x}" y="{height - h}" width="{bar}" height="{h}">'
                     f'<title>{escape(day)}: {n}</title></rect>')
        parts.append(f'<text class="axis" x="{x}" y="{height - h - 4}">{n}</text>')
        parts.append(f'<text class="axis" x="{x}" y="{height + 16}">{escape(day[5:])}</text>')
    parts.append("</svg>")
    return "".join(parts)


# Rows whose photos are inlined; past them a row says where its photos are, which keeps
# a report of 15,000 flags to a few MB instead of ~100 MB.
PHOTO_ROWS = 200


def render_report(conn: sqlite3.Connection, generated_at: str, since: str | None = None,
                  photo_rows: int = PHOTO_ROWS) -> str:
    """Open flags (flagged, no verdict yet) and counterfeit verdicts decided since
    ``since`` (every one when None); photos inlined for the first ``photo_rows``."""
    conn.row_factory = sqlite3.Row
    flags = conn.execute(
        """SELECT l.id, l.site, l.url, l.title, l.price, l.currency, l.seller, l.first_seen,
                  m.score, m.product, m.reasons, m.reference_photo,
                  coalesce(m.image_url, l.image_url) AS photo_url,
                  v.verdict, v.decided_at
           FROM matches m JOIN listings l ON l.id = m.listing_id
           LEFT JOIN latest_verdicts v ON v.listing_id = l.id
           WHERE (m.flagged = 1 AND v.verdict IS NULL)
              OR (v.verdict = 'counterfeit' AND (:since IS NULL OR v.decided_at >= :since))
           ORDER BY m.score DESC, l.id""", {"since": since}).fetchall()
    sites = conn.execute(
        """SELECT l.site, count(*) AS listings, sum(coalesce(m.flagged, 0)) AS flagged,
                  sum(v.verdict = 'counterfeit') AS counterfeit
           FROM listings l LEFT JOIN matches m ON m.listing_id = l.id
           LEFT JOIN latest_verdicts v ON v.listing_id = l.id
           GROUP BY l.site ORDER BY l.site""").fetchall()
    verdicts = Counter(row["verdict"] or "awaiting review" for row in flags)
    per_day = Counter((row["first_seen"] or "")[:10] for row in flags)
    runs = conn.execute("SELECT count(*), max(finished_at) FROM runs").fetchone()

    period = f"counterfeit verdicts since {since[:10]}" if since else "every counterfeit verdict"
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           "<title>cfmon report</title><style>", STYLE, "</style></head><body>",
           "<h1>Counterfeit monitoring report</h1>",
           f"<p class='muted'>Generated {escape(generated_at)} from {runs[0]} crawl runs "
           f"(last finished {escape(str(runs[1] or '-'))}). Open flags and "
           f"{escape(period)}; photos for the first {photo_rows} rows.</p>",
           "<h2>Per marketplace</h2><table><tr><th>Site</th><th class='num'>Listings</th>"
           "<th class='num'>Flagged</th><th class='num'>Confirmed counterfeit</th></tr>"]
    for s in sites:
        out.append(f"<tr><td>{escape(s['site'])}</td><td class='num'>{s['listings']}</td>"
                   f"<td class='num'>{s['flagged'] or 0}</td>"
                   f"<td class='num'>{s['counterfeit'] or 0}</td></tr>")
    out.append("</table><h2>Per verdict</h2><table><tr><th>Verdict</th>"
               "<th class='num'>Listings</th></tr>")
    for verdict, n in sorted(verdicts.items()):
        out.append(f"<tr><td>{escape(verdict)}</td><td class='num'>{n}</td></tr>")
    out.append("</table><h2>Flags over time (by first seen)</h2>")
    out.append(_chart(sorted(per_day.items())))
    out.append("<h2>Every flag</h2><table><tr><th>Reference / listing photo</th>"
               "<th>Listing</th><th class='num'>Score</th><th>Why</th></tr>")
    for n, f in enumerate(flags):
        price = f"{f['price']:.2f} {f['currency'] or ''}" if f["price"] is not None else "no price"
        if n < photo_rows:
            reference = _thumbnail(conn, "catalog", f["product"], f["reference_photo"])
            listing = _thumbnail(conn, "images", f["photo_url"])
            photos = f"{_img(reference, 'reference photo')} {_img(listing, 'listing photo')}"
        else:
            photos = (f"<span class='muted'>photos: listing #{f['id']} in cfmon browse "
                      "(or cfmon report --photos N)</span>")
        reasons = "".join(f"<li>{escape(r)}</li>" for r in (f["reasons"] or "").splitlines())
        verdict = escape(f["verdict"] or "awaiting review")
        out.append(
            f"<tr><td class='pair'>{photos}</td>"
            f"<td><a href='{escape(f['url'], quote=True)}'>{escape(f['title'] or '(no title)')}</a>"
            f"<br>{escape(f['site'])} · seller {escape(f['seller'] or '?')} · {escape(price)}"
            f"<br>product: {escape(f['product'] or '?')} · listing #{f['id']} · {verdict}</td>"
            f"<td class='num score'>{f['score']}</td><td><ul class='reasons'>{reasons}</ul></td>"
            "</tr>")
    out.append("</table></body></html>\n")
    return "".join(out)


def _thumbnail(conn: sqlite3.Connection, table: str, key: str | None,
               photo: str | None = None) -> bytes | None:
    """One thumbnail, read when its row is written: never every blob at once."""
    if table == "catalog":
        row = conn.execute("SELECT thumbnail FROM catalog WHERE product = ? AND photo = ?",
                           [key, photo]).fetchone()
    else:
        row = conn.execute("SELECT thumbnail FROM images WHERE url = ?", [key]).fetchone()
    return row[0] if row else None
