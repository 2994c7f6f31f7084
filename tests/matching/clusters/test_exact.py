"""The exact CP-SAT path: optimal on tiny instances, never worse than the heuristic, and
it diagnoses what to relax."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from matching.clusters import ClusterInfeasible, ClusterInput, ClusterParams, propose_clusters
from matching.clusters.pools import build_problem
from matching.clusters.rules import PoolCluster, cluster_violations, objective, unmixed_allowed
from tests.matching.clusters.support import assert_valid, planted, propose_or_none, random_input


def _brute_force(inp: ClusterInput, params: ClusterParams) -> float:
    """Best objective over every set of disjoint valid clusters of one theme (tiny n only)."""
    problem = build_problem(inp, params)
    (pool,) = problem.pools
    k = pool.k
    best = -np.inf

    def partitions(items: list[int]):  # blocks plus an "unassigned" block (label -1)
        if not items:
            yield []
            return
        first, rest = items[0], items[1:]
        for part in partitions(rest):
            yield [[first], *part]
            for i in range(len(part)):
                yield [*part[:i], [first, *part[i]], *part[i + 1 :]]

    for part in partitions(list(range(k))):
        for leave in range(len(part) + 1):
            blocks = [b for t, b in enumerate(part) if t != leave]
            if leave == len(part):
                blocks = part
            if any(cluster_violations(pool, problem.rules, b) - {"mixed"} for b in blocks):
                continue
            unmixed = sum("mixed" in cluster_violations(pool, problem.rules, b) for b in blocks)
            if pool.mix_allowance >= 0 and unmixed > unmixed_allowed(pool, len(blocks)):
                continue
            if not blocks:
                continue
            raw = [PoolCluster(0, tuple(sorted(b))) for b in blocks]
            best = max(best, objective(problem.pools, problem.rules, raw))
    return float(best)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_exact_path_is_optimal_on_tiny_instances(seed: int) -> None:
    inp = random_input(seed, 8, n_themes=1)
    params = ClusterParams(
        min_size=2,
        max_size=3,
        lead_min_strength=40,
        method="exact",
        seed=seed,
        allow_single_network=True,
        time_limit_s=5,
    )
    prop = propose_or_none(inp, params)
    if prop is None:
        return
    assert prop.method == "exact CP-SAT (optimal)"
    assert prop.objective == pytest.approx(_brute_force(inp, params), rel=1e-9, abs=1e-6)
    assert_valid(inp, params, prop)


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_exact_objective_is_at_least_the_heuristics(seed: int) -> None:
    p = planted(24, noise=1.2, n_themes=2, seed=seed)
    base = ClusterParams(seed=seed, time_limit_s=2)

    heur = propose_clusters(p.inp, dataclasses.replace(base, method="heuristic"))
    exact = propose_clusters(p.inp, dataclasses.replace(base, method="exact"))
    assert exact.method.startswith("exact CP-SAT")
    assert heur.hard_constraints_ok and exact.hard_constraints_ok
    assert exact.objective >= heur.objective - 1e-6
    assert_valid(p.inp, dataclasses.replace(base, method="exact"), exact)


def test_exact_path_diagnoses_what_to_relax() -> None:
    # the locked pair speaks only Spanish; the only city that can lead speaks only English
    n = 8
    langs = np.zeros((n, 2), dtype=bool)
    langs[:, 0] = True  # en
    langs[[0, 1], 0] = False
    langs[[0, 1, 2, 3], 1] = True  # es
    strength = np.full((n, 1), 40.0)
    strength[5, 0] = 90.0
    inp = ClusterInput(
        city_ids=tuple(f"c{i}" for i in range(n)),
        names=tuple(f"City {i}" for i in range(n)),
        affinity=np.ones((n, n)) - np.eye(n),
        countries=("ES", "ES", "IT", "PT", "FR", "IT", "PT", "FR"),
        networks=((),) * n,
        membership=("international", "national") * 4,
        languages=langs,
        language_codes=("en", "es"),
        theme_ids=("t0",),
        theme_names=("Theme 0",),
        priority=np.full((n, 1), 3),
        strength=strength,
        capacity=np.ones(n, dtype=np.int64),
        lat=np.zeros(n),
        lon=np.zeros(n),
    )
    params = ClusterParams(min_size=3, max_size=4, locked={"t0": ("c0", "c1")}, method="exact")
    with pytest.raises(ClusterInfeasible) as err:
        propose_clusters(inp, params)
    assert err.value.constraint == "require_common_language"
    assert "drop require_common_language" in str(err.value)
    # the large path cannot dissolve a lock: it reports the broken rule instead of hiding it

    prop = propose_clusters(inp, dataclasses.replace(params, method="heuristic"))
    lead = next(s for s in prop.constraints if s.name == "lead")
    assert lead.status == "violated" and lead.violated == 1
