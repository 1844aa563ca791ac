"""What the app loads once at start: settings, mappings, rule modules, the Bundle builder."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from service.catalog import Catalog
from service.config import Settings
from service.fhir_io.outgoing import BundleBuilder
from service.records import RecordStore
from service.triage.engine import Registry


@dataclass(frozen=True)
class State:
    settings: Settings
    catalog: Catalog
    registry: Registry
    builder: BundleBuilder
    started: str
    records: RecordStore


def state() -> State:
    return current_app.extensions["legtriage"]
