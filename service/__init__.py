"""legtriage: a FHIR R4 triage service for leg numbness.

create_app() is the one place where everything hangs: settings, mappings, rule modules, blueprints,
error handlers. gunicorn runs it as 'service:create_app()'.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # importing service.triage (the rules) must not need Flask
    from flask import Flask

    from service.catalog import Catalog
    from service.config import Settings
    from service.triage.engine import Registry
    from service.triage.signoff import Signoffs


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; `config` overrides settings by name (tests), the environment gives the rest."""
    from service.config import embedded_database, load_settings
    from service.records import NullStore, migration_child

    settings = load_settings(overrides=config)
    records: Any = NullStore()
    early = None
    try:
        if settings.records_enabled:
            # A first start's migration child (a Python of its own, ~0.6 s of imports) is launched
            # before this process loads SQLAlchemy and Flask, so that it works beside all of the
            # start below and start() at the end seldom waits for it (docs/performance.md).
            file = embedded_database(settings)
            if file is not None and not file.exists():
                early = migration_child()
            from service.records.store import open_store
            records = open_store(settings, serving=True)  # a locked database: 503 in ~3 s, not a frozen worker
            records.prepare(early)  # a SQLite file named by LEGTRIAGE_DATABASE_URL: its child starts here
            early = None
        app = _build(settings, records)
        if settings.records_enabled:
            records.start()  # migrations; in gunicorn's master before it forks (preload_app)
    except BaseException:
        if early is not None:  # the store could not even be opened
            early.kill()
            early.communicate()
        if settings.records_enabled:
            records.close()  # a migration child nobody asked to migrate ends: the database stays untouched
        raise
    return app


def _build(settings: Settings, records: Any) -> Flask:
    """The app around `records` (not started yet): everything create_app does but the migration."""
    from flask import Flask, request

    from service import auth, errors, logs
    from service.api import app as web_app, docs, fhir, health
    from service.cds import views as cds_hooks
    from service.fhir_io.outgoing import BundleBuilder, now_iso
    from service.records import audit
    from service.state import State

    app = Flask(__name__, static_folder=None)  # no static files: no /static route answering 404
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, JSON_SORT_KEYS=False)
    app.url_map.strict_slashes = False

    # mappings/, the rule versions and the sign-offs, each checked now (ConfigError naming it)
    catalog, registry, signoffs = _load_checked(settings)
    if catalog.forms:  # what each foreign form cannot ask, worked out before gunicorn forks
        from service.triage.signs import not_asked
        for foreign in catalog.forms.values():
            for module in registry.modules.values():
                not_asked(foreign.form.facts, module)
    app.extensions["legtriage"] = State(settings, catalog, registry, BundleBuilder(catalog), now_iso(),
                                           records, signoffs)

    logs.init_app(app)
    errors.register(app)
    auth.init_app(app, settings)  # bearer JWT and CORS allow-list, both off unless configured
    app.register_blueprint(health.bp)
    app.register_blueprint(fhir.bp)
    cds_hooks.init_app(app, settings)  # CDS Hooks: its own trust configuration, checked now
    app.register_blueprint(docs.bp)
    app.register_blueprint(docs.swagger_ui)
    app.register_blueprint(web_app.bp)  # /app/: the clinician page and its SMART launch

    @app.after_request
    def security_headers(response):
        response.headers["X-Content-Type-Options"] = "nosniff"
        if "Cache-Control" not in response.headers and carries_patient_data(request.method, request.path):
            response.headers["Cache-Control"] = "no-store"  # no cache keeps what concerns a patient
        return response

    if settings.records_enabled:
        # after_request hooks run last-registered first: the record is written before the
        # security headers are set, so a 503 that replaces an unrecorded answer gets them too.
        audit.init_app(app)

    return app


def _load_checked(settings: Settings) -> tuple[Catalog, Registry, Signoffs]:
    """The catalog of mappings/, the rule registry and the sign-offs, each checked; ConfigError (or
    CatalogError) naming the problem."""
    from service.config import ConfigError
    from service.fhir_io import structure
    from service.fhir_io.served import load_catalog
    from service.triage import signoff
    from service.triage.engine import Registry, UnknownRulesVersion

    catalog = load_catalog(settings.mappings_dir)
    structure.compile_request_schema()  # after mappings/ was checked with schemas of its own, before the fork
    try:
        registry = Registry(default=settings.default_rules_version)
    except UnknownRulesVersion as err:
        raise ConfigError(f"invalid configuration: LEGTRIAGE_DEFAULT_RULES_VERSION: {err.requested} is "
                          f"not published; published: {', '.join(err.available)}") from None
    try:  # the hospital's clinical sign-off files, checked now (file, line and story on error)
        signoffs = signoff.load(settings.signoff_dir, registry.modules)
    except signoff.SignoffError as err:
        raise ConfigError(f"invalid configuration: LEGTRIAGE_SIGNOFF_DIR: {err}") from None
    if settings.require_signoff and not signoffs.signed(registry.default_version):
        raise ConfigError(
            f"invalid configuration: LEGTRIAGE_REQUIRE_SIGNOFF is true but the default rule version "
            f"{registry.default_version} has no clinical sign-off "
            f"({signoffs.why_unsigned(registry.default_version)}); add its sign-off file to "
            f"{settings.signoff_dir} or set LEGTRIAGE_DEFAULT_RULES_VERSION to a signed version")
    return catalog, registry, signoffs


# The public conformance resources (the same for every caller, no patient in them): cacheable.
_CONFORMANCE = frozenset({"metadata", "Questionnaire", "ValueSet", "CodeSystem", "StructureDefinition",
                          "OperationDefinition", "Library", "ConceptMap"})


def carries_patient_data(method: str, path: str) -> bool:
    """Whether a response of the FHIR API or CDS Hooks may concern a patient ($triage, a CDS card,
    the audit trail, and any error about such a call): every one but a read of a conformance
    resource or CDS discovery. Those answers get Cache-Control: no-store."""
    if path.startswith("/fhir/") or path == "/fhir":
        return not (method in ("GET", "HEAD") and path.split("/")[2:3] and path.split("/")[2] in _CONFORMANCE)
    if path == "/cds-services" or path.startswith("/cds-services/"):
        return not (method in ("GET", "HEAD") and path.rstrip("/") == "/cds-services")
    return False
