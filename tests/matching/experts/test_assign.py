"""assign_experts: reasons for every pair, loads, short clusters and what to relax."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.experts import ExpertClusterData, InfeasibleAssignment, assign_experts, build_affinity
from tests.matching.experts.helpers import max_flow_value, sample_data

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
        "based on average 420 km from the cluster's member cities",
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
