"""The learned partner ranker: fitted from the network's own ties, reproducible, two-sided,
better than the graph heuristics where habits decide, and explained by its contributions."""

from __future__ import annotations

import numpy as np
import pytest

from matching.kernel.arrays import NetworkArrays
from matching.partners import partner_index, suggest_partners
from matching.partners.evaluate import AdamicAdar, LearnedMethod, evaluate_partners
from matching.partners.learn import FEATURES, MIN_TIES, TieContext, fit_ranker
from matching.partners.learned import PartnerModel
from tests.matching.test_partner_evaluation import network, no_profiles

PAIRS = (("DE", "FR"), ("IT", "PL"), ("ES", "PT"))


def habit_network(seed: int = 0, per_country: int = 60, ties_each: int = 4) -> NetworkArrays:
    """Six countries in three pairs; each city ties with random cities of its pair's other
    country and of nowhere else: no triangles, so common partners say little, and only
    the country habit (learnable from the ties) finds the hidden ones."""
    rng = np.random.default_rng(seed)
    places: list[tuple[float, float, str]] = []
    by_country: dict[str, list[int]] = {}
    for a, b in PAIRS:
        for country in (a, b):
            for _ in range(per_country):
                by_country.setdefault(country, []).append(len(places))
                places.append((float(rng.uniform(35, 60)), float(rng.uniform(-10, 30)), country))
    edges: set[tuple[int, int]] = set()
    for a, b in PAIRS:
        for i in by_country[a]:
            for j in rng.choice(by_country[b], size=ties_each, replace=False).tolist():
                edges.add((min(i, j), max(i, j)))
    return network(places, edges)


@pytest.fixture(scope="module")
def habits() -> NetworkArrays:
    return habit_network()


def test_too_few_ties_means_no_model() -> None:
    arr = habit_network(per_country=10, ties_each=1)
    assert len(arr.tie_kinds) < MIN_TIES
    assert fit_ranker(arr, no_profiles(arr)) is None


def test_same_data_and_seed_give_the_same_model(habits: NetworkArrays) -> None:
    a = fit_ranker(habits, no_profiles(habits), seed=3)
    b = fit_ranker(habits, no_profiles(habits), seed=3)
    assert a is not None and b is not None
    assert a.used == b.used
    assert np.array_equal(a.coef, b.coef)
    assert a.ties_learned_from == b.ties_learned_from > 0
    # features that are constant here (no themes, no texts, no languages) are dropped
    assert "similarity" not in a.used and "shared_priorities" not in a.used
    assert set(a.used) <= set(FEATURES)
    assert a.weights()["country_habit"] > 0


def test_scores_are_two_sided(habits: NetworkArrays) -> None:
    model = fit_ranker(habits, no_profiles(habits))
    assert model is not None
    ctx = TieContext.build(habits, no_profiles(habits))
    x3, x7 = ctx.features(3), ctx.features(7)
    assert model.scores(x3)[7] == pytest.approx(model.scores(x7)[3], abs=1e-9)


def test_learned_beats_adamic_adar_where_country_habits_decide(habits: NetworkArrays) -> None:
    result = evaluate_partners(
        habits,
        no_profiles(habits),
        [AdamicAdar(), LearnedMethod()],
        holdout=0.1,
        splits=2,
        k=10,
        seed=11,
    )
    learned = result.method("learned").overall
    aa = result.method("Adamic-Adar").overall
    assert learned.hits_at_k is not None and aa.hits_at_k is not None
    # ~60 candidates of the right country among 360: hits@10 well above the graph heuristic
    assert learned.hits_at_k > aa.hits_at_k + 0.05


def test_suggestions_say_which_ranker_and_why(habits: NetworkArrays) -> None:
    profiles = no_profiles(habits)
    ranker = fit_ranker(habits, profiles)
    assert ranker is not None
    model = PartnerModel(ranker, TieContext.build(habits, profiles))
    ix = partner_index(habits, profiles)
    city = habits.city_ids[0]  # a German city: its partners are French
    result = suggest_partners(habits, profiles, city, k=10, index=ix, model=model)
    assert result.ranker.startswith("learned from ")
    assert len(result.suggestions) == 10
    scores = [s.score for s in result.suggestions]
    assert scores == sorted(scores, reverse=True)  # shown scores are the list's order
    assert all(0.0 < s <= 1.05 for s in scores) and scores[0] >= 0.95  # relative to the best
    assert {s.country for s in result.suggestions} == {"FR"}
    first = result.suggestions[0]
    kinds = [r.kind for r in first.reasons]
    assert "country_habit" in kinds
    habit = next(r for r in first.reasons if r.kind == "country_habit")
    assert "Germany" in habit.text and "France" in habit.text and "%" in habit.text
    # a moved-down suggestion says what moved it; none here says "similar profiles"
    assert not any(r.kind == "profile_similarity" for s in result.suggestions for r in s.reasons)
    without = suggest_partners(habits, profiles, city, k=10, index=ix)
    assert without.ranker == "default weights"
