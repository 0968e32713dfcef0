"""dagtool: the one CI step of a team's DAG repository.

    dagtool check DIR --team T [--json report.json]        guardrails, with Airflow's own DagBag
    dagtool publish DIR --team T --bucket B [--dry-run]    incremental sync into teams/T/ of the DAG bucket
    dagtool generate MANIFEST --team T --out DIR           one DAG file per dbt model group

Exit status: 0 fine, 1 a guardrail is violated or publishing failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

TEAM = re.compile(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?")
SHELL_SAFE = re.compile(r"[\w./ -]+")


def _team(value: str) -> str:
    if not TEAM.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a team name (lower-case letters, digits and '-', starting with a letter)")
    return value


def _directory(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is not a directory")
    return path


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return int(value)


def _shell_safe(value: str) -> str:
    if not SHELL_SAFE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} may hold only letters, digits, spaces and . / _ -")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dagtool", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="check every DAG file against the platform's guardrails")
    check.add_argument("directory", type=_directory)
    check.add_argument("--team", type=_team, required=True)
    check.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    check.add_argument("--budget-seconds", type=float, default=5.0, help="longest a file may take to parse (default 5)")
    check.add_argument("--max-dags-per-file", type=_positive, default=1, help="most DAGs one file may build (default 1)")

    publish = commands.add_parser("publish", help="sync the repository into teams/<team>/ of the DAG bucket")
    publish.add_argument("directory", type=_directory)
    publish.add_argument("--team", type=_team, required=True)
    publish.add_argument("--bucket", required=True)
    publish.add_argument("--region", help="the bucket's region (default: the environment's)")
    publish.add_argument("--endpoint-url", help="an S3-compatible endpoint, for tests")
    publish.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    publish.add_argument("--jobs", type=_positive, default=16, help="parallel uploads (default 16)")
    publish.add_argument("--max-attempts", type=_positive, default=8, help="attempts per request on throttling and 5xx (default 8)")
    publish.add_argument("--quiet", action="store_true", help="print only the summary")

    generate = commands.add_parser("generate", help="one DAG file per dbt model group from a dbt manifest.json")
    generate.add_argument("manifest", type=Path)
    generate.add_argument("--team", type=_team, required=True)
    generate.add_argument("--out", type=Path, required=True)
    generate.add_argument("--owner", required=True, help="who answers for the generated DAGs")
    generate.add_argument("--schedule", default="@daily")
    generate.add_argument("--dbt-command", type=_shell_safe, default="dbt")
    generate.add_argument("--project-dir", type=_shell_safe, default="/opt/airflow/dbt")
    return parser


def _check(options: argparse.Namespace) -> int:
    from airflow_platform_dagtool.check import check

    report = check(options.directory, options.team, options.budget_seconds, options.max_dags_per_file)
    for violation in sorted(report.violations, key=lambda v: (v.file, v.line, v.rule)):
        print(violation.human())
    print(f"{len(report.files)} files, {len(report.dags)} DAGs, {len(report.violations)} violations")
    if options.json:
        options.json.write_text(json.dumps(report.to_json(), indent=2))
    return 0 if report.ok else 1


def _publish(options: argparse.Namespace) -> int:
    from airflow_platform_dagtool.conventions import team_prefix
    from airflow_platform_dagtool.publish import Summary, local_files, plan_changes, quick_look

    echo = (lambda _: None) if options.quiet else print
    # Most runs change nothing: answer those from the two reads alone, without building a boto3 client.
    looked, made = quick_look(options.bucket, team_prefix(options.team), options.region, options.endpoint_url)
    if looked is not None and not options.dry_run:
        remote, manifest = looked
        changes = plan_changes(local_files(options.directory), remote, manifest)
        if not changes.upload and not changes.delete:
            print(Summary(unchanged=len(changes.unchanged), requests=made).line())
            return 0

    from botocore.exceptions import BotoCoreError, ClientError

    from airflow_platform_dagtool.publish import Publisher, UnsafeKey, s3_client

    publisher = Publisher(s3_client(options.region, options.endpoint_url, options.max_attempts), options.bucket, options.team,
                          jobs=options.jobs, echo=echo)
    try:
        summary = publisher.publish(options.directory, dry_run=options.dry_run, looked=looked, made=made)
    except (BotoCoreError, ClientError) as error:
        print(f"publish failed: {error} (uploads come before deletes: run it again to finish)", file=sys.stderr)
        return 1
    except UnsafeKey as error:
        print(f"publish failed: {error}", file=sys.stderr)
        return 1
    print(summary.line())
    return 0


def _generate(options: argparse.Namespace) -> int:
    from airflow_platform_dagtool.generate import generate

    for path in generate(options.manifest, options.team, options.out, options.owner, options.schedule, options.dbt_command,
                         options.project_dir):
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    return {"check": _check, "publish": _publish, "generate": _generate}[options.command](options)
