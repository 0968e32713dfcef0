"""Each pinned image's digest as its registry serves it, beside the digest the platform pins.

`python -m tools.image_digests [stack]` asks every image's registry (the OCI distribution API, anonymously, as a
kubelet pulling a public image does) for the tag's manifest and prints one line per image: `same`, `differs` (the tag
was moved: review before pinning the new one), `missing` (the catalog has none yet: the line gives the digest to put in
components/images.py) or `unreachable`. It exits 1 unless every image is `same`. With a stack, the stack's `images`
overrides count (its mirrors are asked instead).

The digest is the sha256 of the manifest bytes the registry returns for the tag: for a multi-architecture image, its
index. It is computed here from the bytes, and checked against the registry's Docker-Content-Digest header.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from components.images import IMAGES, PinnedImage
from tools.offline import read_stack_file, stack_file, typed_config

# The manifest types a kubelet accepts, an index first: a tag of a multi-architecture image resolves to its index.
ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
DOCKER_HUB = "registry-1.docker.io"
# Plain HTTP only on the loopback, as a container runtime allows by default; everything else over TLS.
LOOPBACK = re.compile(r"(localhost|127\.\d+\.\d+\.\d+)(:\d+)?")
CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
TIMEOUT_SECONDS = 20


class RegistryError(Exception):
    """The registry could not be asked, or answered something other than a manifest."""


@dataclass(frozen=True)
class Location:
    base: str   # scheme://host[:port]
    name: str   # the repository inside that registry

    @classmethod
    def of(cls, repository: str) -> "Location":
        """Where an image repository, as a pod spec names it, lives: Docker Hub's short names expanded as a runtime does."""
        first, _, rest = repository.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            host, name = first, rest
        else:
            host, name = DOCKER_HUB, repository if rest else f"library/{repository}"
        if host == "docker.io":
            host = DOCKER_HUB
        scheme = "http" if LOOPBACK.fullmatch(host) else "https"
        return cls(f"{scheme}://{host}", name)


Fetch = Callable[[urllib.request.Request], tuple[int, dict[str, str], bytes]]


def fetch(request: urllib.request.Request) -> tuple[int, dict[str, str], bytes]:
    """One HTTP exchange: status, headers (lower-case names), body; an HTTP error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise RegistryError(f"{request.full_url}: {getattr(error, 'reason', error)}") from None


def _token(challenge: str, scope: str, get: Fetch) -> str:
    """An anonymous pull token from the realm a registry's `WWW-Authenticate: Bearer` challenge names."""
    kind, _, params = challenge.partition(" ")
    if kind.lower() != "bearer":
        raise RegistryError(f"the registry asks for {kind} authentication; only anonymous bearer tokens are supported")
    fields = dict(CHALLENGE.findall(params))
    if "realm" not in fields:
        raise RegistryError(f"the registry's challenge names no realm: {challenge}")
    query = {"service": fields["service"]} if "service" in fields else {}
    query["scope"] = fields.get("scope", scope)
    status, _, body = get(urllib.request.Request(f"{fields['realm']}?{urllib.parse.urlencode(query)}"))
    if status != 200:
        raise RegistryError(f"the token service {fields['realm']} answered {status}")
    answer = json.loads(body)
    token = answer.get("token") or answer.get("access_token")
    if not token:
        raise RegistryError(f"the token service {fields['realm']} gave no token")
    return token


def registry_digest(repository: str, tag: str, get: Fetch = fetch) -> str:
    """The sha256 digest of the manifest the registry serves for repository:tag."""
    where = Location.of(repository)
    url = f"{where.base}/v2/{where.name}/manifests/{tag}"
    headers = {"Accept": ACCEPT}
    status, answer, body = get(urllib.request.Request(url, headers=headers))
    if status == 401:
        challenge = answer.get("www-authenticate", "")
        headers["Authorization"] = f"Bearer {_token(challenge, f'repository:{where.name}:pull', get)}"
        status, answer, body = get(urllib.request.Request(url, headers=headers))
    if status != 200:
        raise RegistryError(f"{url} answered {status}")
    digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
    served = answer.get("docker-content-digest")
    if served and served != digest:
        raise RegistryError(f"{url}: the registry says {served}, but the manifest it sent hashes to {digest}")
    return digest


def compare(images: Iterable[PinnedImage], get: Fetch = fetch) -> list[tuple[PinnedImage, str, Optional[str]]]:
    """(image, status, the registry's digest) for each image."""
    results = []
    for image in images:
        try:
            served: Optional[str] = registry_digest(image.repository, image.tag, get)
        except RegistryError as error:
            results.append((image, f"unreachable: {error}", None))
            continue
        status = "missing" if image.digest is None else "same" if served == image.digest else "differs"
        results.append((image, status, served))
    return results


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.image_digests", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", nargs="?", help="a stack whose images key applies (Pulumi.<stack>.yaml)")
    args = parser.parse_args(argv)
    images = IMAGES
    if args.stack:
        images = typed_config(read_stack_file(stack_file(args.stack))).images.pinned()
    results = compare(images.values())
    for image, status, served in results:
        print(f"{image.name:24} {image.repository}:{image.tag}  {status}" + (f"  {served}" if served and status != "same" else ""))
    return 0 if all(status == "same" for _, status, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
