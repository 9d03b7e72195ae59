"""A local marketplace for tests: serves a folder on 127.0.0.1, plus canned faults.

Records every request path, so a test can assert what the crawler fetched (and
what robots.txt kept it from fetching).
"""

from __future__ import annotations

import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(SimpleHTTPRequestHandler):
    server: MockServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.requested.append(self.path)
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
    def __init__(self, root: Path):
        self.root = root
        self.requested: list[str] = []
        # path -> (status, content type, body)
        self.faults: dict[str, tuple[int, str, bytes]] = {}
        super().__init__(("127.0.0.1", 0),
                         lambda *a: _Handler(*a, directory=str(root)))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> MockServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
