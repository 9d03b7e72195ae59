"""After a run: new flags above the alert score, and failed sites, to the configured
channels (a JSON webhook, email over SMTP)."""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from crawler.config import Alerts
from crawler.store.queries import new_flags
from crawler.timestamp import shown_url

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunAlert:
    run_id: int
    database: str
    new_flags: list[dict[str, Any]]
    failed_sites: dict[str, str]
    # The custody chain's head after the run: a copy outside the database, for
    # `cfmon verify --against`.
    head: str | None = None

    @property
    def worth_sending(self) -> bool:
        return bool(self.new_flags or self.failed_sites)

    def as_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "database": self.database, "head": self.head,
                "new_flags": self.new_flags, "failed_sites": self.failed_sites}

    def as_text(self) -> str:
        lines = [f"cfmon run {self.run_id} on {self.database}"]
        if self.head:
            lines.append(f"evidence chain {self.head} (keep this line: cfmon verify "
                         "--against checks it)")
        if self.failed_sites:
            lines.append("\nSites that failed:")
            lines += [f"  {site}: {why}" for site, why in self.failed_sites.items()]
        if self.new_flags:
            lines.append(f"\n{len(self.new_flags)} new suspicious listings:")
            for f in self.new_flags:
                price = f"{f['price']} {f['currency'] or ''}" if f["price"] is not None else "-"
                lines.append(f"\n  [{f['score']}] {f['title']} ({f['site']}, {price}, "
                             f"seller {f['seller']})\n  {f['url']}")
                lines += [f"    - {r}" for r in f["reasons"]]
        return "\n".join(lines) + "\n"


def collect(db_path: str, run_id: int, min_score: int, failed_sites: dict[str, str],
            head: str | None = None) -> RunAlert:
    """Listings first flagged during this run, with a score of at least ``min_score``."""
    rows = new_flags(db_path, run_id, min_score)
    flags = [{**{k: row[k] for k in ("id", "site", "url", "title", "price", "currency",
                                     "seller", "score", "product")},
              "reasons": (row["reasons"] or "").splitlines()} for row in rows]
    return RunAlert(run_id, db_path, flags, failed_sites, head)


def send(alert: RunAlert, alerts: Alerts) -> list[str]:
    """Send to every configured channel; returns one problem line per failed channel
    (an alert that cannot be sent must not hide the crawl's own result)."""
    problems = []
    if alerts.webhook:
        try:
            post_webhook(alerts.webhook, alert.as_json())
        except OSError as exc:
            # Scheme and host only: a webhook URL often is the secret (a token in its path).
            problems.append(f"webhook {shown_url(alerts.webhook)}: {_without(exc, alerts.webhook)}")
    if alerts.email:
        try:
            send_email(alerts, alert)
        except (OSError, smtplib.SMTPException) as exc:
            problems.append(f"email via {alerts.email.host}:{alerts.email.port}: {exc}")
    return problems


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 15) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload, ensure_ascii=False).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "cfmon alerts"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked in config
        response.read()


def send_email(alerts: Alerts, alert: RunAlert, timeout: float = 30) -> None:
    email = alerts.email
    assert email is not None
    message = EmailMessage()
    flags, failed = len(alert.new_flags), len(alert.failed_sites)
    parts = [f"{flags} new suspicious listing{'s' if flags != 1 else ''}"] if flags else []
    parts += [f"{failed} site{'s' if failed != 1 else ''} failed"] if failed else []
    message["Subject"] = f"cfmon: {', '.join(parts)}"
    message["From"] = email.sender
    message["To"] = ", ".join(email.to)
    message.set_content(alert.as_text())
    # Certificates are verified (hostname and chain): a password goes only to the server
    # that proves to be the one configured.
    context = ssl.create_default_context()
    if email.ca_file:
        context.load_verify_locations(cafile=str(email.ca_file))
    if email.ssl:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(email.host, email.port, timeout=timeout,
                                              context=context)
    else:
        smtp = smtplib.SMTP(email.host, email.port, timeout=timeout)
    with smtp:
        if email.starttls:
            smtp.starttls(context=context)
        if email.username:
            if not (email.ssl or email.starttls or email.allow_plaintext_auth):
                raise smtplib.SMTPException("refusing to send the password without TLS")
            smtp.login(email.username, os.environ.get(email.password_env or "", ""))
        smtp.send_message(message)


def _without(exc: Exception, secret: str) -> str:
    """An error's message with a secret URL (and its path) cut out."""
    text = str(exc)
    for part in {secret, secret.split("://", 1)[-1]}:
        text = text.replace(part, shown_url(secret))
    return text
