"""A throwaway PostgreSQL cluster for tests: Debian's postgresql binaries, initdb in a temp dir,
listening on 127.0.0.1 on a free port, removed at the end. No container engine, no system service.

PostgreSQL refuses to run as root, and CI runs as root: there the cluster is made and run as the
`postgres` system user (Debian's postgresql package creates it) through runuser. scripts/test
installs the package (scripts/lib/test-tools.sh); SKIP_POSTGRES_TESTS=1 skips the PostgreSQL
half of the store tests on a machine without it.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from tests.support.servers import free_port

SUPERUSER = "legtriage"


def bin_dir() -> Path | None:
    """Debian installs each major version under /usr/lib/postgresql/<major>/bin (the newest wins);
    /usr/local/bin/pg_ctl on some machines is only a symlink into it."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class Cluster:
    def __init__(self, fsync: bool = False) -> None:
        self.bin = bin_dir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (scripts/test installs Debian's postgresql; "
                               "SKIP_POSTGRES_TESTS=1 skips these tests)")
        self.fsync = fsync
        self.dir = Path(tempfile.mkdtemp(prefix="legtriage-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> "Cluster":
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust",
                      "-E", "UTF8", "--no-sync", "--no-instructions")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.dir} "
                   f"-c max_connections=200 -c fsync={'on' if self.fsync else 'off'}")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w",
                  "-t", "60", "-o", options, "start")
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def wait_down(self, limit: float = 10) -> None:
        deadline = time.monotonic() + limit
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
