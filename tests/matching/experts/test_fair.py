"""The fair variant: the lexicographic max-min optimum (brute force, HiGHS MIP), time limits."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from graph.errors import IccmatchError
from matching.experts import (
    FairnessTimeout,
    InfeasibleAssignment,
    cluster_mean_affinity,
    solve_assignment,
    solve_fair_assignment,
)
from tests.matching.experts.helpers import assert_valid, instances, lp_optimum


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
