"""Expert x cluster affinity from plain data: its terms, its rules, its input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from matching.experts import AffinityWeights, build_affinity, cosine_similarity, place_conflicts
from matching.kernel.geometry import distance_matrix_km, spherical_centroids
from tests.matching.experts.helpers import sample_data

# --- affinity from plain data ----------------------------------------------------------


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
