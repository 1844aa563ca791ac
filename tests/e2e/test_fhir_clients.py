"""Generic FHIR clients work with the service unchanged: fhirpy (sync and async, what Python
integrators use) and fhirclient (SMART's Python client) search every conformance resource
(first(), get(), count(), fetch_all(), paging by the next link) and call $triage, both forms.

The service runs on a real HTTP server on 127.0.0.1 whose public base is its own address, so the
paging links the clients follow lead back to it.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import warnings

import pytest
from werkzeug.serving import make_server

from service.fhir_io.store_ready import OUTPUT_SYSTEM
from tests.support.servers import free_port
from tests.support import example

TYPES = ["Questionnaire", "ValueSet", "StructureDefinition", "Library", "ConceptMap", "CodeSystem",
         "OperationDefinition"]


@pytest.fixture(scope="module")
def base(make_app):
    port = free_port()
    app = make_app(public_base_url=f"http://127.0.0.1:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/fhir"
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="module")
def fhirpy_sync(base):
    from fhirpy import SyncFHIRClient
    return SyncFHIRClient(base, extra_headers={"Accept": "application/fhir+json"})


def totals(base: str) -> dict[str, int]:
    import requests
    return {t: requests.get(f"{base}/{t}", timeout=10).json()["total"] for t in TYPES}


# ---- fhirpy, sync ----------------------------------------------------------------------------

@pytest.mark.parametrize("rtype", TYPES)
def test_fhirpy_searches(fhirpy_sync, base, rtype):
    from fhirpy.base.exceptions import MultipleResourcesFound

    total = totals(base)[rtype]
    search = fhirpy_sync.resources(rtype)
    assert search.count() == total  # _count=0: the total only
    first = search.first()  # _count=1
    assert first is not None and first["resourceType"] == rtype
    everything = search.fetch_all()  # follows the next links
    assert sorted(r["id"] for r in everything) == sorted(r["id"] for r in search.limit(1000).fetch())
    assert len(everything) == total
    paged = search.limit(1).fetch_all()  # one per page: total pages, every link followed
    assert [r["id"] for r in paged] == [r["id"] for r in everything]
    one = search.search(_id=first["id"]).get()  # _count=2, exactly one expected
    assert one["id"] == first["id"]
    if total > 1:
        with pytest.raises(MultipleResourcesFound):
            search.get()
    # by canonical, as integrators look resources up
    if first.get("url"):
        assert search.search(url=first["url"]).count() >= 1


def test_fhirpy_keeps_working_when_it_adds_a_parameter_the_search_ignores(fhirpy_sync):
    """fhirpy sends what the caller asks: an unsupported parameter is ignored (named in an outcome
    entry, which fhirpy leaves out of its resources)."""
    found = fhirpy_sync.resources("Library").search(publisher="legtriage").limit(1).fetch()
    assert len(found) == 1 and found[0]["resourceType"] == "Library"


def test_fhirpy_triage_both_forms(fhirpy_sync):
    qr = example("qr-urgent-dvt")
    collection = fhirpy_sync.execute("QuestionnaireResponse/$triage", method="post", data=qr)
    assert collection["type"] == "collection"
    transaction = fhirpy_sync.execute("QuestionnaireResponse/$triage", method="post", data=qr,
                                      params={"bundle-type": "transaction"})
    assert transaction["type"] == "transaction"
    stored = [e for e in collection["entry"] if e["resource"]["resourceType"] != "OperationOutcome"]
    assert [e["request"]["ifNoneExist"] for e in transaction["entry"]] == \
        [f"identifier={OUTPUT_SYSTEM}|{e['resource']['id']}" for e in stored]


# ---- fhirpy, async ---------------------------------------------------------------------------

def test_fhirpy_async_searches_and_triage(base):
    from fhirpy import AsyncFHIRClient

    async def run() -> dict:
        client = AsyncFHIRClient(base, extra_headers={"Accept": "application/fhir+json"})
        out = {}
        for rtype in TYPES:
            search = client.resources(rtype)
            out[rtype] = (await search.count(), len(await search.limit(1).fetch_all()),
                          (await search.first())["resourceType"])
        out["triage"] = (await client.execute("QuestionnaireResponse/$triage", method="post",
                                              data=example("qr-emergency-stroke"),
                                              params={"bundle-type": "transaction"}))["type"]
        return out

    def in_own_loop() -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # aiohttp on the test's own event loop
            return asyncio.run(run())

    # A thread of its own: a suite-wide run may hold an event loop in this thread already (the browser
    # tests' Playwright), and asyncio.run() refuses to start inside a running loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        found = pool.submit(in_own_loop).result(timeout=120)
    expected = totals(base)
    for rtype in TYPES:
        assert found[rtype] == (expected[rtype], expected[rtype], rtype)
    assert found["triage"] == "transaction"


# ---- fhirclient (SMART on FHIR's Python client) ----------------------------------------------

@pytest.fixture(scope="module")
def smart(base):
    from fhirclient import client
    return client.FHIRClient(settings={"app_id": "legtriage-tests", "api_base": base})


def _model(rtype: str):
    import importlib
    return getattr(importlib.import_module(f"fhirclient.models.{rtype.lower()}"), rtype)


@pytest.mark.parametrize("rtype", TYPES)
def test_fhirclient_searches_and_follows_the_pages(smart, base, rtype):
    model = _model(rtype)
    total = totals(base)[rtype]
    (bundle,) = model.where(struct={"_count": "0"}).perform_iter(smart.server)
    assert bundle.total == total and not bundle.entry
    paged = list(model.where(struct={"_count": "1"}).perform_resources_iter(smart.server))
    assert len(paged) == total and all(r.resource_type == rtype for r in paged)
    assert len({r.id for r in paged}) == total
    pages = list(model.where(struct={"_count": "1"}).perform_iter(smart.server))
    assert len(pages) == total and all(len(page.entry) == 1 for page in pages)


def test_fhirclient_triage_both_forms(smart):
    from fhirclient.models.bundle import Bundle

    qr = example("qr-routine-sciatica")
    for query, kind in (("", "collection"), ("?bundle-type=transaction", "transaction")):
        answer = smart.server.post_json(f"QuestionnaireResponse/$triage{query}", qr)
        bundle = Bundle(answer.json())  # fhirclient's R4 models accept both as they are
        assert bundle.type == kind
        assert bundle.entry[0].resource.resource_type == "RiskAssessment"
        if kind == "transaction":
            assert all(e.request.method == "POST" and e.request.ifNoneExist for e in bundle.entry)
