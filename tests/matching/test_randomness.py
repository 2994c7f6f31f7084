"""The one lock on igraph's process-wide generator: seeded results hold under concurrency.

Analytics (communities) and cluster proposals (Leiden per pool) both seed igraph's one
generator. Without ``matching.kernel.randomness.seeded_igraph`` holding a single lock,
a thread could re-seed the generator while another's Leiden draws from it, and the same
request would give a different answer under load. Here both run at once, in two
threads, round after round, and each must give exactly its single-threaded result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import igraph as ig
import pytest

from graph.model import from_props
from graph.snapshot import NetworkSnapshot, build_snapshot
from matching.analytics import network_stats
from matching.clusters import ClusterParams, propose_clusters
from tests.helpers import batch_of
from tests.matching.clusters.support import planted

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
ROUNDS = 6
CALLS_PER_ROUND = 5


@pytest.fixture(scope="module")
def sample() -> NetworkSnapshot:
    batch = batch_of(SAMPLE)
    return build_snapshot(
        1, {kind: [from_props(kind, props) for props in rows] for kind, rows in batch.rows.items()}
    )


@pytest.fixture
def slow_swaps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each swap of igraph's generator sleeps a millisecond after it, so the other thread
    runs while a seeded generator is in place: without the lock it would re-seed (or
    restore) the generator under a Leiden call about to draw from it. Without the sleep
    that window is a few bytecodes wide and a missing lock would rarely show."""
    swap = ig.set_random_number_generator

    def slow_swap(generator: Any) -> None:
        swap(generator)
        time.sleep(0.001)

    monkeypatch.setattr(ig, "set_random_number_generator", slow_swap)


def _together(jobs: dict[str, Callable[[], Any]], calls: int) -> dict[str, list[Any]]:
    """Run each job ``calls`` times in its own thread, all threads released at once."""
    start = threading.Barrier(len(jobs))
    results: dict[str, list[Any]] = {name: [] for name in jobs}
    errors: list[BaseException] = []

    def work(name: str, job: Callable[[], Any]) -> None:
        try:
            start.wait()
            for _ in range(calls):
                results[name].append(job())
        except BaseException as e:  # surfaced below: a thread's exception must fail the test
            errors.append(e)

    threads = [threading.Thread(target=work, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    if errors:
        raise errors[0]
    return results


def test_seeded_leiden_gives_its_single_threaded_result_beside_another(
    sample: NetworkSnapshot, slow_swaps: None
) -> None:
    inp = planted(120, noise=1.0, n_themes=4, seed=3).inp
    params = ClusterParams(max_themes=4, seed=5, method="heuristic")  # Leiden + repair

    def stats() -> dict[str, Any]:
        return network_stats(sample, seed=7).to_dict()

    def clusters() -> dict[str, Any]:
        return propose_clusters(inp, params).to_dict()

    alone = {"stats": stats(), "clusters": clusters()}
    # the seeds matter, so a generator re-seeded by the other thread would show
    assert network_stats(sample, seed=8).to_dict()["communities"] != alone["stats"]["communities"]
    other_seed = ClusterParams(max_themes=4, seed=6, method="heuristic")
    assert propose_clusters(inp, other_seed).to_dict()["clusters"] != alone["clusters"]["clusters"]

    for _ in range(ROUNDS):
        results = _together({"stats": stats, "clusters": clusters}, CALLS_PER_ROUND)
        for name, runs in results.items():
            assert len(runs) == CALLS_PER_ROUND
            assert all(run == alone[name] for run in runs), f"{name} changed under concurrency"
