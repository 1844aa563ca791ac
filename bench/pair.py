"""Paired A/B of worker CPU per call between two checkouts: for changes of a few per cent.

    .venv/bin/python bench/pair.py CHECKOUT_A CHECKOUT_B [--pairs 30] [--slice 2] [--app bench.ceiling:app]
        [--records] [--workers 1] [--connections 8]

Starts one gunicorn per checkout (its own gunicorn.conf.py and .venv; one worker and recording off
unless `--workers N` (0: each checkout's default) and `--records`, which records in SQLite in a temporary folder) and runs wrk
(8 connections unless `--connections`, the bench mix) on each in turn for `--slice` seconds,
`--pairs` times, the order alternating. Each pair gives B's worker CPU per call over A's; the median of those ratios
cancels most of what other load on the machine does in the meantime, which moves whole bench/run
rounds by ±20 % (docs/performance.md). Run it once with the same checkout as A and B to see what
"no difference" looks like on the machine at that time. `--app` measures another WSGI app of the
checkouts (e.g. the ceiling) under the same settings. Beside the CPU it prints B's req/s over A's,
per pair, the same way.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench import TRIAGE, bodies, lua_script  # noqa: E402
from tests.support.servers import free_port  # noqa: E402


def worker_cpu_s(master: int) -> float:
    """User + system CPU seconds of the gunicorn master and its workers."""
    pids = [master] + [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/pair.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--slice", type=int, default=2, help="seconds of wrk per server and pair")
    parser.add_argument("--app", default=None, help="WSGI app instead of the config's (the service)")
    parser.add_argument("--records", action="store_true", help="record every call (SQLite), as by default")
    parser.add_argument("--workers", type=int, default=1, help="0: each checkout's own default")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="legtriage-pair-"))
    script = workdir / "mix.lua"
    script.write_text(lua_script(bodies()))
    procs, urls = [], []
    try:
        for root in (args.a.resolve(), args.b.resolve()):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("LEGTRIAGE_")}
            env.update(LEGTRIAGE_RECORDS_ENABLED=str(args.records).lower(), LEGTRIAGE_HOST="127.0.0.1",
                       LEGTRIAGE_PORT=str(port), LEGTRIAGE_DATA_DIR=tempfile.mkdtemp(dir=workdir),
                       PYTHONDONTWRITEBYTECODE="1")
            if args.workers:
                env["LEGTRIAGE_WORKERS"] = str(args.workers)
            cmd = [str(root / ".venv/bin/gunicorn"), "--config", "gunicorn.conf.py", *([args.app] if args.app else [])]
            procs.append(subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
            urls.append(f"http://127.0.0.1:{port}{TRIAGE}")
        time.sleep(6)

        def run(i: int, seconds: int) -> tuple[float, float]:
            """Worker CPU ms per call and req/s of one slice."""
            before = worker_cpu_s(procs[i].pid)
            out = subprocess.run(["wrk", f"-t{min(2, args.connections)}", f"-c{args.connections}",
                                  f"-d{seconds}s", "-s", str(script), urls[i]],
                                 capture_output=True, text=True, check=True).stdout
            if "Non-2xx" in out or "Socket errors" in out:
                raise SystemExit(f"bench/pair.py: errors from {urls[i]}:\n{out}")
            calls = int(re.search(r"(\d+) requests in", out)[1])
            return (worker_cpu_s(procs[i].pid) - before) * 1000 / calls, float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])

        run(0, 3), run(1, 3)  # warm up
        a, b = [], []
        for n in range(args.pairs):
            if n % 2 == 0:
                a.append(run(0, args.slice)), b.append(run(1, args.slice))
            else:
                b.append(run(1, args.slice)), a.append(run(0, args.slice))
        cpu_a, cpu_b = [x[0] for x in a], [x[0] for x in b]
        ratios = [y / x for x, y in zip(cpu_a, cpu_b)]
        rps_ratios = [y[1] / x[1] for x, y in zip(a, b)]
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        r1, _, r3 = statistics.quantiles(rps_ratios, n=4)
        print(f"A {args.a}: worker CPU {statistics.median(cpu_a):.3f} ms/call, "
              f"{statistics.median(x[1] for x in a):.0f} req/s (medians of {args.pairs})")
        print(f"B {args.b}: worker CPU {statistics.median(cpu_b):.3f} ms/call, "
              f"{statistics.median(x[1] for x in b):.0f} req/s")
        print(f"B/A CPU per pair: median {statistics.median(ratios):.3f}, quartiles {q1:.3f}-{q3:.3f}; "
              f"B cheaper in {sum(r < 1 for r in ratios)} of {args.pairs} pairs")
        print(f"B/A req/s per pair: median {statistics.median(rps_ratios):.3f}, quartiles {r1:.3f}-{r3:.3f}; "
              f"B faster in {sum(r > 1 for r in rps_ratios)} of {args.pairs} pairs")
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
