"""A flaky S3 endpoint for the tests: an HTTP proxy on 127.0.0.1 in front of the moto server.

:class:`FlakyS3Proxy` forwards every request to the S3 API it stands in front of, except a
given fraction, which it answers the way a throttled or failing object store does: ``503
SlowDown``, ``500 InternalError``, or a connection dropped without any answer. A faulted
request is not forwarded, so the store never sees it. The same request (method and path) is
faulted at most ``max_consecutive`` times in a row, so a client that retries a few times always
gets through; the proxy's counts are the ground truth the tests compare the jobs' own retry
counts with.

It binds 127.0.0.1 only and forwards only to 127.0.0.1; every forwarded request has a timeout.
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("slow_down", "internal_error", "drop")
_ERROR_BODIES = {
    "slow_down": (503, "SlowDown", "Please reduce your request rate."),
    "internal_error": (500, "InternalError", "We encountered an internal error. Please try again."),
}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}
MAX_BODY_BYTES = 256 * 2**20
"""Largest request body the proxy accepts (the tests upload a few MB at most)."""


class FlakyS3Proxy:
    """Forward to ``upstream`` (``http://127.0.0.1:PORT``), failing ``fault_rate`` of the requests.

    Attributes:
        endpoint_url: where clients connect (``http://127.0.0.1:<port>``).
        counts: ``requests``, ``forwarded`` and one count per fault kind (:data:`FAULTS`).
    """

    def __init__(
        self, upstream: str, fault_rate: float = 0.0, *, seed: int = 0, max_consecutive: int = 2, timeout: float = 30.0
    ) -> None:
        parts = urlsplit(upstream)
        if parts.hostname != "127.0.0.1" or parts.scheme != "http":
            raise ValueError(f"the flaky proxy only forwards to http://127.0.0.1, not {upstream!r}")
        self.upstream = (parts.hostname, parts.port or 80)
        self.fault_rate = fault_rate
        self.max_consecutive = max_consecutive
        self.timeout = timeout
        self.counts: Counter[str] = Counter()
        self._consecutive: Counter[tuple[str, str]] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self) -> FlakyS3Proxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def reset(self, fault_rate: float, seed: int = 0) -> None:
        """Clear the counts and set a new fault rate (and seed)."""
        with self._lock:
            self.fault_rate = fault_rate
            self.counts.clear()
            self._consecutive.clear()
            self._random = random.Random(seed)

    @property
    def faults(self) -> int:
        """Requests answered with a fault so far."""
        return sum(self.counts[kind] for kind in FAULTS)

    def choose_fault(self, method: str, path: str) -> str | None:
        """The fault to answer a request with, or None to forward it."""
        key = (method, path)
        with self._lock:
            self.counts["requests"] += 1
            if self._consecutive[key] < self.max_consecutive and self._random.random() < self.fault_rate:
                self._consecutive[key] += 1
                fault = self._random.choice(FAULTS)
                self.counts[fault] += 1
                return fault
            self._consecutive.pop(key, None)
            self.counts["forwarded"] += 1
            return None


def _handler_class(proxy: FlakyS3Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
            pass

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks, total = [], 0
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    total += size
                    if total > MAX_BODY_BYTES:
                        raise ValueError("request body too large for the test proxy")
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise ValueError("request body too large for the test proxy")
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            body = self._body()
            fault = proxy.choose_fault(self.command, self.path)
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None:
                self._send_error(*_ERROR_BODIES[fault])
                return
            self._forward(body)

        def _send_error(self, status: int, code: str, message: str) -> None:
            payload = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>flaky-proxy</RequestId></Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _forward(self, body: bytes) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if (
                body
                or "Content-Length" in self.headers
                or "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            ):
                headers["Content-Length"] = str(len(body))
            connection = http.client.HTTPConnection(*proxy.upstream, timeout=proxy.timeout)
            try:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() in _HOP_BY_HOP or (key.lower() == "content-length" and self.command != "HEAD"):
                        continue
                    self.send_header(key, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            finally:
                connection.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    return Handler


# Credentials that only these tests use: distinctive, so that finding them anywhere is a leak.
FAKE_KEY_ID = "AKIAFAULTTEST7Q2XK9WZ"
FAKE_SECRET = "fAuLtTeStSeCrEtDoNoTlOg9f3c1e7b2a40d"


def credential_options(endpoint_url: str) -> dict[str, str]:
    """Storage options with the fake credentials (moto accepts any) and ``endpoint_url``."""
    return {"endpoint_url": endpoint_url, "key": FAKE_KEY_ID, "secret": FAKE_SECRET}


def find_secrets(*sources: object) -> list[str]:
    """Where the fake credentials appear: in the given texts/bytes or files below the given paths.

    Returns:
        ``"<file or text #n>: <which>"`` per finding; empty when nothing leaked.
    """
    from pathlib import Path

    found = []
    for index, source in enumerate(sources):
        if isinstance(source, Path):
            files = [p for p in source.rglob("*") if p.is_file()] if source.is_dir() else [source]
            contents = [(str(p), _read(p)) for p in files]
        else:
            contents = [(f"text #{index}", source.encode() if isinstance(source, str) else bytes(source))]
        for where, data in contents:
            found += [
                f"{where}: {name}"
                for name, value in (("key", FAKE_KEY_ID), ("secret", FAKE_SECRET))
                if value.encode() in data
            ]
    return found


def _read(path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # a log file rotated away while we looked
        return b""
