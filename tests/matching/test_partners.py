"""Partner suggestions: reciprocity, filters, diversity, reasons; plain arrays in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graph.model import Kind, from_props
from graph.snapshot import NetworkSnapshot, build_snapshot
from matching.encoder import encode
from matching.features import pair_features
from matching.partners import PartnerFilters, UnknownCity, score_components, suggest_partners
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
    with pytest.raises(ValueError, match="no theme with id 'cooking'"):
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
