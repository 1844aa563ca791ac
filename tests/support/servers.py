"""The one gunicorn launcher: a real server on 127.0.0.1 with the repo's gunicorn.conf.py.

Used by the tests, the benchmark (bench/bench.py) and the load test (scripts/lib/load_test.py):
each starts gunicorn here, on a free port, waits until it answers, and stops it the same way.
Needs only the standard library, so scripts can import it with the repo root on sys.path.
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    base: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    started: float  # time.monotonic() when gunicorn was started

    def log(self) -> str:
        """Everything gunicorn and the app wrote to stdout (and stderr, unless kept apart) so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 2.0) -> int:
        """The status of one request (the answer is read and dropped)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body, headers or {})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM to gunicorn's process group (master and workers), SIGKILL after `timeout` s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def readyz(server: Server) -> bool:
    return server.request("GET", "/readyz", timeout=1) == 200


def start(log_path: Path, env: dict[str, str] | None = None, workers: int | None = 2,
          args: tuple[str, ...] = (), app: str | None = None, root: Path = ROOT,
          ready: Callable[[Server], bool] = readyz, timeout: float = 30, poll: float = 0.1,
          stderr_path: Path | None = None) -> Server:
    """Start gunicorn in `root` with its gunicorn.conf.py (and `app` instead of the config's
    wsgi_app), and return once `ready(server)` is true.

    The environment is this process's without any LEGTRIAGE_* setting, then `env`; `workers`
    None leaves LEGTRIAGE_WORKERS to the config's default. Output goes to `log_path` (stderr too,
    unless `stderr_path` is given). Raises RuntimeError, with the end of the log, if gunicorn
    exits or is not ready within `timeout` seconds.
    """
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LEGTRIAGE_")}
    # Each server keeps its records in a folder of its own unless the caller names a store.
    full_env.update({"LEGTRIAGE_HOST": "127.0.0.1", "LEGTRIAGE_PORT": str(port),
                     "LEGTRIAGE_DATA_DIR": tempfile.mkdtemp(prefix="legtriage-data-",
                                                            dir=Path(log_path).parent)})
    if workers is not None:
        full_env["LEGTRIAGE_WORKERS"] = str(workers)
    full_env.update(env or {})
    cmd = [str(GUNICORN), "--config", "gunicorn.conf.py", *args, *([app] if app else [])]
    with open(log_path, "wb") as out:
        err = open(stderr_path, "wb") if stderr_path else None
        try:
            proc = subprocess.Popen(cmd, cwd=root, env=full_env, stdout=out,
                                    stderr=err or subprocess.STDOUT, start_new_session=True)
        finally:
            if err:
                err.close()
    server = Server(f"http://127.0.0.1:{port}", port, proc, Path(log_path), time.monotonic())
    try:
        while True:
            try:
                if ready(server):
                    return server
            except OSError:  # not listening yet
                pass
            if proc.poll() is not None or time.monotonic() - server.started > timeout:
                raise RuntimeError(f"gunicorn did not become ready:\n{server.log()[-3000:]}")
            time.sleep(poll)
    except BaseException:
        server.stop()
        raise


@contextmanager
def gunicorn(log_path: Path, env: dict[str, str] | None = None, workers: int | None = 2,
             args: tuple[str, ...] = (), **options) -> Iterator[Server]:
    """Run gunicorn (see start) until the block ends."""
    server = start(log_path, env, workers, args, **options)
    try:
        yield server
    finally:
        server.stop()
