"""Partner evaluation on small generated networks: splits, ranks, baselines, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from graph.errors import InvalidInput
from graph.model import City, Partnership
from graph.snapshot import NetworkSnapshot
from matching.kernel.arrays import FloatArray, NetworkArrays, encode, tie_edges
from matching.partners.evaluate import (
    AdamicAdar,
    DefaultWeights,
    Method,
    NearestForeignCity,
    RandomOrder,
    ResourceAllocation,
    Scorer,
    evaluate_partners,
    holdout_split,
    standard_methods,
)

COUNTRIES = ("DE", "FR", "IT", "PL")


def network(
    places: list[tuple[float, float, str]], edges: set[tuple[int, int]] | list[tuple[int, int]]
) -> NetworkArrays:
    cities = tuple(
        City(id=f"c{i:03d}", name=f"City {i}", country=country, lat=lat, lon=lon)
        for i, (lat, lon, country) in enumerate(places)
    )
    ties = tuple(Partnership(f"c{a:03d}", f"c{b:03d}", "twinning") for a, b in sorted(edges))
    return encode(NetworkSnapshot(revision=1, cities=cities, partnerships=ties))


def no_profiles(arr: NetworkArrays) -> NDArray[np.float32]:
    return np.zeros((arr.n, 0), dtype=np.float32)


def triadic_network(seed: int = 0, cliques: int = 12, size: int = 5) -> NetworkArrays:
    """Cliques of ``size`` cities joined in a ring: ties close triangles, places are random."""
    rng = np.random.default_rng(seed)
    n = cliques * size
    places = [
        (float(rng.uniform(-60, 60)), float(rng.uniform(-170, 170)), COUNTRIES[i % 4])
        for i in range(n)
    ]
    edges = {
        (c * size + a, c * size + b)
        for c in range(cliques)
        for a, b in itertools.combinations(range(size), 2)
    }
    edges |= {(c * size, ((c + 1) % cliques) * size + 1) for c in range(cliques)}
    return network(places, {(min(a, b), max(a, b)) for a, b in edges})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(3, 25),
    density=st.floats(0.05, 0.6),
    holdout=st.floats(0.05, 0.6),
    seed=st.integers(0, 2**31),
)
def test_a_split_hides_ties_and_keeps_both_ends_tied(
    n: int, density: float, holdout: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    edges = {(a, b) for a, b in itertools.combinations(range(n), 2) if rng.random() < density}
    arr = network([(float(i), float(i), COUNTRIES[i % 4]) for i in range(n)], edges)
    try:
        split = holdout_split(arr, holdout, seed)
    except InvalidInput:
        return  # too few ties, or none that can be hidden: the error test covers the wording
    hidden = {tuple(e) for e in split.hidden.tolist()}
    visible = {tuple(e) for e in tie_edges(split.visible).tolist()}
    assert hidden and hidden <= edges
    assert hidden.isdisjoint(visible) and hidden | visible == edges
    assert len(hidden) <= int(len(edges) * holdout + 1e-9)
    degree = np.bincount(np.array(sorted(visible)).ravel(), minlength=n)
    for a, b in hidden:
        assert degree[a] >= 1 and degree[b] >= 1
    tied = split.visible.ties.toarray() > 0
    expected = [bool((tied[a] & tied[b]).any()) for a, b in split.hidden.tolist()]
    assert split.common.tolist() == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nearest_foreign_city_finds_every_tie_made_by_nearest_foreign_city(seed: int) -> None:
    """Triangles of three countries, 10 degrees apart: each city's ties are its two nearest
    foreign cities, so with one hidden and the other visible (excluded), the hidden one is
    the nearest foreign candidate."""
    rng = np.random.default_rng(seed)
    places: list[tuple[float, float, str]] = []
    edges: set[tuple[int, int]] = set()
    for c, (la, lo) in enumerate(itertools.product(range(-40, 41, 20), range(-160, 161, 40))):
        base = len(places)
        for m in range(3):
            country = COUNTRIES[(c + m) % 4]
            places.append(
                (la + float(rng.uniform(-0.1, 0.1)), lo + float(rng.uniform(-0.1, 0.1)), country)
            )
        edges |= {(base, base + 1), (base, base + 2), (base + 1, base + 2)}
    arr = network(places, edges)
    result = evaluate_partners(
        arr, no_profiles(arr), [NearestForeignCity()], holdout=0.2, splits=3, k=1, seed=seed
    )
    scores = result.method("nearest foreign city").overall
    assert result.pairs > 0
    assert scores.hits_at_k == 1.0 and scores.mrr == 1.0
    assert scores.hits_at_k_se == 0.0


def test_adamic_adar_beats_random_where_ties_close_triangles() -> None:
    arr = triadic_network()
    result = evaluate_partners(
        arr, no_profiles(arr), standard_methods(seed=3), holdout=0.1, splits=4, seed=5
    )
    aa, rnd = result.method("Adamic-Adar").overall, result.method("random").overall
    assert aa.mrr is not None and rnd.mrr is not None and aa.mrr_se is not None
    assert aa.hits_at_k is not None and rnd.hits_at_k is not None
    assert aa.mrr > rnd.mrr + 3 * aa.mrr_se
    assert aa.hits_at_k > rnd.hits_at_k
    ra = result.method("resource allocation").overall
    assert ra.mrr is not None and ra.mrr > rnd.mrr
    for m in result.methods:  # every figure is a share
        for value in (m.overall.hits_at_k, m.overall.mrr):
            assert value is not None and 0.0 <= value <= 1.0


def test_standard_errors_shrink_with_more_pairs() -> None:
    arr = triadic_network(seed=1)
    methods: list[Method] = [RandomOrder(seed=2), AdamicAdar()]
    few = evaluate_partners(arr, no_profiles(arr), methods, holdout=0.1, splits=2, seed=4)
    many = evaluate_partners(arr, no_profiles(arr), methods, holdout=0.1, splits=10, seed=4)
    assert many.pairs == 5 * few.pairs
    a, b = few.method("random").overall, many.method("random").overall
    assert a.mrr_se is not None and b.mrr_se is not None and b.mrr_se < a.mrr_se
    assert a.hits_at_k_se is not None and b.hits_at_k_se is not None
    assert b.hits_at_k_se < a.hits_at_k_se


def test_pairs_with_and_without_a_common_neighbour_add_up() -> None:
    arr = triadic_network(seed=2)
    result = evaluate_partners(
        arr, no_profiles(arr), standard_methods(), holdout=0.2, splits=3, seed=1
    )
    assert result.pairs == 3 * int(len(tie_edges(arr)) * 0.2)
    assert (
        result.pairs_with_common_neighbour + result.pairs_without_common_neighbour == result.pairs
    )
    assert result.pairs_without_common_neighbour > 0  # the ring's ties have none
    for m in result.methods:
        assert m.overall.pairs == result.pairs
        assert m.with_common_neighbour.pairs == result.pairs_with_common_neighbour
        assert m.without_common_neighbour.pairs == result.pairs_without_common_neighbour
    # graph methods have no evidence without a common neighbour: no better than a coin
    aa = result.method("Adamic-Adar")
    assert aa.with_common_neighbour.mrr is not None and aa.without_common_neighbour.mrr is not None
    assert aa.with_common_neighbour.mrr > aa.without_common_neighbour.mrr


class CountingMethod:
    """A method that records each fit, scoring by degree."""

    name = "counting"

    def __init__(self) -> None:
        self.fits = 0

    def fit(self, visible: NetworkArrays, profiles: NDArray[np.float32]) -> Scorer:
        self.fits += 1
        degree = np.asarray(visible.ties.sum(axis=1), dtype=np.float64).ravel()

        def scores(i: int) -> FloatArray:
            return degree

        return scores


def test_any_method_plugs_in_and_is_fitted_once_per_split() -> None:
    arr = triadic_network()
    method = CountingMethod()
    result = evaluate_partners(arr, no_profiles(arr), [method, DefaultWeights()], splits=3)
    assert method.fits == 3
    assert [m.name for m in result.methods] == ["counting", "default weights"]
    assert result.method("default weights").query_ms > 0


def test_the_same_seed_gives_the_same_figures() -> None:
    arr = triadic_network()
    methods: list[Method] = [RandomOrder(seed=1), ResourceAllocation()]
    a = evaluate_partners(arr, no_profiles(arr), methods, splits=2, seed=9)
    b = evaluate_partners(arr, no_profiles(arr), methods, splits=2, seed=9)
    assert [m.overall for m in a.methods] == [m.overall for m in b.methods]


def test_too_few_ties_is_a_clear_error() -> None:
    arr = network([(0.0, 0.0, "DE"), (1.0, 1.0, "FR"), (2.0, 2.0, "IT")], [(0, 1), (1, 2)])
    with pytest.raises(
        InvalidInput, match=r"has 2 ties; holding out 10% of them needs at least 10"
    ):
        evaluate_partners(arr, no_profiles(arr), standard_methods())


def test_a_star_has_no_tie_that_can_be_held_out() -> None:
    arr = network(
        [(float(i), 0.0, COUNTRIES[i % 4]) for i in range(21)], [(0, i) for i in range(1, 21)]
    )
    with pytest.raises(InvalidInput, match="none of the network's 20 ties can be held out"):
        evaluate_partners(arr, no_profiles(arr), standard_methods())


def test_bad_parameters_are_clear_errors() -> None:
    arr = triadic_network()
    for kwargs, words in (
        ({"holdout": 1.5}, "between 0.01 and 0.9"),
        ({"holdout": 5e-324}, "between 0.01 and 0.9"),
        ({"splits": 0}, "splits must be at least 1"),
        ({"k": 0}, "k must be at least 1"),
    ):
        with pytest.raises(InvalidInput, match=words):
            evaluate_partners(arr, no_profiles(arr), standard_methods(), **kwargs)
    with pytest.raises(InvalidInput, match="method names must differ"):
        evaluate_partners(arr, no_profiles(arr), [AdamicAdar(), AdamicAdar()])
