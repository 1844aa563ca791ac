"""Bounded load run against gunicorn on 127.0.0.1 (run it through scripts/load-test).

Two wrk processes run side by side for the same time: one posts good QuestionnaireResponses (the
examples, in turn), the other interleaves malformed and invalid requests. Passes when every good
request got a 2xx, no request got a 5xx or a socket error, and each worker's resident memory at the
end is within the allowed growth of what it was after a warm-up. Worker recycling (max_requests) is
off for the run, so the same processes are measured before and after. Traffic goes to 127.0.0.1 only
and stops by itself after --duration seconds.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script: tests.support.servers is the one gunicorn launcher

from tests.support import servers  # noqa: E402
TRIAGE = "/fhir/QuestionnaireResponse/$triage"
FHIR_JSON = "application/fhir+json"

# wrk's Lua side: each thread counts statuses; done() prints one JSON line for this script to read.
LUA_COMMON = r"""
counts = {}  -- a global: done() reads each thread's copy with thread:get
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("counts") or {}) do total[status] = (total[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(total) do table.insert(parts, string.format('"%d": %d', status, n)) end
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"statuses": {%s}, "requests": %d, "duration_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, ' ..
    '"latency_ms": {"p50": %.2f, "p99": %.2f, "max": %.2f}}\n',
    table.concat(parts, ", "), summary.requests, summary.duration, e.connect, e.read, e.write,
    e.timeout, e.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
"""


def lua_string(data: bytes) -> str:
    """Any bytes as a Lua string literal (decimal escapes for everything but plain ASCII)."""
    out = []
    for b in data:
        if 32 <= b < 127 and b not in (34, 92):
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return '"' + "".join(out) + '"'


def lua_requests(reqs: list[tuple[str, str, dict[str, str], bytes]]) -> str:
    """A wrk script that sends the given (method, path, headers, body) requests in turn."""
    lines = ["local reqs = {"]
    for method, path, headers, body in reqs:
        hdrs = ", ".join(f"[{lua_string(k.encode())}] = {lua_string(v.encode())}"
                         for k, v in headers.items())
        lines.append(f"  wrk.format({lua_string(method.encode())}, {lua_string(path.encode())}, "
                     f"{{{hdrs}}}, {lua_string(body) if body else 'nil'}),")
    lines.append("}")
    lines.append("local i = 0")
    lines.append("function request() i = i % #reqs + 1; return reqs[i] end")
    return "\n".join(lines) + LUA_COMMON


def good_requests() -> list[tuple[str, str, dict[str, str], bytes]]:
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    return [("POST", TRIAGE, headers, path.read_bytes())
            for path in sorted((ROOT / "examples").glob("qr-*.json"))]


def bad_requests() -> list[tuple[str, str, dict[str, str], bytes]]:
    good = json.loads((ROOT / "examples" / "qr-emergency-stroke.json").read_text())
    js = {"Content-Type": FHIR_JSON}

    def body(**changes) -> bytes:
        return json.dumps({**good, **changes}).encode()

    wrong_code = json.loads(json.dumps(good))
    wrong_code["item"][0]["item"][0]["answer"] = [{"valueCoding": {"system": "urn:x", "code": "x"}}]
    deep = b'{"resourceType": "QuestionnaireResponse", "item": ' + b'[{"item": ' * 200 + b"[]" + \
        b"}]" * 200 + b"}"
    return [
        ("POST", TRIAGE, js, b'{"resourceType": "QuestionnaireResponse",'),  # 400 malformed
        ("POST", TRIAGE, js, b""),  # 400 empty
        ("POST", TRIAGE, {"Content-Type": "text/plain"}, body()),  # 415
        ("POST", TRIAGE, {**js, "Accept": "application/fhir+xml"}, body()),  # 406
        ("POST", TRIAGE, js, b"[" * 5000 + b"]" * 5000),  # 400 too deep
        ("POST", TRIAGE, js, deep),  # 422 too deep
        ("POST", TRIAGE, js, body(resourceType="Patient")),  # 422
        ("POST", TRIAGE, js, body(subject=None)),  # 422
        ("POST", TRIAGE, js, body(status="done")),  # 422
        ("POST", TRIAGE, js, body(authored="yesterday")),  # 422
        ("POST", TRIAGE, js, json.dumps(wrong_code).encode()),  # 422
        ("POST", TRIAGE, js, body(id="x" * 200_000)),  # 422, a big body inside the limit
        ("POST", TRIAGE, js, body().replace(b"Patient/", b"Patient/\xff")),  # 400 UTF-8
        ("POST", TRIAGE + "?rules-version=9.9.9", js, body()),  # 422
        ("GET", TRIAGE, {}, b""),  # 405
        ("GET", "/fhir/Patient/1", {}, b""),  # 404
    ]


def worker_rss(master: int) -> dict[int, int]:
    return {c.pid: c.memory_info().rss for c in psutil.Process(master).children()}


def run_wrk(wrk: str, script: Path, url: str, seconds: int, connections: int) -> subprocess.Popen:
    return subprocess.Popen([wrk, "-t", "1", "-c", str(connections), "-d", f"{seconds}s",
                             "--timeout", "10s", "-s", str(script), url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=600)
    match = re.search(r"^WRK_RESULT (.*)$", out, re.MULTILINE)
    if proc.returncode != 0 or not match:
        raise SystemExit(f"wrk failed:\n{out}")
    result = json.loads(match.group(1))
    result["statuses"] = {int(k): v for k, v in result["statuses"].items()}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds of load (default 60)")
    parser.add_argument("--short", action="store_true", help="10 s of load, for CI")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--good-connections", type=int, default=8)
    parser.add_argument("--bad-connections", type=int, default=4)
    parser.add_argument("--max-rss-growth", type=float, default=0.10,
                        help="allowed growth of each worker's RSS (default 0.10 = 10%%)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    duration = 10 if args.short else args.duration
    warmup = 3 if args.short else 10
    if not 1 <= duration <= 600:
        parser.error("--duration must be 1..600 seconds")
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("wrk is not installed (scripts/load-test installs it with apt-get)")

    work = Path(tempfile.mkdtemp(prefix="legtriage-load-"))
    good_lua, bad_lua = work / "good.lua", work / "bad.lua"
    good_lua.write_text(lua_requests(good_requests()))
    bad_lua.write_text(lua_requests(bad_requests()))

    log_path = work / "gunicorn.log"
    # No worker recycling during the run: memory is compared on the same processes.
    try:
        server = servers.start(log_path, workers=args.workers, args=("--max-requests", "0"))
    except RuntimeError as err:
        raise SystemExit(f"load-test: {err}") from None
    try:
        url = server.base + TRIAGE
        print(f"load-test: gunicorn {args.workers} workers on {server.base}; warm-up {warmup} s", flush=True)
        for proc in [run_wrk(wrk, good_lua, url, warmup, args.good_connections),
                     run_wrk(wrk, bad_lua, url, warmup, args.bad_connections)]:
            wrk_result(proc)
        rss_before = worker_rss(server.proc.pid)
        print(f"load-test: {duration} s of good and bad requests side by side", flush=True)
        good_proc = run_wrk(wrk, good_lua, url, duration, args.good_connections)
        bad_proc = run_wrk(wrk, bad_lua, url, duration, args.bad_connections)
        good, bad = wrk_result(good_proc), wrk_result(bad_proc)
        rss_after = worker_rss(server.proc.pid)
    finally:
        server.stop()
    log_text = log_path.read_text(errors="replace")

    problems = []
    good_non_2xx = sum(n for s, n in good["statuses"].items() if not 200 <= s < 300)
    if good_non_2xx:
        problems.append(f"{good_non_2xx} good requests got a non-2xx: {good['statuses']}")
    for name, result in (("good", good), ("bad", bad)):
        socket_errors = {k: v for k, v in result["errors"].items() if k != "status" and v}
        if socket_errors:
            problems.append(f"{name} requests had socket errors: {socket_errors}")
        if any(s >= 500 for s in result["statuses"]):
            problems.append(f"{name} requests got a 5xx: {result['statuses']}")
    if any(not 400 <= s < 500 for s in bad["statuses"]):
        problems.append(f"bad requests got something else than a 4xx: {bad['statuses']}")
    if good["requests"] == 0 or bad["requests"] == 0:
        problems.append("no requests were made")
    if set(rss_before) != set(rss_after):
        problems.append(f"workers changed during the run: {sorted(rss_before)} -> {sorted(rss_after)}")
    growth = {pid: (rss_after[pid] - rss_before[pid]) / rss_before[pid]
              for pid in rss_before if pid in rss_after}
    for pid, g in growth.items():
        if g > args.max_rss_growth:
            problems.append(f"worker {pid} RSS grew {g:.1%} (limit {args.max_rss_growth:.0%})")
    if '"level": "error"' in log_text or "Traceback" in log_text:
        problems.append("the server logged errors: see " + str(log_path))

    report = {
        "duration_s": duration, "workers": args.workers,
        "good": {**good, "rps": round(good["requests"] / (good["duration_us"] / 1e6), 1)},
        "bad": {**bad, "rps": round(bad["requests"] / (bad["duration_us"] / 1e6), 1)},
        "rss_mib_before": {pid: round(v / 2**20, 1) for pid, v in rss_before.items()},
        "rss_mib_after": {pid: round(v / 2**20, 1) for pid, v in rss_after.items()},
        "rss_growth": {pid: round(g, 4) for pid, g in growth.items()},
        "problems": problems, "ok": not problems,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(f"good: {report['good']['requests']} requests, {report['good']['rps']}/s, statuses "
          f"{good['statuses']}, p50 {good['latency_ms']['p50']} ms, p99 {good['latency_ms']['p99']} ms")
    print(f"bad:  {report['bad']['requests']} requests, {report['bad']['rps']}/s, statuses "
          f"{bad['statuses']}")
    for pid in rss_before:
        print(f"worker {pid}: RSS {report['rss_mib_before'][pid]} MiB -> "
              f"{report['rss_mib_after'].get(pid)} MiB ({growth.get(pid, 0):+.1%})")
    if problems:
        print("load-test FAILED:\n  " + "\n  ".join(problems))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("load-test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
