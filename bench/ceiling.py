"""The ceiling the benchmark holds $triage to: the same Flask and gunicorn settings, the same body
parsed with orjson, a fixed Bundle returned; no validation, no rules, no Bundle building.

gunicorn runs it as `bench.ceiling:app` with the service's gunicorn.conf.py (bench/bench.py).
"""
from __future__ import annotations

from pathlib import Path

import orjson
from flask import Flask, Response, abort, request

from service import create_app
from service.fhir_io.outcome import FHIR_JSON

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TRIAGE = "/fhir/QuestionnaireResponse/$triage"


def _fixed_bundle() -> bytes:
    """A real $triage answer (so the response is as large as the service's), made once at start."""
    client = create_app().test_client()
    response = client.post(TRIAGE, data=(EXAMPLES / "qr-routine-diabetes.json").read_bytes(),
                           headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data()


BUNDLE = _fixed_bundle()
app = Flask(__name__)


@app.post(TRIAGE)
def triage() -> Response:
    """Parse the body as the service does, answer with the fixed Bundle."""
    if orjson.loads(request.get_data(cache=False)).get("resourceType") is None:
        abort(422)
    return Response(BUNDLE, content_type=FHIR_JSON)
