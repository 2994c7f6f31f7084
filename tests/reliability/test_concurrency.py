"""Proof 3: concurrent writers end in a state some serial order reaches; readers see one state.

* Two ingests of different datasets touching overlapping rows (the same cities through
  different columns, the same theme renamed two ways, the same scores and ties) and the
  acceptance of a cluster proposal made beforehand run at the same time: as three
  processes on one SQLite file (file-level locking) and as three threads on one Neo4j
  store (as in an API worker). The final rows and revision must equal those of one of the
  six serial orders, computed beforehand on fresh stores; no update may be lost (a city
  keeps both ingests' columns) and no node or relationship may exist twice.
* Two deterministic interleavings pin down what the random one can only catch sometimes:
  an update that waits for another writer's lock must not overwrite that writer's
  columns with what it read before the lock (lost update), and a snapshot taken while
  another writer commits must be the state before or the state after, never a mix.
"""

from __future__ import annotations

import itertools
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import graph.neo4j_store
import graph.sqlite_store
from api.services.clusters import ClusterService
from api.services.network import NetworkService
from graph.model import SPECS, Kind
from graph.neo4j_store import Neo4jStore
from graph.open import open_store
from graph.store import GraphBatch, GraphStore
from ingest.load import ingest_path
from matching.clusters import ClusterParams
from tests.conftest import SAMPLE, _wipe
from tests.helpers import write_csvs
from tests.reliability.support import (
    PYTHON,
    Child,
    HashEncoder,
    State,
    describe,
    neo4j_transactions,
    restore_sqlite,
    state,
    state_of_url,
    wait_until_quiet,
)

pytestmark = pytest.mark.slow
NO_HANG_S = 120
ROUNDS = 3

# --- the three operations ---------------------------------------------------------------


def _datasets(folder: Path) -> tuple[Path, Path]:
    """Two ingests over the sample network that touch overlapping rows in different ways."""
    store = open_store(f"sqlite:///{folder / 'read-sample.db'}")
    try:
        assert ingest_path(SAMPLE, store).ok
        snap = store.snapshot()
    finally:
        store.close()
    required = ("id", "name", "country", "lat", "lon")
    cities = [{f: getattr(c, f) for f in required} for c in snap.cities]
    ids = [c["id"] for c in cities]
    scores = list(snap.index_scores)
    pairs = [(a, b) for a, b in zip(ids[::3], ids[1::3], strict=False)][:40]
    a = {
        # cities 0-119: a new population (B sets the hours of 40-158: both must survive)
        "cities": [{**c, "population": 1000 + i} for i, c in enumerate(cities[:120])],
        "themes": [{"id": "education", "name": "Education (renamed by A)"}],
        "index_scores": [
            {"city_id": s.city_id, "theme_id": s.theme_id, "score": 11.0} for s in scores[:800]
        ],
        "partnerships": [
            {"city_a": x, "city_b": y, "kind": "project", "since": 2020} for x, y in pairs[:30]
        ],
    }
    b = {
        "cities": [{**c, "coordinator_hours": 7.5} for c in cities[40:]],
        "themes": [{"id": "education", "name": "Education (renamed by B)"}],
        "index_scores": [
            {"city_id": s.city_id, "theme_id": s.theme_id, "score": 22.0} for s in scores[-800:]
        ],
        "partnerships": [
            {"city_a": x, "city_b": y, "kind": "project", "since": 2021} for x, y in pairs[10:40]
        ],
    }
    return write_csvs(folder / "a", a), write_csvs(folder / "b", b)


def _accept(store: GraphStore, proposal_id: str) -> None:
    ClusterService(NetworkService(store, HashEncoder())).accept(proposal_id)


def _initial(url: str) -> tuple[str, dict[str, Any]]:
    """Load the sample and save a cluster proposal: the state every order starts from."""
    store = open_store(url)
    try:
        assert ingest_path(SAMPLE, store).ok
        proposal = ClusterService(NetworkService(store, HashEncoder())).propose(
            ClusterParams(themes=("education", "anti-rumours"), seed=3)
        )
        assert proposal["clusters"], "the sample should make a real proposal"
        return proposal["id"], proposal
    finally:
        store.close()


def _serial_outcomes(
    folder: Path, template: Path, a: Path, b: Path, proposal_id: str
) -> dict[str, State]:
    db = folder / "serial.db"
    outcomes: dict[str, State] = {}
    for order in itertools.permutations("ABC"):
        restore_sqlite(template, db)
        store = open_store(f"sqlite:///{db}")
        try:
            for op in order:
                if op == "C":
                    _accept(store, proposal_id)
                else:
                    assert ingest_path(a if op == "A" else b, store).ok
            outcomes["".join(order)] = state(store)
        finally:
            store.close()
    # the orders really differ, so matching one of them is a real check
    assert len({repr(s.rows) for s in outcomes.values()}) >= 4
    return outcomes


class NoSerialOrder(AssertionError):
    """The writers' end state matches none of the serial orders."""


