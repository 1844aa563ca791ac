"""The load script, short (issue #6, item 5): scripts/load-test --short in CI.

10 s of good QuestionnaireResponses and interleaved bad requests against gunicorn on 127.0.0.1:
every good request a 2xx, no 5xx, no socket error, worker memory within 10 % of the warm-up.
The full run (60 s) is `scripts/load-test`.
"""
from __future__ import annotations

import json
import subprocess

from tests.support import ROOT


def test_short_load_run_passes(tmp_path):
    result = tmp_path / "load.json"
    proc = subprocess.run([str(ROOT / "scripts" / "load-test"), "--short", "--json", str(result)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    report = json.loads(result.read_text())
    assert report["ok"] and report["problems"] == []
    good, bad = report["good"], report["bad"]
    assert good["requests"] >= 500, good  # a run that sent next to nothing proves nothing
    assert set(good["statuses"]) == {"200"}
    assert bad["requests"] >= 100 and all(400 <= int(s) < 500 for s in bad["statuses"]), bad
    assert {"400", "404", "405", "406", "415", "422"} <= set(bad["statuses"])  # the mix arrived
    assert len(report["rss_growth"]) == 2 and max(report["rss_growth"].values()) <= 0.10
