"""Every matcher on every shape of valid network: a result, or one of our errors, never a crash.

Real networks arrive with only part of the interchange format (issue 12, "Any valid network
works"): cities only; cities and ties only; no themes; no Index scores; no texts; one
country; one city; no ties; thousands of cities of degree 1 (a star, or many pairs). A
user's ties-only network of 16,500 cities crashed partners, and geographic clusters on it
asked for Index scores although they need nothing but coordinates. So every matcher is run
here on named shapes and on shapes Hypothesis draws, and each must return a result or raise
an ``IccmatchError`` (``InvalidInput``, ``Infeasible``, ...) with a message a person can act
on. Where the data cannot support a rule (a lead strong in a theme, with no Index scores and
no good practices), the proposal must say it waived the rule and why, and go on.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from graph.errors import IccmatchError
from graph.model import Cluster as ClusterRow
from graph.model import Kind, from_props
from graph.snapshot import NetworkSnapshot, build_snapshot
from graph.store import GraphStore
from ingest.load import ingest_rows
from ingest.read import RawRow
from matching.analytics import network_stats
from matching.analytics.export import csv_texts, gexf_bytes, graphml_bytes, network_view
from matching.clusters import ClusterParams, ClusterProposal, evaluate_clusters, propose_clusters
from matching.clusters.inputs import cluster_input
from matching.experts import assign_experts, expert_inputs
from matching.kernel.arrays import NetworkArrays, encode
from matching.partners import PartnerFilters, suggest_partners
from matching.partners.evaluate import evaluate_partners, standard_methods
from matching.partners.learn import TieContext, fit_ranker
from matching.partners.learned import PartnerModel

T = TypeVar("T")
Ties = Literal["none", "random", "star", "pairs"]

COUNTRIES = ("PT", "ES", "IT", "FR", "DE", "GR")
LANGUAGES = ("pt", "es", "it", "fr", "de", "el")
THEMES = ("education", "anti-rumours", "housing")


@dataclass(frozen=True)
class Shape:
    """Which parts of the interchange format a drawn network has (cities always)."""

    n: int
    countries: int = 3
    languages: bool = True
    membership: bool = True
    networks: bool = True
    joined: bool = True
    themes: bool = True
    priorities: bool = True
    index_scores: bool = True
    practices: bool = True
    texts: bool = True
    experts: bool = True
    ties: Ties = "random"
    seed: int = 0


BARE = Shape(
    n=24,
    languages=False,
    membership=False,
    networks=False,
    joined=False,
    themes=False,
    priorities=False,
    index_scores=False,
    practices=False,
    texts=False,
    experts=False,
    ties="none",
)
NAMED = {
    "everything": Shape(n=30),
    "cities_only": BARE,
    "cities_and_ties": replace(BARE, ties="random"),
    # the user's report: country, coordinates and languages, and ties (16,500 cities there)
    "ties_only_as_reported": replace(BARE, n=40, languages=True, ties="random"),
    "ties_only_enough_to_learn": replace(BARE, n=300, languages=True, ties="random"),  # ~600 ties
    "no_themes": replace(Shape(n=30), themes=False, priorities=False, index_scores=False),
    "no_index_scores": replace(Shape(n=30), index_scores=False, practices=False),
    "no_texts": replace(Shape(n=30), texts=False),
    "one_country": replace(Shape(n=20), countries=1),
    "one_city": replace(Shape(n=1), ties="none"),
    "no_ties": replace(Shape(n=30), ties="none"),
    # above clusters.affinity.DENSE_MAX (3,000): the sparse affinity, as at 16,500 cities
    "star_of_thousands": replace(BARE, n=3200, languages=True, ties="star"),
    "pairs_of_thousands": replace(BARE, n=2000, languages=True, experts=True, ties="pairs"),
}


def network_rows(shape: Shape) -> dict[str, list[dict[str, Any]]]:
    """The rows of the interchange format for ``shape``; every value derives from its seed."""
    rng = np.random.default_rng(shape.seed)
    n = shape.n
    ids = [f"c{i:05d}" for i in range(n)]
    rows: dict[str, list[dict[str, Any]]] = {"cities": []}
    for i, cid in enumerate(ids):
        k = i % shape.countries
        city: dict[str, Any] = {
            "id": cid,
            "name": f"City {i}",
            "country": COUNTRIES[k],
            "lat": float(36 + rng.random() * 24),
            "lon": float(-9 + rng.random() * 33),
        }
        if shape.languages:
            city["languages"] = ("en", LANGUAGES[k]) if rng.random() < 0.8 else (LANGUAGES[k],)
        if shape.membership:
            national = rng.random() < 0.4
            city["membership"] = "national" if national else "international"
            if shape.networks and national:
                city["networks"] = (f"net-{COUNTRIES[k].lower()}",)
        if shape.joined:
            city["joined"] = int(rng.integers(2008, 2025))
        if shape.texts:
            city["description"] = f"City {i} works on inclusion."
        rows["cities"].append(city)
    if shape.membership and shape.networks:
        rows["networks"] = [
            {"id": f"net-{c.lower()}", "name": f"Network {c}", "country": c}
            for c in COUNTRIES[: shape.countries]
        ]
    if shape.themes:
        rows["themes"] = [
            {"id": t, "name": t.title(), **({"description": f"About {t}."} if shape.texts else {})}
            for t in THEMES
        ]
        if shape.priorities:
            rows["city_themes"] = [
                {"city_id": cid, "theme_id": t, "priority": int(rng.integers(1, 6))}
                for cid in ids
                for t in THEMES
                if rng.random() < 0.6
            ]
        if shape.index_scores:  # the Index scores some themes only, as the real one does
            rows["index_scores"] = [
                {"city_id": cid, "theme_id": t, "score": float(rng.integers(20, 101))}
                for cid in ids
                for t in THEMES[:2]
                if rng.random() < 0.7
            ]
        if shape.practices:
            rows["practices"] = [
                {
                    "id": f"pr-{i}",
                    "city_id": ids[i],
                    "title": f"Practice {i}",
                    "themes": (THEMES[i % 3],),
                    **({"description": "A campaign."} if shape.texts else {}),
                }
                for i in range(0, n, 3)
            ]
    if shape.experts:
        rows["experts"] = [
            {
                "id": f"exp-{e}",
                "name": f"Expert {e}",
                "languages": ("en", LANGUAGES[e]) if shape.languages else (),
                "country": COUNTRIES[e],
                "lat": 45.0 + e,
                "lon": 5.0 + e,
                "max_assignments": 2,
                **({"bio": "Works on inclusion."} if shape.texts else {}),
            }
            for e in range(3)
        ]
        if shape.themes:
            rows["expert_themes"] = [
                {"expert_id": f"exp-{e}", "theme_id": t, "level": 1 + (e + k) % 5}
                for e in range(3)
                for k, t in enumerate(THEMES)
            ]
    rows["partnerships"] = [
        {"city_a": ids[a], "city_b": ids[b], "kind": "twinning"} for a, b in _tie_pairs(shape, rng)
    ]
    return rows


def _tie_pairs(shape: Shape, rng: np.random.Generator) -> list[tuple[int, int]]:
    n = shape.n
    if shape.ties == "star":
        return [(0, i) for i in range(1, n)]
    if shape.ties == "pairs":
        return [(i, i + 1) for i in range(0, n - 1, 2)]
    if shape.ties == "random" and n > 1:
        upper = np.triu(rng.random((n, n)) < min(0.9, 4.0 / n), k=1)
        return [(int(a), int(b)) for a, b in zip(*np.nonzero(upper), strict=True)]
    return []


def snapshot_of(shape: Shape) -> NetworkSnapshot:
    """Rows -> domain objects -> snapshot, as a store's snapshot is built."""
    rows = network_rows(shape)
    return build_snapshot(
        1, {Kind(k): [from_props(Kind(k), r) for r in kind_rows] for k, kind_rows in rows.items()}
    )


