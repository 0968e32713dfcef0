"""Benchmark of `dagtool publish` against `aws s3 sync`: a team repository of 300 DAG files, first publish and no-op.

    python -m tools.bench_publish [--runs N] [--files N]

Both commands run as subprocesses, process start to exit, against one moto server (in this process) behind the
counting proxy of tools/s3_proxy.py, each into a fresh bucket per run so they never see each other's objects:
- `dagtool publish DIR --team analytics --bucket B --endpoint-url PROXY --quiet`;
- `aws s3 sync DIR s3://B/teams/analytics/ --endpoint-url PROXY --only-show-errors` (awscli 1.x).
Per command, the median of N runs of the wall-clock time and of the S3 requests the proxy counted.
Targets (issue 5): a no-op publish makes at most 2 S3 requests, and is at least 2x faster than `aws s3 sync`'s no-op.
Exit status 0 when both are met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from tools.s3_proxy import Request, S3Proxy

REGION = "eu-west-1"
TEAM = "analytics"
FOLDERS = ["ingestion", "marts", "reports", "exports", "ml"]
BIN = Path(sys.executable).parent
TABLES = ["orders", "customers", "payments", "sessions", "campaigns", "invoices", "refunds", "shipments", "products", "events"]
SCHEDULES = ["@hourly", "@daily", "@weekly", "0 6 * * *", "30 2 * * 1-5"]


def dag_file(number: int, folder: str) -> str:
    """A plausible team DAG of a few KB: extract, several SQL transforms, a quality check, a publish step."""
    table = TABLES[number % len(TABLES)]
    dag_id = f"{TEAM}_{folder}_{table}_{number:03d}"
    steps = []
    for step in range(3 + number % 6):
        steps.append(f'''
    transform_{step} = SQLExecuteQueryOperator(
        task_id="transform_{step}",
        conn_id="warehouse",
        sql="""
            insert into {folder}.{table}_step_{step}
            select id, customer_id, amount, currency, created_at, updated_at,
                   sum(amount) over (partition by customer_id order by created_at) as running_amount
            from {folder}.{table}_step_{step - 1 if step else "raw"}
            where created_at >= '{{{{ data_interval_start }}}}' and created_at < '{{{{ data_interval_end }}}}'
        """,
    )''')
    chain = " >> ".join(["extract"] + [f"transform_{step}" for step in range(len(steps))] + ["check", "publish"])
    return f'''"""{dag_id}: {folder} pipeline for {table} (generated for the publish benchmark)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.common.sql.operators.sql import SQLCheckOperator, SQLExecuteQueryOperator
from airflow.sdk import DAG, task

from airflow_platform_notify import notify_team_on_failure

DEFAULT_ARGS = {{
    "owner": "{TEAM}",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "execution_timeout": timedelta(hours=1),
    "on_failure_callback": notify_team_on_failure,
}}

with DAG(
    dag_id="{dag_id}",
    schedule="{SCHEDULES[number % len(SCHEDULES)]}",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["{TEAM}", "{folder}", "{table}"],
    doc_md=__doc__,
):

    @task
    def extract(data_interval_start=None, data_interval_end=None) -> int:
        """Copy the interval's rows of {table} from the source system into {folder}.{table}_raw."""
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        hook = DbApiHook.get_hook("source_{table}")
        rows = hook.get_records(
            "select count(*) from {table} where updated_at >= %s and updated_at < %s",
            parameters=(data_interval_start, data_interval_end),
        )
        return rows[0][0]
{"".join(steps)}

    check = SQLCheckOperator(
        task_id="check",
        conn_id="warehouse",
        sql="select count(*) > 0 from {folder}.{table}_step_{len(steps) - 1}",
    )

    @task
    def publish() -> None:
        """Swap the finished table into place."""
        print("published {folder}.{table}")

    extract = extract()
    publish = publish()
    {chain}
