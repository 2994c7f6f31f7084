"""A maximum span makes geographic clusters regions (both solvers); the fair objective
never lowers the worst-off city's benefit and reports its price.

Spans are measured here from the input's coordinates with the kernel's haversine, and
benefits recomputed from the input affinity, so a bug in the rule checker or in the
proposal's own metrics cannot hide one in a solver.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.clusters import (
    ClusterInfeasible,
    ClusterInput,
    ClusterParams,
    ClusterProposal,
    check_groups,
    evaluate_clusters,
    propose_clusters,
)
from matching.clusters.pools import build_problem
from matching.clusters.rules import PoolCluster, worst_benefit
from matching.kernel.geometry import distance_matrix_km
from tests.matching.clusters.support import (
    assert_valid,
    placed_input,
    propose_or_none,
    random_input,
)

SPAN = 1500.0


def world(n_europe: int = 16, seed: int = 0) -> ClusterInput:
    """European cities in four countries, three Australian cities and Auckland.

    Affinity is random and strong between every pair, so only the span keeps the far
    cities out: without it they would join European clusters (as on the sample).
    """
    rng = np.random.default_rng(seed)
    eu = [("ES", 40.4, -3.7), ("PT", 38.7, -9.1), ("FR", 45.7, 4.8), ("IT", 45.5, 9.2)]
    rows = [
        (*eu[i % 4][:1], eu[i % 4][1] + rng.uniform(-2, 2), eu[i % 4][2] + rng.uniform(-2, 2))
        for i in range(n_europe)
    ]
    rows += [
        ("AU", -37.8, 144.9),
        ("AU", -37.7, 144.6),
        ("AU", -33.9, 151.2),
        ("NZ", -36.85, 174.76),
    ]
    n = len(rows)
    A = rng.uniform(0.3, 0.6, size=(n, n))
    A = (A + A.T) / 2
    np.fill_diagonal(A, 0.0)
    A[n_europe:, :] += 0.3  # the far cities are the most attractive partners of all
    A[:, n_europe:] += 0.3
    np.fill_diagonal(A, 0.0)
    names = [f"City {i}" for i in range(n_europe)] + ["Melbourne", "Melton", "Sydney", "Auckland"]
    return placed_input(
        A,
        tuple(r[0] for r in rows),
        np.asarray([r[1] for r in rows]),
        np.asarray([r[2] for r in rows]),
        tuple(names),
    )


def spans_km(inp: ClusterInput, prop: ClusterProposal) -> list[float]:
    pos = {c: i for i, c in enumerate(inp.city_ids)}
    out = []
    for c in prop.clusters:
        g = [pos[m] for m in c.members]
        out.append(float(distance_matrix_km(inp.lat[g], inp.lon[g], inp.lat[g], inp.lon[g]).max()))
    return out


def assert_within(inp: ClusterInput, prop: ClusterProposal, span: float) -> None:
    for c, s in zip(prop.clusters, spans_km(inp, prop), strict=True):
        assert s <= span + 1e-3, f"{c.id} spans {s:.0f} km, over {span:.0f}"
    status = {s.name: s for s in prop.constraints}["max_span"]
    assert status.status == "satisfied" and status.violated == 0


@pytest.mark.parametrize("method", ["heuristic", "exact"])
def test_no_geographic_cluster_exceeds_its_span_and_far_cities_are_left_out_with_why(
    method: str,
) -> None:
    inp = world()
    far = {"c16", "c17", "c18", "c19"}
    plain = ClusterParams(kind="geographic", min_size=3, max_size=5, method=method, time_limit_s=2)
    # without a span the far, attractive cities are pulled into far clusters
    loose = propose_clusters(inp, plain)
    assert max(spans_km(inp, loose)) > SPAN
    params = dataclasses.replace(plain, max_span_km=SPAN)
    prop = propose_clusters(inp, params)
    assert_valid(inp, params, prop)
    assert_within(inp, prop, SPAN)
    assert method in ("heuristic", "exact") and prop.method.startswith(
        "exact" if method == "exact" else "leiden"
    )
    placed = {m for c in prop.clusters for m in c.members}
    assert not placed & far
    assert len(placed) >= 12  # Europe is still clustered
    why = {u.city_id: u for u in prop.unassigned}
    assert why["c19"].kind == "span"
    assert why["c19"].reason == "no other candidate within 1,500 km (max_span_km)"
    for c in ("c16", "c17", "c18"):  # three Australians: one country, no foreigner near
        assert why[c].kind == "span" and "is in AU" in why[c].reason, why[c]
    assert prop.metrics["max_span_km"] == SPAN
    assert float(prop.metrics["widest_span_km"]) <= SPAN
    for c in prop.clusters:
        assert c.components["span_km"] <= SPAN + 1e-3


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(10, 40),
    span=st.sampled_from([300.0, 700.0, 1500.0]),
    kind=st.sampled_from(["geographic", "thematic"]),
    allow_single_country=st.booleans(),
)
def test_the_leiden_path_keeps_every_rule_and_the_span(
    seed: int, n: int, span: float, kind: str, allow_single_country: bool
) -> None:
    inp = random_input(seed, n)
    params = ClusterParams(
        kind=kind,  # type: ignore[arg-type]
        min_size=2,
        max_size=5,
        lead_min_strength=30.0,
        allow_single_country=allow_single_country,
        max_span_km=span,
        method="heuristic",
        seed=seed % 1000,
    )
    prop = propose_or_none(inp, params)
    if prop is not None:
        assert_valid(inp, params, prop)
        assert_within(inp, prop, span)


@pytest.mark.parametrize("seed", [1, 2, 3, 5, 8])
def test_the_exact_path_keeps_every_rule_and_the_span(seed: int) -> None:
    inp = random_input(seed, 14, n_themes=1)
    params = ClusterParams(
        kind="geographic",
        min_size=2,
        max_size=4,
        lead_min_strength=30.0,
        allow_single_network=True,
        max_span_km=700.0,
        method="exact",
        time_limit_s=2,
        seed=seed,
    )
    prop = propose_or_none(inp, params)
    if prop is None:
        return
    assert prop.method.startswith("exact")
    assert_valid(inp, params, prop)
    assert_within(inp, prop, 700.0)


def test_locks_and_pools_no_span_can_hold_are_refused_with_the_span_to_ask_for() -> None:
    inp = world()
    params = ClusterParams(kind="geographic", min_size=3, max_size=5, max_span_km=SPAN)
    with pytest.raises(ClusterInfeasible) as e:
        propose_clusters(inp, dataclasses.replace(params, locked={"g": ("c0", "c19")}))
    assert e.value.constraint == "max_span_km" and "raise max_span_km to" in str(e.value)
    assert isinstance(e.value.suggestion, int) and e.value.suggestion > 15_000
    with pytest.raises(ClusterInfeasible) as e:
        propose_clusters(inp, dataclasses.replace(params, max_span_km=50.0))
    assert e.value.constraint == "max_span_km"
    assert isinstance(e.value.suggestion, int)
    # the suggestion is a span at which some group of min_size exists (for distance alone)
    ok = propose_clusters(
        inp,
        dataclasses.replace(
            params,
            max_span_km=float(e.value.suggestion),
            allow_single_country=True,
            mixed_membership=False,
        ),
    )
    assert ok.clusters


def test_an_edit_beyond_the_span_is_reported_as_broken() -> None:
    inp = world()
    params = ClusterParams(kind="geographic", min_size=3, max_size=5, max_span_km=SPAN)
    out = evaluate_clusters(inp, params, {"a": ("c0", "c4", "c19"), "b": ("c1", "c5", "c8")})
    status = {s.name: s for s in out.constraints}["max_span"]
    assert status.status == "violated" and status.violated == 1 and status.satisfied == 1


def test_any_grouping_is_judged_by_the_span_too() -> None:
    inp = world()
    params = ClusterParams(kind="geographic", min_size=3, max_size=5, max_span_km=SPAN)
    statuses = {s.name: s for s in check_groups(inp, params, [[0, 4, 19], [1, 5, 8]])}
    assert statuses["max_span"].violated == 1 and statuses["max_span"].satisfied == 1


def test_thematic_requests_have_no_span_unless_asked() -> None:
    inp = world()
    params = ClusterParams(min_size=3, max_size=5, method="heuristic")
    assert params.max_span_km is None
    prop = propose_clusters(inp, params)
    assert "max_span" not in {s.name for s in prop.constraints}
    asked = dataclasses.replace(params, max_span_km=SPAN)
    prop = propose_clusters(inp, asked)
    assert_valid(inp, asked, prop)
    assert_within(inp, prop, SPAN)


# --------------------------------------------------------------------------- fair


def _benefits(inp: ClusterInput, params: ClusterParams, prop: ClusterProposal) -> float:
    """The worst-off benefit, recomputed from the pools the request builds."""
    problem = build_problem(inp, params)
    pos = {c: i for i, c in enumerate(inp.city_ids)}
    raw = []
    for c in prop.clusters:
        p = next(
            k
            for k, pool in enumerate(problem.pools)
            if pool.theme < 0 or inp.theme_ids[pool.theme] == c.theme_ids[0]
        )
        local = {int(g): a for a, g in enumerate(problem.pools[p].idx)}
        raw.append(PoolCluster(p, tuple(sorted(local[pos[m]] for m in c.members))))
    worst = worst_benefit(problem.pools, raw)
    assert worst is not None
    return worst


def _fair_pair(
    inp: ClusterInput, params: ClusterParams
) -> tuple[ClusterProposal, ClusterProposal] | None:
    plain = propose_or_none(inp, params)
    if plain is None or not plain.clusters:
        return None
    fair = propose_clusters(inp, dataclasses.replace(params, fair=True))
    return plain, fair


def _check_fair(
    inp: ClusterInput, params: ClusterParams, plain: ClusterProposal, fair: ClusterProposal
) -> None:
    assert_valid(inp, dataclasses.replace(params, fair=True), fair)
    w_plain, w_fair = _benefits(inp, params, plain), _benefits(inp, params, fair)
    assert w_fair >= w_plain - 1e-9, (w_plain, w_fair)
    # the price of fairness, as reported, is the plain proposal's beside this one's
    m = fair.metrics
    assert fair.fair and not plain.fair
    assert m["plain_objective"] == pytest.approx(plain.objective, abs=1e-5)
    assert m["plain_worst_benefit"] == pytest.approx(w_plain, abs=1e-5)
    assert m["worst_benefit"] == pytest.approx(w_fair, abs=1e-5)
    assert m["price_of_fairness"] == pytest.approx(plain.objective - fair.objective, abs=1e-5)
    # coverage is kept: the same willing cities are served
    assert m["objective_coverage"] == pytest.approx(plain.metrics["objective_coverage"], abs=1e-6)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("kind", ["thematic", "geographic"])
def test_fair_never_lowers_the_worst_off_benefit_on_the_leiden_path(seed: int, kind: str) -> None:
    inp = random_input(seed, 40)
    params = ClusterParams(
        kind=kind,  # type: ignore[arg-type]
        min_size=3,
        max_size=6,
        lead_min_strength=30.0,
        method="heuristic",
        max_span_km=1500.0 if kind == "geographic" else None,
        seed=seed,
    )
    pair = _fair_pair(inp, params)
    if pair is None:
        return
    _check_fair(inp, params, *pair)


def test_fair_raises_the_worst_off_where_the_plain_proposal_leaves_one_behind() -> None:
    inp = world()
    params = ClusterParams(
        kind="geographic", min_size=3, max_size=5, max_span_km=SPAN, method="heuristic"
    )
    pair = _fair_pair(inp, params)
    assert pair is not None
    plain, fair = pair
    _check_fair(inp, params, plain, fair)
    assert fair.metrics["worst_benefit"] > plain.metrics["worst_benefit"]


def _exact(seed: int) -> ClusterParams:
    """Small clusters on the exact path, where the fair objective is solved to optimality."""
    return ClusterParams(
        min_size=2,
        max_size=4,
        lead_min_strength=30.0,
        allow_single_network=True,
        method="exact",
        time_limit_s=2,
        seed=seed,
    )


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 6])
def test_fair_is_max_min_then_total_on_the_exact_path(seed: int) -> None:
    inp = random_input(seed, 12, n_themes=1)
    params = _exact(seed)
    pair = _fair_pair(inp, params)
    if pair is None:
        return
    plain, fair = pair
    assert "fair" in fair.method and fair.method.startswith("exact")
    _check_fair(inp, params, plain, fair)
    # the price is never negative: the plain proposal had the best total at that coverage
    assert fair.objective <= plain.objective + 1e-6 or "optimal" not in plain.method


@pytest.mark.parametrize("seed", [2, 6])
def test_exact_fair_lifts_a_worst_off_city_the_plain_optimum_leaves_behind(seed: int) -> None:
    """On these inputs the plain optimum's worst-off city can be lifted at a small cost."""
    inp = random_input(seed, 12, n_themes=1)
    params = _exact(seed)
    pair = _fair_pair(inp, params)
    assert pair is not None
    plain, fair = pair
    _check_fair(inp, params, plain, fair)
    assert fair.metrics["worst_benefit"] > plain.metrics["worst_benefit"] + 1e-3
    assert fair.metrics["price_of_fairness"] > 0


