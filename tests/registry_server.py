"""The CNCF distribution registry (Debian's docker-registry) on 127.0.0.1 with token authentication, as Docker Hub,
ghcr.io, quay.io and ECR Public run it for anonymous pulls: the registry answers 401 with a Bearer challenge, and a
token service (here, in a thread) signs a JWT the registry verifies against its root certificate.

`Registry.push` uploads an image through the registry's own API (blobs, one manifest per platform, then the index), so
the digests the tests expect are the registry's answers, not values of ours."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.chart_servers import serving
from tests.e2e.services import free_port

SERVICE, ISSUER = "registry.test", "token-service.test"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass
class TokenService:
    """Signs a token for whatever scope is asked (anonymous pulls, and the tests' pushes), and remembers the scopes."""

    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    scopes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                            .not_valid_after(now + datetime.timedelta(days=1))
                            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                            .sign(self.key, hashes.SHA256()))

    def token(self, scope: str) -> str:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()]}
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": "", "aud": SERVICE, "iat": now, "nbf": now - 10, "exp": now + 300, "jti": uuid.uuid4().hex,
                  "access": [{"type": kind, "name": name, "actions": actions.split(",")}]}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                scope = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("scope", [""])[0]
                service.scopes.append(scope)
                body = json.dumps({"token": service.token(scope), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        return Handler


@dataclass
class Registry:
    host: str                 # 127.0.0.1:<port>
    tokens: TokenService

    def _call(self, method: str, url: str, scope: str, body: bytes = b"", content_type: str = "") -> tuple[int, dict[str, str], bytes]:
        headers = {"Authorization": f"Bearer {self.tokens.token(scope)}"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url if url.startswith("http") else f"http://{self.host}{url}", data=body or None,
                                         headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {url}: {error.code} {error.read()[:300]!r}") from None

    def _blob(self, name: str, data: bytes) -> dict:
        scope = f"repository:{name}:pull,push"
        _, headers, _ = self._call("POST", f"/v2/{name}/blobs/uploads/", scope)
        location = headers["location"]
        location = location if location.startswith("http") else f"http://{self.host}{location}"
        separator = "&" if "?" in location else "?"
        self._call("PUT", f"{location}{separator}digest={urllib.parse.quote(_digest(data))}", scope, data, "application/octet-stream")
        return {"digest": _digest(data), "size": len(data)}

    def _manifest(self, name: str, reference: str, media_type: str, document: dict) -> str:
        """PUT a manifest; the digest the registry says it stored it under."""
        body = json.dumps(document, indent=3).encode()
        _, headers, _ = self._call("PUT", f"/v2/{name}/manifests/{reference}", f"repository:{name}:pull,push", body, media_type)
        return headers["docker-content-digest"]

    def push(self, name: str, tag: str, content: str) -> str:
        """A two-platform image (its layers carry `content`) as name:tag; the index digest the registry answers."""
        entries = []
        for architecture in ("amd64", "arm64"):
            config = self._blob(name, json.dumps({"architecture": architecture, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                                                  "config": {}}).encode())
            layer = self._blob(name, f"{content} for {architecture}".encode())
            manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"mediaType": OCI_CONFIG, **config},
                        "layers": [{"mediaType": OCI_LAYER, **layer}]}
            digest = self._manifest(name, _digest(json.dumps(manifest, indent=3).encode()), OCI_MANIFEST, manifest)
            entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(json.dumps(manifest, indent=3).encode()),
                            "platform": {"architecture": architecture, "os": "linux"}})
        return self._manifest(name, tag, OCI_INDEX, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})


def _wait_until_listening(host: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=1)
            return
        except urllib.error.HTTPError:
            return  # 401: up, and asking for a token
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"docker-registry did not listen on {host}: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def registry(directory: Path) -> Iterator[Registry]:
    """A running registry with token authentication; `directory` holds its storage, certificate and log."""
    binary = shutil.which("docker-registry")
    assert binary, "docker-registry is missing: `make test` installs Debian's docker-registry (as root)"
    tokens = TokenService()
    (directory / "root.pem").write_bytes(tokens.certificate.public_bytes(serialization.Encoding.PEM))
    with serving(tokens.handler()) as token_host:
        probe = f"127.0.0.1:{free_port()}"
        config = {"version": 0.1, "log": {"level": "warn"},
                  "storage": {"filesystem": {"rootdirectory": str(directory / "storage")}},
                  "http": {"addr": probe},
                  "auth": {"token": {"realm": f"http://{token_host}/token", "service": SERVICE, "issuer": ISSUER,
                                     "rootcertbundle": str(directory / "root.pem")}}}
        (directory / "config.yml").write_text(json.dumps(config))
        log = directory / "registry.log"
        with log.open("w") as out:
            process = subprocess.Popen([binary, "serve", str(directory / "config.yml")], stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_until_listening(probe, process, log)
            yield Registry(probe, tokens)
        finally:
            process.terminate()
            process.wait(timeout=10)
