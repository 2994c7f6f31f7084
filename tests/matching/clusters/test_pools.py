"""Requests no proposal can satisfy are refused while building pools, naming what to
change and by how much."""

from __future__ import annotations

import numpy as np
import pytest

from graph.errors import Infeasible
from matching.clusters import ClusterInfeasible, ClusterInput, ClusterParams, propose_clusters
from tests.matching.clusters.support import random_input


def _tiny(n: int = 10, **over: object) -> ClusterInput:
    inp = random_input(7, n, n_themes=1)
    fields = {f: getattr(inp, f) for f in inp.__dataclass_fields__}
    fields.update(
        priority=np.full((n, 1), 4),
        capacity=np.ones(n, dtype=np.int64),
        strength=np.full((n, 1), 50.0),
        languages=np.eye(n, 4, dtype=bool) | np.eye(n, 4, k=-4, dtype=bool),
    )
    fields["strength"][0, 0] = 90.0
    fields.update(over)
    return ClusterInput(**fields)  # type: ignore[arg-type]


def test_min_size_above_the_largest_language_group_says_how_far_to_lower_it() -> None:
    inp = _tiny()
    with pytest.raises(ClusterInfeasible) as err:
        propose_clusters(inp, ClusterParams(themes=("t0",), min_size=5, max_size=8))
    assert isinstance(err.value, ValueError) and isinstance(err.value, Infeasible)
    assert err.value.status == 409
    most = int(inp.languages.sum(axis=0).max())
    assert f"lower min_size to {most}" in str(err.value) and "require_common_language" in str(
        err.value
    )
    assert err.value.constraint == "min_size" and err.value.suggestion == most


def test_no_possible_lead_says_which_strength_would_do() -> None:
    inp = _tiny(languages=np.ones((10, 4), dtype=bool))
    with pytest.raises(ClusterInfeasible) as err:
        propose_clusters(inp, ClusterParams(themes=("t0",), lead_min_strength=95))
    assert "lower lead_min_strength to 90" in str(err.value)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            ClusterParams(
                themes=("t0",), max_size=4, locked={"t0": ("c0", "c1", "c2", "c3", "c4")}
            ),
            "raise max_size to 5",
        ),
        (
            ClusterParams(themes=("t0",), locked={"t0#a": ("c0", "c1"), "t0#b": ("c0", "c2")}),
            "raise max_per_city to 2",
        ),
        (ClusterParams(themes=("t0",), n_clusters=4, min_size=3), "lower n_clusters to 3"),
        (
            ClusterParams(themes=("t0",), n_clusters=1, locked={"t0#a": ("c0",), "t0#b": ("c1",)}),
            "raise n_clusters to 2",
        ),
    ],
)
def test_infeasible_requests_name_the_constraint_and_the_amount(
    params: ClusterParams, expected: str
) -> None:
    inp = _tiny(languages=np.ones((10, 4), dtype=bool))
    with pytest.raises(ClusterInfeasible) as err:
        propose_clusters(inp, params)
    assert expected in str(err.value)


def test_one_country_pool_asks_for_allow_single_country() -> None:
    inp = _tiny(languages=np.ones((10, 4), dtype=bool), countries=("ES",) * 10)
    with pytest.raises(ClusterInfeasible) as err:
        propose_clusters(inp, ClusterParams(themes=("t0",)))
    assert "allow_single_country=True" in str(err.value)
    ok = propose_clusters(
        inp, ClusterParams(themes=("t0",), allow_single_country=True, allow_single_network=True)
    )
    assert (
        ok.clusters
        and next(s for s in ok.constraints if s.name == "multi_country").status == "relaxed"
    )
