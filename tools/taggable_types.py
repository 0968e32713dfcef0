"""The AWS resource types that take tags, read from pulumi-aws's own resource classes, for the tags policy.

    python -m tools.taggable_types            # exit 1 if policies/airflow_guard/taggable_types.txt is out of date
    python -m tools.taggable_types --write    # regenerate it (after upgrading pulumi-aws)

A type is taggable when its class's constructor takes `tags`; the type token is the one the class registers. The
generated modules are read as text: importing all of them (pulumi-aws loads them lazily) would take minutes.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
from pathlib import Path

import pulumi_aws

from policies.airflow_guard.tags import TAGGABLE_FILE

# The generated constructor, `def _internal_init(__self__, ...):`, then the token it registers.
INTERNAL_INIT = re.compile(r"def _internal_init\(__self__,(?P<params>.*?)\):", re.S)
TOKEN = re.compile(r"""super\(\w+, __self__\).__init__\(\s*['"](aws:[^'"]+)['"]""")


def taggable_types() -> list[str]:
    found = set()
    for source in sorted(Path(pulumi_aws.__file__).parent.glob("*/*.py")):
        if source.name.startswith("_"):
            continue
        text = source.read_text()
        init, token = INTERNAL_INIT.search(text), TOKEN.search(text)
        if init and token and re.search(r"^\s*tags:", init.group("params"), re.M):
            found.add(token.group(1))
    return sorted(found)


def render() -> str:
    version = importlib.metadata.version("pulumi-aws")
    return (f"# AWS resource types with a `tags` input, from pulumi-aws {version} (python -m tools.taggable_types --write).\n"
            + "\n".join(taggable_types()) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.taggable_types", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the file")
    options = parser.parse_args(argv)
    text = render()
    if options.write:
        TAGGABLE_FILE.write_text(text)
        print(f"{TAGGABLE_FILE}: {text.count(chr(10)) - 1} types")
        return 0
    if TAGGABLE_FILE.read_text() != text:
        print(f"{TAGGABLE_FILE} is out of date: run python -m tools.taggable_types --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
