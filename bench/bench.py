"""Benchmark $triage and the CDS Hooks call against the ceiling; bench/run is the command.

Starts two gunicorn servers on 127.0.0.1 with the service's own gunicorn.conf.py: the real service
and bench/ceiling.py (same Flask, same body parsed, a fixed Bundle returned). wrk drives both with
the same mix of the example QuestionnaireResponses, in rounds that alternate between the two so
that a noisy moment of the machine hits both alike. Reports requests/s, p50 and p99 latency at 16
connections and at 1, the ratio $triage/ceiling, worker RSS and the time from start to the first
$triage response; prints a table and writes the same as JSON. With --compare CHECKOUT one more
server, the service of another checkout (an older commit), runs in the same rounds, so a change is
measured side by side with what it replaces. Servers start through tests/support/servers.py, the launcher the
tests and the load test use. See docs/performance.md.

The CDS Hooks patient-view call is measured on the same service server, in the same rounds: the same
mix of QuestionnaireResponses, each as the legNumbnessQR prefetch (a searchset Bundle) of a hook
call, authored an hour before the run so that each gets its card. Its worker CPU per call is the
service's CPU time over the run divided by the calls.

The service runs with recording on (the default: one audit record per call, SQLite in a temp
folder), and beside it, in the same interleaved rounds, with recording off
(LEGTRIAGE_RECORDS_ENABLED=false) and, where PostgreSQL is installed, with its records in a
throwaway PostgreSQL cluster (tests/support/pg.py, fsync on): the differences of their $triage figures are
what a record costs per call.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: tests.support.servers is the one gunicorn launcher

from tests.support import servers  # noqa: E402

EXAMPLES = ROOT / "examples"
TRIAGE = "/fhir/QuestionnaireResponse/$triage"
HOOK = "/cds-services/leg-numbness-triage"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
# Issue 21's targets: the ratio with records on (SQLite, the default) and with recording off, p99 at one
# connection, worker RSS, first response, and the CDS hook call's worker CPU per call over $triage's,
# both on the server with recording off (at most 1.25: within 25 %).
TARGETS = {"ratio": 0.40, "ratio_records_off": 0.55, "p99_ms_at_1": 2.5, "worker_rss_mb": 60.0,
           "first_response_s": 1.5, "cds_cpu_vs_triage": 1.25}

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
wrk.headers["Content-Type"] = "%(content_type)s"
wrk.headers["Accept"] = "%(content_type)s"

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


def hook_bodies() -> list[bytes]:
    """The same mix as hook calls (patient-view), each QuestionnaireResponse as a fresh prefetch."""
    from datetime import datetime, timedelta, timezone

    authored = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    names = [name for name, weight in MIX.items() for _ in range(weight)] + [WRAPPED]
    for i, name in enumerate(names):
        qr = json.loads((EXAMPLES / f"{name}.json").read_text())
        qr["authored"] = authored
        patient = qr["subject"]["reference"].split("/")[1]
        call = {"hook": "patient-view", "hookInstance": f"00000000-0000-4000-8000-{i:012d}",
                "context": {"userId": "Practitioner/bench", "patientId": patient},
                "prefetch": {"patient": {"resourceType": "Patient", "id": patient},
                             "legNumbnessQR": {"resourceType": "Bundle", "type": "searchset", "total": 1,
                                               "entry": [{"resource": qr, "search": {"mode": "match"}}]}}}
        out.append(json.dumps(call, indent=2).encode())
    return out


def hook_card_count(port: int, body: bytes) -> tuple[int, int]:
    """(status, number of cards) of one hook call."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        conn.request("POST", HOOK, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = response.read()
        return response.status, len(json.loads(answer).get("cards", [])) if response.status == 200 else 0
    finally:
        conn.close()


def lua_script(bodies: list[bytes], path: str = TRIAGE, content_type: str = "application/fhir+json") -> str:
    quoted = []
    for body in bodies:
        level = "=" * 3
        while f"]{level}]".encode() in body:
            level += "="
        quoted.append(f"[{level}[{body.decode()}]{level}]")
    return LUA % {"bodies": ",\n".join(quoted), "path": path, "content_type": content_type}