def test_a_large_geographic_request_is_solved_in_regions_that_no_cluster_crosses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above ``REGION_CITIES`` cities a geographic request is solved as regional pools
    (made small here so that a small network has several): every rule still holds, ids
    stay unique, a lock stays whole, and the proposal says how it was split."""
    import matching.clusters.pools as pools

    monkeypatch.setattr(pools, "REGION_CITIES", 12)
    inp = random_input(7, 60)
    able = np.flatnonzero(inp.capacity > 0)
    a, b = int(able[0]), int(able[-1])
    params = ClusterParams(
        kind="geographic",
        min_size=2,
        max_size=5,
        lead_min_strength=30.0,
        allow_single_country=True,
        method="heuristic",
        locked={"kept": (inp.city_ids[a], inp.city_ids[b])},
    )
    parts = pools.regions(inp, able, [[a, b]])
    assert all(len(r) <= 13 for r in parts) and len(parts) >= 3
    assert sorted(np.concatenate(parts).tolist()) == able.tolist()
    assert any({a, b} <= set(r.tolist()) for r in parts)
    problem = build_problem(inp, params)
    skipped = [k for k in problem.skipped if k.startswith("geographic region of ")]
    assert sum(p.theme < 0 for p in problem.pools) + len(skipped) == len(parts)
    prop = propose_clusters(inp, params)
    assert_valid(inp, params, prop)
    assert prop.metrics["regional_pools"] == len(parts) - len(skipped) > 1
    assert "regional pools" in str(prop.metrics["regional_pools_note"])
    assert len({c.id for c in prop.clusters}) == len(prop.clusters)
    region_of = {inp.city_ids[int(g)]: r for r, part in enumerate(parts) for g in part}
    for c in prop.clusters:
        assert len({region_of[m] for m in c.members}) == 1, c.members
    kept = next(c for c in prop.clusters if inp.city_ids[a] in c.members)
    assert inp.city_ids[b] in kept.members


def test_sums_set_aside_and_rebuilt_are_the_sums() -> None:
    """``PoolState.release``/``restore`` (large pools between phases): the rebuilt sums are
    the incremental ones, to rounding."""
    from matching.clusters.large import PoolSolver

    inp = random_input(3, 40)
    problem = build_problem(inp, ClusterParams(kind="geographic", min_size=2, max_size=5))
    pool = problem.pools[0]
    solver = PoolSolver(pool, problem.rules, np.ones(pool.k, dtype=bool), 0)
    solver.run()
    n_c = len(solver.members)
    kept = solver.S[:, :n_c].copy()
    assert np.abs(kept).sum() > 0
    solver.release()
    assert solver.S.size == 0
    solver.restore()
    np.testing.assert_allclose(solver.S[:, :n_c], kept, atol=1e-9)
