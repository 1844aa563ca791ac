"""bench/run --smoke: the benchmark starts both servers, drives them with wrk and reports every figure.

A few seconds, on the CI machine: it proves the benchmark works, not that the targets are met
(figures from a shared CI machine say little; docs/performance.md has the full run).
"""
from __future__ import annotations

import json
import subprocess

from tests.support import ROOT

FIGURES = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")


def test_bench_smoke_reports_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([str(ROOT / "bench/run"), "--smoke", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "ratio $triage/ceiling" in run.stdout and "p99 at 1 connection" in run.stdout
    result = json.loads(out.read_text())
    for name in ("service", "ceiling", "cds-hook"):
        for connections in ("c16", "c1"):
            figures = result[name][connections]
            assert all(figures[f] > 0 for f in FIGURES), (name, connections, figures)
            assert figures["p50_ms"] <= figures["p99_ms"]
    assert "CDS hook call with prefetch" in run.stdout
    for name in ("service", "ceiling"):
        assert result[name]["worker_rss_mb"] and all(m > 5 for m in result[name]["worker_rss_mb"])
        assert 0 < result[name]["first_response_s"] < 30
    assert result["ratio"] == round(result["service"]["c16"]["rps"] / result["ceiling"]["c16"]["rps"], 3)
    assert set(result["met"]) == set(result["targets"]) == {"ratio", "p99_ms_at_1", "worker_rss_mb",
                                                            "first_response_s", "cds_p99_ms_at_1"}
    assert result["settings"]["gunicorn"]["workers"] >= 1, result["settings"]["gunicorn"]
    # every request of the mix was answered 200 (bench.py refuses to report otherwise)
    assert all(r["requests"] > 0 for runs in result["runs"].values() for rs in runs.values() for r in rs)


def test_breakdown_measures_every_stage():
    # bench/breakdown.py calls the view's stages one by one: this keeps it in step with the code.
    run = subprocess.run([str(ROOT / ".venv/bin/python"), "bench/breakdown.py", "--n", "20"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0].startswith("CPU µs per call")
    figures = {name.strip(): float(value) for name, value in (line.rsplit(None, 1) for line in lines[1:])}
    assert len(figures) == 15 and all(v > 0 for k, v in figures.items() if not k.startswith("rest")), figures
    assert "validate_structure (jsonschema-rs)" in figures and "load_facts (marshmallow)" in figures