@dataclass
class Server:
    """One gunicorn (the service, the ceiling, or the service of another checkout to compare with)
    started with its checkout's gunicorn.conf.py by the launcher the tests use."""

    name: str
    app: str | None  # None: the config's own wsgi_app, the real service
    workdir: Path
    gunicorn_args: str
    root: Path = ROOT
    settings: dict = field(default_factory=dict)  # LEGTRIAGE_* for this server, over the environment's
    running: servers.Server | None = None
    first_response_s: float | None = None

    @property
    def port(self) -> int:
        return self.running.port

    def start(self, probe: bytes, limit_s: float = 30.0) -> None:
        # The service's settings as this environment gives them (LEGTRIAGE_WORKERS for a trial),
        # GUNICORN_CMD_ARGS over gunicorn.conf.py for --gunicorn-args.
        env = {k: v for k, v in os.environ.items() if k.startswith("LEGTRIAGE_")}
        # Its own SQLite folder, known here so that the records it wrote can be counted at the end.
        env["LEGTRIAGE_DATA_DIR"] = str(self.data_dir)
        env.update(self.settings)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if self.gunicorn_args:
            env["GUNICORN_CMD_ARGS"] = self.gunicorn_args

        def first_triage(server: servers.Server) -> bool:
            status = server.request("POST", TRIAGE, probe, FHIR_JSON, timeout=1.0)
            if status != 200:
                raise SystemExit(f"bench: {self.name} answered {status} to the first request")
            return True

        try:
            self.running = servers.start(self.workdir / f"{self.name}.log", env, workers=None,
                                         app=self.app, root=self.root, ready=first_triage,
                                         timeout=limit_s, poll=0.005)
        except RuntimeError:
            raise SystemExit(f"bench: {self.name} did not answer within {limit_s} s; see "
                             f"{self.workdir / (self.name + '.log')}") from None
        self.first_response_s = time.monotonic() - self.running.started

    @property
    def data_dir(self) -> Path:
        return self.workdir / f"{self.name}-data"

    def post(self, body: bytes) -> int:
        return self.running.request("POST", TRIAGE, body, FHIR_JSON)

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.running.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def worker_rss_mb(self) -> list[float]:
        return [m["rss"] for m in self.worker_memory_mb()]

    def worker_memory_mb(self) -> list[dict[str, float]]:
        """Each worker's resident set (VmRSS, what the target judges) and its parts, read together:
        anonymous memory (RssAnon: the worker's heap and what it shares copy-on-write with the master)
        and file pages (RssFile: mostly shared libraries' code, shared with every process that maps
        them). How many file pages count depends on how the kernel holds the files in its page cache,
        not on the service: the same library file just installed had ~3 MB more mapped
        (docs/performance.md, "What the RSS figure counts")."""
        found = []
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            kb = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines()
                  if line.startswith(("VmRSS:", "RssAnon:", "RssFile:"))}
            found.append({"rss": round(kb["VmRSS"] / 1024, 1), "anon": round(kb["RssAnon"] / 1024, 1),
                          "file": round(kb["RssFile"] / 1024, 1)})
        return found

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the master and its workers, those alive and those recycled
        (max_requests): a reaped worker's time moves to the master's cutime/cstime."""
        ticks = 0
        master = self.running.proc.pid
        for pid, own_only in [(master, False)] + [(p, True) for p in self.worker_pids()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields 14-17 of /proc/PID/stat: utime, stime, cutime, cstime
            ticks += sum(int(x) for x in fields[11:13 if own_only else 15])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.running:
            self.running.stop()


def wrk(port: int, script: Path, connections: int, seconds: int, refusals_counted: bool = False) -> dict:
    """One wrk run. Any non-2xx answer or socket error stops the benchmark, except that with
    `refusals_counted` (the --compare checkout: an older build may refuse calls under a load the
    newer one takes) non-2xx answers are counted, and requests/s counts only the 2xx answers."""
    threads = min(2, connections)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
           "-s", str(script), f"http://127.0.0.1:{port}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH-JSON ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"bench: wrk failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
    raw = json.loads(line[len("BENCH-JSON "):])
    if (raw["non_2xx"] and not refusals_counted) or raw["socket_errors"] or not raw["requests"]:
        raise SystemExit(f"bench: {raw['non_2xx']} non-2xx answers and {raw['socket_errors']} socket "
                         f"errors in {raw['requests']} requests: the figures would mean nothing")
    return {"rps": (raw["requests"] - raw["non_2xx"]) / (raw["duration_us"] / 1e6), "p50_ms": raw["p50_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000, "requests": raw["requests"],
            "non_2xx": raw["non_2xx"]}


def gunicorn_settings(extra_args: str) -> dict:
    """The settings both servers run with, as gunicorn itself reads them."""
    code = ("import sys, json; from gunicorn.app.wsgiapp import WSGIApplication as A; "
            "sys.argv=['gunicorn','--config','gunicorn.conf.py']+sys.argv[1:]; a=A(); c=a.cfg; "
            "print(json.dumps({k: getattr(c, k) for k in ('worker_class_str','workers','threads',"
            "'keepalive','timeout','graceful_timeout','max_requests','max_requests_jitter','preload_app')}))")
    out = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", code, *extra_args.split()],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "LEGTRIAGE_PORT": "1"})
    return json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-500:]}


def commit(root: Path) -> str | None:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    return out.stdout.strip() or None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds: proves the benchmark works")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="whole seconds per wrk run (default 10)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/latest.json")
    parser.add_argument("--gunicorn-args", default="",
                        help="extra gunicorn options for both servers, to try settings "
                             "(e.g. '--worker-class gthread --threads 4 --workers 2')")
    parser.add_argument("--compare", type=Path, metavar="CHECKOUT",
                        help="also run the service of another checkout (e.g. a `git worktree` of an "
                             "older commit, with its own .venv or a link to this one) in the same "
                             "interleaved rounds, against the same ceiling")
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
    hooks = hook_bodies()
    hook_script = workdir / "hooks.lua"
    hook_script.write_text(lua_script(hooks, HOOK, "application/json"))
    service = Server("service", None, workdir, args.gunicorn_args)
    ceiling = Server("ceiling", "bench.ceiling:app", workdir, args.gunicorn_args)
    records_off = Server("records_off", None, workdir, args.gunicorn_args,
                         settings={"LEGTRIAGE_RECORDS_ENABLED": "false"})
    every = [service, ceiling, records_off]
    cluster = None if args.no_postgres else postgres_cluster()
    try:
        if cluster is not None:
            every.append(Server("postgres", None, workdir, args.gunicorn_args,
                                settings={"LEGTRIAGE_DATABASE_URL": cluster.new_database()}))
        if args.compare:
            every.append(Server("compared", None, workdir, args.gunicorn_args, root=args.compare.resolve()))
        # (name in the results, server, wrk script): the hook call runs on the service's own server
        targets = [(s.name, s, script) for s in every]
        targets.insert(1, ("cds-hook", service, hook_script))
        # and on the server with recording off: issue 21 holds the hook to $triage's cost there
        targets.append(("cds-hook-off", records_off, hook_script))
        runs: dict[str, dict[int, list[dict]]] = {name: {16: [], 1: []} for name, _, _ in targets}
        # 200s per server, to hold against the records it wrote: the probe, the mix checks, then wrk's
        answered = {server.name: 1 + len(mix) for server in every}
        answered[service.name] += len(hooks)
        try:
            for server in every:
                server.start(mix[0])
            for body in mix:  # every body of the mix is a valid request: 200, not an error page
                for server in every:
                    status = server.post(body)
                    if status != 200:
                        raise SystemExit(f"bench: {server.name} answered {status} to a body of the mix")
            for body in hooks:  # every hook call of the mix gets its one card
                status, cards = hook_card_count(service.port, body)
                if status != 200 or cards != 1:
                    raise SystemExit(f"bench: the service answered {status} with {cards} cards to a hook "
                                     "call of the mix")
            for _, server, wrk_script in targets:
                answered[server.name] += wrk(server.port, wrk_script, 16, warmup,
                                             server.name == "compared")["requests"]
            for r in range(args.rounds):
                order = targets[r % len(targets):] + targets[:r % len(targets)]  # each goes first in turn
                for connections in (16, 1):
                    for name, server, wrk_script in order:
                        cpu = server.cpu_seconds()
                        db_cpu = cluster_cpu_seconds(cluster) if name == "postgres" else 0.0
                        result = wrk(server.port, wrk_script, connections, args.duration,
                                     name == "compared")
                        result["cpu_ms_per_request"] = 1000 * (server.cpu_seconds() - cpu) / result["requests"]
                        if name == "postgres":
                            result["db_cpu_ms_per_request"] = (
                                1000 * (cluster_cpu_seconds(cluster) - db_cpu) / result["requests"])
                        runs[name][connections].append(result)
                        answered[server.name] += result["requests"]
                        print(f"round {r + 1}/{args.rounds} {name:11s} c={connections:<2d} "
                              f"{result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
                              f"p99 {result['p99_ms']:6.2f} ms  worker CPU {result['cpu_ms_per_request']:.3f} ms/req",
                              file=sys.stderr, flush=True)
            memory = {server.name: server.worker_memory_mb() for server in every}
        finally:
            for server in every:
                server.stop()
        recorded = {server.name: count_records(server) for server in every
                    if server.name in ("service", "postgres")}
    finally:
        if cluster is not None:
            cluster.remove()

    def median(name: str, connections: int, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[name][connections]), 3)

    figures = {name: {f"c{c}": {k: median(name, c, k) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")}
                      for c in (16, 1)} for name in runs}
    if "postgres" in runs:
        for c in (16, 1):
            figures["postgres"][f"c{c}"]["db_cpu_ms_per_request"] = median("postgres", c, "db_cpu_ms_per_request")

    def ratio(name: str) -> float:  # the share of the ceiling's req/s at 16 connections, medians
        return round(figures[name]["c16"]["rps"] / figures["ceiling"]["c16"]["rps"], 3)

    def ratios(name: str) -> list[float]:
        return [round(s["rps"] / c["rps"], 3) for s, c in zip(runs[name][16], runs["ceiling"][16])]

    result = {
        "ratio": ratio("service"),
        "ratio_per_round": ratios("service"),
        "ratio_records_off": ratio("records_off"),
        "ratio_records_off_per_round": ratios("records_off"),
        "cds_cpu_vs_triage": round(figures["cds-hook-off"]["c16"]["cpu_ms_per_request"]
                                   / figures["records_off"]["c16"]["cpu_ms_per_request"], 3),
        "cds_cpu_vs_triage_records_on": round(figures["cds-hook"]["c16"]["cpu_ms_per_request"]
                                              / figures["service"]["c16"]["cpu_ms_per_request"], 3),
        **{server.name: {**figures[server.name],
                         "worker_rss_mb": [m["rss"] for m in memory[server.name]],
                         "worker_rss_anon_mb": [m["anon"] for m in memory[server.name]],
                         "worker_rss_file_mb": [m["file"] for m in memory[server.name]],
                         "first_response_s": round(server.first_response_s, 3)} for server in every},
        "cds-hook": figures["cds-hook"],
        "cds-hook-off": figures["cds-hook-off"],
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
        "commit": commit(ROOT),
        "targets": TARGETS,
    }
    if args.compare:
        result["compared"].update(
            root=str(args.compare.resolve()), commit=commit(args.compare), ratio_per_round=ratios("compared"),
            ratio=ratio("compared"),
            non_2xx=sum(r["non_2xx"] for c in (16, 1) for r in runs["compared"][c]))
    s = result["service"]
    result["met"] = {
        "ratio": result["ratio"] >= TARGETS["ratio"],
        "ratio_records_off": result["ratio_records_off"] >= TARGETS["ratio_records_off"],
        "p99_ms_at_1": s["c1"]["p99_ms"] <= TARGETS["p99_ms_at_1"],
        "worker_rss_mb": bool(s["worker_rss_mb"]) and max(s["worker_rss_mb"]) <= TARGETS["worker_rss_mb"],
        "first_response_s": s["first_response_s"] <= TARGETS["first_response_s"],
        "cds_cpu_vs_triage": result["cds_cpu_vs_triage"] <= TARGETS["cds_cpu_vs_triage"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)
    print(report(result))
    print(f"\nwritten to {args.out}")
    return 0


def postgres_cluster():
    """A throwaway PostgreSQL cluster (tests/support/pg.py) with fsync on, or None where there is none."""
    from tests.support.pg import Cluster, bin_dir

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


def count_records(server: Server) -> int:
    """Audit records the server wrote (every 200, of $triage and of a hook call, leaves one)."""
    from service.records.store import SqlStore

    url = server.settings.get("LEGTRIAGE_DATABASE_URL") or \
        f"sqlite:///{server.data_dir / 'legtriage.sqlite3'}"
    store = SqlStore(url)
    try:
        return store.count_audits()
    finally:
        store.close()


def record_costs(figures: dict) -> dict:
    """What recording adds per $triage call: recording on minus recording off, per store."""
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
    s, c, h, o = r["service"], r["ceiling"], r["cds-hook"], r.get("compared")
    mark = {True: "met", False: "MISSED"}
    lines = [
        f"legtriage $triage benchmark ({'smoke, ' if r['settings']['smoke'] else ''}"
        f"{r['settings']['rounds']} round(s) x {r['settings']['duration_s']:g} s, "
        f"gunicorn {r['settings']['gunicorn'].get('worker_class_str')} x "
        f"{r['settings']['gunicorn'].get('workers')}, {r['machine']['cpus']} CPUs; medians)",
        f"{'':24s}{'$triage':>10s}{'ceiling':>10s}{'CDS hook':>10s}" + (f"{'compared':>10s}" if o else ""),
    ]
    rows = [("req/s, 16 connections", "c16", "rps", ".0f"), ("p50 ms, 16 connections", "c16", "p50_ms", ".2f"),
            ("p99 ms, 16 connections", "c16", "p99_ms", ".2f"), ("req/s, 1 connection", "c1", "rps", ".0f"),
            ("p50 ms, 1 connection", "c1", "p50_ms", ".2f"), ("p99 ms, 1 connection", "c1", "p99_ms", ".2f"),
            ("worker CPU ms/request", "c16", "cpu_ms_per_request", ".3f")]
    for label, conn, key, fmt in rows:
        lines.append(f"{label:24s}{s[conn][key]:>10{fmt}}{c[conn][key]:>10{fmt}}{h[conn][key]:>10{fmt}}"
                     + (f"{o[conn][key]:>10{fmt}}" if o else ""))
    servers_ = [s, c] + ([o] if o else [])
    lines += [
        f"{'worker RSS MB (max)':24s}" + "".join(f"{max(x['worker_rss_mb'] or [0]):>10.1f}" for x in servers_),
        f"{'first response s':24s}" + "".join(f"{x['first_response_s']:>10.3f}" for x in servers_),
        "",
        f"ratio $triage/ceiling (req/s at 16), records on: {r['ratio']:.3f} per round {r['ratio_per_round']} "
        f"(target >= {TARGETS['ratio']}: {mark[r['met']['ratio']]})",
        f"ratio with recording off: {r['ratio_records_off']:.3f} per round {r['ratio_records_off_per_round']} "
        f"(target >= {TARGETS['ratio_records_off']}: {mark[r['met']['ratio_records_off']]})",
        f"p99 at 1 connection: {s['c1']['p99_ms']:.2f} ms (target <= {TARGETS['p99_ms_at_1']}: "
        f"{mark[r['met']['p99_ms_at_1']]})",
        f"worker RSS: {s['worker_rss_mb']} MB (target <= {TARGETS['worker_rss_mb']:g}: "
        f"{mark[r['met']['worker_rss_mb']]}); of which anonymous {s['worker_rss_anon_mb']} MB, "
        f"file pages (shared libraries; how many depends on the page cache) {s['worker_rss_file_mb']} MB",
        f"first response after start: {s['first_response_s']:.3f} s (target <= "
        f"{TARGETS['first_response_s']}: {mark[r['met']['first_response_s']]})",
        f"CDS hook call with prefetch, recording off: worker CPU {r['cds-hook-off']['c16']['cpu_ms_per_request']:.3f} "
        f"ms per call at 16 connections, {r['cds_cpu_vs_triage']:.3f} x $triage's (target <= "
        f"{TARGETS['cds_cpu_vs_triage']:g}: {mark[r['met']['cds_cpu_vs_triage']]}); with records "
        f"{h['c16']['cpu_ms_per_request']:.3f} ms, {r['cds_cpu_vs_triage_records_on']:.3f} x $triage's; "
        f"p99 at 1 connection {h['c1']['p99_ms']:.2f} ms",
    ]
    if o:
        lines.append(f"compared ({o['root']}, {o['commit']}): ratio {o['ratio']:.3f} per round "
                     f"{o['ratio_per_round']}, in the same rounds; its non-2xx answers (not counted in its req/s): "
                     f"{o['non_2xx']}")
    lines += ["", "Records ($triage above records every call in SQLite, the default):",
              f"{'':24s}" + "".join(f"{h:>12s}" for h in ("SQLite", "PostgreSQL", "off", "ceiling"))]
    cols = [s, r.get("postgres"), r["records_off"], c]
    for label, conn, key, fmt in rows:
        lines.append(f"{label:24s}" + "".join(
            f"{x[conn][key]:>12{fmt}}" if x else f"{'-':>12s}" for x in cols))
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
