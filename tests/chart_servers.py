"""Chart repositories on 127.0.0.1 for the mirror tests: a static Helm repository (index.yaml and archives), and an OCI
registry speaking the part of the OCI distribution API that `helm push` and `helm pull` use."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import re
import threading
import uuid
from functools import partial
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs


@contextlib.contextmanager
def serving(handler) -> Iterator[str]:
    """Serve `handler` on a free loopback port in a thread; yields the base URL's host:port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def helm_repository(directory: Path) -> contextlib.AbstractContextManager[str]:
    """A Helm repository: the files of `directory` (index.yaml and the archives it lists) over plain HTTP."""
    return serving(partial(_Quiet, directory=str(directory)))


class _Registry(http.server.BaseHTTPRequestHandler):
    """An in-memory OCI registry: blobs by digest, manifests by tag and digest, monolithic and chunked uploads."""

    protocol_version = "HTTP/1.1"
    blobs: dict[str, bytes]
    manifests: dict[tuple[str, str], tuple[str, bytes]]
    uploads: dict[str, bytearray]
    PATH = re.compile(r"/v2/(?P<name>.+?)/(?P<kind>blobs/uploads|blobs|manifests|tags)(?:/(?P<ref>[^?]*))?(?:\?(?P<query>.*))?")

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that stops reading after the headers
                self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _route(self):
        if self.path in ("/v2/", "/v2"):
            return None
        match = self.PATH.fullmatch(self.path)
        if not match:
            self._reply(404)
            raise LookupError
        query = {key: values[-1] for key, values in parse_qs(match["query"] or "").items()}
        return match["name"], match["kind"], match["ref"] or "", query

    def do_GET(self) -> None:
        try:
            route = self._route()
        except LookupError:
            return
        if route is None:
            return self._reply(200, b"{}", {"Content-Type": "application/json", "Docker-Distribution-API-Version": "registry/2.0"})
        name, kind, ref, _ = route
        if kind == "blobs" and ref in self.blobs:
            return self._reply(200, self.blobs[ref], {"Docker-Content-Digest": ref, "Content-Type": "application/octet-stream"})
        if kind == "manifests" and (name, ref) in self.manifests:
            media_type, body = self.manifests[(name, ref)]
            return self._reply(200, body, {"Docker-Content-Digest": _digest(body), "Content-Type": media_type})
        if kind == "tags":
            tags = sorted(tag for (repo, tag) in self.manifests if repo == name and not tag.startswith("sha256:"))
            return self._reply(200, json.dumps({"name": name, "tags": tags}).encode(), {"Content-Type": "application/json"})
        self._reply(404, b'{"errors":[{"code":"NOT_FOUND"}]}', {"Content-Type": "application/json"})

    do_HEAD = do_GET

    def do_POST(self) -> None:
        name, kind, _, query = self._route()
        body = self._body()
        if "digest" in query:  # a monolithic upload
            self.blobs[query["digest"]] = body
            return self._reply(201, headers={"Location": f"/v2/{name}/blobs/{query['digest']}", "Docker-Content-Digest": query["digest"]})
        upload = str(uuid.uuid4())
        self.uploads[upload] = bytearray(body)
        self._reply(202, headers={"Location": f"/v2/{name}/blobs/uploads/{upload}", "Range": "0-0", "Docker-Upload-UUID": upload})

    def do_PATCH(self) -> None:
        name, _, upload, _ = self._route()
        self.uploads[upload] += self._body()
        self._reply(202, headers={"Location": f"/v2/{name}/blobs/uploads/{upload}", "Range": f"0-{len(self.uploads[upload]) - 1}"})

    def do_PUT(self) -> None:
        name, kind, ref, query = self._route()
        body = self._body()
        if kind == "blobs/uploads":
            data = bytes(self.uploads.pop(ref) + body)
            self.blobs[query["digest"]] = data
            return self._reply(201, headers={"Location": f"/v2/{name}/blobs/{query['digest']}", "Docker-Content-Digest": query["digest"]})
        media_type = self.headers.get("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.manifests[(name, ref)] = self.manifests[(name, _digest(body))] = (media_type, body)
        self._reply(201, headers={"Location": f"/v2/{name}/manifests/{ref}", "Docker-Content-Digest": _digest(body)})


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def oci_registry() -> contextlib.AbstractContextManager[str]:
    """A fresh, empty registry; yields its host:port (oci://<it>/<path> is a repository path in it)."""
    handler = type("Registry", (_Registry,), {"blobs": {}, "manifests": {}, "uploads": {}})
    return serving(handler)
