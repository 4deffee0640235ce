"""Servers that tests start on loopback: a free port, and a PostgreSQL server in a temporary cluster
(the `postgres_url` fixture of conftest.py)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_binaries() -> Path | None:
    """The folder of the newest installed PostgreSQL server's programs, None when there is none."""
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    return Path(found[-1]).parent if found[-1] else None


@contextmanager
def postgres_server(binaries: Path) -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 and a free port, in a temporary cluster with a `dagster`
    database; yields its SQLAlchemy URL and stops the server at the end."""
    as_user: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="bdc-postgres-"))
    if os.geteuid() == 0:  # initdb refuses root: run the server as the `postgres` account
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    cluster, port = data / "cluster", free_port()

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    pg(str(binaries / "initdb"), "-D", str(cluster), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {data}"
    pg(str(binaries / "pg_ctl"), "-D", str(cluster), "-o", options, "-l", str(data / "server.log"), "-w", "start")
    try:
        pg(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "dagster")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/dagster"
    finally:
        pg(str(binaries / "pg_ctl"), "-D", str(cluster), "-m", "fast", "-w", "stop")
        shutil.rmtree(data, ignore_errors=True)
