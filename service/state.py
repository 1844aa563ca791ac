"""What the app loads once at start: settings, mappings, rule modules, the Bundle builder."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from service.catalog import Catalog
from service.config import Settings
from service.fhir_io.outgoing import BundleBuilder
from service.records import RecordStore
from service.triage.engine import Registry
from service.triage.signoff import Signoffs


@dataclass(frozen=True)
class State:
    settings: Settings
    catalog: Catalog
    registry: Registry
    builder: BundleBuilder
    started: str
    records: RecordStore
    signoffs: Signoffs | None = field(default=None)  # None: not checked (an app made without it)


def state() -> State:
    return current_app.extensions["legtriage"]
