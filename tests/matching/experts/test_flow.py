"""The plain solver: exact optimum (checked against HiGHS), sparse pricing, shortfall, validation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from graph.errors import IccmatchError, Infeasible, InvalidInput
from matching.experts import InfeasibleAssignment, solve_assignment, solve_fair_assignment
from matching.experts import flow as flow_module
from tests.matching.experts.helpers import (
    assert_valid,
    instances,
    lp_optimum,
    max_flow_value,
    random_instance,
)


@contextmanager
def sparse_pricing(rounds: int = 40) -> Iterator[None]:
    """Force the sparse-candidates-plus-pricing path on any size, as narrow as it goes:
    one candidate per cluster and expert, one pair admitted per pricing round."""
    with mock.patch.multiple(
        flow_module,
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
