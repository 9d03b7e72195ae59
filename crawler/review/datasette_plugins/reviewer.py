"""A Datasette plugin (loaded by `cfmon browse` with --plugins-dir): on 127.0.0.1,
where `cfmon browse` always listens, the person at the keyboard is the reviewer
`cfmon browse --reviewer` names (default: the OS user), and the verdicts the
record_verdict form writes carry that name (its SQL takes :_actor_id)."""

from __future__ import annotations

from datasette import hookimpl


@hookimpl
def actor_from_request(datasette, request):  # noqa: ANN001, ANN201 - Datasette's hook signature
    config = datasette.plugin_config("cfmon") or {}
    reviewer = config.get("reviewer")
    if reviewer and request.scope.get("client", ("",))[0] in ("127.0.0.1", "::1", "testclient"):
        return {"id": reviewer}
    return None
