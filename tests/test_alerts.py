"""Alerts after a run, to a real webhook server and a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import email
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.mockserver import MockServer
from tests.test_cron import Market, crawl, write_config


class Webhook(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.received: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def webhook():
    server = Webhook()
    yield server
    server.shutdown()
    server.server_close()


def alerts_config(webhook: Webhook, smtp_port: int, extra: str = "") -> str:
    return f"""
{extra}
[alerts]
min_score = 60
webhook = "{webhook.url}"
[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
from = "cfmon@acme.test"
to = ["analyst@acme.test"]
"""


def test_new_flags_are_sent_once_to_webhook_and_email(tmp_path: Path, webhook, smtp) -> None:
    controller, inbox = smtp
    market = Market(tmp_path)
    market.add("fake", "Nordvik Trail Backpack 30L replica AAA", "29.99")
    market.add("chair", "Camping chair", "20.00", image="img/other.jpg")
    market.publish()
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server,
                              extra_sites=alerts_config(webhook, controller.port))
        first = crawl(tmp_path, config)
        second = crawl(tmp_path, config)  # nothing new: nothing sent
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-2000:]
    assert "alerted: 1 new flags, 0 failed sites" in first.stdout
    assert len(webhook.received) == 1
    payload = webhook.received[0]
    assert payload["run_id"] == 1 and payload["failed_sites"] == {}
    (flag,) = payload["new_flags"]
    assert flag["title"] == "Nordvik Trail Backpack 30L replica AAA" and flag["score"] == 100
    assert "title contains 'replica', 'aaa'" in flag["reasons"]
    (message,) = inbox.messages
    assert message["Subject"] == "cfmon: 1 new suspicious listing"
    assert message["To"] == "analyst@acme.test"
    body = message.get_payload(decode=True).decode()
    assert "[100] Nordvik Trail Backpack 30L replica AAA" in body and server.url in body


def test_failed_sites_are_alerted(tmp_path: Path, webhook, smtp) -> None:
    controller, inbox = smtp
    market = Market(tmp_path)
    market.add("chair", "Camping chair", "20.00", image="img/other.jpg")
    market.publish()
    broken = """
[[sites]]
name = "down"
start_urls = ["{server}/down/"]
[sites.results]
listing = "li"
url = "a::attr(href)"
"""
    with MockServer(market.root) as server:
        server.faults["/down/"] = (500, "text/html", b"oops")
        config = write_config(tmp_path, server, extra_sites=alerts_config(
            webhook, controller.port, broken.replace("{server}", server.url)))
        result = crawl(tmp_path, config, "--quiet")
    assert result.returncode == 1
    assert webhook.received[0]["failed_sites"] == {
        "down": f"no page could be read (1 results pages failed: HTTP 500 at {server.url}/down/)"}
    assert inbox.messages[0]["Subject"] == "cfmon: 1 site failed"


def test_an_unreachable_channel_is_reported_and_the_exit_code_stands(tmp_path: Path) -> None:
    market = Market(tmp_path)
    market.add("fake", "Nordvik Trail Backpack 30L replica", "29.99")
    market.publish()
    dead = free_port()
    with MockServer(market.root) as server:
        config = write_config(tmp_path, server, extra_sites=f"""
[alerts]
webhook = "http://127.0.0.1:{dead}/hook"
""")
        result = crawl(tmp_path, config, "--quiet")
    assert result.returncode == 0
    assert f"warning: alert not sent: webhook http://127.0.0.1:{dead}/hook:" in result.stderr
