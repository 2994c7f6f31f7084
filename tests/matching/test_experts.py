"""Expert assignment: exact optimum (checked against HiGHS), constraints, fairness, reasons."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from graph.errors import IccmatchError, Infeasible, InvalidInput
from matching import experts
from matching.experts import (
    AffinityWeights,
    ExpertClusterData,
    FairnessTimeout,
    InfeasibleAssignment,
    assign_experts,
    build_affinity,
    cluster_mean_affinity,
    cosine_similarity,
    distance_matrix_km,
    place_conflicts,
    solve_assignment,
    solve_fair_assignment,
    spherical_centroids,
)

# --- references ----------------------------------------------------------------------


def lp_optimum(
    a: np.ndarray, cap: np.ndarray, dem: np.ndarray, forbidden: np.ndarray
) -> float | None:
    """The transportation LP's optimum by HiGHS (its polytope is integral); None: infeasible."""
    n_e, n_c = a.shape
    if dem.sum() == 0:
        return 0.0
    ei, ci = np.nonzero(~forbidden)
    if ei.size == 0:
        return None
    cols = np.arange(ei.size)
    a_ub = sparse.csr_matrix((np.ones(ei.size), (ei, cols)), shape=(n_e, ei.size))
    a_eq = sparse.csr_matrix((np.ones(ei.size), (ci, cols)), shape=(n_c, ei.size))
    res = linprog(
        -a[ei, ci], A_ub=a_ub, b_ub=cap, A_eq=a_eq, b_eq=dem, bounds=(0, 1), method="highs"
    )
    if res.status == 2:
        return None
    assert res.status == 0, res.message
    return float(-res.fun)


def max_flow_value(cap: np.ndarray, dem: np.ndarray, forbidden: np.ndarray) -> int:
    """Most expert seats any assignment fills (LP with <= demand; integral)."""
    n_e, n_c = forbidden.shape
    ei, ci = np.nonzero(~forbidden)
    if ei.size == 0:
        return 0
    cols = np.arange(ei.size)
    a_ub = sparse.vstack(
        [
            sparse.csr_matrix((np.ones(ei.size), (ei, cols)), shape=(n_e, ei.size)),
            sparse.csr_matrix((np.ones(ei.size), (ci, cols)), shape=(n_c, ei.size)),
        ]
    )
    res = linprog(
        -np.ones(ei.size), A_ub=a_ub, b_ub=np.concatenate([cap, dem]), bounds=(0, 1), method="highs"
    )
    return round(-res.fun)


def assert_valid(
    x: np.ndarray, cap: np.ndarray, dem: np.ndarray, forbidden: np.ndarray | None
) -> None:
    assert x.dtype.kind == "i"
    assert set(np.unique(x).tolist()) <= {0, 1}
    assert (x.sum(axis=1) <= cap).all()
    assert (x.sum(axis=0) == dem).all()
    if forbidden is not None:
        assert not x[forbidden].any()


def brute_force_fair(a, cap, dem, forbidden) -> tuple[float, float] | None:
    """(best worst-cluster mean, best total at it) over every feasible 0/1 assignment."""
    n_e, n_c = a.shape
    options = []
    for c in range(n_c):
        eligible = [e for e in range(n_e) if not forbidden[e, c]]
        options.append(list(itertools.combinations(eligible, int(dem[c]))))
    best: tuple[float, float] | None = None
    for choice in itertools.product(*options):
        load = np.zeros(n_e, dtype=int)
        for es in choice:
            load[list(es)] += 1
        if (load > cap).any():
            continue
        means = [sum(a[e, c] for e in es) / dem[c] for c, es in enumerate(choice) if dem[c] > 0]
        total = sum(a[e, c] for c, es in enumerate(choice) for e in es)
        key = (min(means) if means else math.inf, total)
        if best is None or key > best:
            best = key
    return best


