"""A live HTTPS server on loopback with its own CA (the tests trust the CA's file), that
records every request and answers with the statuses it is told (its certificate, for
127.0.0.1 and localhost, from a private CA of `tests.support.tls_ca`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.tls_ca import Authority


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpsServer:
    """`statuses`: the answers to give, in order (then 200). `requests`: what arrived."""

    ca_file: Path
    port: int = 0
    statuses: list[int] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        return f"https://127.0.0.1:{self.port}{path}"


def start_https_server(directory: Path) -> tuple[HttpsServer, ThreadingHTTPServer]:
    authority = Authority(directory)
    issued = authority.issue("localhost", ips=("127.0.0.1",))
    state = HttpsServer(ca_file=authority.cert_file)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                state.requests.append(
                    Request(
                        "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )  # fmt: skip
                )
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = issued.server_context().wrap_socket(server.socket, server_side=True)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server
