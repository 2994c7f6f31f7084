"""What the cluster tests share: random networks, planted plans, the invariant checker.

Invariants are checked from the raw input arrays, not from the proposal's own
constraint statuses, so a bug in the checker cannot hide a bug in the solver.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
from hypothesis import strategies as st

from matching.clusters import ClusterInfeasible, ClusterInput, ClusterParams, ClusterProposal
from scripts.planted import planted

__all__ = [
    "PARAMETERS",
    "assert_valid",
    "params_strategy",
    "planted",
    "propose_or_none",
    "random_input",
    "two_regions",
]

COUNTRIES = ("ES", "IT", "PT", "FR", "UA")
LANGS = ("en", "es", "fr", "it")
PARAMETERS = {
    "min_size",
    "max_size",
    "max_per_city",
    "n_clusters",
    "lead_min_strength",
    "require_common_language",
    "mixed_membership",
    "allow_single_country",
    "allow_single_network",
    "locked",
    "max_span_km",
}


def random_input(seed: int, n: int, n_themes: int = 3) -> ClusterInput:
    """A small random network; every array derives from ``seed``."""
    rng = np.random.default_rng(seed)
    countries = tuple(str(c) for c in rng.choice(COUNTRIES, size=n))
    languages = np.zeros((n, len(LANGS)), dtype=bool)
    for i in range(n):
        languages[i, rng.choice(len(LANGS))] = True
        if rng.random() < 0.7:
            languages[i, 0] = True
    membership = tuple("international" if rng.random() < 0.5 else "national" for _ in range(n))
    networks = tuple(
        (f"net-{countries[i].lower()}",)
        if membership[i] == "national" or rng.random() < 0.3
        else ()
        for i in range(n)
    )
    priority = np.zeros((n, n_themes), dtype=np.int64)
    for i in range(n):
        for t in rng.choice(n_themes, size=int(rng.integers(1, n_themes + 1)), replace=False):
            priority[i, int(t)] = int(rng.integers(1, 6))
    strength = rng.uniform(0, 100, size=(n, n_themes))
    strength[rng.random((n, n_themes)) < 0.15] = np.nan
    A = rng.random((n, n))
    A = (A + A.T) / 2
    np.fill_diagonal(A, 0.0)
    ties = (rng.random((n, n)) < 0.1).astype(np.float64)
    ties = np.maximum(ties, ties.T)
    np.fill_diagonal(ties, 0.0)
    return ClusterInput(
        city_ids=tuple(f"c{i}" for i in range(n)),
        names=tuple(f"City {i}" for i in range(n)),
        affinity=A,
        countries=countries,
        networks=networks,
        membership=membership,
        languages=languages,
        language_codes=LANGS,
        theme_ids=tuple(f"t{t}" for t in range(n_themes)),
        theme_names=tuple(f"Theme {t}" for t in range(n_themes)),
        priority=priority,
        strength=strength,
        capacity=rng.integers(0, 3, size=n),
        lat=rng.uniform(36, 60, size=n),
        lon=rng.uniform(-9, 30, size=n),
        practices=rng.random((n, n_themes)) < 0.1,
        ties=ties,
        joined=rng.integers(2008, 2025, size=n),
    )


def assert_valid(inp: ClusterInput, params: ClusterParams, prop: ClusterProposal) -> None:
    """Every hard constraint, checked from the input arrays."""
    pos = {c: i for i, c in enumerate(inp.city_ids)}
    cap = np.full(inp.n, params.max_per_city) if params.max_per_city is not None else inp.capacity
    count: Counter[int] = Counter()
    per_theme: Counter[tuple[str, int]] = Counter()
    locked_slots = {slot: {pos[c] for c in ids} for slot, ids in params.locked.items()}
    in_slot = {c.locked_slot for c in prop.clusters if c.locked_slot is not None}
    for c in prop.clusters:
        m = [pos[x] for x in c.members]
        assert len(set(m)) == len(m)
        assert params.min_size <= len(m) <= params.max_size
        count.update(m)
        main = c.theme_ids[0] if params.kind == "thematic" else None
        if main is not None:
            t = inp.theme_ids.index(main)
            per_theme.update((main, i) for i in m)
            slot_members = locked_slots.get(c.locked_slot or "", set())
            assert all(inp.priority[i, t] > 0 or i in slot_members for i in m)
            can_lead = [
                (
                    not np.isnan(inp.strength[i, t])
                    and inp.strength[i, t] >= params.lead_min_strength
                )
                or (inp.priority[i, t] >= 3 and inp.practices is not None and inp.practices[i, t])
                for i in m
            ]
        else:
            per_theme.update(("geo", i) for i in m)
            can_lead = [
                bool((np.nan_to_num(inp.strength[i], nan=-1) >= params.lead_min_strength).any())
                or bool(
                    (
                        (inp.priority[i] >= 3)
                        & (inp.practices[i] if inp.practices is not None else False)
                    ).any()
                )
                for i in m
            ]
        assert any(can_lead), f"{c.id} has no lead"
        assert pos[c.lead_city] in m and can_lead[m.index(pos[c.lead_city])]
        shared = inp.languages[m].all(axis=0)
        assert set(c.working_languages) == {inp.language_codes[b] for b in np.flatnonzero(shared)}
        if params.require_common_language:
            assert c.working_languages, f"{c.id} shares no language"
        if not params.allow_single_country:
            assert len({inp.countries[i] for i in m}) >= 2
        if not params.allow_single_network:
            common = set(inp.networks[m[0]])
            for i in m[1:]:
                common &= set(inp.networks[i])
            assert not common, f"{c.id} is all in {common}"
        assert not (set(c.members) & params.excluded)
        assert c.reasons and c.to_dict()["members"] == list(c.members)
    for i, k in count.items():
        assert k <= cap[i], f"{inp.city_ids[i]} is in {k} clusters, capacity {cap[i]}"
    assert all(v == 1 for v in per_theme.values())
    for slot, members in locked_slots.items():
        assert slot in in_slot
        hit = [c for c in prop.clusters if c.locked_slot == slot]
        assert len(hit) == 1 and members <= {pos[x] for x in hit[0].members}
    if params.mixed_membership and params.kind == "thematic":
        excluded = {pos[c] for c in params.excluded}
        for theme in {c.theme_ids[0] for c in prop.clusters}:
            t = inp.theme_ids.index(theme)
            mine = [c for c in prop.clusters if c.theme_ids[0] == theme]
            cand = [
                i
                for i in range(inp.n)
                if (inp.priority[i, t] > 0 and cap[i] > 0 and i not in excluded)
                or any(i in locked_slots[c.locked_slot] for c in mine if c.locked_slot)
            ]
            n_int = sum(inp.membership[i] == "international" for i in cand)
            n_nat = len(cand) - n_int
            unmixed = sum(len({inp.membership[pos[x]] for x in c.members}) < 2 for c in mine)
            if n_int and n_nat:
                assert unmixed <= max(0, len(mine) - min(n_int, n_nat))
    placed = set(count)
    assert {u.city_id for u in prop.unassigned} == {
        inp.city_ids[i] for i in range(inp.n) if i not in placed
    }
    assert all(u.reason for u in prop.unassigned)
    assert prop.hard_constraints_ok
    d = prop.to_dict()
    json.dumps(d, allow_nan=False)  # what the CLI prints must be valid JSON
    assert {
        "clusters",
        "unassigned",
        "metrics",
        "objective",
        "constraints",
        "method",
        "seed",
    } <= set(d)
    for cd in d["clusters"]:
        assert {
            "id",
            "theme_ids",
            "members",
            "lead_city",
            "working_languages",
            "score",
            "reasons",
        } <= set(cd)


params_strategy = st.builds(
    ClusterParams,
    min_size=st.integers(2, 4),
    max_size=st.integers(4, 7),
    max_per_city=st.one_of(st.none(), st.integers(1, 2)),
    lead_min_strength=st.sampled_from([30.0, 50.0, 70.0]),
    require_common_language=st.booleans(),
    mixed_membership=st.booleans(),
    allow_single_country=st.booleans(),
    allow_single_network=st.booleans(),
    seed=st.integers(0, 1000),
    method=st.just("heuristic"),
)


def propose_or_none(inp: ClusterInput, params: ClusterParams) -> ClusterProposal | None:
    from matching.clusters import propose_clusters

    try:
        return propose_clusters(inp, params)
    except ClusterInfeasible as e:
        assert e.constraint in PARAMETERS and any(
            w in e.detail for w in ("lower", "raise", "set ", "drop", "unlock", "add ", "request")
        ), e.detail
        return None


def placed_input(
    affinity: np.ndarray,
    countries: tuple[str, ...],
    lat: np.ndarray,
    lon: np.ndarray,
    names: tuple[str, ...] | None = None,
) -> ClusterInput:
    """Cities that differ only by place and affinity: one theme, one shared language,
    members alternately international and national, one cluster each."""
    n = len(countries)
    return ClusterInput(
        city_ids=tuple(f"c{i}" for i in range(n)),
        names=names or tuple(f"City {i}" for i in range(n)),
        affinity=affinity,
        countries=countries,
        networks=((),) * n,
        membership=tuple(("international", "national")[i % 2] for i in range(n)),
        languages=np.ones((n, 1), dtype=bool),
        language_codes=("en",),
        theme_ids=("t0",),
        theme_names=("Theme 0",),
        priority=np.full((n, 1), 3),
        strength=np.full((n, 1), 80.0),
        capacity=np.ones(n, dtype=np.int64),
        lat=lat,
        lon=lon,
    )


def two_regions(n_per: int = 12) -> ClusterInput:
    """Iberian and Eastern cities with identical affinity: only distance separates them."""
    n = 2 * n_per
    west = n_per
    countries = tuple(("ES", "PT")[i % 2] if i < west else ("UA", "PL")[i % 2] for i in range(n))
    lat = np.asarray([40.0 + (i % 3) if i < west else 50.0 + (i % 3) for i in range(n)])
    lon = np.asarray([-5.0 + (i % 4) if i < west else 28.0 + (i % 4) for i in range(n)])
    return placed_input(np.full((n, n), 0.5) - 0.5 * np.eye(n), countries, lat, lon)