def no_profiles(arr: NetworkArrays) -> NDArray[np.float32]:
    return np.zeros((arr.n, 0), dtype=np.float32)


# --------------------------------------------------------------------------- the checks


def result_or_clear_error(call: Callable[..., T], *args: Any, **kwargs: Any) -> T | IccmatchError:
    """What ``call`` returns, or the project error it raises; any other exception fails."""
    try:
        return call(*args, **kwargs)
    except IccmatchError as e:
        text = str(e)
        assert len(text) >= 20 and text == text.strip(), f"unclear message: {text!r}"
        assert "nan" not in text.split(), text
        return e


def has_strength_data(snap: NetworkSnapshot) -> bool:
    """Whether anything shows a city strong in a theme: an Index score or a good practice."""
    return bool(snap.index_scores) or any(p.themes for p in snap.practices)


def check_partners(arr: NetworkArrays) -> None:
    """Default suggestions (with a theme filter when there are themes), then the learned
    ranker's where the network has the ties to fit one."""
    profiles = no_profiles(arr)
    asking = sorted({0, arr.n - 1, int(np.argmax(np.diff(arr.ties.indptr)))})
    theme = PartnerFilters(theme=arr.theme_ids[0]) if arr.theme_ids else PartnerFilters()
    for i in asking:
        for filters in (PartnerFilters(), theme):
            out = result_or_clear_error(
                suggest_partners, arr, profiles, arr.city_ids[i], k=5, filters=filters
            )
            if not isinstance(out, IccmatchError):
                assert all(s.city_id != arr.city_ids[i] and s.reasons for s in out.suggestions)
    ranker = result_or_clear_error(fit_ranker, arr, profiles, seed=0)
    if ranker is None or isinstance(ranker, IccmatchError):
        return
    model = PartnerModel(ranker, TieContext.build(arr, profiles))
    for i in asking:
        out = result_or_clear_error(
            suggest_partners, arr, profiles, arr.city_ids[i], k=5, model=model
        )
        if not isinstance(out, IccmatchError):
            assert all(s.city_id != arr.city_ids[i] for s in out.suggestions)


