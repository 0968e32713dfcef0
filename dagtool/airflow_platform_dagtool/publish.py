"""dagtool publish: an incremental sync of a team's repository into its prefix of the DAG bucket, and nowhere else.

- Only `teams/<team>/` is ever listed, read, written or deleted; every key is built under it and checked.
- A file is uploaded when it is new or its content changed. Content hashes are kept in a manifest beside the DAGs,
  with the ETag S3 returned for each upload: on an SSE-KMS bucket an ETag is not a content hash, but it does change
  when the object does, so one LIST shows whether someone changed an object behind the manifest's back.
- A publish with nothing to do makes two requests: the LIST and the manifest GET. It runs in every CI build, so
  those two are made by a lean reader (botocore's SigV4 signer over plain HTTP, no boto3 client to build), and the
  full client is only built when there is something to do, or when the lean reader meets anything unusual.
- Uploads come first, then the manifest, then deletes: a failure part-way never leaves the team with fewer DAGs,
  and the next run finishes the job.
- Throttling and 5xx responses are retried with exponential backoff and jitter (botocore's standard retry mode).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

from airflow_platform_dagtool.conventions import MANIFEST, team_prefix

SKIPPED_DIRECTORIES = {"__pycache__", ".git"}
_S3_XML = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def local_files(directory: Path) -> dict[str, str]:
    """Repository-relative path (with /) -> sha256, for every file to publish."""
    files = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if not path.is_file() or SKIPPED_DIRECTORIES & set(relative.parts) or path.suffix == ".pyc" or relative.as_posix() == MANIFEST:
            continue
        files[relative.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


@dataclass
class Changes:
    upload: list[tuple[str, str]] = field(default_factory=list)  # (path, "new" | "changed")
    delete: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def plan_changes(local: dict[str, str], remote: dict[str, str], manifest: dict[str, dict[str, str]]) -> Changes:
    """What to do, from the local hashes, the remote ETags (by path) and the last manifest."""
    changes = Changes()
    for path, digest in local.items():
        known = manifest.get(path, {})
        if path not in remote:
            changes.upload.append((path, "new"))
        elif known.get("sha256") != digest or known.get("etag") != remote[path]:
            changes.upload.append((path, "changed"))
        else:
            changes.unchanged.append(path)
    changes.delete = sorted(path for path in remote if path not in local and path != MANIFEST)
    return changes


def _s3_url(bucket: str, region: str, endpoint_url: Optional[str]) -> str:
    if endpoint_url:
        return f"{endpoint_url.rstrip('/')}/{bucket}"
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    if "." in bucket:  # a dotted name breaks the wildcard TLS certificate of virtual-hosted URLs
        return f"https://s3.{region}.{domain}/{bucket}"
    return f"https://{bucket}.s3.{region}.{domain}"


Looked = tuple[dict[str, str], dict[str, dict[str, str]]]  # remote ETags by path, and the manifest


def quick_look(bucket: str, prefix: str, region: Optional[str], endpoint_url: Optional[str],
               timeout: float = 10.0) -> tuple[Optional[Looked], int]:
    """What one LIST (paginated) and the manifest GET show, and how many requests that took. The first is None
    when the lean path does not apply (no credentials in the environment, no region, any unexpected answer)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import EnvProvider

    credentials = EnvProvider().load()
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if credentials is None or not region:
        return None, 0
    base = _s3_url(bucket, region, endpoint_url)
    parts = urlsplit(base)
    connection = (http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection)(parts.netloc, timeout=timeout)
    signer = S3SigV4Auth(credentials.get_frozen_credentials(), "s3", region)
    requests = 0

    def get(key: str, params: dict[str, str]) -> tuple[int, bytes]:
        nonlocal requests
        request = AWSRequest(method="GET", url=f"{base}/{quote(key)}" if key else f"{base}/", params=params)
        signer.add_auth(request)
        prepared = request.prepare()
        target = urlsplit(prepared.url)
        connection.request("GET", f"{target.path}?{target.query}" if target.query else target.path, headers=dict(prepared.headers))
        response = connection.getresponse()
        requests += 1
        return response.status, response.read()

    try:
        remote: dict[str, str] = {}
        params = {"list-type": "2", "prefix": prefix}
        while True:
            status, body = get("", params)
            if status != 200:
                return None, requests
            page = ElementTree.fromstring(body)
            for item in page.findall(f"{_S3_XML}Contents"):
                remote[item.findtext(f"{_S3_XML}Key")[len(prefix):]] = item.findtext(f"{_S3_XML}ETag")
            token = page.findtext(f"{_S3_XML}NextContinuationToken")
            if page.findtext(f"{_S3_XML}IsTruncated") != "true" or not token:
                break
            params = {**params, "continuation-token": token}
        manifest: dict[str, dict[str, str]] = {}
        if remote:
            status, body = get(prefix + MANIFEST, {})
            if status == 200:
                manifest = json.loads(body).get("files", {})
            elif status != 404:
                return None, requests
    except (OSError, http.client.HTTPException, ElementTree.ParseError, ValueError):
        return None, requests
    finally:
        connection.close()
    return (remote, manifest), requests


