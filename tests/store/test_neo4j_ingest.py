"""Neo4jStore's fast ingest and snapshot paths, against the real engine.

A first load skips the key lookups of kinds the store does not hold yet, stores each
relationship row's own fields only (its endpoints are the nodes it joins), and writes in
chunks: these tests pin what that must never change (duplicates across chunks, rows
stored by older versions, all-or-nothing batches).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from graph import neo4j_store
from graph.errors import IccmatchError, InvalidInput
from graph.model import Kind
from graph.neo4j_store import Neo4jStore
from graph.store import GraphBatch

pytestmark = pytest.mark.neo4j

_WIPE = "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"


@pytest.fixture
def store(neo4j_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Neo4jStore]:
    monkeypatch.setattr(neo4j_store, "WRITE_CHUNK", 2)  # every batch below spans chunks
    s = Neo4jStore(neo4j_url)
    try:
        _cypher(s, _WIPE)
        yield s
    finally:
        s.close()


def _cypher(store: Neo4jStore, statement: str, **params: Any) -> list[dict[str, Any]]:
    """Run a test-only statement outside the store's API (to look at or plant raw data)."""
    with store._driver.session() as session:
        return [record.data() for record in session.run(statement, **params)]


def _themes(*names: str) -> list[dict[str, Any]]:
    return [{"id": f"t{i}", "name": name} for i, name in enumerate(names)]


def _city(id: str) -> dict[str, Any]:
    return {"id": id, "name": id.title(), "country": "PT", "lat": 38.7, "lon": -9.1}


def test_a_key_repeated_in_a_later_chunk_of_a_first_load_is_an_update(
    store: Neo4jStore,
) -> None:
    """The first load of a kind looks up no keys, so a key that an earlier chunk of the
    same batch created must still be found: else it would be created twice."""
    themes = [*_themes("Housing", "Jobs", "Schools"), {"id": "t0", "name": "Housing policy"}]
    links = [
        {"city_id": "lisbon", "theme_id": "t0", "priority": 3},
        {"city_id": "lisbon", "theme_id": "t1", "priority": 2},
        {"city_id": "porto", "theme_id": "t2", "priority": 1},
        {"city_id": "lisbon", "theme_id": "t0", "priority": 5},
    ]
    batch = GraphBatch(
        {
            Kind.THEMES: themes,
            Kind.CITIES: [_city("lisbon"), _city("porto")],
            Kind.CITY_THEMES: links,
        }
    )
    report = store.upsert(batch)
    assert (report.by_kind[Kind.THEMES].created, report.by_kind[Kind.THEMES].updated) == (3, 1)
    assert (report.by_kind[Kind.CITY_THEMES].created, report.by_kind[Kind.CITY_THEMES].updated) == (
        3,
        1,
    )
    snap = store.snapshot()
    assert [(t.id, t.name) for t in snap.themes] == [
        ("t0", "Housing policy"),
        ("t1", "Jobs"),
        ("t2", "Schools"),
    ]
    assert [(c.city_id, c.theme_id, c.priority) for c in snap.city_themes] == [
        ("lisbon", "t0", 5),
        ("lisbon", "t1", 2),
        ("porto", "t2", 1),
    ]
    stored = _cypher(store, "MATCH ()-[r:PRIORITISES]->() RETURN count(r) AS n")
    assert stored == [{"n": 3}]


def test_relationships_store_their_own_fields_and_read_their_endpoints_from_nodes(
    store: Neo4jStore,
) -> None:
    links = [
        {"city_a": "lisbon", "city_b": "porto", "kind": "twinning", "since": 1990},
        {"city_a": "lisbon", "city_b": "tomar", "kind": "project", "since": None},
    ]
    cities = [_city("lisbon"), _city("porto"), _city("tomar")]
    store.upsert(GraphBatch({Kind.CITIES: cities, Kind.PARTNERSHIPS: links}))
    keys = _cypher(
        store,
        "MATCH (a)-[r:PARTNER_OF]->(b) RETURN b.id AS b, keys(r) AS keys ORDER BY b",
    )
    assert [(k["b"], sorted(k["keys"])) for k in keys] == [
        ("porto", ["kind", "since"]),
        ("tomar", ["kind"]),
    ]
    snap = store.snapshot()
    assert [(p.city_a, p.city_b, p.kind, p.since) for p in snap.partnerships] == [
        ("lisbon", "porto", "twinning", 1990),
        ("lisbon", "tomar", "project", None),
    ]