def milp_max_min_mean(a, cap, dem, forbidden) -> float:
    """Max over 0/1 assignments of the worst cluster mean, by HiGHS MIP (gap 0)."""
    n_e, n_c = a.shape
    ei, ci = np.nonzero(~forbidden)
    n = ei.size
    cols = np.arange(n)
    cap_rows = sparse.csr_matrix((np.ones(n), (ei, cols)), shape=(n_e, n + 1))
    dem_rows = sparse.csr_matrix((np.ones(n), (ci, cols)), shape=(n_c, n + 1))
    active = np.flatnonzero(dem > 0)
    rows, cs, vals = [], [], []
    for r, c in enumerate(active):
        ks = np.flatnonzero(ci == c)
        rows += [r] * (ks.size + 1)
        cs += [*ks.tolist(), n]
        vals += [*(a[ei[ks], c] / dem[c]).tolist(), -1.0]
    mean_rows = sparse.csr_matrix((vals, (rows, cs)), shape=(active.size, n + 1))
    objective = np.zeros(n + 1)
    objective[n] = -1.0
    res = milp(
        objective,
        constraints=[
            LinearConstraint(cap_rows, -np.inf, cap),
            LinearConstraint(dem_rows, dem, dem),
            LinearConstraint(mean_rows, 0, np.inf),
        ],
        integrality=np.r_[np.ones(n), 0],
        bounds=Bounds(np.r_[np.zeros(n), -np.inf], np.r_[np.ones(n), np.inf]),
        options={"mip_rel_gap": 0.0},
    )
    assert res.status == 0, res.message
    return float(-res.fun)


# --- strategies ----------------------------------------------------------------------

TIES = st.sampled_from([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0])
ANY = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
TIES_OR_ANY = st.one_of(TIES, ANY)


@st.composite
def instances(draw, max_e: int = 7, max_c: int = 5, values=TIES_OR_ANY, max_dem: int = 3):
    n_e, n_c = draw(st.integers(0, max_e)), draw(st.integers(0, max_c))
    a = np.array(draw(st.lists(values, min_size=n_e * n_c, max_size=n_e * n_c)), dtype=float)
    cap = np.array(draw(st.lists(st.integers(0, 3), min_size=n_e, max_size=n_e)), dtype=np.int64)
    dem = np.array(
        draw(st.lists(st.integers(0, max_dem), min_size=n_c, max_size=n_c)), dtype=np.int64
    )
    p_forbid = draw(st.sampled_from([0.0, 0.2, 0.5]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    forbidden = rng.random((n_e, n_c)) < p_forbid
    return a.reshape(n_e, n_c), cap, dem, forbidden


def random_instance(seed: int, n_e: int, n_c: int, slack: float):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n_e, n_c))
    cap = rng.integers(1, 4, n_e)
    dem = rng.integers(0, 4, n_c)
    forbidden = rng.random((n_e, n_c)) < 0.3
    while dem.sum() > slack * cap.sum():
        dem[rng.integers(n_c)] = max(0, dem[rng.integers(n_c)] - 1)
    return a, cap, dem, forbidden


@contextmanager
def sparse_pricing(rounds: int = 40) -> Iterator[None]:
    """Force the sparse-candidates-plus-pricing path on any size, as narrow as it goes:
    one candidate per cluster and expert, one pair admitted per pricing round."""
    with mock.patch.multiple(
        experts,
        _SPARSE_MIN_PAIRS=0,
        _SPARSE_PER_CLUSTER=(1, 0),
        _SPARSE_PER_EXPERT=(1, 0),
        _SPARSE_MAX_SHARE=1.01,
        _PRICING_PER_CLUSTER=1,
        _PRICING_PER_EXPERT=1,
        _PRICING_ROUNDS=rounds,
    ):
        yield


# --- the plain solver ------------------------------------------------------------------


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_solver_reaches_the_linprog_optimum_or_both_find_it_infeasible(inst) -> None:
    a, cap, dem, forbidden = inst
    best = lp_optimum(a, cap, dem, forbidden)
    if best is None:
        with pytest.raises(InfeasibleAssignment):
            solve_assignment(a, cap, dem, forbidden)
        return
    x = solve_assignment(a, cap, dem, forbidden)
    assert_valid(x, cap, dem, forbidden)
    assert (a * x).sum() == pytest.approx(best, abs=1e-7 * (1 + np.abs(a).sum()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_e=8, max_c=6))
