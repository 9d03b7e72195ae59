"""A local marketplace for tests: serves a folder on 127.0.0.1, plus canned faults.

Records every request path, so a test can assert what the crawler fetched (and
what robots.txt kept it from fetching).
"""

from __future__ import annotations

import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(SimpleHTTPRequestHandler):
    server: MockServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.requested.append(self.path)
        self.server.times.append(time.monotonic())
        delay = self.server.delays.get(self.path.split("?")[0], self.server.delay)
        if delay:
            time.sleep(delay)
        queued = self.server.script.get(self.path.split("?")[0])
        if queued:
            status, headers, body = queued.pop(0)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        fault = self.server.faults.get(self.path.split("?")[0])
        if fault is not None:
            status, content_type, body = fault
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class MockServer(ThreadingHTTPServer):
    def __init__(self, root: Path, host: str = "127.0.0.1"):
        self.root = root
        self.requested: list[str] = []
        self.times: list[float] = []  # when each request arrived (time.monotonic)
        # path -> (status, content type, body), every time
        self.faults: dict[str, tuple[int, str, bytes]] = {}
        # path -> responses (status, headers, body) served once each, in order
        self.script: dict[str, list[tuple[int, dict[str, str], bytes]]] = {}
        self.delay = 0.0  # seconds before every answer: a slow marketplace
        self.delays: dict[str, float] = {}  # path -> seconds, for one slow page
        super().__init__((host, 0),
                         lambda *a: _Handler(*a, directory=str(root)))

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}"

    def __enter__(self) -> MockServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