def check_evaluation(arr: NetworkArrays) -> None:
    methods = standard_methods(0)
    out = result_or_clear_error(
        evaluate_partners, arr, no_profiles(arr), methods, holdout=0.05, splits=1, k=5
    )
    if not isinstance(out, IccmatchError):
        assert [m.name for m in out.methods] == [m.name for m in methods]


def check_clusters(snap: NetworkSnapshot, arr: NetworkArrays) -> list[ClusterProposal]:
    """Thematic and geographic proposals, and a planner's re-check of each; returns the
    proposals that came back."""
    inp = cluster_input(arr, no_profiles(arr))  # a valid network is a valid cluster input
    proposals = []
    for kind in ("thematic", "geographic"):
        params = ClusterParams(kind=kind, time_limit_s=0.25)
        out = result_or_clear_error(propose_clusters, inp, params)
        if isinstance(out, IccmatchError):
            # never a refusal over a rule the data cannot support
            assert has_strength_data(snap) or "lead" not in str(out), out
            assert arr.language_codes or "language" not in str(out), out
            continue
        check_proposal(snap, out)
        proposals.append(out)
        if out.clusters:
            groups = {
                f"{c.theme_ids[0]}#{c.id}" if kind == "thematic" else c.id: c.members
                for c in out.clusters
            }
            again = {s.name: s for s in evaluate_clusters(inp, params, groups).constraints}
            for s in out.constraints:
                if s.name in ("size_bounds", "lead", "common_language", "multi_country"):
                    assert (again[s.name].status, again[s.name].violated) == (s.status, 0)
    return proposals


def check_proposal(snap: NetworkSnapshot, prop: ClusterProposal) -> None:
    json.dumps(prop.to_dict(), allow_nan=False)
    # a rule is kept or waived with a reason; only a count asked for may be missed (reported)
    assert all(s.violated == 0 for s in prop.constraints if s.name != "n_clusters")
    status = {s.name: s for s in prop.constraints}
    for s in prop.constraints:
        assert s.status != "relaxed" or s.detail, f"{s.name} relaxed without a reason"
    if not has_strength_data(snap):
        assert status["lead"].status == "relaxed" and "Index scores" in status["lead"].detail
    for c in prop.clusters:
        assert c.lead_city in c.members and c.reasons
        lead = next(r.text for r in c.reasons if r.kind == "lead")
        assert "No member can lead" not in lead
    assert all(u.reason for u in prop.unassigned)
    placed = {m for c in prop.clusters for m in c.members}
    assert len(placed) + len(prop.unassigned) == len(snap.cities)


def accepted(snap: NetworkSnapshot, proposals: list[ClusterProposal]) -> list[ClusterRow]:
    """The proposals' clusters as accepted rows, or one made-up cluster when none came out."""
    rows = [
        ClusterRow(
            id=f"{p.kind}-{c.id}",
            name=c.id,
            kind=c.kind,
            members=c.members,
            theme_ids=c.theme_ids,
            lead_city=c.lead_city,
            working_languages=c.working_languages,
        )
        for p in proposals
        for c in p.clusters
    ]
    if rows:
        return rows
    members = tuple(c.id for c in snap.cities[:4])
    return [ClusterRow(id="made-up", name="Made up", kind="geographic", members=members)]


