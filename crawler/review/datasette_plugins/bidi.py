"""A Datasette plugin (loaded by `cfmon browse` with --plugins-dir): scraped text
carrying bidirectional controls is shown with them written out (<U+202E>), so a seller
named "Nordvik \u202eerotS laiciffO" cannot display as "Nordvik Official Store".
The database and the JSON API keep the raw text."""

from __future__ import annotations

from datasette import hookimpl
from markupsafe import Markup, escape

from crawler.review.safe import has_bidi, shown


@hookimpl
def render_cell(value):  # noqa: ANN001, ANN201 - Datasette's hook signature
    if isinstance(value, str) and has_bidi(value):
        return Markup(escape(shown(value)))
    return None
