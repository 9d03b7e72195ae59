"""Alerts after a run, to a real webhook server and a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import email
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import free_port
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
    # Scheme and host: a webhook's path is often its secret.
    assert f"warning: alert not sent: webhook http://127.0.0.1:{dead}: " in result.stderr
    assert "/hook" not in result.stderr


# -- secrets stay secret --------------------------------------------------------------------

def self_signed(where: Path, name: str) -> tuple[Path, Path]:
    import subprocess

    key, cert = where / f"{name}.key", where / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-subj", f"/CN={name}", "-days", "2",
                    "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, cert


def test_smtp_refuses_to_send_the_password_to_a_server_it_cannot_verify(tmp_path: Path) -> None:
    import ssl

    from aiosmtpd.smtp import AuthResult

    from crawler.alerts import RunAlert, send
    from crawler.config import parse_config

    key, cert = self_signed(tmp_path, "evil-mitm.invalid")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append(auth_data)
        return AuthResult(success=True)

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticator,
                            auth_require_tls=True)
    controller.start()
    try:
        text = f"""[brand]\nname = "A"\n[alerts.email]\nhost = "127.0.0.1"
port = {controller.port}\nstarttls = true\nusername = "alerts"\npassword_env = "CFMON_TEST_PW"
from = "cfmon@example.test"\nto = ["team@example.test"]
[[sites]]\nname = "s"\nstart_urls = ["https://s.test/"]
[sites.results]\nlisting = "li"\nurl = "a::attr(href)"\n"""
        alerts = parse_config(text, tmp_path / "monitor.toml").alerts
        problems = send(RunAlert(1, "c.db", [], {"s": "down"}), alerts)
        # The handshake fails (our side refuses the certificate); nothing was sent.
        assert len(problems) == 1 and "SSL" in problems[0]
        assert logins == [] and inbox.messages == []
        # Trusting that certificate on purpose (a company's own CA): it goes through.
        (tmp_path / "monitor.toml").write_text(text.replace(
            'host = "127.0.0.1"', f'host = "127.0.0.1"\nca_file = "{cert}"'))
        trusting = parse_config((tmp_path / "monitor.toml").read_text(), tmp_path / "monitor.toml")
        assert send(RunAlert(1, "c.db", [], {"s": "down"}), trusting.alerts) == []
        assert len(logins) == 1 and len(inbox.messages) == 1
    finally:
        controller.stop()


def test_check_config_refuses_a_password_without_tls(tmp_path: Path) -> None:
    from crawler.config import parse_config
    from crawler.errors import ConfigError

    text = """[brand]\nname = "A"\n[alerts.email]\nhost = "mail.example.test"
username = "alerts"\nfrom = "cfmon@example.test"\nto = ["team@example.test"]
[[sites]]\nname = "s"\nstart_urls = ["https://s.test/"]
[sites.results]\nlisting = "li"\nurl = "a::attr(href)"\n"""
    with pytest.raises(ConfigError, match="the password would cross the network in clear"):
        parse_config(text, tmp_path / "monitor.toml")
    allowed = text.replace('username = "alerts"', 'username = "alerts"\nallow_plaintext_auth = true')
    assert parse_config(allowed, tmp_path / "monitor.toml").alerts.email.allow_plaintext_auth
