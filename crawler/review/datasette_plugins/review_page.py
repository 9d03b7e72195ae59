"""A Datasette plugin (loaded by `cfmon browse` with --plugins-dir): the review page
(crawler/review/page.py) at /-/review, and, on 127.0.0.1, answers only to requests
addressed to 127.0.0.1."""

from __future__ import annotations

from datasette import hookimpl

from crawler.review import page


@hookimpl
def register_routes():  # noqa: ANN201 - Datasette's hook signature
    return page.ROUTES


@hookimpl
def asgi_wrapper(datasette):  # noqa: ANN001, ANN201 - Datasette's hook signature
    config = datasette.plugin_config("cfmon") or {}
    if config.get("loopback"):
        return page.loopback_only
    return lambda app: app


@hookimpl
def render_cell(value, column, table, datasette):  # noqa: ANN001, ANN201 - Datasette's hook
    if table == "listings" and column == "image_url" and value:
        return page.listing_photo_cell(datasette, value)
    return None