class UnsafeKey(ValueError):
    """A path that could name a key outside the team's prefix (`..`, a leading `/`)."""


@dataclass
class Summary:
    uploaded: int = 0
    deleted: int = 0
    unchanged: int = 0
    requests: int = 0
    dry_run: bool = False

    def line(self) -> str:
        verb = "would upload" if self.dry_run else "uploaded"
        gone = "would delete" if self.dry_run else "deleted"
        return f"{verb} {self.uploaded}, {gone} {self.deleted}, unchanged {self.unchanged} ({self.requests} S3 requests)"


class Publisher:
    def __init__(self, s3: Any, bucket: str, team: str, jobs: int = 16, echo: Callable[[str], None] = print):
        self.s3, self.bucket, self.prefix, self.jobs, self.echo = s3, bucket, team_prefix(team), jobs, echo
        self._requests = 0
        self._lock = threading.Lock()
        # Every HTTP request, retries included, is counted: the figure a no-op publish is held to.
        s3.meta.events.register("before-send.s3", self._count)

    def _count(self, **_: Any) -> None:
        with self._lock:
            self._requests += 1

    def _key(self, path: str) -> str:
        key = self.prefix + path
        if not key.startswith(self.prefix) or ".." in Path(path).parts or path.startswith("/"):
            raise UnsafeKey(f"{path!r} would leave {self.prefix}: remove that object by hand, dagtool will not touch it")
        return key

    def _remote(self) -> dict[str, str]:
        remote = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                remote[item["Key"][len(self.prefix):]] = item["ETag"]
        return remote

    def _manifest(self) -> dict[str, dict[str, str]]:
        from botocore.exceptions import ClientError

        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self._key(MANIFEST))["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return {}
            raise
        return json.loads(body).get("files", {})

    def _upload(self, directory: Path, path: str) -> str:
        return self.s3.put_object(Bucket=self.bucket, Key=self._key(path), Body=(directory / path).read_bytes())["ETag"]

    def publish(self, directory: Path, dry_run: bool = False, looked: Optional[Looked] = None, made: int = 0) -> Summary:
        """Publish; `looked` is what quick_look already read (not read again), `made` the requests it took."""
        local = local_files(directory)
        self._requests += made
        if looked is not None:
            remote, manifest = looked
        else:
            remote = self._remote()
            manifest = self._manifest() if remote else {}
        changes = plan_changes(local, remote, manifest)
        for path in [path for path, _ in changes.upload] + changes.delete:
            self._key(path)  # refuse before the first write, not half-way through
        summary = Summary(uploaded=len(changes.upload), deleted=len(changes.delete), unchanged=len(changes.unchanged), dry_run=dry_run)
        if dry_run:
            for path, reason in changes.upload:
                self.echo(f"would upload {self.prefix}{path} ({reason})")
            for path in changes.delete:
                self.echo(f"would delete {self.prefix}{path}")
        elif changes.upload or changes.delete:
            etags = {path: entry["etag"] for path, entry in manifest.items() if path in local and path in remote}
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                for done, ((path, reason), etag) in enumerate(
                        zip(changes.upload, pool.map(lambda item: self._upload(directory, item[0]), changes.upload)), start=1):
                    etags[path] = etag
                    self.echo(f"[{done}/{len(changes.upload)}] uploaded {self.prefix}{path} ({reason})")
            # The manifest describes the repository as published; objects it no longer names are deleted next.
            document = {"files": {path: {"sha256": digest, "etag": etags.get(path, remote.get(path, ""))} for path, digest in local.items()}}
            self.s3.put_object(Bucket=self.bucket, Key=self._key(MANIFEST), Body=json.dumps(document, indent=1, sort_keys=True).encode(),
                               ContentType="application/json")
            for done, path in enumerate(changes.delete, start=1):
                self.s3.delete_object(Bucket=self.bucket, Key=self._key(path))
                self.echo(f"[{done}/{len(changes.delete)}] deleted {self.prefix}{path}")
        summary.requests = self._requests
        return summary


def s3_client(region: Optional[str], endpoint_url: Optional[str], max_attempts: int) -> Any:
    import boto3
    from botocore.config import Config

    # total_max_attempts counts the first attempt, as --max-attempts promises; botocore's "max_attempts" would count retries only.
    config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts}, max_pool_connections=32,
                    s3={"addressing_style": "path"} if endpoint_url else {})
    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)
