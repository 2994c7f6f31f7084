"""The service layer over a real store: snapshot refresh by revision, partners, stats."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.services import NetworkService
from graph.errors import InvalidInput, NotFound
from graph.store import GraphStore
from ingest.load import ingest_path
from matching.embeddings import default_encoder
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
