"""The block-by-block solver (large instances): the dense path's optimum, a certificate
for every pair left out of the graph, widening and pricing when candidates are narrow,
the gap when pricing gives up, and no dense integer matrix on the way."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from matching.experts import InfeasibleAssignment, solve_assignment, solve_fair_assignment
from matching.experts import flow as flow_module
from matching.experts.flow import solve_assignment_pairs
from tests.matching.experts.helpers import (
    assert_valid,
    instances,
    lp_optimum,
    max_flow_value,
    random_instance,
)

NARROW = {
    "_SPARSE_MIN_PAIRS": 0,
    "_SPARSE_PER_CLUSTER": (1, 0),
    "_SPARSE_PER_EXPERT": (1, 0),
    "_SPARSE_MAX_SHARE": 1.01,
    "_PRICING_PER_CLUSTER": 1,
    "_PRICING_PER_EXPERT": 1,
}


@contextmanager
def blockwise(block_pairs: int = 7, **patches: object) -> Iterator[None]:
    """Force the block-by-block path on any size, in blocks of a few pairs."""
    with mock.patch.multiple(
        flow_module, _BLOCKWISE_MIN_PAIRS=0, _BLOCK_PAIRS=block_pairs, **patches
    ):
        yield


@contextmanager
def dense(**patches: object) -> Iterator[None]:
    with mock.patch.multiple(flow_module, _BLOCKWISE_MIN_PAIRS=10**18, **patches):
        yield


def total(a: np.ndarray, x: np.ndarray) -> float:
    return float((a * x).sum())


# --- same optimum as the dense path ----------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_e=9, max_c=7))
def test_blockwise_reaches_the_dense_optimum_with_narrow_candidates(inst) -> None:
    a, cap, dem, forbidden = inst
    with dense(**NARROW):
        try:
            expected = solve_assignment(a, cap, dem, forbidden)
        except InfeasibleAssignment as err:
            with blockwise(**NARROW), pytest.raises(InfeasibleAssignment) as got:
                solve_assignment_pairs(a, cap, dem, forbidden)
            assert got.value.missing == err.missing
            assert got.value.clusters == err.clusters
            return
    with blockwise(**NARROW):
        found = solve_assignment_pairs(a, cap, dem, forbidden)
    x = found.dense()
    assert_valid(x, cap, dem, forbidden)
    assert total(a, x) == pytest.approx(total(a, expected), abs=1e-9 * (1 + np.abs(a).sum()))
    cert = found.certificate
    assert cert.blockwise and cert.optimal
    assert cert.priced_pairs == cert.usable_pairs - cert.arcs


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("block_pairs", [1, 50, 10**6])
def test_blockwise_gives_the_dense_assignment_itself(seed: int, block_pairs: int) -> None:
    """Same candidates, same arcs in the same order, same entering pairs: the same flow,
    also among ties, whatever the block size."""
    rng = np.random.default_rng(seed)
    n_e, n_c = 60, 45
    a = rng.uniform(-1, 1, (n_e, n_c)) if seed % 2 else rng.integers(-2, 3, (n_e, n_c)) / 4
    cap, dem = rng.integers(1, 4, n_e), rng.integers(1, 3, n_c)
    forbidden = rng.random((n_e, n_c)) < 0.1
    with dense(_SPARSE_MIN_PAIRS=0):
        expected = solve_assignment(a, cap, dem, forbidden)
    with blockwise(block_pairs, _SPARSE_MIN_PAIRS=0):
        found = solve_assignment_pairs(a, cap, dem, forbidden)
        also = solve_assignment(a, cap, dem, forbidden)  # best_flow's dense x, same pairs
    assert (found.dense() == expected).all()
    assert (also == expected).all()
    assert found.certificate.candidate_arcs < found.certificate.usable_pairs


@pytest.mark.parametrize("seed", range(6))
def test_blockwise_matches_linprog_including_infeasible_ones(seed: int) -> None:
    a, cap, dem, forbidden = random_instance(
        seed, 40 if seed % 3 else 9, 15, slack=1.0 if seed % 3 else 3.0
    )
    best = lp_optimum(a, cap, dem, forbidden)
    with blockwise(**NARROW):
        if best is None:
            with pytest.raises(InfeasibleAssignment) as err:
                solve_assignment_pairs(a, cap, dem, forbidden)
            assert err.value.missing == dem.sum() - max_flow_value(cap, dem, forbidden)
            return
        found = solve_assignment_pairs(a, cap, dem, forbidden)
    assert total(a, found.dense()) == pytest.approx(best, rel=1e-9)


def test_fair_and_partial_callers_work_on_the_blockwise_path() -> None:
    a, cap, dem, forbidden = random_instance(4, 30, 10, slack=0.8)
    with dense():
        plain = solve_assignment(a, cap, dem, forbidden)
        fair = solve_fair_assignment(a, cap, dem, forbidden, seed=0)
    with blockwise(_SPARSE_MIN_PAIRS=0):
        assert (solve_assignment(a, cap, dem, forbidden) == plain).all()
        fair_blockwise = solve_fair_assignment(a, cap, dem, forbidden, seed=0)
    assert total(a, fair_blockwise) == pytest.approx(total(a, fair))


# --- the certificate ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [dense, blockwise])
def test_the_certificate_counts_every_left_out_pair_priced_and_none_negative(path) -> None:
    rng = np.random.default_rng(11)
    a = rng.uniform(-1, 1, (200, 150))  # past _SPARSE_MIN_PAIRS: candidates and pricing
    cap, dem = rng.integers(1, 5, 200), rng.integers(1, 4, 150)
    with path():
        found = solve_assignment_pairs(a, cap, dem)
    cert = found.certificate
    assert cert.usable_pairs == 200 * 150
    assert cert.candidate_arcs <= cert.arcs < cert.usable_pairs
    assert cert.priced_pairs == cert.usable_pairs - cert.arcs > 0
    assert cert.rounds >= 1
    assert cert.optimal and cert.negative_pairs == 0 and cert.most_negative == 0
    assert cert.gap_bound == 0.0
    assert 0 < cert.unit < 1e-12  # affinities within 1: integer costs of ~49-52 bits
    assert cert.as_dict()["optimal"] is True
    forbidden = np.zeros_like(a, dtype=bool)
    assert total(a, found.dense()) == pytest.approx(lp_optimum(a, cap, dem, forbidden), rel=1e-9)


def test_small_instances_say_they_were_solved_on_the_full_graph() -> None:
    a, cap, dem, forbidden = random_instance(2, 12, 5, slack=0.7)
    cert = solve_assignment_pairs(a, cap, dem, forbidden).certificate
    usable = ~forbidden & (cap > 0)[:, None] & (dem > 0)[None, :]
    assert cert.arcs == cert.usable_pairs == int(usable.sum())
    assert cert.priced_pairs == 0 and cert.optimal and not cert.blockwise


@pytest.mark.parametrize("seed", range(6))
def test_too_narrow_candidates_still_end_optimal_by_widening_and_pricing(seed: int) -> None:
    """Every cluster prefers the same experts: one candidate each cannot serve everyone,
    the cut widens them, and pricing adds the pairs the optimum needs."""
    rng = np.random.default_rng(seed)
    n_e, n_c = 40, 25
    a = np.outer(rng.uniform(0.1, 1, n_e), rng.uniform(0.1, 1, n_c)) + rng.normal(
        0, 0.05, (n_e, n_c)
    )
    cap, dem = rng.integers(1, 3, n_e), rng.integers(1, 3, n_c)
    forbidden = np.zeros((n_e, n_c), dtype=bool)
    with blockwise(**NARROW):
        found = solve_assignment_pairs(a, cap, dem, forbidden)
    cert = found.certificate
    assert cert.widenings + cert.rounds > 1
    assert cert.arcs > cert.candidate_arcs
    assert cert.optimal
    assert_valid(found.dense(), cap, dem, forbidden)
    assert total(a, found.dense()) == pytest.approx(lp_optimum(a, cap, dem, forbidden), rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_when_pricing_rounds_run_out_the_gap_is_named_and_bounds_the_loss(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n_e, n_c = 30, 20
    a = rng.uniform(-1, 1, (n_e, n_c))
    cap, dem = rng.integers(2, 4, n_e), rng.integers(1, 3, n_c)
    forbidden = np.zeros((n_e, n_c), dtype=bool)
    with blockwise(**NARROW, _PRICING_ROUNDS=1):
        found = solve_assignment_pairs(a, cap, dem, forbidden)
    cert = found.certificate
    best = lp_optimum(a, cap, dem, forbidden)
    assert best is not None
    got = total(a, found.dense())
    assert_valid(found.dense(), cap, dem, forbidden)
    if cert.optimal:  # the single candidate per cluster and expert happened to suffice
        assert got == pytest.approx(best, rel=1e-9)
        return
    assert cert.rounds == 1
    assert cert.negative_pairs > 0 and cert.most_negative < 0
    assert cert.gap_bound >= -cert.most_negative * cert.unit > 0
    assert best - got <= cert.gap_bound + 1e-9


def test_at_least_one_seed_runs_out_of_pricing_rounds() -> None:
    """The previous test is not vacuous: narrow candidates need more than one round."""
    rng = np.random.default_rng(100)
    a = rng.uniform(-1, 1, (30, 20))
    cap, dem = rng.integers(2, 4, 30), rng.integers(1, 3, 20)
    with blockwise(**NARROW, _PRICING_ROUNDS=1):
        assert not solve_assignment_pairs(a, cap, dem).certificate.optimal


# --- memory ------------------------------------------------------------------------------


def test_no_dense_integer_matrix_is_allocated() -> None:
    """Past the affinity (the caller's, not copied), the solver holds boolean masks and
    blocks: its peak stays well under one int64 experts x clusters matrix."""
    rng = np.random.default_rng(5)
    n_e, n_c = 1500, 1200
    a = rng.uniform(-1, 1, (n_e, n_c))
    cap, dem = rng.integers(1, 5, n_e), rng.integers(1, 4, n_c)
    with blockwise(block_pairs=1 << 13):
        tracemalloc.start()
        try:
            found = solve_assignment_pairs(a, cap, dem)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert found.certificate.optimal
    assert peak < 4 * n_e * n_c  # bytes: half of one int64 (or float64) matrix
