"""The service layer over a real store: snapshot refresh by revision, partners, stats."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import pytest

from api.services import network
from api.services.network import NetworkService
from graph.errors import InvalidInput, NotFound
from graph.store import GraphStore
from ingest.load import ingest_path
from matching.kernel.embeddings import default_encoder
from matching.partners import PartnerFilters
from tests.helpers import tiny, write_csvs


@pytest.fixture
def service(store: GraphStore, tmp_path: Path) -> NetworkService:
    assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).ok
    return NetworkService(store, default_encoder())


def test_partners_come_with_reasons(service: NetworkService) -> None:
    (result,) = service.partners(["it-messina"], k=3)
    assert result.suggestions and all(s.reasons for s in result.suggestions)
    assert "pt-amadora" not in {s.city_id for s in result.suggestions}  # a current partner


def test_a_write_elsewhere_is_seen_on_the_next_call(
    service: NetworkService, tmp_path: Path
) -> None:
    before = service.prepared()
    again = service.prepared()
    assert again is before  # same revision: nothing rebuilt
    data = tiny()
    data["cities"].append(
        {
            "id": "ua-odesa",
            "name": "Odesa",
            "country": "UA",
            "lat": 46.48,
            "lon": 30.72,
            "languages": "uk;en",
        }
    )
    assert ingest_path(write_csvs(tmp_path / "more", data), service.store).ok
    after = service.prepared()
    assert after.revision > before.revision and "ua-odesa" in after.arrays.index
    assert after.profiles.shape == (6, 384)


def test_bad_requests_are_typed_errors(service: NetworkService) -> None:
    with pytest.raises(NotFound):
        service.partners(["atlantis"])
    with pytest.raises(InvalidInput):
        service.partners(["it-messina"], filters=PartnerFilters(theme="cooking"))
    with pytest.raises(InvalidInput):
        service.partners([], k=3)


def test_stats_on_the_stored_network(service: NetworkService) -> None:
    stats = service.stats()
    assert stats.cities == 5 and stats.ties == 2
    assert {c.city_id for c in stats.isolated} == {"fo-klaksvik", "es-getxo"}


def test_partner_lists_are_kept_per_revision(service: NetworkService, tmp_path: Path) -> None:
    (first,) = service.partners(["it-messina"], k=3)
    (again,) = service.partners(["it-messina"], k=3)
    assert again is first  # same revision, same question: the kept list
    (other,) = service.partners(["it-messina"], k=2)
    assert other is not first and len(other.suggestions) <= 2
    data = tiny()
    data["cities"].append(
        {
            "id": "pt-braga",
            "name": "Braga",
            "country": "PT",
            "lat": 41.55,
            "lon": -8.42,
            "languages": "pt;en",
        }
    )
    assert ingest_path(write_csvs(tmp_path / "more", data), service.store).ok
    (fresh,) = service.partners(["it-messina"], k=3)
    assert fresh is not first  # a write moved the revision: computed again on the new network
    assert "pt-braga" in {s.city_id for s in service.partners(["it-messina"], k=10)[0].suggestions}


def test_partner_json_is_the_kept_list_written_once(service: NetworkService) -> None:
    body = service.partners_json("it-messina", k=3)
    assert service.partners_json("it-messina", k=3) is body  # kept with the list
    (result,) = service.partners(["it-messina"], k=3)
    doc = json.loads(body)
    assert doc["city_id"] == "it-messina" and doc["considered"] == result.considered
    assert [(s["city_id"], s["score"]) for s in doc["suggestions"]] == [
        (s.city_id, s.score) for s in result.suggestions
    ]
    assert [r["text"] for r in doc["suggestions"][0]["reasons"]] == [
        r.text for r in result.suggestions[0].reasons
    ]
    with pytest.raises(NotFound):
        service.partners_json("atlantis")
    with pytest.raises(InvalidInput):
        service.partners_json("it-messina", k=0)


class _Node:
    me: object


def test_a_server_service_freezes_each_revision_and_collects_what_it_froze(
    store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``gc_freeze`` (the API's setting) what a rebuild leaves alive is out of the
    cyclic collector's sight. A frozen cycle that becomes garbage is not kept for ever:
    the next full settle (at most a minute later) unfreezes and collects it; a rebuild
    sooner than that only freezes."""
    assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).ok
    service = NetworkService(store, default_encoder(), gc_freeze=True)
    holder = [_Node()]
    holder[0].me = holder[0]  # a cycle: only the cyclic collector can free it
    gone = weakref.ref(holder[0])

    def new_revision(n: int) -> None:
        data = tiny()
        data["themes"].append({"id": "sport", "name": f"Sport {n}"})
        assert ingest_path(write_csvs(tmp_path / f"more{n}", data), store).ok
        service.prepared()

    try:
        service.prepared()
        assert gc.get_freeze_count() > 0
        holder.clear()
        gc.collect()
        assert gone() is not None  # frozen: invisible to the collector
        new_revision(1)  # within the minute: freeze only
        assert gone() is not None
        monkeypatch.setattr(network, "FULL_GC_EVERY_S", 0.0)
        new_revision(2)  # a full settle
        assert gone() is None
    finally:
        gc.unfreeze()


def test_the_partner_cache_is_bounded(store: GraphStore, tmp_path: Path) -> None:
    assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).ok
    service = NetworkService(store, default_encoder(), partner_cache_size=2)
    for k in (1, 2, 3, 4):
        service.partners(["it-messina"], k=k)
    assert len(service._partner_cache) == 2
