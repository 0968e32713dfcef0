"""`make charts`: pull every pinned chart from the stack's chart repositories into the cache the tests and the offline
plan render from (.cache/charts), keeping an archive only when its sha256 is the pinned one.

    python -m tools.charts [STACK]        # the chartRepositories of Pulumi.<STACK>.yaml (default dev)
    python -m tools.charts --file PATH    # any stack file

The repositories are the Releases' own (components/charts.py, or the stack's mirrors), so what is rendered here is what
`pulumi up` installs. Helm repositories are read through their index.yaml, OCI registries by reference; plain HTTP is
spoken only to a loopback address. Exit status: 0 every chart is in the cache, 1 one was refused or unreachable, 2 the
stack file was refused.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlsplit

import helm_python as helm

from components.charts import CHARTS, PinnedChart, is_oci
from components.config import ConfigError
from components.config.fields import LOOPBACK_HOSTS
from tools.offline import StackFileError, read_stack_file, refusal, stack_file, typed_config
from tools.upstream import CACHE, UpstreamMissing, sha256


class ChartRefused(UpstreamMissing):
    """A chart that could not be pulled, or whose archive is not the pinned one."""


def _plain_http(repository: str) -> bool:
    """Whether to speak plain HTTP: to an http:// repository, which the config allows only on loopback, and to an oci://
    registry on loopback (a local registry has no certificate)."""
    parts = urlsplit(repository)
    return parts.scheme == "http" or (parts.scheme == "oci" and parts.netloc.rsplit(":", 1)[0] in LOOPBACK_HOSTS)


def pull(chart: PinnedChart, repository: str, cache: Path, digest: Optional[str] = None) -> Path:
    """Pull `chart` from `repository` into `cache`; the archive is kept only if its sha256 is `digest` (default: the
    pinned one), and otherwise refused in one sentence naming the chart and both digests."""
    expected = digest or chart.digest
    if expected is None:
        raise ChartRefused(f"{chart} has no pinned digest yet, so it is not pulled: read `digest` from {chart.digest_source} "
                           "and record it in components/charts.py.")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as download:
        try:
            if is_oci(repository):
                helm.pull(f"{repository}/{chart.name}", version=chart.version, destination=download, plain_http=_plain_http(repository))
            else:
                helm.pull(chart.name, repo_url=repository, version=chart.version, destination=download)
        except helm.HelmError as error:
            raise ChartRefused(f"{chart} could not be pulled from {repository}: {str(error).splitlines()[0]}") from None
        archive = Path(download) / chart.archive
        actual = sha256(archive)
        if actual != expected:
            raise ChartRefused(f"{chart} from {repository} was refused: its archive has sha256 {actual}, but the pinned digest is "
                               f"{expected}.")
        return Path(shutil.move(str(archive), cache / chart.archive))


def pull_all(repositories: Mapping[str, str], cache: Optional[Path] = None,
             digests: Optional[Mapping[str, str]] = None) -> tuple[list[Path], list[str]]:
    """Pull every pinned chart from its repository (chart name -> URL) into `cache` (default .cache/charts); the archives
    kept, and one sentence per refusal."""
    cache = cache or CACHE
    kept, refused = [], []
    for name, chart in CHARTS.items():
        try:
            kept.append(pull(chart, repositories[name], cache, (digests or {}).get(name)))
        except ChartRefused as error:
            refused.append(str(error))
    return kept, refused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.charts", description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", default="dev", help="stack whose chartRepositories to pull from (default dev)")
    parser.add_argument("--file", type=Path, help="read the chartRepositories of this stack file instead")
    options = parser.parse_args(argv)
    path = options.file or stack_file(options.stack)
    try:
        config = typed_config(read_stack_file(path))
    except (StackFileError, ConfigError) as error:
        print(refusal(path, error), file=sys.stderr)
        return 2
    repositories = {name: config.chart_repositories.of(chart) for name, chart in CHARTS.items()}
    kept, refused = pull_all(repositories)
    for archive in kept:
        print(f"{archive.name}: sha256 as pinned, kept in {archive.parent}")
    for sentence in refused:
        print(sentence, file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
