"""Benchmark $triage against its ceiling; bench/run is the command (it installs wrk, then runs this).

Starts two gunicorn servers on 127.0.0.1 with the service's own gunicorn.conf.py: the real service
and bench/ceiling.py (same Flask, same body parsed, a fixed Bundle returned). wrk drives both with
the same mix of the example QuestionnaireResponses, in rounds that alternate between the two so
that a noisy moment of the machine hits both alike. Reports requests/s, p50 and p99 latency at 16
connections and at 1, the ratio $triage/ceiling, worker RSS and the time from start to the first
$triage response; prints a table and writes the same as JSON. See docs/performance.md.

The service runs with recording on (the default: one audit record per call, SQLite in a temp
folder), and beside it, in the same interleaved rounds, with recording off
(LEGTRIAGE_RECORDS_ENABLED=false) and, where PostgreSQL is installed, with its records in a
throwaway PostgreSQL cluster (fsync on): the differences are what a record costs per call.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TRIAGE = "/fhir/QuestionnaireResponse/$triage"
GUNICORN = ROOT / ".venv/bin/gunicorn"
TARGETS = {"ratio": 0.75, "p99_ms_at_1": 3.0, "worker_rss_mb": 60.0, "first_response_s": 1.5}

# The mix: how often each example is sent per cycle. Routine and self-care stories are the bulk of
# what a primary-care triage form sees; emergencies are rare. One request in eight comes wrapped in
# a Parameters resource, the other form the operation accepts.
MIX = {"qr-routine-diabetes": 2, "qr-routine-sciatica": 2, "qr-self-care-fell-asleep": 1,
       "qr-urgent-dvt": 1, "qr-emergency-stroke": 1}
WRAPPED = "qr-emergency-cauda-equina"

LUA = r"""
local bodies = { %(bodies)s }
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/fhir+json"
wrk.headers["Accept"] = "application/fhir+json"

function setup(thread)
  n = n + 1
  thread:set("offset", n)  -- threads start at different places in the mix
end

function init(args)
  i = offset
end

function request()
  i = i %% #bodies + 1
  return wrk.format(nil, "%(path)s", nil, bodies[i])
end

