"""Partner suggestions: reciprocity, filters, diversity, reasons; plain arrays in."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from graph.errors import InvalidInput
from graph.model import Kind, from_props
from graph.snapshot import NetworkSnapshot, build_snapshot
from matching.kernel.arrays import NetworkArrays, encode
from matching.kernel.features import pair_features
from matching.partners import (
    PartnerFilters,
    PartnerResult,
    PartnerWeights,
    UnknownCity,
    partner_index,
    score_components,
    suggest_partners,
    total_score,
)
from matching.partners import suggest as partners
from matching.partners.model import DIVERSITY, EXPOSURE_NATIONAL, EXPOSURE_SMALL, SMALL_CITY
from tests.helpers import batch_of, tiny, write_csvs


def _snapshot(tmp_path: Path, data: dict | None = None) -> NetworkSnapshot:
    batch = batch_of(write_csvs(tmp_path / "ds", data or tiny()))
    return build_snapshot(
        1, {k: [from_props(k, r) for r in rows] for k, rows in batch.rows.items()}
    )


def _unit(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _network(n: int = 30, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    countries = ["PT", "ES", "IT", "FR", "DE"]
    data = tiny()
    data["cities"] = [
        {
            "id": f"c{i:02d}",
            "name": f"City {i}",
            "country": countries[i % 5],
            "lat": 40 + rng.random() * 10,
            "lon": -5 + rng.random() * 20,
            "languages": "en" if i % 3 else "en;pt",
            "membership": "national" if i % 4 == 0 else "international",
            "population": int(20_000 + rng.random() * 900_000),
        }
        for i in range(n)
    ]
    data["city_themes"] = [
        {"city_id": f"c{i:02d}", "theme_id": t, "priority": int(rng.integers(1, 6))}
        for i in range(n)
        for t in ("anti-rumours", "education")
        if rng.random() < 0.7
    ]
    data["index_scores"] = [
        {"city_id": f"c{i:02d}", "theme_id": "education", "score": float(rng.integers(0, 101))}
        for i in range(n)
    ]
    data["partnerships"] = [
        {"city_a": f"c{i:02d}", "city_b": f"c{(i + 1) % n:02d}", "kind": "project"}
        for i in range(0, n, 2)
    ]
    for key in ("coordinators", "stakeholders", "practices", "experts", "expert_themes"):
        data.pop(key)
    return data


def test_scores_are_reciprocal(tmp_path: Path) -> None:
    arr = encode(_snapshot(tmp_path, _network()))
    emb = _unit(arr.n)
    everyone = pair_features(arr, emb, np.arange(arr.n))
    total = sum(score_components(everyone, arr.country_codes).values())
    assert np.allclose(total, total.T, atol=1e-9)  # what i sees in j is what j sees in i


def test_a_city_that_gains_nothing_gets_no_reciprocal_benefit(tmp_path: Path) -> None:
    data = _network()
    data["city_themes"] = [r for r in data["city_themes"] if r["city_id"] != "c05"]
    arr = encode(_snapshot(tmp_path, data))
    f = pair_features(arr, _unit(arr.n), np.array([arr.index["c05"]]))
    parts = score_components(f, arr.country_codes)
    assert np.all(parts["reciprocal_benefit"][0] == 0)


def test_filters_are_respected(tmp_path: Path) -> None:
    arr = encode(_snapshot(tmp_path, _network()))
    emb = _unit(arr.n)
    filters = PartnerFilters(
        theme="education",
        languages=("pt",),
        max_distance_km=900,
        membership="international",
        forbidden=("c03",),
    )
    result = suggest_partners(arr, emb, "c01", k=10, filters=filters)
    me = arr.index["c01"]
    for s in result.suggestions:
        j = arr.index[s.city_id]
        assert s.city_id not in ("c01", "c03", "c00", "c02")  # self, forbidden, current partners
        assert arr.languages[j, arr.language_codes.index("pt")]
        assert not arr.national[j]
        assert s.components["distance_km"] <= 900
        assert (
            arr.priority[j, arr.theme_index["education"]] > 0
            or arr.strength[j, arr.theme_index["education"]] >= 60
        )
        assert arr.ties[me, j] == 0
    assert result.considered >= len(result.suggestions)


def test_forced_cities_are_listed_and_marked(tmp_path: Path) -> None:
    arr = encode(_snapshot(tmp_path, _network()))
    result = suggest_partners(
        arr, _unit(arr.n), "c01", k=3, filters=PartnerFilters(forced=("c17",))
    )
    assert len(result.suggestions) == 3
    forced = [s for s in result.suggestions if s.city_id == "c17"]
    assert forced and forced[0].forced and any(r.kind == "forced" for r in forced[0].reasons)


def test_the_top_list_is_not_one_country(tmp_path: Path) -> None:
    data = _network(40)
    arr = encode(_snapshot(tmp_path, data))
    emb = np.ones((arr.n, 8), dtype=np.float32) / np.sqrt(8)  # identical profiles: no tie-breaker
    result = suggest_partners(arr, emb, "c01", k=10)
    countries = [s.country for s in result.suggestions]
    assert max(countries.count(c) for c in set(countries)) <= 4


def test_every_suggestion_explains_itself(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path)
    arr = encode(snap)
    result = suggest_partners(arr, _unit(arr.n), "it-messina", k=4)
    by_id = {s.city_id: s for s in result.suggestions}
    assert "pt-amadora" not in by_id  # already partners
    ioannina = by_id["gr-ioannina"]
    texts = [r.text for r in ioannina.reasons]
    assert any("km apart" in t for t in texts)
    assert "You share English" in texts
    assert any(t.startswith("Two steps away through Amadora") for t in texts)
    assert {"reciprocal_benefit", "distance_km", "shared_languages"} <= set(ioannina.components)
    assert all(0.0 <= r.weight <= 1.0 for r in ioannina.reasons)


def test_complementary_strength_is_spelled_out(tmp_path: Path) -> None:
    data = tiny()
    data["city_themes"].append({"city_id": "it-messina", "theme_id": "education", "priority": 5})
    data["partnerships"] = []
    arr = encode(_snapshot(tmp_path, data))
    result = suggest_partners(arr, _unit(arr.n), "it-messina", k=4)
    amadora = next(s for s in result.suggestions if s.city_id == "pt-amadora")
    assert any(
        r.kind == "complementary_strength"
        and r.text.startswith("Amadora scores 82 on Education where you score 36")
        and "good practice" in r.text
        for r in amadora.reasons
    ), [r.text for r in amadora.reasons]


def test_unknown_city_and_theme_are_clear_errors(tmp_path: Path) -> None:
    arr = encode(_snapshot(tmp_path))
    with pytest.raises(UnknownCity, match="nowhere"):
        suggest_partners(arr, _unit(arr.n), "nowhere")
    with pytest.raises(InvalidInput, match="no theme with id 'cooking'"):
        suggest_partners(arr, _unit(arr.n), "it-messina", filters=PartnerFilters(theme="cooking"))


def test_inputs_are_not_mutated(tmp_path: Path) -> None:
    arr = encode(_snapshot(tmp_path, _network()))
    emb = _unit(arr.n)
    before = (emb.copy(), arr.priority.copy(), arr.ties.toarray().copy())
    suggest_partners(arr, emb, "c02", k=5, filters=PartnerFilters(theme="education"))
    assert np.array_equal(before[0], emb) and np.array_equal(before[1], arr.priority)
    assert np.array_equal(before[2], arr.ties.toarray())


def test_kinds_used_by_the_encoder_exist() -> None:
    assert {Kind.CITIES, Kind.PARTNERSHIPS, Kind.CITY_THEMES} <= set(Kind)


# --- the fast path against the reference (pair_features + score_components) -------------------

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def _sample_arrays() -> NetworkArrays:
    batch = batch_of(SAMPLE)
    return encode(
        build_snapshot(1, {k: [from_props(k, r) for r in rows] for k, rows in batch.rows.items()})
    )


def _reference(
    arr: NetworkArrays, emb: np.ndarray, city: str, k: int, filters: PartnerFilters
) -> list[tuple[str, float]]:
    """The ranking as first written: every feature of one row against all, filters, greedy."""
    theme = arr.theme_index[filters.theme] if filters.theme else None
    weights = PartnerWeights()
    if theme is not None:
        weights = replace(weights, graph=weights.graph * weights.graph_with_theme)
    i = arr.index[city]
    f = pair_features(arr, emb, np.array([i]), theme)
    score = total_score(f, arr.country_codes, weights)[0]
    ok = np.ones(arr.n, dtype=bool)
    ok[i] = False
    if filters.exclude_current:
        ok &= ~f.tied[0]
    if theme is not None:
        strong = np.nan_to_num(arr.strength[:, theme], nan=0.0) >= 60
        ok &= (arr.priority[:, theme] > 0) | strong | (arr.practices[:, theme] > 0)
    if filters.languages:
        idx = [arr.language_codes.index(c) for c in filters.languages]
        ok &= arr.languages[:, idx].any(axis=1)
    if filters.max_distance_km is not None:
        ok &= f.distance_km[0] <= filters.max_distance_km
    if filters.membership is not None:
        ok &= arr.national == (filters.membership == "national")
    small = np.nan_to_num(arr.population, nan=np.inf) < SMALL_CITY
    lifted = score * (1.0 + EXPOSURE_NATIONAL * arr.national + EXPOSURE_SMALL * small)
    pool = np.flatnonzero(ok)
    remaining = list(pool[np.argsort(-lifted[pool], kind="stable")][: max(k * 5, 50)])
    chosen: list[int] = []
    per_country: dict[str, int] = {}
    while remaining and len(chosen) < k:
        best = max(
            remaining,
            key=lambda j: (lifted[j] * DIVERSITY ** per_country.get(arr.countries[j], 0), -j),
        )
        chosen.append(int(best))
        remaining.remove(best)
        per_country[arr.countries[best]] = per_country.get(arr.countries[best], 0) + 1
    return [(arr.city_ids[j], round(float(score[j]), 4)) for j in chosen]


FILTERS = [
    PartnerFilters(),
    PartnerFilters(theme="education"),
    PartnerFilters(exclude_current=False, languages=("en",)),
    PartnerFilters(max_distance_km=2000, membership="international"),
]


def test_fast_path_ranks_exactly_like_the_reference(tmp_path: Path) -> None:
    arr = encode(_snapshot(tmp_path, _network(40)))
    emb = _unit(arr.n)
    for city in arr.city_ids:
        for filters in FILTERS:
            got = suggest_partners(arr, emb, city, k=10, filters=filters)
            want = _reference(arr, emb, city, 10, filters)
            assert [(s.city_id, s.score) for s in got.suggestions] == want, (city, filters)


def test_fast_path_on_the_sample_matches_the_reference_and_its_components() -> None:
    arr = _sample_arrays()
    emb = _unit(arr.n, seed=3)
    index = partner_index(arr, emb)
    sample_filters = [*FILTERS[:1], PartnerFilters(theme="anti-rumours"), *FILTERS[2:]]
    for city in arr.city_ids[::7]:
        i = arr.index[city]
        f = pair_features(arr, emb, np.array([i]))
        parts = score_components(f, arr.country_codes)
        for filters in sample_filters:
            got = suggest_partners(arr, emb, city, k=10, filters=filters, index=index)
            assert [(s.city_id, s.score) for s in got.suggestions] == _reference(
                arr, emb, city, 10, filters
            )
        for s in suggest_partners(arr, emb, city, k=10, index=index).suggestions:
            j = arr.index[s.city_id]
            for name, values in parts.items():  # equal up to the last rounded digit
                assert abs(s.components[name] - float(values[0, j])) <= 5.1e-5, name
            assert abs(s.components["gain_for_them"] - float(f.gain_back[0, j])) <= 5.1e-5


def _same(a: PartnerResult, b: PartnerResult) -> bool:
    """The same lists, scores, components and reasons, up to float rounding in the last
    place (the profile similarity of a city may come from a different BLAS call)."""
    assert a.considered == b.considered
    assert [(s.city_id, s.score, s.forced) for s in a.suggestions] == [
        (s.city_id, s.score, s.forced) for s in b.suggestions
    ]
    for x, y in zip(a.suggestions, b.suggestions, strict=True):
        assert x.components.keys() == y.components.keys()
        assert all(abs(x.components[n] - y.components[n]) <= 1.1e-4 for n in x.components)
        assert [(r.kind, r.text) for r in x.reasons] == [(r.kind, r.text) for r in y.reasons]
        assert np.allclose([r.weight for r in x.reasons], [r.weight for r in y.reasons])
    return True


def test_pruning_by_the_bound_keeps_the_exhaustive_ranking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only cities whose score bound can reach the top are compared by profile vector; the
    lists are exactly those of scoring every city, on the sample (pruned from any size
    here), with and without filters, with random profiles and with identical ones (every
    bound tied)."""
    monkeypatch.setattr(partners, "PRUNE_FROM", 0)
    arr = _sample_arrays()
    for emb in (_unit(arr.n, seed=4), np.full((arr.n, 8), 8**-0.5, dtype=np.float32)):
        index = partner_index(arr, emb)
        for city in arr.city_ids[::8]:
            for filters in (PartnerFilters(), PartnerFilters(theme="anti-rumours"), *FILTERS[2:]):
                for k in (1, 10, 30):
                    full = suggest_partners(
                        arr, emb, city, k=k, filters=filters, index=index, prune=False
                    )
                    pruned = suggest_partners(arr, emb, city, k=k, filters=filters, index=index)
                    assert _same(pruned, full), (city, filters, k)