def test_sparse_candidates_with_pricing_reach_the_same_optimum(inst) -> None:
    a, cap, dem, forbidden = inst
    best = lp_optimum(a, cap, dem, forbidden)
    with sparse_pricing():
        if best is None:
            with pytest.raises(InfeasibleAssignment):
                solve_assignment(a, cap, dem, forbidden)
            return
        x = solve_assignment(a, cap, dem, forbidden)
    assert_valid(x, cap, dem, forbidden)
    assert (a * x).sum() == pytest.approx(best, abs=1e-7 * (1 + np.abs(a).sum()))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("rounds", [40, 1])  # 1: pricing gives up, the full graph decides
def test_medium_instances_priced_from_narrow_candidates_match_linprog(
    seed: int, rounds: int
) -> None:
    a, cap, dem, forbidden = random_instance(
        seed, 40 if seed % 3 else 9, 15, slack=1.0 if seed % 3 else 3.0
    )
    if seed % 4 == 0:
        a = np.outer(np.abs(a[:, 0]), np.abs(a[0]))  # every cluster prefers the same experts
    best = lp_optimum(a, cap, dem, forbidden)
    with sparse_pricing(rounds):
        if best is None:
            with pytest.raises(InfeasibleAssignment):
                solve_assignment(a, cap, dem, forbidden)
            return
        x = solve_assignment(a, cap, dem, forbidden)
    assert_valid(x, cap, dem, forbidden)
    assert (a * x).sum() == pytest.approx(best, rel=1e-9)


@pytest.mark.parametrize("seed", range(12))
def test_medium_instances_match_linprog_including_infeasible_ones(seed: int) -> None:
    a, cap, dem, forbidden = random_instance(
        seed, 40 if seed % 3 else 9, 15, slack=1.0 if seed % 3 else 3.0
    )
    best = lp_optimum(a, cap, dem, forbidden)
    if best is None:
        with pytest.raises(InfeasibleAssignment) as err:
            solve_assignment(a, cap, dem, forbidden)
        assert err.value.missing == dem.sum() - max_flow_value(cap, dem, forbidden)
        return
    x = solve_assignment(a, cap, dem, forbidden)
    assert_valid(x, cap, dem, forbidden)
    assert (a * x).sum() == pytest.approx(best, rel=1e-9)


@pytest.mark.parametrize("magnitude", [1e-9, 1e-3, 1e12])
def test_optimum_holds_at_any_affinity_magnitude(magnitude: float) -> None:
    # The reference solves the unscaled instance: HiGHS' absolute tolerances (1e-7) would
    # stop it early on tiny affinities, while the flow solver scales to its own range.
    a, cap, dem, forbidden = random_instance(7, 30, 10, slack=0.8)
    x = solve_assignment(a * magnitude, cap, dem, forbidden)
    assert (a * x).sum() == pytest.approx(lp_optimum(a, cap, dem, forbidden), rel=1e-12)


def test_ties_keep_the_exact_optimum_and_the_answer_is_repeatable() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(-2, 3, size=(25, 9)) / 4  # many exact ties
    cap, dem = np.full(25, 2), rng.integers(1, 4, 9)
    first = solve_assignment(a, cap, dem)
    assert (a * first).sum() == lp_optimum(a, cap, dem, np.zeros_like(a, dtype=bool))
    assert (solve_assignment(a, cap, dem) == first).all()


def test_inputs_are_never_modified_and_read_only_inputs_work() -> None:
    a, cap, dem, forbidden = random_instance(1, 20, 6, slack=0.7)
    copies = [v.copy() for v in (a, cap, dem, forbidden)]
    for v in (a, cap, dem, forbidden):
        v.setflags(write=False)
    solve_assignment(a, cap, dem, forbidden)
    solve_fair_assignment(a, cap, dem, forbidden)
    for before, after in zip(copies, (a, cap, dem, forbidden), strict=True):
        assert (before == after).all()


def test_plain_lists_are_accepted() -> None:
    x = solve_assignment([[1.0, 0.0], [0.0, 1.0]], [1, 1], [1, 1], [[False, False], [False, False]])
    assert x.tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize(
    ("n_e", "n_c", "dem"),
    [(0, 0, []), (3, 0, []), (0, 2, [0, 0]), (3, 2, [0, 0])],
)
def test_empty_problems_give_empty_assignments(n_e: int, n_c: int, dem: list[int]) -> None:
    x = solve_assignment(np.zeros((n_e, n_c)), np.ones(n_e, int), np.array(dem, dtype=int))
    assert x.shape == (n_e, n_c) and not x.any()