function done(summary, latency, requests)
  io.write(string.format(
    "BENCH-JSON {\"requests\": %%d, \"duration_us\": %%d, \"p50_us\": %%d, \"p99_us\": %%d, " ..
    "\"max_us\": %%d, \"non_2xx\": %%d, \"socket_errors\": %%d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def bodies() -> list[bytes]:
    """The request bodies of one cycle of the mix, as an EHR would send them (pretty-printed)."""
    out = []
    for name, weight in MIX.items():
        out += [(EXAMPLES / f"{name}.json").read_bytes()] * weight
    wrapped = {"resourceType": "Parameters", "parameter": [
        {"name": "questionnaireResponse", "resource": json.loads((EXAMPLES / f"{WRAPPED}.json").read_text())}]}
    out.append(json.dumps(wrapped, indent=2).encode())
    return out


def lua_script(bodies: list[bytes]) -> str:
    quoted = []
    for body in bodies:
        level = "=" * 3
        while f"]{level}]".encode() in body:
            level += "="
        quoted.append(f"[{level}[{body.decode()}]{level}]")
    return LUA % {"bodies": ",\n".join(quoted), "path": TRIAGE}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, body: bytes, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", TRIAGE, body, {"Content-Type": "application/fhir+json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@dataclass
class Server:
    """One gunicorn master (the service or the ceiling) started with the service's config."""

    name: str
    app: str | None  # None: the config's own wsgi_app, the real service
    workdir: Path
    gunicorn_args: str
    settings: dict = field(default_factory=dict)  # LEGTRIAGE_* for this server
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    first_response_s: float | None = None

    def start(self, probe: bytes, limit_s: float = 30.0) -> None:
        env = {**os.environ, "LEGTRIAGE_HOST": "127.0.0.1", "LEGTRIAGE_PORT": str(self.port),
               "PYTHONDONTWRITEBYTECODE": "1", "LEGTRIAGE_DATA_DIR": str(self.workdir / f"{self.name}-data"),
               **self.settings}
        if self.gunicorn_args:
            env["GUNICORN_CMD_ARGS"] = self.gunicorn_args  # overrides gunicorn.conf.py, for trials
        cmd = [str(GUNICORN), "--config", "gunicorn.conf.py"] + ([self.app] if self.app else [])
        log = open(self.workdir / f"{self.name}.log", "wb")
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        while time.monotonic() - started < limit_s:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: {self.name} exited with {self.proc.returncode}; see "
                                 f"{self.workdir / (self.name + '.log')}")
            try:
                status = post(self.port, probe, timeout=1.0)
            except OSError:
                time.sleep(0.005)
                continue
            if status != 200:
                raise SystemExit(f"bench: {self.name} answered {status} to the first request")
            self.first_response_s = time.monotonic() - started
            return
        raise SystemExit(f"bench: {self.name} did not answer within {limit_s} s")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def worker_rss_mb(self) -> list[float]:
        sizes = []
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            sizes.append(round(kb / 1024, 1))
        return sizes

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the master and its workers, those alive and those recycled
        (max_requests): a reaped worker's time moves to the master's cutime/cstime."""
        ticks = 0
        for pid, own_only in [(self.proc.pid, False)] + [(p, True) for p in self.worker_pids()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields 14-17 of /proc/PID/stat: utime, stime, cutime, cstime
            ticks += sum(int(x) for x in fields[11:13 if own_only else 15])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def wrk(port: int, script: Path, connections: int, seconds: int) -> dict:
    threads = min(2, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
           "-s", str(script), f"http://127.0.0.1:{port}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH-JSON ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"bench: wrk failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
    raw = json.loads(line[len("BENCH-JSON "):])
    if raw["non_2xx"] or raw["socket_errors"] or not raw["requests"]:
        raise SystemExit(f"bench: {raw['non_2xx']} non-2xx answers and {raw['socket_errors']} socket "
                         f"errors in {raw['requests']} requests: the figures would mean nothing")
    return {"rps": raw["requests"] / (raw["duration_us"] / 1e6), "p50_ms": raw["p50_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000, "requests": raw["requests"]}


def gunicorn_settings(extra_args: str) -> dict:
    """The settings both servers run with, as gunicorn itself reads them."""
    code = ("import sys, json; from gunicorn.app.wsgiapp import WSGIApplication as A; "
            "sys.argv=['gunicorn','--config','gunicorn.conf.py']+sys.argv[1:]; a=A(); c=a.cfg; "
            "print(json.dumps({k: getattr(c, k) for k in ('worker_class_str','workers','threads',"
            "'keepalive','timeout','graceful_timeout','max_requests','max_requests_jitter','preload_app')}))")
    out = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", code, *extra_args.split()],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "LEGTRIAGE_PORT": "1"})
    return json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-500:]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds: proves the benchmark works")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="whole seconds per wrk run (default 10)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/latest.json")
    parser.add_argument("--gunicorn-args", default="",
                        help="extra gunicorn options for both servers, to try settings "
                             "(e.g. '--worker-class gthread --threads 4 --workers 2')")
    parser.add_argument("--no-postgres", action="store_true",
                        help="leave out the run with records in PostgreSQL")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.duration = 1, 1
    warmup = 1 if args.smoke else 2  # wrk counts whole seconds
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed (bench/run installs it with apt-get)")

    workdir = Path(tempfile.mkdtemp(prefix="legtriage-bench-"))
    mix = bodies()
    script = workdir / "mix.lua"
    script.write_text(lua_script(mix))
    service = Server("service", None, workdir, args.gunicorn_args)
    ceiling = Server("ceiling", "bench.ceiling:app", workdir, args.gunicorn_args)
    records_off = Server("records_off", None, workdir, args.gunicorn_args,
                         {"LEGTRIAGE_RECORDS_ENABLED": "false"})
    servers = [service, records_off, ceiling]
    cluster = None if args.no_postgres else postgres_cluster()
    if cluster is not None:
        servers.insert(2, Server("postgres", None, workdir, args.gunicorn_args,
                                 {"LEGTRIAGE_DATABASE_URL": cluster.new_database()}))
    runs: dict[str, dict[int, list[dict]]] = {s.name: {16: [], 1: []} for s in servers}
    pg_cpu: list[float] = []
    try:
        for server in servers:
            server.start(mix[0])
        for body in mix:  # every body of the mix is a valid request: 200, not an error page
            for server in servers:
                status = post(server.port, body)
                if status != 200:
                    raise SystemExit(f"bench: {server.name} answered {status} to a body of the mix")
        answered = {server.name: 1 + len(mix) for server in servers}  # the probe and the mix
        for server in servers:
            answered[server.name] += wrk(server.port, script, 16, warmup)["requests"]
        for r in range(args.rounds):
            order = servers if r % 2 == 0 else servers[::-1]
            for connections in (16, 1):
                for server in order:
                    cpu = server.cpu_seconds()
                    db_cpu = cluster_cpu_seconds(cluster) if server.name == "postgres" else 0.0
                    result = wrk(server.port, script, connections, args.duration)
                    result["cpu_ms_per_request"] = 1000 * (server.cpu_seconds() - cpu) / result["requests"]
                    if server.name == "postgres":
                        result["db_cpu_ms_per_request"] = (
                            1000 * (cluster_cpu_seconds(cluster) - db_cpu) / result["requests"])
                    runs[server.name][connections].append(result)
                    answered[server.name] += result["requests"]
                    print(f"round {r + 1}/{args.rounds} {server.name:8s} c={connections:<2d} "
                          f"{result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
                          f"p99 {result['p99_ms']:6.2f} ms  worker CPU {result['cpu_ms_per_request']:.3f} ms/req",
                          file=sys.stderr, flush=True)
        rss = {server.name: server.worker_rss_mb() for server in servers}
        recorded = {server.name: count_records(server, cluster) for server in servers
                    if server.name in ("service", "postgres")}
    finally:
        for server in servers:
            server.stop()
        if cluster is not None:
            cluster.remove()

    def median(name: str, connections: int, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[name][connections]), 3)

    figures = {name: {f"c{c}": {k: median(name, c, k) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")}
                      for c in (16, 1)} for name in runs}
    if "postgres" in runs:
        for c in (16, 1):
            figures["postgres"][f"c{c}"]["db_cpu_ms_per_request"] = median("postgres", c, "db_cpu_ms_per_request")
    ratios = [s["rps"] / c["rps"] for s, c in zip(runs["service"][16], runs["ceiling"][16])]
    result = {
        "ratio": round(figures["service"]["c16"]["rps"] / figures["ceiling"]["c16"]["rps"], 3),
        "ratio_per_round": [round(x, 3) for x in ratios],
        "service": {**figures["service"], "worker_rss_mb": rss["service"],
                    "first_response_s": round(service.first_response_s, 3)},
        "ceiling": {**figures["ceiling"], "worker_rss_mb": rss["ceiling"],
                    "first_response_s": round(ceiling.first_response_s, 3)},
        **{s.name: {**figures[s.name], "worker_rss_mb": rss[s.name],
                    "first_response_s": round(s.first_response_s, 3)}
           for s in servers if s.name in ("records_off", "postgres")},
        "records": record_costs(figures),
        "records_written": recorded,
        "answered_200": {name: answered[name] for name in recorded},
        "runs": runs,
        "settings": {"smoke": args.smoke, "rounds": args.rounds, "duration_s": args.duration,
                     "wrk_threads": "min(2, connections)", "mix": {**MIX, f"{WRAPPED} (in Parameters)": 1},
                     "gunicorn": gunicorn_settings(args.gunicorn_args),
                     "gunicorn_args": args.gunicorn_args},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                 text=True).stdout.strip() or None,
        "targets": TARGETS,
    }
    s = result["service"]
    result["met"] = {
        "ratio": result["ratio"] >= TARGETS["ratio"],
        "p99_ms_at_1": s["c1"]["p99_ms"] <= TARGETS["p99_ms_at_1"],
        "worker_rss_mb": bool(s["worker_rss_mb"]) and max(s["worker_rss_mb"]) <= TARGETS["worker_rss_mb"],
        "first_response_s": s["first_response_s"] <= TARGETS["first_response_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)
    print(report(result))
    print(f"\nwritten to {args.out}")
    return 0


def postgres_cluster():
    """A throwaway PostgreSQL cluster (tests/pg.py) with fsync on, or None where there is none."""
    sys.path.insert(0, str(ROOT))
    from tests.pg import Cluster, bin_dir
    if bin_dir() is None:
        print("bench: PostgreSQL is not installed: no run with records in PostgreSQL", file=sys.stderr)
        return None
    return Cluster(fsync=True).start()


def cluster_cpu_seconds(cluster) -> float:
    """CPU time of the PostgreSQL postmaster and its backends (those alive and those exited)."""
    pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    ticks = 0
    for p, own_only in [(pid, False)] + [(int(x), True) for x in out.split()]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(x) for x in fields[11:13 if own_only else 15])
    return ticks / os.sysconf("SC_CLK_TCK")


def count_records(server: "Server", cluster) -> int:
    """Audit records the server wrote (every 200 of the run leaves one)."""
    sys.path.insert(0, str(ROOT))
    from service.store import SqlStore
    url = server.settings.get("LEGTRIAGE_DATABASE_URL") or \
        f"sqlite:///{server.workdir / f'{server.name}-data' / 'legtriage.sqlite3'}"
    store = SqlStore(url)
    try:
        return store.count_audits()
    finally:
        store.close()


def record_costs(figures: dict) -> dict:
    """What recording adds per call: recording on minus recording off, per store."""
    off = figures["records_off"]
    out = {}
    for name, label in (("service", "sqlite"), ("postgres", "postgresql")):
        if name in figures:
            on = figures[name]
            out[label] = {
                "worker_cpu_ms_per_call": round(on["c16"]["cpu_ms_per_request"] - off["c16"]["cpu_ms_per_request"], 3),
                "p50_ms_at_1": round(on["c1"]["p50_ms"] - off["c1"]["p50_ms"], 3),
                "rps_at_16_vs_off": round(on["c16"]["rps"] / off["c16"]["rps"], 3),
            }
            if "db_cpu_ms_per_request" in on["c16"]:
                out[label]["db_server_cpu_ms_per_call"] = on["c16"]["db_cpu_ms_per_request"]
    return out


def report(r: dict) -> str:
    s, c = r["service"], r["ceiling"]
    mark = {True: "met", False: "MISSED"}
    lines = [
        f"legtriage $triage benchmark ({'smoke, ' if r['settings']['smoke'] else ''}"
        f"{r['settings']['rounds']} round(s) x {r['settings']['duration_s']:g} s, "
        f"gunicorn {r['settings']['gunicorn'].get('worker_class_str')} x "
        f"{r['settings']['gunicorn'].get('workers')}, {r['machine']['cpus']} CPUs; medians)",
        f"{'':24s}{'$triage':>10s}{'ceiling':>10s}",
    ]
    rows = [("req/s, 16 connections", "c16", "rps", ".0f"), ("p50 ms, 16 connections", "c16", "p50_ms", ".2f"),
            ("p99 ms, 16 connections", "c16", "p99_ms", ".2f"), ("req/s, 1 connection", "c1", "rps", ".0f"),
            ("p50 ms, 1 connection", "c1", "p50_ms", ".2f"), ("p99 ms, 1 connection", "c1", "p99_ms", ".2f"),
            ("worker CPU ms/request", "c16", "cpu_ms_per_request", ".3f")]
    for label, conn, key, fmt in rows:
        lines.append(f"{label:24s}{s[conn][key]:>10{fmt}}{c[conn][key]:>10{fmt}}")
    lines += [
        f"{'worker RSS MB (max)':24s}{max(s['worker_rss_mb'] or [0]):>10.1f}{max(c['worker_rss_mb'] or [0]):>10.1f}",
        f"{'first response s':24s}{s['first_response_s']:>10.3f}{c['first_response_s']:>10.3f}",
        "",
        f"ratio $triage/ceiling (req/s at 16): {r['ratio']:.3f} per round {r['ratio_per_round']} "
        f"(target >= {TARGETS['ratio']}: {mark[r['met']['ratio']]})",
        f"p99 at 1 connection: {s['c1']['p99_ms']:.2f} ms (target <= {TARGETS['p99_ms_at_1']}: "
        f"{mark[r['met']['p99_ms_at_1']]})",
        f"worker RSS: {s['worker_rss_mb']} MB (target <= {TARGETS['worker_rss_mb']:g}: "
        f"{mark[r['met']['worker_rss_mb']]})",
        f"first response after start: {s['first_response_s']:.3f} s (target <= "
        f"{TARGETS['first_response_s']}: {mark[r['met']['first_response_s']]})",
        "",
        "Records ($triage above records every call in SQLite, the default):",
        f"{'':24s}" + "".join(f"{h:>12s}" for h in ("SQLite", "PostgreSQL", "off", "ceiling")),
    ]
    cols = [r.get("service"), r.get("postgres"), r.get("records_off"), c]
    for label, conn, key, fmt in rows:
        lines.append(f"{label:24s}" + "".join(
            f"{x[conn][key]:>12{fmt}}" if x else f"{'–':>12s}" for x in cols))
    if r.get("postgres"):
        lines.append(f"{'PostgreSQL CPU ms/call':24s}{'':12s}{r['postgres']['c16']['db_cpu_ms_per_request']:>12.3f}")
    for store, cost in r["records"].items():
        extra = (f", PostgreSQL server CPU {cost['db_server_cpu_ms_per_call']:.3f} ms"
                 if "db_server_cpu_ms_per_call" in cost else "")
        lines.append(f"a record in {store} costs {cost['worker_cpu_ms_per_call']:+.3f} ms of worker CPU per call"
                     f"{extra}, {cost['p50_ms_at_1']:+.2f} ms p50 at 1 connection; req/s at 16 = "
                     f"{cost['rps_at_16_vs_off']:.3f} x recording off")
    # wrk stops each run with requests in flight, which the server still answers (and records) but
    # wrk does not count: up to 16 per run more records than counted 200s.
    lines.append(f"records written: {r['records_written']}; 200s wrk counted: {r['answered_200']} "
                 f"(wrk leaves up to 16 in flight per run uncounted)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
