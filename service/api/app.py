"""The clinician web page (/app/) and its SMART App Launch 2.x EHR launch (/app/launch).

The page renders the service's Questionnaire with LHC-Forms, posts the answers to $triage and shows the
result for a person. Launched from an EHR, fhirclient.js does the SMART dance in the browser
(discovery, authorization code with PKCE S256, the state check, the token exchange) and "Save to
record" writes the QuestionnaireResponse and the ticked ServiceRequests to the EHR in one transaction.
Every browser file is served from here (the pinned npm packages of web/, installed by
scripts/lib/web-assets.sh), never from a CDN. Tokens stay in the browser tab (sessionStorage).
"""
from __future__ import annotations

import io
import logging
import mimetypes
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from flask import (Blueprint, Response, abort, current_app, g, redirect, render_template, request,
                   send_file)

from service.state import state

log = logging.getLogger(__name__)
bp = Blueprint("app", __name__, url_prefix="/app", template_folder="../webapp",
               static_folder=None)
OWN_FILES = Path(__file__).resolve().parent.parent / "webapp" / "static"
# The vendor files the page loads, relative to LEGTRIAGE_APP_ASSETS_DIR (see scripts/lib/web-assets.sh).
VENDOR_FILES = ("lforms/styles.css", "lforms/down_arrow_gray_10_10.png", "lforms/magnifying_glass.png",
                "lforms/zone.min.js", "lforms/lhc-forms.js", "lforms/lformsFHIR.min.js",
                "fhirclient/fhir-client.min.js")
# What the app asks the EHR for: who is the patient, read their demographics, write the form and
# the accepted proposals (SMART 2 scopes: c = create, r = read).
SMART_SCOPE = ("launch openid fhirUser patient/Patient.r patient/QuestionnaireResponse.c "
               "patient/ServiceRequest.c")
DISPOSITION_SYSTEM = "triage-disposition"


def missing_assets() -> list[str]:
    folder = state().settings.app_assets_dir
    return [name for name in VENDOR_FILES if not (folder / name).is_file()]


@bp.get("/")
def page():
    """The form, the Triage button and the result; after an EHR launch also the patient and Save to record."""
    if not request.path.endswith("/"):  # the page's relative links need /app/
        query = request.query_string.decode("latin-1")
        return redirect("app/" + ("?" + query if query else ""), 308)  # relative: works behind a prefix
    questionnaire = _asked_questionnaire()
    if questionnaire is None:
        return _html(render_template("launch-problem.html", problem=(
            "This service does not triage that questionnaire. Leave out ?questionnaire= for the "
            "leg numbness form, or name one of the forms listed at /fhir/Questionnaire.")), 404)
    return _missing_page() or _html(render_template("index.html", config=_page_config(questionnaire)))


def _asked_questionnaire() -> dict | None:
    """Ours, or the other hospital's form named by ?questionnaire=url[|version] (None: unknown)."""
    catalog = state().catalog
    asked = request.args.get("questionnaire")
    if not asked:
        return catalog.questionnaire
    url, _, version = asked.partition("|")
    for q in [catalog.questionnaire] + [f.form.questionnaire for f in catalog.forms.values()]:
        if q["url"] == url and version in ("", q["version"]):
            return q
    return None


@bp.get("/launch")
def launch():
    """SMART App Launch 2.x EHR launch: the browser goes to the EHR's authorization server."""
    s = state().settings
    iss, launch_id = request.args.get("iss", ""), request.args.get("launch", "")
    problem = None
    if not s.smart_client_id:
        problem = ("This service is not registered with an EHR yet: the operator sets "
                   "LEGTRIAGE_SMART_CLIENT_ID to the client id the EHR gave it.")
    elif not _is_http_url(iss) or not launch_id or len(iss) > 2048 or len(launch_id) > 2048:
        problem = ("This page is opened by the EHR, which adds iss (its FHIR server) and launch to the "
                   "address. Open the form from the patient's record in the EHR, or use the form "
                   "on its own at /app/.")
    elif iss.rstrip("/") not in s.app_ehr_issuers:
        # Only EHRs the operator named (LEGTRIAGE_APP_EHR_ISSUERS): any other iss would send the
        # browser, with our client id, state and PKCE challenge, to whatever /authorize it names.
        problem = ("This EHR is not one this service is set up for, so the form cannot be opened from "
                   "it. Ask the service's operator to add the EHR's FHIR server address, or use the "
                   "form on its own at /app/.")
    if problem:
        # Not set up: 404, the launch does not exist here (a 5xx would page an operator for a choice).
        return _html(render_template("launch-problem.html", problem=problem),
                     404 if not s.smart_client_id else 400)
    return _missing_page() or _html(render_template("launch.html", config={
        "clientId": s.smart_client_id, "scope": SMART_SCOPE, "redirectUri": "./"}))