def test_no_experts_at_all_names_every_cluster_with_demand() -> None:
    with pytest.raises(InfeasibleAssignment) as err:
        solve_assignment(np.zeros((0, 3)), np.zeros(0, int), np.array([1, 0, 2]))
    assert err.value.clusters == (0, 2)
    assert err.value.missing == 3


def test_infeasibility_is_a_value_error_that_names_the_short_cluster_and_what_to_relax() -> None:
    # Cluster 2 needs 3 experts; only experts 0 and 1 may serve it (expert 3 takes nothing).
    a = np.ones((4, 3))
    forbidden = np.zeros((4, 3), dtype=bool)
    forbidden[2, 2] = True
    with pytest.raises(ValueError) as caught:
        solve_assignment(a, [2, 2, 2, 0], [1, 1, 3], forbidden)
    err = caught.value
    assert isinstance(err, InfeasibleAssignment)
    assert isinstance(err, Infeasible) and isinstance(err, IccmatchError) and err.status == 409
    assert err.clusters == (2,) and err.missing == 1
    assert "cluster 2 needs 3 experts but only 2 eligible experts can take it" in str(err)
    assert "raise max_assignments of the 1 eligible expert who takes none" in str(err)
    assert "lower its demand" in str(err)
    named = err.with_names(["north", "south", "lisbon-ring"])
    assert "cluster lisbon-ring needs 3 experts" in str(named)


def test_clusters_competing_for_the_same_experts_are_named_together() -> None:
    # Clusters 0 and 1 share experts 0-1 (one assignment each); cluster 2 is fine alone.
    forbidden = np.array([[0, 0, 1], [0, 0, 1], [1, 1, 0], [1, 1, 0]], dtype=bool)
    with pytest.raises(InfeasibleAssignment) as err:
        solve_assignment(np.ones((4, 3)), [1, 1, 1, 1], [2, 1, 1], forbidden)
    (group,) = err.value.groups
    assert group.clusters == (0, 1) and group.demand == 3 and group.servable == 2
    assert "clusters 0 and 1 need 3 experts between them" in str(err.value)
    assert "raise max_assignments" in str(err.value)


def hall_deficiency(clusters, cap, dem, forbidden) -> int:
    xs = list(clusters)
    supply = np.minimum(cap, (~forbidden[:, xs]).sum(axis=1)).sum() if xs else 0
    return int(dem[xs].sum() - supply)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_e=6, max_c=5, max_dem=4))
def test_named_clusters_are_hall_violators_and_the_shortfall_is_exact(inst) -> None:
    a, cap, dem, forbidden = inst
    if lp_optimum(a, cap, dem, forbidden) is not None:
        return
    with pytest.raises(InfeasibleAssignment) as caught:
        solve_assignment(a, cap, dem, forbidden)
    err = caught.value
    assert err.missing == dem.sum() - max_flow_value(cap, dem, forbidden) > 0
    for g in err.groups:
        # No assignment gives these clusters more than `servable`: a real bottleneck.
        assert hall_deficiency(g.clusters, cap, dem, forbidden) >= g.missing > 0
    assert hall_deficiency(err.clusters, cap, dem, forbidden) == err.missing
    assert len(set(err.clusters)) == len(err.clusters)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"affinity": np.zeros(3)}, "2-D"),
        ({"affinity": np.array([[np.nan, 0.0], [0.0, 0.0]])}, "must be finite"),
        ({"affinity": np.array([["a", "b"], ["c", "d"]])}, "real numbers"),
        ({"capacity": [1, 1, 1]}, "one entry per expert (2)"),
        ({"capacity": [1, -1]}, "capacity[1] is -1"),
        ({"capacity": [1.5, 1]}, "whole numbers"),
        ({"demand": [1]}, "one entry per cluster (2)"),
        ({"demand": [True, False]}, "must hold integers"),
        ({"forbidden": np.zeros((2, 3), dtype=bool)}, "shape of affinity"),
        ({"forbidden": np.full((2, 2), 0.5)}, "boolean mask"),
    ],
)
def test_malformed_input_is_a_value_error_saying_what_to_fix(kwargs, message: str) -> None:
    args = {"affinity": np.zeros((2, 2)), "capacity": [1, 1], "demand": [1, 1], "forbidden": None}
    args.update(kwargs)
    with pytest.raises(ValueError, match=None) as err:
        solve_assignment(**args)
    assert isinstance(err.value, InvalidInput)
    assert message in str(err.value)