def test_pruning_reads_few_profile_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a generated network of 3,000 cities, the bound leaves a small share of the
    profile vectors to read, and the lists are still the exhaustive ones."""
    monkeypatch.setattr(partners, "PRUNE_FROM", 0)
    from scripts import netgen

    data = netgen.generate(3000, 1)
    arr = encode(
        build_snapshot(0, {Kind(k): [from_props(Kind(k), r) for r in v] for k, v in data.items()})
    )
    emb = _unit(arr.n, seed=6)
    index = partner_index(arr, emb)
    sizes = []
    for city in arr.city_ids[::150]:
        i = arr.index[city]
        graph = partners._graph(index, i)
        ok = partners._pool(index, i, PartnerFilters(), None, graph)
        sizes.append(len(partners._candidates(index, i, ok, None, graph, PartnerWeights(), 50)))
        full = suggest_partners(arr, emb, city, index=index, prune=False)
        assert _same(suggest_partners(arr, emb, city, index=index), full)
    assert np.median(sizes) < 0.25 * arr.n, sizes


def test_the_bound_pass_computes_the_exact_terms() -> None:
    """``_rest`` (every term but profile similarity, for every city, rearranged for speed)
    equals the sum of the exact terms of ``_columns``, with and without a theme, on the
    sample, well within the slack the bound allows for rounding."""
    arr = _sample_arrays()
    index = partner_index(arr, _unit(arr.n, seed=5))
    every = np.arange(arr.n, dtype=np.int64)
    for theme in (None, arr.theme_index["anti-rumours"], arr.theme_index["education"]):
        weights = PartnerWeights() if theme is None else replace(PartnerWeights(), graph=0.25)
        for city in arr.city_ids[::5]:
            i = arr.index[city]
            graph = partners._graph(index, i)
            exact = partners._columns(index, i, every, theme, graph, weights)
            want = exact.score - exact.parts["similarity"]
            got = partners._rest(index, i, theme, graph, weights)
            assert np.abs(got - want).max() < partners.BOUND_SLACK / 5, (city, theme)
            assert np.ptp(want) > 0.1  # the terms vary: the comparison says something