def _assert_one_of(got: State, outcomes: dict[str, State], round_: int) -> str:
    for order, want in outcomes.items():
        if got == want:
            return order
    population = {c["id"]: c["population"] for c in got.rows["cities"]}
    hours = {c["id"]: c["coordinator_hours"] for c in got.rows["cities"]}
    both = [c for c, p in population.items() if 1000 <= (p or 0) < 1120 and hours[c] == 7.5]
    raise NoSerialOrder(
        f"round {round_}: the final state is no serial order's "
        f"({len(both)} of the 80 cities both ingests touch kept both columns): "
        + describe(got, *list(outcomes.items())[:2])
    )


def _assert_no_duplicates(url: str) -> None:
    """Every node id once per label, every relationship once per key (Neo4j only)."""
    if not url.startswith(("bolt", "neo4j")):
        return
    store = Neo4jStore(url)
    try:
        with store._driver.session() as session:  # test helper only
            for kind, spec in SPECS.items():
                if spec.label is not None:
                    q = f"MATCH (n:{spec.label.value}) RETURN count(n) AS n, count(DISTINCT n.id) AS d"
                else:
                    assert spec.rel is not None
                    extra = "".join(f", r.{f}" for f in spec.key[2:])
                    q = (
                        f"MATCH (a)-[r:{spec.rel.value}]->(b) "
                        f"RETURN count(r) AS n, count(DISTINCT [a.id, b.id{extra}]) AS d"
                    )
                row = session.run(q).single(strict=True)
                assert row["n"] == row["d"], f"{kind.value}: {row['n']} stored, {row['d']} distinct"
    finally:
        store.close()


# --- three writers at once --------------------------------------------------------------

OP = """
import sys
import time
from pathlib import Path
from graph.open import open_store
from ingest.load import ingest_path
from api.services.clusters import ClusterService
from api.services.network import NetworkService
from tests.reliability.support import HashEncoder

op, url, arg, delay = sys.argv[1:5]
store = open_store(url)
print("READY", flush=True)
sys.stdin.readline()
time.sleep(float(delay))
if op == "accept":
    ClusterService(NetworkService(store, HashEncoder())).accept(arg)
    print("DONE True", flush=True)
else:
    report = ingest_path(Path(arg), store)
    print("DONE", report.ok, [str(e) for e in report.errors[:3]], flush=True)
store.close()
"""


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("concurrent")
    a, b = _datasets(folder)
    template = folder / "initial.db"
    proposal_id, proposal = _initial(f"sqlite:///{template}")
    return {
        "a": a,
        "b": b,
        "template": template,
        "proposal_id": proposal_id,
        "proposal": proposal,
        "outcomes": _serial_outcomes(folder, template, a, b, proposal_id),
    }