# --- the fair variant ------------------------------------------------------------------

GRID = st.sampled_from([v / 8 for v in range(-8, 17)])  # dyadic: represented exactly


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_e=4, max_c=3, values=GRID, max_dem=2))
def test_fair_solution_is_the_brute_force_lexicographic_optimum(inst) -> None:
    a, cap, dem, forbidden = inst
    best = brute_force_fair(a, cap, dem, forbidden)
    if best is None:
        with pytest.raises(InfeasibleAssignment):
            solve_fair_assignment(a, cap, dem, forbidden)
        return
    x = solve_fair_assignment(a, cap, dem, forbidden)
    assert_valid(x, cap, dem, forbidden)
    means = cluster_mean_affinity(a, x, dem)[dem > 0]
    assert (means.min() if means.size else math.inf) == pytest.approx(best[0])
    assert (a * x).sum() == pytest.approx(best[1])


@pytest.mark.parametrize("seed", range(6))
def test_fair_solution_lifts_the_worst_cluster_to_the_milp_max_min(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_e, n_c = 14, 5
    a = rng.integers(0, 65, size=(n_e, n_c)) / 64
    cap = np.ones(n_e, dtype=int)
    dem = rng.integers(1, 4, n_c)
    while dem.sum() > n_e:
        dem[np.argmax(dem)] -= 1
    forbidden = rng.random((n_e, n_c)) < 0.2
    if lp_optimum(a, cap, dem, forbidden) is None:
        forbidden[:] = False
    plain = solve_assignment(a, cap, dem, forbidden)
    fair = solve_fair_assignment(a, cap, dem, forbidden, seed=seed)
    assert_valid(fair, cap, dem, forbidden)
    worst_plain = cluster_mean_affinity(a, plain, dem).min()
    worst_fair = cluster_mean_affinity(a, fair, dem).min()
    assert worst_fair >= worst_plain
    assert worst_fair == pytest.approx(milp_max_min_mean(a, cap, dem, forbidden), abs=1e-9)
    assert (a * fair).sum() <= (a * plain).sum() + 1e-12


def test_fair_variant_on_a_tight_instance_is_valid_and_repeatable() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((120, 40))
    cap, dem = np.ones(120, dtype=int), rng.integers(1, 4, 40)
    forbidden = rng.random((120, 40)) < 0.2
    plain = solve_assignment(a, cap, dem, forbidden)
    fair = solve_fair_assignment(a, cap, dem, forbidden, seed=1)
    assert_valid(fair, cap, dem, forbidden)
    assert cluster_mean_affinity(a, fair, dem).min() >= cluster_mean_affinity(a, plain, dem).min()
    assert (solve_fair_assignment(a, cap, dem, forbidden, seed=1) == fair).all()


def test_fair_variant_that_runs_out_of_time_says_so_instead_of_guessing() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((120, 40))
    cap, dem = np.ones(120, dtype=int), rng.integers(1, 4, 40)
    forbidden = rng.random((120, 40)) < 0.2
    with pytest.raises(FairnessTimeout, match="raise time_limit_s") as err:
        solve_fair_assignment(a, cap, dem, forbidden, time_limit_s=1e-9)
    assert isinstance(err.value, IccmatchError) and isinstance(err.value, TimeoutError)


def test_fair_variant_reports_infeasibility_like_the_plain_one() -> None:
    with pytest.raises(InfeasibleAssignment) as err:
        solve_fair_assignment(np.ones((2, 2)), [1, 0], [1, 1])
    assert err.value.missing == 1


# --- affinity from plain data ----------------------------------------------------------


def sample_data(**overrides) -> ExpertClusterData:
    fields = {
        "similarity": np.array([[0.62, 0.1], [0.3, 0.7], [0.5, 0.5], [0.2, 0.9]]),
        "expert_levels": np.array([[5, 0], [2, 4], [0, 0], [3, 3]]),
        "cluster_themes": np.array([[1.0, 0.0], [0.5, 0.5]]),
        "theme_names": ("Anti-rumours", "Education"),
        "expert_languages": np.array([[True, False], [True, True], [False, True], [True, True]]),
        "cluster_language": np.array([0, -1]),
        "language_names": ("Portuguese", "Italian"),
        "distance_km": np.array([[420.0, 1500.0], [100.0, np.nan], [50.0, 5.0], [2345.0, 800.0]]),
        "conflict": np.array([[False, False], [False, False], [False, False], [False, True]]),
    }
    fields.update(overrides)
    return ExpertClusterData(**fields)


def test_affinity_is_the_sum_of_its_components() -> None:
    aff = build_affinity(sample_data(), AffinityWeights(language=0.1))
    total = sum(aff.components.values())
    assert np.allclose(aff.score, total)
    assert aff.components["theme"][0, 0] == pytest.approx(1.0)  # level 5/5, the only theme
    assert aff.components["theme"][1, 1] == pytest.approx(0.6)  # (2 + 4) / 2 / 5
    assert aff.components["distance"][0, 0] == pytest.approx(-0.042)
    assert aff.components["distance"][1, 1] == 0.0  # unknown location: no penalty
    assert aff.components["language"][0, 0] == pytest.approx(0.1)
    assert aff.components["language"][0, 1] == 0.0  # cluster without a working language


def test_language_conflict_and_distance_rule_pairs_out() -> None:
    aff = build_affinity(sample_data(), AffinityWeights(max_distance_km=2000))
    assert aff.no_language[2, 0] and aff.forbidden[2, 0]  # expert 2 speaks no Portuguese
    assert aff.conflict[3, 1] and aff.forbidden[3, 1]
    assert aff.too_far[3, 0] and aff.forbidden[3, 0]
    assert not aff.forbidden[0, 0] and not aff.forbidden[1, 1]


def test_affinity_outputs_are_read_only_and_inputs_untouched() -> None:
    data = sample_data()
    before = np.array(data.distance_km, copy=True)
    aff = build_affinity(data)
    with pytest.raises(ValueError):
        aff.score[0, 0] = 1.0
    assert np.array_equal(before, data.distance_km, equal_nan=True)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"expert_levels": np.array([[6, 0], [0, 0], [0, 0], [0, 0]])}, "levels 0 (none) to 5"),
        ({"cluster_language": np.array([0, 2])}, "index below 2"),
        ({"similarity": np.zeros((4, 3))}, "cluster_themes must be clusters x themes (3, 2)"),
        ({"expert_languages": np.ones((4, 2))}, "expert_languages must be boolean"),
        ({"distance_km": np.full((4, 2), -1.0)}, "kilometres >= 0"),
    ],
)
def test_malformed_affinity_data_says_what_to_fix(override, message: str) -> None:
    with pytest.raises(ValueError) as err:
        build_affinity(sample_data(**override))
    assert message in str(err.value)


