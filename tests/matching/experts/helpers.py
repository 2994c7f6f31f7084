"""Shared by the expert matcher's tests: exact references (HiGHS), instance generators, sample data."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from scipy import sparse
from scipy.optimize import linprog

from matching.experts import ExpertClusterData

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


# --- sample affinity data -----------------------------------------------------------


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