def test_two_sqlite_ingests_and_an_accept_in_three_processes_end_in_a_serial_order(
    planned: dict[str, Any], tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    orders = []
    for round_ in range(ROUNDS):
        restore_sqlite(planned["template"], db)
        delays = _delays(round_)
        children = [
            Child([PYTHON, "-c", OP, "ingest", url, str(planned["a"]), delays[0]]),
            Child([PYTHON, "-c", OP, "ingest", url, str(planned["b"]), delays[1]]),
            Child([PYTHON, "-c", OP, "accept", url, planned["proposal_id"], delays[2]]),
        ]
        try:
            for child in children:
                child.wait_for("READY", NO_HANG_S)
            for child in children:
                child.send("go\n")
            for child in children:
                _, line = child.wait_for("DONE", NO_HANG_S)
                assert line.startswith("DONE True"), (line, "".join(child.stderr)[-2000:])
                assert child.wait(NO_HANG_S) == 0
        finally:
            for child in children:
                child.kill()
        orders.append(_assert_one_of(state_of_url(url), planned["outcomes"], round_))
    print(f"SQLite processes ended as serial orders {orders}", file=sys.stderr)


@pytest.mark.neo4j
def test_two_neo4j_ingests_and_an_accept_in_three_threads_end_in_a_serial_order(
    planned: dict[str, Any], neo4j_url: str
) -> None:
    orders = []
    for round_ in range(ROUNDS):
        _wipe(neo4j_url)
        store = open_store(neo4j_url)
        try:
            assert ingest_path(SAMPLE, store).ok
            store.put_document("cluster_proposals", planned["proposal_id"], planned["proposal"])
            _three_threads(
                [
                    partial(_ingest_ok, planned["a"], store),
                    partial(_ingest_ok, planned["b"], store),
                    partial(_accept, store, planned["proposal_id"]),
                ],
                _delays(round_),
            )
            wait_until_quiet(neo4j_url, NO_HANG_S)
            got = state(store)
        finally:
            store.close()
        # the wipe restarts the revision, so the sample is revision 1 here as in SQLite
        orders.append(_assert_one_of(got, planned["outcomes"], round_))
        _assert_no_duplicates(neo4j_url)
    print(f"Neo4j threads ended as serial orders {orders}", file=sys.stderr)


def _three_threads(ops: list[Callable[[], object]], delays: list[str]) -> None:
    """Run the operations at once (a barrier, then each its seeded offset); re-raise failures."""
    start = threading.Barrier(len(ops))
    errors: list[BaseException] = []

    def run(work: Callable[[], object], delay: str) -> None:
        try:
            start.wait(NO_HANG_S)
            time.sleep(float(delay))
            work()
        except BaseException as e:  # reported below, with the others
            errors.append(e)

    threads = [threading.Thread(target=run, args=pair) for pair in zip(ops, delays, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(NO_HANG_S)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert not errors, errors


def _delays(round_: int) -> list[str]:
    """Seeded start offsets per writer, so rounds start the three in different orders."""
    rng = random.Random(round_)
    return [f"{rng.uniform(0, 0.2):.3f}" for _ in range(3)]


def _ingest_ok(path: Path, store: GraphStore) -> None:
    report = ingest_path(path, store)
    assert report.ok, [str(e) for e in report.errors[:3]]


# --- deterministic interleavings ----------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def two_handles(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, GraphStore, GraphStore]]:
    """Two store objects on one store (two processes' worth of connections)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'race.db'}"
    else:
        url = request.getfixturevalue("neo4j_url")
        _wipe(url)
    first, second = open_store(url), open_store(url)
    try:
        yield request.param, first, second
    finally:
        first.close()
        second.close()


CITY = {"id": "x", "name": "X", "country": "PT", "lat": 38.7, "lon": -9.1}


def _waiting_for_a_lock(kind: str, url: str, timeout: float) -> None:
    """Until the second writer is blocked behind the first (Neo4j); a moment (SQLite)."""
    if kind == "sqlite":
        time.sleep(0.5)  # BEGIN IMMEDIATE queues it behind the first; nothing to observe
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(str(t["status"]).startswith("Blocked") for t in neo4j_transactions(url)):
            return
        time.sleep(0.05)
    raise AssertionError("the second writer never waited for the first")


def test_an_update_that_waited_for_a_lock_does_not_overwrite_the_other_writer(
    two_handles: tuple[str, GraphStore, GraphStore],
) -> None:
    kind, first, second = two_handles
    theme = {"id": "t", "name": "T"}
    start = first.upsert(GraphBatch({Kind.CITIES: [dict(CITY)], Kind.THEMES: [theme]})).revision
    # the first writer sets the population and holds its transaction open after writing
    wrote, go = threading.Event(), threading.Event()

    def hold(done: int, total: int) -> None:
        if done == total:
            wrote.set()
            go.wait(NO_HANG_S)

    a = GraphBatch({Kind.THEMES: [dict(theme)], Kind.CITIES: [{**CITY, "population": 111}]})
    b = GraphBatch({Kind.CITIES: [{**CITY, "coordinator_hours": 9.0}]})
    t1 = threading.Thread(target=lambda: first.upsert(a, progress=hold))
    t1.start()
    try:
        assert wrote.wait(NO_HANG_S)
        # the second writer sets the hours of the same city, and has to wait
        t2 = threading.Thread(target=lambda: second.upsert(b))
        t2.start()
        _waiting_for_a_lock(kind, first.url, NO_HANG_S)
    finally:
        go.set()
        t1.join(NO_HANG_S)
    t2.join(NO_HANG_S)
    assert not t1.is_alive() and not t2.is_alive()
    (city,) = first.snapshot().cities
    assert (city.population, city.coordinator_hours) == (111, 9.0), "an update was lost"
    assert first.revision() == start + 2, "a revision bump was lost"


def test_a_snapshot_taken_while_another_writer_commits_is_one_state(
    two_handles: tuple[str, GraphStore, GraphStore],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    kind, reader, writer = two_handles
    cities = [{**CITY, "id": f"c{i}", "name": f"City {i}"} for i in range(3)]
    writer.upsert(GraphBatch({Kind.CITIES: cities}))
    before = state(writer)
    change = GraphBatch(
        {
            Kind.CITIES: [{**c, "population": 5} for c in cities],
            Kind.PARTNERSHIPS: [{"city_a": "c0", "city_b": "c1", "kind": "visit"}],
        }
    )
    # The reader pauses once it has read its city rows while the writer commits a batch.
    module = graph.neo4j_store if kind == "neo4j" else graph.sqlite_store
    real = module.build_rows
    paused = threading.Event()
    failures: list[BaseException] = []

    def pausing(k: Kind, *args: Any) -> Any:
        if k == Kind.CITIES and not paused.is_set():
            paused.set()
            t = threading.Thread(target=lambda: _capture(failures, writer.upsert, change))
            t.start()
            t.join(10)  # a store that makes writers wait for open snapshots may hold it
        return real(k, *args)

    monkeypatch.setattr(module, "build_rows", pausing)
    seen = state(reader)
    monkeypatch.setattr(module, "build_rows", real)
    assert paused.is_set() and not failures, failures
    wait_until_quiet(writer.url, NO_HANG_S)
    after = state(writer)
    assert after != before, "the writer's batch did not land"
    assert seen in (before, after), "a torn snapshot: " + describe(
        seen, ("before", before), ("after", after)
    )


def _capture(failures: list[BaseException], fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except BaseException as e:  # reported by the test
        failures.append(e)
