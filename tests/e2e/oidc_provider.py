"""An OpenID Connect provider stand-in on 127.0.0.1, over HTTPS (the platform's sso.issuer must be an https:// URL):
discovery document, /authorize, /token, /userinfo and /jwks, for one confidential client (authorization-code flow).

Nobody types a password: /authorize logs in whichever user the test chose beforehand (`log_in_as`), with the groups
that user has at that moment, and sends the browser straight back to the client's redirect URI. ID tokens are RS256,
signed with `cryptography` (the test environment's, pinned in requirements-test.txt); the JWS framing is base64url of
JSON. Every request to /authorize and /token is recorded, so that tests can say what the client sent.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.e2e.services import free_port

ID_TOKEN_SECONDS = 300


@dataclass
class User:
    """Someone the provider knows: `groups` is what the groups claim of their userinfo carries."""

    username: str
    given_name: str
    family_name: str
    groups: list[str] = field(default_factory=list)

    @property
    def sub(self) -> str:
        return f"sub-{self.username}"

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_int(number: int) -> str:
    return _b64(number.to_bytes((number.bit_length() + 7) // 8, "big"))


def _certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    """A self-signed certificate for 127.0.0.1, which the client trusts as its own CA (REQUESTS_CA_BUNDLE)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oidc-provider-stand-in")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))


class OidcProvider:
    """The stand-in: `issuer` is its URL, `ca_file` the certificate to trust, `users` whom it knows."""

    def __init__(self, directory: Path, client_id: str, client_secret: str) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.redirect_uris: set[str] = set()  # registered by the test once it knows the client's address
        self.users: dict[str, User] = {}
        self.next_user: str | None = None
        self.authorize_requests: list[dict[str, str]] = []
        # Per request to /token: how the client authenticated, with which id and secret, and the answer's status.
        self.token_requests: list[dict[str, object]] = []
        self.userinfo_requests = 0
        self._codes: dict[str, dict] = {}
        self._access_tokens: dict[str, User] = {}
        self._lock = threading.Lock()
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)

        directory.mkdir(parents=True, exist_ok=True)
        tls_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ca_file = directory / "oidc-provider.pem"
        self.ca_file.write_bytes(_certificate(tls_key).public_bytes(serialization.Encoding.PEM))
        key_file = directory / "oidc-provider.key"
        key_file.write_bytes(tls_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    # --- what the test uses --------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/{name}"

    def log_in_as(self, user: User) -> None:
        """The next /authorize logs this user in (as they are then: their groups are read at that moment)."""
        self.users[user.username] = user
        self.next_user = user.username

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the protocol --------------------------------------------------------------------------------
    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "jwks_uri": self.endpoint("jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["sub", "preferred_username", "email", "given_name", "family_name", "groups"],
        }

    def jwks(self) -> dict:
        numbers = self._signing_key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self._kid,
                          "n": _b64_int(numbers.n), "e": _b64_int(numbers.e)}]}

    def userinfo(self, user: User) -> dict:
        return {"sub": user.sub, "preferred_username": user.username, "email": user.email,
                "given_name": user.given_name, "family_name": user.family_name, "groups": list(user.groups)}

    def _id_token(self, user: User, nonce: str | None, access_token: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user.sub, "aud": self.client_id, "iat": now, "exp": now + ID_TOKEN_SECONDS,
                  "auth_time": now, "at_hash": _b64(hashlib.sha256(access_token.encode()).digest()[:16]),
                  "email": user.email, "preferred_username": user.username}
        if nonce is not None:
            claims["nonce"] = nonce
        header = {"alg": "RS256", "typ": "JWT", "kid": self._kid}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self._signing_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str], dict]:
        """(status, headers, JSON body): a redirect back with a code for the chosen user, or an error."""
        self.authorize_requests.append(params)
        if params.get("client_id") != self.client_id or params.get("redirect_uri") not in self.redirect_uris:
            return 400, {}, {"error": "invalid_request", "error_description": "unknown client or redirect_uri"}
        if params.get("response_type") != "code" or "openid" not in params.get("scope", "").split():
            return 400, {}, {"error": "invalid_request", "error_description": "an openid scope and response_type=code are required"}
        if self.next_user is None:
            return 400, {}, {"error": "login_required", "error_description": "the test chose no user"}
        user = self.users[self.next_user]
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {"user": User(user.username, user.given_name, user.family_name, list(user.groups)),
                                 "nonce": params.get("nonce"), "redirect_uri": params["redirect_uri"]}
        back = {"code": code, **({"state": params["state"]} if "state" in params else {})}
        return 302, {"Location": f"{params['redirect_uri']}?{urlencode(back)}"}, {}

    def token(self, authorization: str | None, form: dict[str, str]) -> tuple[int, dict]:
        if authorization and authorization.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(authorization[6:]).decode().partition(":")
            method, client_id, client_secret = "client_secret_basic", unquote(client_id), unquote(client_secret)
        else:
            method, client_id, client_secret = "client_secret_post", form.get("client_id"), form.get("client_secret")
        record: dict[str, object] = {"method": method, "client_id": client_id, "client_secret": client_secret,
                                     "grant_type": form.get("grant_type")}
        self.token_requests.append(record)
        if client_id != self.client_id or not secrets.compare_digest(str(client_secret), self.client_secret):
            record["status"] = 401
            return 401, {"error": "invalid_client"}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # a code is good once
        if form.get("grant_type") != "authorization_code" or grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            record["status"] = 400
            return 400, {"error": "invalid_grant"}
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[access_token] = grant["user"]
        record["status"] = 200
        return 200, {"access_token": access_token, "token_type": "Bearer", "expires_in": ID_TOKEN_SECONDS,
                     "scope": "openid email profile groups", "id_token": self._id_token(grant["user"], grant["nonce"], access_token)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self._send(200, provider.discovery())
                elif url.path == "/jwks":
                    self._send(200, provider.jwks())
                elif url.path == "/authorize":
                    status, headers, body = provider.authorize({k: v[0] for k, v in parse_qs(url.query).items()})
                    self._send(status, body, headers)
                elif url.path == "/userinfo":
                    provider.userinfo_requests += 1
                    header = self.headers.get("Authorization", "")
                    user = provider._access_tokens.get(header[7:]) if header.startswith("Bearer ") else None
                    if user is None:
                        self._send(401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
                    else:
                        self._send(200, provider.userinfo(user))
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                if urlsplit(self.path).path != "/token":
                    self._send(404, {"error": "not_found"})
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                status, answer = provider.token(self.headers.get("Authorization"), {k: v[0] for k, v in parse_qs(body).items()})
                self._send(status, answer)

            def log_message(self, *args) -> None:
                pass

        return Handler