def test_geometry_helpers() -> None:
    lisbon, porto = (38.72, -9.14), (41.15, -8.61)
    km = distance_matrix_km([lisbon[0]], [lisbon[1]], [porto[0]], [porto[1]])
    assert km[0, 0] == pytest.approx(274, abs=5)
    lat, lon = spherical_centroids([0.0, 0.0], [179.0, -179.0], [[0, 1], []])
    assert abs(lon[0]) == pytest.approx(180.0) and lat[0] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(lat[1])
    sim = cosine_similarity([[1.0, 0.0], [0.0, 0.0]], [[2.0, 0.0], [1.0, 1.0]])
    assert sim[0].tolist() == pytest.approx([1.0, math.sqrt(0.5)]) and (sim[1] == 0).all()
    conflicts = place_conflicts(
        ["PT", "IT", None], [{"PT", "ES"}, {"IT"}], ["lisbon", "bari", "x"], [{"lisbon"}, {"x"}]
    )
    assert conflicts.tolist() == [[True, False], [False, True], [False, True]]


# --- assign_experts --------------------------------------------------------------------

EXPERTS, CLUSTERS = ["e1", "e2", "e3", "e4"], ["c1", "c2"]


def test_every_pair_comes_with_plain_language_reasons() -> None:
    result = assign_experts(EXPERTS, CLUSTERS, sample_data(), [1, 1, 1, 1], [2, 1])
    pairs = {(p.expert_id, p.cluster_id): p for p in result.pairs}
    assert set(pairs) == {("e1", "c1"), ("e4", "c1"), ("e2", "c2")}
    texts = {r.text for r in pairs["e1", "c1"].reasons}
    assert {
        "speaks Portuguese, the cluster's working language",
        "level 5/5 in Anti-rumours, the cluster's theme",
        "profile close to the cluster's (similarity 0.62)",
        "based 420 km from the cluster's centre",
    } <= texts
    assert "level 4/5 in Education, one of the cluster's themes" in {
        r.text for r in pairs["e2", "c2"].reasons
    }
    for p in result.pairs:
        assert p.reasons
        assert p.score == pytest.approx(sum(p.components.values()))
        assert sum(abs(r.weight) for r in p.reasons) == pytest.approx(1.0)
    assert result.objective == pytest.approx(sum(p.score for p in result.pairs))
    assert [(ld.expert_id, ld.assigned, ld.capacity) for ld in result.loads] == [
        ("e1", 1, 1),
        ("e2", 1, 1),
        ("e3", 0, 1),
        ("e4", 1, 1),
    ]
    assert result.unserved == () and result.fair is False


