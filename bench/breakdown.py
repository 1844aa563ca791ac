"""Where a $triage request's CPU time goes, stage by stage, measured in-process.

    .venv/bin/python bench/breakdown.py [--n 2000]

Calls each stage of the view (service/api/fhir.py) on the example mix and the two WSGI apps
(service and bench/ceiling.py) without HTTP, and reports CPU µs per call (process time, best of 5
repeats, so other load on the machine inflates it less than wall time). Complements bench/run:
the HTTP figures say how fast, these say what to make faster (docs/performance.md).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from bench.bench import TRIAGE, bodies  # noqa: E402


def best_us(fn, n: int, repeats: int = 5) -> float:
    for i in range(min(n, 200)):
        fn(i)
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for i in range(n):
            fn(i)
        best = min(best, (time.process_time() - start) / n)
    return best * 1e6


def wsgi_caller(app, mix: list[bytes]):
    # The headers wrk sends (bench/bench.py): the content negotiation has its real work to do.
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    environs = [EnvironBuilder(path=TRIAGE, method="POST", data=b, headers=headers).get_environ()
                for b in mix]

    def call(i: int) -> None:
        environ = dict(environs[i % len(mix)])
        environ["wsgi.input"] = io.BytesIO(mix[i % len(mix)])
        status = []
        for _ in app(environ, lambda s, h, e=None: status.append(s)):
            pass
        assert status[0].startswith("200"), status
    return call


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/breakdown.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per measurement")
    n = parser.parse_args(argv).n

    # The service logs each request as a JSON line on stdout: formatted (it is part of the cost),
    # then dropped; the figures are printed at the end.
    lines: list[str] = []
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        measure(n, lines)
    print("\n".join(lines))
    return 0


def measure(n: int, lines: list[str]) -> None:
    from service import create_app

    # Its records go to a folder of its own, removed at the end, not to the checkout's ./var; the
    # whole request includes writing one, as in bench/run.
    data_dir = tempfile.mkdtemp(prefix="legtriage-breakdown-")
    os.environ.setdefault("LEGTRIAGE_DATA_DIR", data_dir)
    try:
        service = create_app()
        measure_app(service, n, lines)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def measure_app(service, n: int, lines: list[str]) -> None:
    from bench.ceiling import app as ceiling
    from service import mapping
    from service.fhir_io import incoming, structure
    from service.triage.engine import evaluate
    from service.triage.facts import load_facts

    state = service.extensions["legtriage"]
    mix = bodies()
    k = len(mix)
    parsed = [orjson.loads(b) for b in mix]
    unwrapped = [(given.qr, given.root) for given in (incoming.unwrap(p, None) for p in parsed)]
    answers = [incoming.check_against_questionnaire(qr, root, state.catalog) for qr, root in unwrapped]
    values = [mapping.fact_values(a.values, state.catalog)[0] for a in answers]
    facts = [load_facts(v) for v in values]
    module = state.registry.get(None)
    assessments = [evaluate(module, f) for f in facts]
    bundles = [state.builder.build(a, module, u[0], []) for a, u in zip(assessments, unwrapped)]

    stages = [
        ("orjson.loads (body)", lambda i: orjson.loads(mix[i % k])),
        ("reject_duplicate_keys (none there)", lambda i: incoming.reject_duplicate_keys(mix[i % k],
                                                                                     parsed[i % k])),
        ("unwrap (incl. depth check)", lambda i: incoming.unwrap(parsed[i % k], None)),
        ("check_modifiers", lambda i: incoming.check_modifiers(unwrapped[i % k][0], "Q")),
        ("validate_structure (jsonschema-rs)", lambda i: structure.check(unwrapped[i % k][0], "Q")),
        ("check_against_questionnaire", lambda i: incoming.check_against_questionnaire(
            unwrapped[i % k][0], unwrapped[i % k][1], state.catalog)),
        ("fact_values (mapping)", lambda i: mapping.fact_values(answers[i % k].values, state.catalog)),
        ("load_facts (marshmallow)", lambda i: load_facts(values[i % k])),
        ("evaluate (rules)", lambda i: evaluate(module, facts[i % k])),
        ("BundleBuilder.build", lambda i: state.builder.build(assessments[i % k], module,
                                                              unwrapped[i % k][0], [])),
        ("orjson.dumps (Bundle)", lambda i: orjson.dumps(bundles[i % k])),
    ]
    lines.append(f"CPU µs per call, best of 5 x {n} calls, on the bench mix of {k} bodies")
    results = {}
    for name, fn in stages:
        results[name] = best_us(fn, n)
        lines.append(f"  {name:38s}{results[name]:8.1f}")
    total = sum(results.values())
    lines.append(f"  {'sum of the stages':38s}{total:8.1f}")
    whole = best_us(wsgi_caller(service, mix), n)
    floor = best_us(wsgi_caller(ceiling, mix), n)
    lines.append(f"  {'whole request, service (WSGI)':38s}{whole:8.1f}")
    lines.append(f"  {'whole request, ceiling (WSGI)':38s}{floor:8.1f}")
    # The ceiling parses the body too: what is left is the service's Flask hooks, the audit record,
    # logging, auth.
    rest = whole - floor - (total - results["orjson.loads (body)"])
    lines.append(f"  {'rest: hooks, audit record, log':38s}{rest:8.1f}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
