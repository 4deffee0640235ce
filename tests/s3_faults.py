"""A loopback proxy in front of `moto_server` that answers chosen S3 requests with 503 SlowDown."""

from __future__ import annotations

import http.client
import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SLOW_DOWN = (  # as S3 sends it: longer than a small ranged read (one column chunk) asks for
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>7V2KQ8W4CZ3N1M5P</RequestId>"
    b"<HostId>" + b"h" * 76 + b"</HostId></Error>"
)
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "expect", "date", "server"}
FaultRule = Callable[[int, str, str, Message], bool]  # (request number from 1, method, path, headers) -> 503


class FaultProxy(ThreadingHTTPServer):
    """Forwards every request to moto, except those `fails(number, method, path, headers)` answers with a 503."""

    daemon_threads = True

    def __init__(self, upstream: str, fails: FaultRule):
        self.upstream = urlsplit(upstream)
        self.fails = fails
        self.numbers = itertools.count(1)
        self.lock = threading.Lock()
        self.forwarded = 0
        self.refused = 0
        super().__init__(("127.0.0.1", 0), ProxyHandler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def log_message(self, *args) -> None:
        pass

    def read_body(self) -> bytes | None:
        """The request body; pyarrow's AWS SDK sends uploads with `Transfer-Encoding: chunked`."""
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else None
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():  # trailers, up to the blank line
            pass
        return b"".join(chunks)

    def forward(self) -> None:
        body = self.read_body()
        with self.server.lock:
            refuse = self.server.fails(next(self.server.numbers), self.command, self.path, self.headers)
            self.server.refused += refuse
            self.server.forwarded += not refuse
        if refuse:
            self.send_response(503, "Slow Down")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(SLOW_DOWN)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(SLOW_DOWN)
            return
        upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_HEADERS:
                self.send_header(name, value)
        length = response.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward


@contextmanager
def proxies(aws_env: dict[str, str], monkeypatch) -> Iterator[Callable[[FaultRule], FaultProxy]]:
    """`start(fails)` starts a proxy in front of moto with that fault rule and points `AWS_ENDPOINT_URL`
    at it: S3 requests of this process (and of the processes it starts) go through it from then on."""
    with ExitStack() as running:

        def start(fails: FaultRule) -> FaultProxy:
            proxy = FaultProxy(aws_env["AWS_ENDPOINT_URL"], fails)
            threading.Thread(target=proxy.serve_forever, daemon=True).start()
            running.callback(proxy.server_close)
            running.callback(proxy.shutdown)
            monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
            return proxy

        yield start


def every(n: int) -> FaultRule:
    return lambda number, method, path, headers: number % n == 0