def test_relationships_an_older_version_stored_with_their_endpoint_ids_still_work(
    store: Neo4jStore,
) -> None:
    """Earlier versions also kept city_id and theme_id on each relationship."""
    store.upsert(GraphBatch({Kind.THEMES: _themes("Housing"), Kind.CITIES: [_city("lisbon")]}))
    _cypher(
        store,
        "MATCH (a:City {id: 'lisbon'}), (b:Theme {id: 't0'}) "
        "CREATE (a)-[:SCORES {city_id: 'lisbon', theme_id: 't0', score: 40.0}]->(b)",
    )
    row = {"city_id": "lisbon", "theme_id": "t0", "score": 40.0}
    assert [(s.city_id, s.theme_id, s.score) for s in store.snapshot().index_scores] == [
        ("lisbon", "t0", 40.0)
    ]
    assert store.upsert(GraphBatch({Kind.INDEX_SCORES: [row]})).unchanged == 1
    report = store.upsert(GraphBatch({Kind.INDEX_SCORES: [{**row, "score": 55.0}]}))
    assert (report.created, report.updated) == (0, 1)
    assert [(s.city_id, s.score) for s in store.snapshot().index_scores] == [("lisbon", 55.0)]
    stored = _cypher(store, "MATCH ()-[r:SCORES]->() RETURN properties(r) AS props")
    assert stored == [{"props": {"score": 55.0}}]  # one relationship, its own field only


def test_a_batch_whose_last_chunk_fails_leaves_the_store_as_it_was(store: Neo4jStore) -> None:
    """All or nothing across chunks: the server refuses the last chunk (a row names a city
    that is not stored) after every earlier chunk of the batch was written."""
    cities = [_city(f"c{i}") for i in range(5)]
    store.upsert(GraphBatch({Kind.THEMES: _themes("Housing", "Jobs"), Kind.CITIES: cities[:2]}))
    before, revision = store.snapshot(), store.revision()
    links = [
        {"city_id": c["id"], "theme_id": t, "priority": 3} for c in cities for t in ("t0", "t1")
    ]
    links.append({"city_id": "nowhere", "theme_id": "t0", "priority": 1})
    batch = GraphBatch(
        {
            Kind.THEMES: _themes("Housing policy", "Jobs", "Schools"),
            Kind.CITIES: cities,
            Kind.CITY_THEMES: links,  # 11 rows: chunks of 2, the one in the last fails
        }
    )
    with pytest.raises(InvalidInput, match="1 city_themes rows name a node that is not stored"):
        store.upsert(batch)
    after = store.snapshot()
    assert all(after.rows(kind) == before.rows(kind) for kind in Kind)
    assert store.revision() == revision == after.revision
    counts = _cypher(store, "MATCH (n) RETURN count(n) AS nodes")
    assert counts == [{"nodes": 2 + 2 + 1}]  # themes, cities and the revision node only


def test_a_relationship_to_a_node_iccmatch_does_not_know_fails_the_snapshot_by_name(
    store: Neo4jStore,
) -> None:
    """Snapshots name endpoints through the nodes they read (by internal id): a
    relationship typed like iccmatch's but joining a foreign node is reported, never
    returned with a wrong or missing id."""
    store.upsert(GraphBatch({Kind.THEMES: _themes("Housing"), Kind.CITIES: [_city("lisbon")]}))
    _cypher(
        store,
        "MATCH (b:Theme {id: 't0'}) CREATE (:Visitor {id: 'v1'})-[:SCORES {score: 1.0}]->(b)",
    )
    with pytest.raises(IccmatchError, match="a SCORES relationship joins a node without"):
        store.snapshot()


def test_snapshots_and_ingests_log_no_server_hints(
    store: Neo4jStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's notifications (a kind not stored yet, the internal ids the snapshot
    reads on purpose) are for statement authors: the driver logged each as a warning, about
    50 per snapshot, into the API server's log."""
    with caplog.at_level(logging.INFO, logger="neo4j.notifications"):
        store.upsert(GraphBatch({Kind.THEMES: _themes("Housing"), Kind.CITIES: [_city("lisbon")]}))
        snap = store.snapshot()
    assert len(snap.cities) == 1
    assert [
        r.getMessage() for r in caplog.records if r.name.startswith("neo4j.notifications")
    ] == []