'''


def write_repository(directory: Path, files: int) -> int:
    size = 0
    for number in range(files):
        folder = FOLDERS[number % len(FOLDERS)]
        path = directory / folder / f"{TEAM}_{folder}_{number:03d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        size += path.write_text(dag_file(number, folder))
    return size


def timed(command: list[str], environment: dict[str, str], proxy: S3Proxy) -> tuple[float, list[Request]]:
    """Seconds from process start to exit, and the S3 requests the proxy saw."""
    proxy.reset()
    start = time.perf_counter()
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return seconds, proxy.requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=300)
    options = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server would log every request
    logging.getLogger("werkzeug").addHandler(logging.NullHandler())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    samples: dict[tuple[str, str], list[tuple[float, int]]] = {}
    with tempfile.TemporaryDirectory() as scratch, S3Proxy(moto_url) as proxy:
        repository = Path(scratch) / "analytics-dags"
        size = write_repository(repository, options.files)
        # Only these credentials and this region: no profile, config file or instance metadata of the machine.
        environment = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                       "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION,
                       "AWS_CONFIG_FILE": str(Path(scratch) / "no-config"), "AWS_SHARED_CREDENTIALS_FILE": str(Path(scratch) / "none"),
                       "AWS_EC2_METADATA_DISABLED": "true"}
        admin = boto3.client("s3", region_name=REGION, endpoint_url=moto_url, aws_access_key_id="bench", aws_secret_access_key="bench",
                             config=Config(s3={"addressing_style": "path"}))
        dagtool = [str(BIN / "dagtool")] if (BIN / "dagtool").exists() else [sys.executable, "-m", "airflow_platform_dagtool"]
        commands = {
            "dagtool publish": lambda bucket: [*dagtool, "publish", str(repository), "--team", TEAM, "--bucket", bucket,
                                               "--endpoint-url", proxy.url, "--quiet"],
            "aws s3 sync": lambda bucket: [str(BIN / "aws"), "s3", "sync", str(repository), f"s3://{bucket}/teams/{TEAM}/",
                                           "--endpoint-url", proxy.url, "--only-show-errors"],
        }
        for run in range(options.runs):
            for label, command in commands.items():  # interleaved, so both see the same machine
                bucket = f"bench-{label.split()[0]}-{run}"
                admin.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
                for phase in ("first", "no-op"):
                    seconds, requests = timed(command(bucket), environment, proxy)
                    samples.setdefault((label, phase), []).append((seconds, len(requests)))
                    writes = sum(1 for request in requests if request.operation in ("PUT", "POST", "DELETE"))
                    if writes != (0 if phase == "no-op" else options.files + (label == "dagtool publish")):
                        raise SystemExit(f"{label} ({phase}) wrote {writes} objects")
                listed = admin.list_objects_v2(Bucket=bucket, Prefix=f"teams/{TEAM}/", MaxKeys=1000)["KeyCount"]
                if listed < options.files:
                    raise SystemExit(f"{label} left {listed} objects in {bucket}, not {options.files}")
    server.stop()

    median = {key: (statistics.median(s for s, _ in values), statistics.median(r for _, r in values)) for key, values in samples.items()}
    print(f"publish benchmark: {options.files} DAG files ({size / 1024:.0f} KiB) in {len(FOLDERS)} folders, median of {options.runs} runs, "
          f"moto server behind a counting proxy; {os.cpu_count()} cores, {platform.system().lower()}, python {platform.python_version()}")
    print(f"{'command':<18}{'first s':>10}{'requests':>10}{'no-op s':>10}{'requests':>10}")
    for label in commands:
        (first, first_requests), (noop, noop_requests) = median[(label, "first")], median[(label, "no-op")]
        print(f"{label:<18}{first:>10.2f}{first_requests:>10.0f}{noop:>10.2f}{noop_requests:>10.0f}")
    noop_requests = max(r for _, r in samples[("dagtool publish", "no-op")])
    speedup = median[("aws s3 sync", "no-op")][0] / median[("dagtool publish", "no-op")][0]
    print(f"no-op: dagtool publish {speedup:.1f}x faster than aws s3 sync; at most {noop_requests} S3 requests in any run")
    met = noop_requests <= 2 and speedup >= 2
    print(f"targets (no-op publish <= 2 S3 requests, no-op >= 2x faster than aws s3 sync's): {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
