"""Liveness and readiness for orchestrators."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 while the process serves."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """200 when the rules and mappings are loaded and the records store takes records."""
    s = current_app.extensions.get("legtriage")
    if s is None:
        return jsonify(status="loading"), 503
    if not s.records.ready():
        return jsonify(status="store-unavailable"), 503, {"Retry-After": "5"}
    return jsonify(status="ready", rulesVersions=s.registry.versions,
                   defaultRulesVersion=s.registry.default_version)
