"""A Datasette plugin (loaded by `cfmon browse` with --plugins-dir): on 127.0.0.1,
where `cfmon browse` always listens, the person at the keyboard is the reviewer
`cfmon browse --reviewer` names (default: the OS user), and the verdicts the review
page records carry that name. Served beyond 127.0.0.1 there is no such reviewer: the
actor is whoever signed in (datasette-auth-passwords)."""

from __future__ import annotations

from datasette import hookimpl


@hookimpl
def actor_from_request(datasette, request):  # noqa: ANN001, ANN201 - Datasette's hook signature
    config = datasette.plugin_config("cfmon") or {}
    reviewer = config.get("reviewer")
    client = request.scope.get("client", ("",))[0]
    if reviewer and config.get("loopback") and client in ("127.0.0.1", "::1", "testclient"):
        return {"id": reviewer}
    return None
