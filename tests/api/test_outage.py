"""Neo4j going away and coming back: 503 quickly, failing readiness, recovery without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import create_key
from api.settings import Settings
from graph.neo4j_store import Neo4jStore
from ingest.load import ingest_path
from tests.conftest import LocalNeo4j, _wipe
from tests.helpers import tiny, wait_ready, write_csvs

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]
NO_HANG_S = 30  # a bound against hanging requests, not a performance target


def test_the_api_answers_503_while_neo4j_is_down_and_recovers(
    own_neo4j: LocalNeo4j, tmp_path: Path
) -> None:
    _wipe(own_neo4j.url)  # the module's server: start from an empty graph
    store = Neo4jStore(own_neo4j.url)
    try:
        assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).ok
        key = {"Authorization": f"Bearer {create_key(store, 'analyst')[0]}"}
    finally:
        store.close()
    with TestClient(
        create_app(Settings(store=own_neo4j.url)), raise_server_exceptions=False
    ) as client:
        assert client.get("/v1/cities", headers=key).status_code == 200
        wait_ready(client)

        own_neo4j.stop()
        for path in ("/v1/cities", "/v1/cities/pt-amadora/partners", "/v1/network/stats"):
            started = time.monotonic()
            r = client.get(path, headers=key)
            assert time.monotonic() - started < NO_HANG_S, path
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert "unreachable" in r.json()["detail"] and "Traceback" not in r.text
            assert r.headers.get("retry-after")
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["store"] != "ok"
        assert client.get("/health/live").status_code == 200

        own_neo4j.start()
        deadline = time.monotonic() + NO_HANG_S
        while client.get("/health/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert client.get("/health/ready").status_code == 200
        r = client.get("/v1/cities", headers=key)
        assert r.status_code == 200 and r.json()["total"] == 5


def test_an_ingest_into_a_stopped_neo4j_fails_clearly_and_writes_nothing(
    own_neo4j: LocalNeo4j, tmp_path: Path
) -> None:
    from graph.errors import StoreUnavailable

    _wipe(own_neo4j.url)
    store = Neo4jStore(own_neo4j.url)
    try:
        store.revision()
        own_neo4j.stop()
        with pytest.raises(StoreUnavailable, match="unreachable"):
            ingest_path(write_csvs(tmp_path / "ds", tiny()), store)
        own_neo4j.start()
        assert store.snapshot().counts()["cities"] == 0
        assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).upsert.created == 20
    finally:
        store.close()
