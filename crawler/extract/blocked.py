"""Pages that answer 200 but are not the listing: captcha, bot checks, consent and
login walls, or a page without a title, a price or an image.

Marketplaces answer scrapers this way routinely. Such a page is a blocked fetch: it
must not overwrite the listing's title, count as a change, or stand as its evidence;
the listing is still listed (its card was on the results page).
"""

from __future__ import annotations

import re

from crawler.extract.page import Extracted

# Words of block pages, matched in the page's <title> and first <h1> only: a product
# page may well load a captcha script or mention cookies in its footer.
WALL = re.compile(
    r"captcha|are you (a )?(human|robot)|not a robot|robot check|bot check|"
    r"verify (that )?you(\s|')?(are|re) (a )?human|unusual traffic|access denied|"
    r"request (was )?blocked|too many requests|pardon our interruption|attention required|"
    r"just a moment|security check|enable (javascript|cookies)|"
    r"(sign|log) ?in to continue|before you continue|cookie consent",
    re.I)
_FIELDS = ("title", "price", "image")


def blocked_reason(page_title: str | None, heading: str | None, page: Extracted,
                   card: Extracted) -> str | None:
    """Why this page is not the listing it should be, or None when it is."""
    for text in (page_title, heading):
        if text and WALL.search(text):
            return f"a block page ({' '.join(text.split())[:80]!r})"
    if not any(page.values.get(f) not in (None, "") for f in _FIELDS):
        had = [f for f in _FIELDS if card.values.get(f) not in (None, "")]
        shown = f" (its card showed {', '.join(had)})" if had else ""
        return f"the page shows no title, price or image{shown}"
    return None
