"""The servers the end-to-end suite runs Airflow against, on 127.0.0.1: PostgreSQL and Redis from Debian, moto for S3
and Secrets Manager, each on a free port and in a folder of its own, stopped when the suite ends."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest

# Debian's packages (the Makefile installs them as root, as it does promtool).
PACKAGES = {"postgres": "postgresql", "redis-server": "redis-server"}
# Debian and Ubuntu keep the server's programs off PATH, under the major version: the newest one installed.
POSTGRES_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=Path("/usr/lib/postgresql/15/bin"))
DATABASE = "airflow"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def peak_kib(pid: int) -> int:
    """A process's peak resident memory (VmHWM), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise ValueError(f"process {pid} reports no VmHWM")


def tool(name: str) -> str:
    found = str(POSTGRES_BIN / name) if (POSTGRES_BIN / name).exists() else shutil.which(name)
    if found is None:
        package = PACKAGES.get(name, "postgresql" if name in {"initdb", "pg_ctl", "psql"} else name)
        pytest.fail(f"{name} is not installed: install it (Debian: apt-get install {package}; `make test` does it as root)")
    return found


@dataclass
class Postgres:
    """A PostgreSQL cluster of its own; as root it runs as the postgres user, which PostgreSQL insists on, in a folder of
    /tmp that user can reach (pytest's are root's alone)."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="airflow-platform-postgres-")))
    port: int = 0
    _server: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"postgresql://airflow@127.0.0.1:{self.port}/{DATABASE}"

    def _as_owner(self) -> dict:
        if os.geteuid() != 0:
            return {}
        owner = pwd.getpwnam("postgres")
        return {"user": owner.pw_uid, "group": owner.pw_gid}

    def start(self) -> "Postgres":
        self.port = free_port()
        data = self.directory / "data"
        self.directory.mkdir(parents=True, exist_ok=True)
        owner = self._as_owner()
        if owner:
            shutil.chown(self.directory, owner["user"], owner["group"])
        os.chmod(self.directory, 0o755)
        initdb = subprocess.run([tool("initdb"), "-D", str(data), "-U", "airflow", "--auth=trust", "-E", "UTF8"],
                                capture_output=True, text=True, **owner)
        if initdb.returncode:
            raise RuntimeError(f"initdb failed: {initdb.stderr.strip()}")
        self._server = subprocess.Popen(
            [tool("postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port), "-k", str(self.directory),
             "-c", "max_connections=300", "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=open(self.directory / "postgres.log", "w"), **owner)
        wait_for(lambda: listening(self.port), "PostgreSQL listening")
        self.sql(f"CREATE DATABASE {DATABASE}", database="postgres")
        return self

    def sql(self, statement: str, database: str = DATABASE) -> str:
        """Runs one statement with psql; returns its unaligned output."""
        result = subprocess.run([tool("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "airflow", "-d", database,
                                 "-v", "ON_ERROR_STOP=1", "-At", "-c", statement], capture_output=True, text=True, timeout=60)
        if result.returncode:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def stop(self) -> None:
        if self._server and self._server.poll() is None:
            self._server.terminate()  # smart shutdown
            try:
                self._server.wait(30)
            except subprocess.TimeoutExpired:
                self._server.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class Redis:
    directory: Path
    port: int = 0
    _server: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "Redis":
        self.port = free_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._server = subprocess.Popen([tool("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", str(self.directory)],
                                        stdout=open(self.directory / "redis.log", "w"), stderr=subprocess.STDOUT)
        wait_for(lambda: listening(self.port), "Redis listening")
        return self

    def stop(self) -> None:
        if self._server and self._server.poll() is None:
            self._server.terminate()
            self._server.wait(30)