@bp.get("/assets/<path:name>")
def asset(name: str):
    """The page's own scripts and styles, and the pinned LHC-Forms and fhirclient.js files."""
    if name.startswith("vendor/") and name[len("vendor/"):] in VENDOR_FILES:
        path, max_age = state().settings.app_assets_dir / name[len("vendor/"):], 86400
    elif "/" not in name and (OWN_FILES / name).is_file():
        path, max_age = OWN_FILES / name, 0
    else:
        abort(404)
    try:
        data, stat = path.read_bytes(), path.stat()
    except OSError:
        abort(404)
    # Read whole (at most 2 MB) rather than streamed: no file stays open after the response.
    mimetype = "text/javascript" if path.suffix == ".js" else mimetypes.guess_type(path.name)[0]
    return send_file(io.BytesIO(data), mimetype=mimetype or "application/octet-stream", max_age=max_age,
                     etag=f"{stat.st_mtime_ns:x}-{stat.st_size:x}", last_modified=stat.st_mtime,
                     conditional=True)


@bp.after_request
def security_headers(response: Response) -> Response:
    s = state().settings
    nonce = g.get("app_style_nonce")
    styles = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    # The EHRs the launch may start from (their FHIR servers and SMART configuration), and the
    # token endpoints the operator adds: nothing else.
    connect = " ".join(dict.fromkeys(("'self'", *map(_origin, s.app_ehr_issuers), *s.app_connect_src)))
    response.headers["Content-Security-Policy"] = "; ".join((
        "default-src 'none'", "script-src 'self'", f"style-src {styles}", "img-src 'self' data:",
        f"connect-src {connect}", "font-src 'self'", "base-uri 'none'", "form-action 'self'",
        "object-src 'none'", f"frame-ancestors {' '.join(s.app_frame_ancestors)}"))
    if s.app_frame_ancestors == ("'self'",):
        response.headers["X-Frame-Options"] = "SAMEORIGIN"  # for browsers without frame-ancestors
    # The address after the EHR's redirect holds the authorization code: never pass it on.
    response.headers["Referrer-Policy"] = "no-referrer"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


def style_nonce() -> str:
    """A per-response nonce for the style elements LHC-Forms (Angular) adds at run time."""
    if "app_style_nonce" not in g:
        g.app_style_nonce = secrets.token_urlsafe(18)
    return g.app_style_nonce


@bp.context_processor
def template_helpers() -> dict:
    return {"style_nonce": style_nonce}


def _page_config(questionnaire: dict) -> dict:
    s = state()
    dispositions = {c["code"]: {"display": c["display"], "definition": c["definition"]}
                    for c in s.catalog.codesystems[DISPOSITION_SYSTEM]["concept"]}
    return {
        "questionnaire": questionnaire,
        "dispositions": dispositions,
        # The RiskAssessment's mitigation holds the advice and then the safety net, one per line;
        # the page tells them apart by the rule module's own safety-net texts, or by how they open
        # where a module words its safety net for what the person reported (SAFETY_NET_OPENINGS).
        "safetyNet": {v: [a.text for a in m.safety_net_advice] for v, m in s.registry.modules.items()},
        "safetyNetOpenings": {v: list(getattr(m.module, "SAFETY_NET_OPENINGS", ()))
                              for v, m in s.registry.modules.items()},
        "authEnabled": s.settings.auth_enabled,
        "triageUrl": "../fhir/QuestionnaireResponse/$triage",
    }


def _missing_page() -> Response | None:
    """503 with a page naming the missing browser files, or None when all are there."""
    missing = missing_assets()
    if not missing:
        return None
    # The folder is the server's own business: the log says it, the page (open to anyone) does not.
    log.warning("app: %d browser file(s) missing under %s (LEGTRIAGE_APP_ASSETS_DIR); run "
                "scripts/lib/web-assets.sh", len(missing), state().settings.app_assets_dir)
    return _html(render_template("missing.html", missing=missing), 503)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and "@" not in parts.netloc


def _html(body: str, status: int = 200) -> Response:
    return current_app.response_class(body, status=status, mimetype="text/html")
