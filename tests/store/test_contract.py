"""The store contract: every backend passes the same tests (SQLite and the real Neo4j)."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph import cypher
from graph.errors import Conflict
from graph.model import Kind, Label, RelType
from graph.open import open_store
from graph.store import GraphBatch, GraphStore
from ingest.export import export_csv
from ingest.load import ingest_path
from tests.helpers import HOSTILE, batch_of, tiny, write_csvs


@pytest.fixture
def sample(tmp_path: Path) -> GraphBatch:
    return batch_of(write_csvs(tmp_path / "tiny", tiny()))


def test_upsert_creates_every_row_and_reports_per_kind(
    store: GraphStore, sample: GraphBatch
) -> None:
    report = store.upsert(sample)
    assert report.created == len(sample) == 20
    assert report.updated == report.unchanged == 0
    assert report.by_kind[Kind.CITIES].created == 5
    assert report.by_kind[Kind.PARTNERSHIPS].created == 2
    snap = store.snapshot()
    assert snap.counts() == {k.value: len(sample.rows.get(k, [])) for k in Kind}


def test_reingest_changes_nothing_and_keeps_the_revision(
    store: GraphStore, sample: GraphBatch
) -> None:
    first = store.upsert(sample)
    again = store.upsert(sample)
    assert again.changed == 0
    assert again.unchanged == len(sample)
    assert store.revision() == first.revision


def test_update_changes_one_row_and_bumps_the_revision(store: GraphStore, tmp_path: Path) -> None:
    data = tiny()
    store.upsert(batch_of(write_csvs(tmp_path / "a", data)))
    before = store.revision()
    data["cities"][2]["population"] = 230000
    data["city_themes"][0]["priority"] = 3
    report = store.upsert(batch_of(write_csvs(tmp_path / "b", data)))
    assert (report.created, report.updated) == (0, 2)
    assert store.revision() > before
    snap = store.snapshot()
    messina = next(c for c in snap.cities if c.id == "it-messina")
    assert messina.population == 230000
    assert {(t.city_id, t.priority) for t in snap.city_themes} == {
        ("pt-amadora", 3),
        ("it-messina", 4),
    }


def test_columns_left_out_keep_their_stored_values(store: GraphStore, tmp_path: Path) -> None:
    store.upsert(batch_of(write_csvs(tmp_path / "a", tiny())))
    only_names = {
        "cities": [
            {"id": "it-messina", "name": "Messina", "country": "IT", "lat": 38.1938, "lon": 15.554}
        ]
    }
    report = store.upsert(batch_of(write_csvs(tmp_path / "b", only_names)))
    assert report.unchanged == 1
    messina = next(c for c in store.snapshot().cities if c.id == "it-messina")
    assert messina.description == "Port city on the Strait."
    assert messina.networks == ("cdd",)


def test_snapshot_is_sorted_typed_and_keeps_unicode(store: GraphStore, sample: GraphBatch) -> None:
    store.upsert(sample)
    snap = store.snapshot()
    ids = [c.id for c in snap.cities]
    assert ids == sorted(ids)
    names = {c.name for c in snap.cities}
    assert {"Klaksvík", "Ιωάννινα"} <= names
    assert {n.name for n in snap.networks} == {"Città del Dialogo", "RECI"}
    klaksvik = next(c for c in snap.cities if c.id == "fo-klaksvik")
    assert klaksvik.languages == ("fo", "da", "en")
    assert klaksvik.population is None and klaksvik.networks == ()
    amadora_edu = next(s for s in snap.index_scores if s.city_id == "pt-amadora")
    assert amadora_edu.score == 82.0
    # partnerships are stored with city_a < city_b whatever order the file used
    assert all(p.city_a < p.city_b for p in snap.partnerships)
    assert snap.revision == store.revision() > 0


def test_export_round_trip_is_exact_and_deterministic(
    store_url: str, store: GraphStore, tmp_path: Path, sample: GraphBatch
) -> None:
    store.upsert(sample)
    export_csv(store.snapshot(), tmp_path / "e1")
    export_csv(store.snapshot(), tmp_path / "e2")
    for f in (tmp_path / "e1").iterdir():
        assert f.read_bytes() == (tmp_path / "e2" / f.name).read_bytes(), f.name
    again = ingest_path(tmp_path / "e1", store)
    assert again.ok and again.upsert.changed == 0
    # into a fresh store, the export reproduces the same snapshot
    fresh = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert ingest_path(tmp_path / "e1", fresh).ok
        a, b = store.snapshot(), fresh.snapshot()
        assert all(a.rows(k) == b.rows(k) for k in Kind)
    finally:
        fresh.close()


def test_delete_removes_a_row_and_its_relationship_rows(
    store: GraphStore, sample: GraphBatch
) -> None:
    store.upsert(sample)
    rev = store.revision()
    assert store.delete(Kind.CITIES, "gr-ioannina")
    snap = store.snapshot()
    assert "gr-ioannina" not in {c.id for c in snap.cities}
    assert all("gr-ioannina" not in (p.city_a, p.city_b) for p in snap.partnerships)
    assert store.revision() > rev
    assert store.delete(Kind.CITIES, "gr-ioannina") is False
    assert store.delete(Kind.PARTNERSHIPS, ("pt-amadora", "it-messina", "project"))
    assert len(store.snapshot().partnerships) == 0


def test_delete_refuses_a_row_others_still_name(store: GraphStore, sample: GraphBatch) -> None:
    store.upsert(sample)
    with pytest.raises(Conflict, match=r"co-1|sh-1"):
        store.delete(Kind.CITIES, "it-messina")
    with pytest.raises(Conflict, match="it-messina"):
        store.delete(Kind.NETWORKS, "cdd")
    assert "it-messina" in store.ids(Kind.CITIES)


def test_a_failure_in_the_middle_of_a_batch_writes_nothing(
    store: GraphStore, sample: GraphBatch
) -> None:
    calls = []

    def explode(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 3:  # networks and themes are written by now
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        store.upsert(sample, progress=explode)
    assert store.snapshot().counts() == {k.value: 0 for k in Kind}
    assert store.revision() == 0
    assert store.upsert(sample).created == len(sample)  # and the next write works


def test_dry_run_reports_but_writes_nothing(store: GraphStore, sample: GraphBatch) -> None:
    report = store.upsert(sample, dry_run=True)
    assert report.created == len(sample) and report.dry_run
    assert store.snapshot().counts()["cities"] == 0


def test_hostile_text_round_trips_verbatim(store: GraphStore, tmp_path: Path) -> None:
    data = tiny()
    for i, text in enumerate(HOSTILE):
        data["cities"].append(
            {
                "id": f"x-{i}",
                "name": text.replace("\n", " ") or "x",
                "country": "FR",
                "lat": 48.0,
                "lon": 2.0,
                "description": text,
            }
        )
    store.upsert(batch_of(write_csvs(tmp_path / "h", data)))
    snap = store.snapshot()
    stored = {c.id: c for c in snap.cities}
    for i, text in enumerate(HOSTILE):
        assert stored[f"x-{i}"].description == text
    assert len(snap.cities) == 5 + len(HOSTILE)  # nothing was dropped or deleted
    export_csv(snap, tmp_path / "out")
    assert ingest_path(tmp_path / "out", store).upsert.changed == 0


def test_control_characters_and_escape_lookalikes_survive_a_snapshot(store: GraphStore) -> None:
    texts = ["nul\x00byte", "\x00", "bell\x07 tab\t cr\r", "not a nul: \\u0000", "é \\"]
    cities = [
        {
            "id": f"c{i}",
            "name": f"City {i}",
            "country": "PT",
            "lat": 0.5,
            "lon": 1.5,
            "description": t,
        }
        for i, t in enumerate(texts)
    ]
    store.upsert(GraphBatch({Kind.CITIES: cities}))
    assert [c.description for c in store.snapshot().cities] == texts


def test_revision_grows_with_every_change(store: GraphStore, tmp_path: Path) -> None:
    data = tiny()
    revisions = [store.revision()]
    for pop in (1, 2, 3):
        data["cities"][0]["population"] = pop
        store.upsert(batch_of(write_csvs(tmp_path / str(pop), data)))
        revisions.append(store.revision())
    assert revisions == sorted(revisions) and len(set(revisions)) == 4


def test_a_label_outside_the_enum_cannot_reach_cypher() -> None:
    with pytest.raises(ValueError):
        cypher._label("City) DETACH DELETE (n")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        cypher._rel("PARTNER_OF]->() DETACH DELETE n //")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        cypher.write("cities; DROP", new=True)  # type: ignore[arg-type]
    every = [cypher.write(k, new=new) for k in Kind for new in (True, False)]
    every += [cypher.fetch(k) for k in Kind]
    assert all("$rows" in q or "$keys" in q for q in every)
    labels = {label.value for label in Label} | {rel.value for rel in RelType}
    assert {"City", "PARTNER_OF"} <= labels


def test_accepted_clusters_and_assignments_are_part_of_the_graph(
    store: GraphStore, tmp_path: Path
) -> None:
    data = tiny()
    data["clusters"] = [
        {
            "id": "cl-1",
            "name": "Anti-rumours South",
            "kind": "thematic",
            "members": "pt-amadora;it-messina;es-getxo",
            "theme_ids": "anti-rumours",
            "lead_city": "pt-amadora",
            "working_languages": "en",
            "revision": 3,
            "seed": 7,
            "params": '{"min_size": 3}',
        }
    ]
    data["assignments"] = [{"expert_id": "exp-1", "cluster_id": "cl-1", "score": 0.8}]
    data["partner_interests"] = [
        {"city_id": "it-messina", "partner_id": "es-getxo", "status": "interested"}
    ]
    data["match_statuses"] = [
        {"city_a": "es-getxo", "city_b": "it-messina", "status": s, "on": on, "note": note}
        for s, on, note in (
            ("introduced", "2026-03-02", "by email"),
            ("meeting_held", "2026-04-20", ""),
        )
    ]
    data["expert_conflicts"] = [
        {"expert_id": "exp-1", "city_id": "it-messina", "reason": "advised it last cycle"}
    ]
    data["suggestions"] = [
        {"city_id": "it-messina", "partner_id": "es-getxo", "on": on, "rank": rank}
        for on, rank in (("2026-03-02", 2), ("2026-09-14", 1))
    ]
    store.upsert(batch_of(write_csvs(tmp_path / "c", data)))
    snap = store.snapshot()
    assert [(c.expert_id, c.city_id, c.reason) for c in snap.expert_conflicts] == [
        ("exp-1", "it-messina", "advised it last cycle")
    ]
    assert [(s.on, s.rank) for s in snap.suggestions] == [("2026-03-02", 2), ("2026-09-14", 1)]
    assert [(m.status, m.on, m.note) for m in snap.match_statuses] == [
        ("introduced", "2026-03-02", "by email"),
        ("meeting_held", "2026-04-20", None),
    ]
    (cluster,) = snap.clusters
    assert cluster.members == ("pt-amadora", "it-messina", "es-getxo")
    assert cluster.lead_city == "pt-amadora" and cluster.seed == 7
    assert snap.assignments[0].cluster_id == "cl-1"
    assert snap.partner_interests[0].status == "interested"
    with pytest.raises(Conflict, match="cl-1"):
        store.delete(Kind.CITIES, "es-getxo")  # an accepted cluster still names it
    assert store.delete(Kind.CLUSTERS, "cl-1")
    assert store.snapshot().assignments == ()  # the assignment went with its cluster


def test_embedding_cache_and_documents_do_not_move_the_revision(
    store: GraphStore, sample: GraphBatch
) -> None:
    store.upsert(sample)
    rev = store.revision()
    vec = bytes(range(16))
    store.cache_vectors("model-a", {"h1": vec, "h2": vec[::-1]})
    assert store.cached_vectors("model-a", ["h1", "h2", "h3"]) == {"h1": vec, "h2": vec[::-1]}
    assert store.cached_vectors("model-b", ["h1"]) == {}
    store.put_document("proposals", "p-1", {"clusters": [{"id": "c", "name": "Città"}]})
    store.put_document("proposals", "p-0", {"n": 0})
    assert store.get_document("proposals", "p-1") == {"clusters": [{"id": "c", "name": "Città"}]}
    assert store.get_document("proposals", "nope") is None
    assert [d.get("n") for d in store.list_documents("proposals")] == [0, None]
    assert store.revision() == rev
