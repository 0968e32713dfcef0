"""A counting, fault-injecting HTTP proxy in front of an S3 endpoint (a moto server), for the publish tests and
tools/bench_publish.py.

Every request is forwarded with `http.client` as it came (headers, the Host the client signed, body) and the
endpoint's answer is returned as it is; each one is logged in arrival order with its operation (`LIST` for a
bucket listing, otherwise the HTTP method), bucket, key and query. `fail(...)` makes the next N matching requests
answer with an S3 error instead (`SLOW_DOWN`: 503 SlowDown, S3's throttling; `INTERNAL_ERROR`: 500), without
reaching the endpoint. Path-style addressing only (`/bucket/key`), which is what an S3 client given an
`--endpoint-url` of `http://127.0.0.1:port` uses.

    with S3Proxy(moto_url) as proxy:
        proxy.fail("PUT", "teams/a/x.py", times=2, error=SLOW_DOWN)
        ... client with endpoint_url=proxy.url ...
        assert proxy.count("PUT", "teams/a/x.py") == 3
"""

from __future__ import annotations

import http.client
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qsl, unquote, urlsplit

# The query parameters of ListObjects (v1 and v2): a GET on the bucket with these and no others is a listing.
LIST_PARAMETERS = {"list-type", "prefix", "delimiter", "encoding-type", "continuation-token", "start-after", "max-keys", "marker",
                   "fetch-owner"}
# Headers that belong to one hop, never forwarded (RFC 9110 7.6.1), and Expect: the proxy answers 100-continue itself.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding",
              "upgrade", "expect"}


@dataclass(frozen=True)
class S3Error:
    status: int
    code: str
    message: str

    def body(self, resource: str) -> bytes:
        request_id = uuid.uuid4().hex[:16].upper()
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{self.code}</Code><Message>{self.message}</Message>'
                f"<Resource>{resource}</Resource><RequestId>{request_id}</RequestId></Error>").encode()


SLOW_DOWN = S3Error(503, "SlowDown", "Please reduce your request rate.")
INTERNAL_ERROR = S3Error(500, "InternalError", "We encountered an internal error. Please try again.")


@dataclass(frozen=True)
class Request:
    """One request as the proxy saw it, and what it answered."""

    sequence: int
    operation: str  # "LIST" for a listing of a bucket, else the HTTP method
    bucket: str
    key: str  # "" for a request on the bucket itself
    query: tuple[tuple[str, str], ...]
    status: int
    injected: bool  # answered by a fault, never forwarded

    @property
    def scope(self) -> str:
        """The key a request touches, or for a listing the prefix it lists ("" for the whole bucket)."""
        return dict(self.query).get("prefix", "") if self.operation == "LIST" else self.key


@dataclass
class _Fault:
    operation: str
    key: Optional[str]
    remaining: int
    error: S3Error


class S3Proxy:
    """An HTTP proxy on 127.0.0.1 (a free port) in front of `upstream` (http://host:port)."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._sequence = 0
        self._log: list[Request] = []
        self._faults: list[_Fault] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "S3Proxy":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join()

    def __enter__(self) -> "S3Proxy":
        return self.start()

    def __exit__(self, *_) -> None:
        self.close()

    # What the tests ask.

    def fail(self, operation: str, key: Optional[str] = None, *, times: int, error: S3Error = SLOW_DOWN) -> None:
        """Answer the next `times` requests of `operation` ("PUT", "GET", "DELETE", "HEAD", "LIST"), on `key` if given, with `error`."""
        with self._lock:
            self._faults.append(_Fault(operation, key, times, error))

    def reset(self) -> None:
        """Forget the log and every fault not yet used."""
        with self._lock:
            self._log.clear()
            self._faults.clear()

    @property
    def requests(self) -> list[Request]:
        """Every request so far, in the order they arrived."""
        with self._lock:
            return sorted(self._log, key=lambda request: request.sequence)

    def count(self, operation: Optional[str] = None, key: Optional[str] = None) -> int:
        return sum(1 for r in self.requests if operation in (None, r.operation) and key in (None, r.key))

    # What the handler calls.

    def _arrive(self, method: str, path: str) -> tuple[int, str, str, str, tuple[tuple[str, str], ...], Optional[S3Error]]:
        parts = urlsplit(path)
        bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
        query = tuple(parse_qsl(parts.query, keep_blank_values=True))
        listing = method == "GET" and bucket and not key and {name for name, _ in query} <= LIST_PARAMETERS
        operation = "LIST" if listing else method
        with self._lock:
            self._sequence += 1
            fault = next((f for f in self._faults if f.remaining > 0 and f.operation == operation and f.key in (None, key)), None)
            if fault:
                fault.remaining -= 1
            return self._sequence, operation, bucket, key, query, fault.error if fault else None

    def _record(self, request: Request) -> None:
        with self._lock:
            self._log.append(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a client's pool opens many connections at once
    proxy: S3Proxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect
    server: _Server
    _upstream: Optional[http.client.HTTPConnection] = None

    def log_message(self, *_) -> None:
        pass

    def finish(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
        super().finish()

    def do_GET(self) -> None:
        self._forward()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self) -> None:
        proxy = self.server.proxy
        body = self._body()
        sequence, operation, bucket, key, query, error = proxy._arrive(self.command, self.path)
        if error:
            payload = error.body(urlsplit(self.path).path)
            status, reason = error.status, http.client.responses.get(error.status, "")
            headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(payload)))]
        else:
            status, reason, headers, payload = self._send_upstream(body, proxy.upstream)
        proxy._record(Request(sequence, operation, bucket, key, query, status, injected=error is not None))
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def _send_upstream(self, body: bytes, upstream: tuple[str, int]) -> tuple[int, str, list[tuple[str, str]], bytes]:
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):  # a kept-alive upstream connection may have been closed in between: reconnect once
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(*upstream, timeout=60)
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)  # Host kept: it is signed
                response = self._upstream.getresponse()
                payload = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self._upstream.close()
                self._upstream = None
                if attempt == 2:
                    raise
        kept = [(name, value) for name, value in response.getheaders() if name.lower() not in HOP_BY_HOP | {"content-length"}]
        length = response.getheader("Content-Length") if self.command == "HEAD" else str(len(payload))
        return response.status, response.reason, kept + [("Content-Length", length or "0")], payload