def check_experts(snap: NetworkSnapshot, arr: NetworkArrays, clusters: list[ClusterRow]) -> None:
    """Both assignments (best total and fair) with no texts to compare (empty vectors)."""
    experts = snap.experts
    data = expert_inputs(
        experts,
        snap.expert_themes,
        arr,
        no_profiles(arr),
        np.zeros((len(experts), 0), dtype=np.float32),
        clusters,
        conflict_same_country=True,
    )
    capacity = np.array([e.max_assignments or 2 for e in experts])
    demand = np.ones(len(clusters), dtype=np.int64)
    ids = ([e.id for e in experts], [c.id for c in clusters])
    for fair in (False, True):
        out = result_or_clear_error(assign_experts, *ids, data, capacity, demand, fair=fair)
        if isinstance(out, IccmatchError):
            continue
        assert all(p.reasons for p in out.pairs) and all(u.relax for u in out.unserved)
        # no text on either side: similarity is no reason, and a note says why
        assert not any(r.kind == "similarity" for p in out.pairs for r in p.reasons)
        assert not out.pairs or any("no profile text" in note for note in out.notes)


def check_analytics(snap: NetworkSnapshot, clusters: list[ClusterRow]) -> None:
    specs = [(c.id, c.members, c.theme_ids) for c in clusters]
    for chosen in (None, specs):
        stats = network_stats(snap, chosen, seed=0)
        json.dumps(stats.to_dict(), allow_nan=False)
        assert stats.cities == len(snap.cities)
    view = network_view(
        snap, community_of=stats.communities.community_of(), themes=True, networks=True
    )
    assert graphml_bytes(view) and gexf_bytes(view)
    assert set(csv_texts(view))


def check_every_matcher(snap: NetworkSnapshot) -> None:
    arr = encode(snap)
    assert arr.n == len(snap.cities)
    check_partners(arr)
    check_evaluation(arr)
    proposals = check_clusters(snap, arr)
    clusters = accepted(snap, proposals)
    if snap.experts:
        check_experts(snap, arr, clusters)
    check_analytics(snap, clusters)


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def named() -> Callable[[str], NetworkSnapshot]:
    """The snapshot of a named shape, built once for the module."""
    return functools.cache(lambda name: snapshot_of(NAMED[name]))


@pytest.mark.parametrize("name", sorted(NAMED))
def test_every_matcher_works_on_each_named_shape(
    name: str, named: Callable[[str], NetworkSnapshot]
) -> None:
    check_every_matcher(named(name))


@pytest.mark.parametrize("name", ["ties_only_as_reported", "cities_only"])
def test_geographic_clusters_need_nothing_but_coordinates(
    name: str, named: Callable[[str], NetworkSnapshot]
) -> None:
    """The reported failure: a ties-only network has no Index score and no good practice,
    so nobody can be shown to be strong in a theme. Geographic clusters waive the lead rule
    (and the common language when no language is listed), say so, and are proposed from
    coordinates alone."""
    arr = encode(named(name))
    params = ClusterParams(kind="geographic", time_limit_s=0.25)
    prop = propose_clusters(cluster_input(arr, no_profiles(arr)), params)
    assert prop.clusters and prop.hard_constraints_ok
    status = {s.name: s for s in prop.constraints}
    assert status["lead"].status == "relaxed" and status["lead"].relaxed == len(prop.clusters)
    assert "no Index scores and no good practices" in status["lead"].detail
    for c in prop.clusters:
        assert "lead rule was not applied" in next(r.text for r in c.reasons if r.kind == "lead")
    if not arr.language_codes:
        assert status["common_language"].status == "relaxed"
        assert "lists no languages" in status["common_language"].detail


shapes = st.builds(
    Shape,
    n=st.integers(1, 36),
    countries=st.integers(1, 4),
    languages=st.booleans(),
    membership=st.booleans(),
    networks=st.booleans(),
    joined=st.booleans(),
    themes=st.booleans(),
    priorities=st.booleans(),
    index_scores=st.booleans(),
    practices=st.booleans(),
    texts=st.booleans(),
    experts=st.booleans(),
    ties=st.sampled_from(["none", "random", "star", "pairs"]),
    seed=st.integers(0, 2**16),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=shapes)
def test_every_matcher_works_on_any_drawn_shape(shape: Shape) -> None:
    check_every_matcher(snapshot_of(shape))


@pytest.mark.parametrize("name", ["cities_only", "ties_only_as_reported", "one_city", "no_texts"])
def test_shapes_read_back_from_each_store_work_too(name: str, store: GraphStore) -> None:
    """The same shapes through the real ingest checks into each store (SQLite and the real
    Neo4j engine), and every matcher on the snapshot the store gives back."""
    rows = network_rows(NAMED[name])
    raw = [
        RawRow(kind, f"{kind.value}.json", i + 1, row)
        for kind in Kind
        for i, row in enumerate(rows.get(kind.value, ()))
    ]
    report = ingest_rows(raw, [], store)
    assert not report.errors, [str(e) for e in report.errors]
    snap = store.snapshot()
    assert len(snap.cities) == NAMED[name].n
    check_every_matcher(snap)
