"""A real gunicorn on 127.0.0.1 for tests: started with the repo's gunicorn.conf.py, output to a file."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import requests

from tests.support import ROOT

GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    base: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """Everything gunicorn and the app wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def gunicorn(log_path: Path, env: dict[str, str] | None = None, workers: int = 2,
             args: tuple[str, ...] = ()) -> Iterator[Server]:
    """Run gunicorn until the block ends; stdout and stderr both go to `log_path`."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LEGTRIAGE_")}
    # Each server keeps its records in a folder of its own unless the test names a store.
    full_env.update({"LEGTRIAGE_HOST": "127.0.0.1", "LEGTRIAGE_PORT": str(port),
                     "LEGTRIAGE_WORKERS": str(workers),
                     "LEGTRIAGE_DATA_DIR": tempfile.mkdtemp(prefix="legtriage-data-", dir=log_path.parent),
                     **(env or {})})
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([str(GUNICORN), "--config", "gunicorn.conf.py", *args], cwd=ROOT,
                                env=full_env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{server.base}/readyz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not become ready:\n{server.log()[-3000:]}")
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