def test_short_clusters_are_listed_with_what_to_relax() -> None:
    result = assign_experts(EXPERTS, CLUSTERS, sample_data(), [1, 1, 1, 1], [3, 2])
    (short,) = result.unserved
    assert short.missing == 1 and short.excluded_by_language == 1
    assert "lower per-cluster demand" in short.relax
    assert "does not speak its working language" in short.relax
    assert sum(ld.assigned for ld in result.loads) == 4
    with pytest.raises(InfeasibleAssignment) as err:
        assign_experts(EXPERTS, CLUSTERS, sample_data(), [1, 1, 1, 1], [3, 2], allow_partial=False)
    assert "clusters c1 and c2 need 5 experts between them" in str(err.value)


def test_fair_assignment_is_flagged_and_no_worse_for_the_worst_cluster() -> None:
    plain = assign_experts(EXPERTS, CLUSTERS, sample_data(), [1, 1, 1, 1], [2, 1])
    fair = assign_experts(EXPERTS, CLUSTERS, sample_data(), [1, 1, 1, 1], [2, 1], fair=True)
    assert fair.fair and fair.worst_cluster_mean >= plain.worst_cluster_mean
    assert all(p.reasons for p in fair.pairs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_assign_experts_on_random_data_keeps_every_invariant(seed: int, fair: bool) -> None:
    rng = np.random.default_rng(seed)
    n_e, n_c, n_t, n_l = 12, 4, 3, 2
    data = ExpertClusterData(
        similarity=rng.uniform(-1, 1, (n_e, n_c)),
        expert_levels=rng.integers(0, 6, (n_e, n_t)),
        cluster_themes=rng.integers(0, 3, (n_c, n_t)).astype(float),
        theme_names=("Anti-rumours", "Education", "Housing"),
        expert_languages=rng.random((n_e, n_l)) < 0.7,
        cluster_language=rng.integers(-1, n_l, n_c),
        language_names=("Portuguese", "Italian"),
        distance_km=np.where(
            rng.random((n_e, n_c)) < 0.1, np.nan, rng.uniform(0, 3000, (n_e, n_c))
        ),
        conflict=rng.random((n_e, n_c)) < 0.1,
    )
    cap, dem = rng.integers(0, 3, n_e), rng.integers(0, 4, n_c)
    ids = [f"e{i}" for i in range(n_e)], [f"c{i}" for i in range(n_c)]
    result = assign_experts(*ids, data, cap, dem, fair=fair, seed=seed % 100)
    aff = build_affinity(data)
    served = {c: 0 for c in ids[1]}
    for p in result.pairs:
        e, c = ids[0].index(p.expert_id), ids[1].index(p.cluster_id)
        assert not aff.forbidden[e, c]
        assert p.reasons and p.score == pytest.approx(aff.score[e, c])
        served[p.cluster_id] += 1
    assert all(ld.assigned <= ld.capacity for ld in result.loads)
    short = {u.cluster_id: u for u in result.unserved}
    for c, n in served.items():
        expected = dem[ids[1].index(c)]
        assert n == expected if c not in short else n == short[c].assigned < expected
    assert sum(u.missing for u in result.unserved) == dem.sum() - max_flow_value(
        cap, dem, aff.forbidden
    )
