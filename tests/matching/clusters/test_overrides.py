"""A planner's overrides: keep-apart pairs both solvers honour, a lead kept when it can
lead and refused with the reason and the alternatives when not, impossible combinations
refused by name; and the comparison of two proposals.

Co-membership is read from the proposal's member lists, not from its constraint
statuses, so a bug in the rule checker cannot hide one in a solver.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from matching.clusters import (
    ClusterInfeasible,
    ClusterInput,
    ClusterParams,
    ClusterProposal,
    evaluate_clusters,
    propose_clusters,
)
from matching.clusters.compare import compare_proposals
from tests.matching.clusters.support import assert_valid


def network(n: int, seed: int = 0) -> ClusterInput:
    """``n`` cities of one theme in four countries, all speaking English, everyone able
    to lead except the last city, which also speaks only Russian."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(0.1, 0.9, size=(n, n))
    A = (A + A.T) / 2
    np.fill_diagonal(A, 0.0)
    languages = np.ones((n, 2), dtype=bool)
    languages[:, 1] = False
    languages[n - 1] = (False, True)
    strength = np.full((n, 1), 80.0)
    strength[n - 2, 0] = 40.0  # the one before last scores too low to lead
    return ClusterInput(
        city_ids=tuple(f"c{i}" for i in range(n)),
        names=tuple(f"City {i}" for i in range(n)),
        affinity=A,
        countries=tuple(("ES", "IT", "PT", "FR")[i % 4] for i in range(n)),
        networks=((),) * n,
        membership=tuple(("international", "national")[i % 2] for i in range(n)),
        languages=languages,
        language_codes=("en", "ru"),
        theme_ids=("t0",),
        theme_names=("Theme 0",),
        priority=np.full((n, 1), 3),
        strength=strength,
        capacity=np.ones(n, dtype=np.int64),
        lat=np.full(n, 45.0),
        lon=np.linspace(0.0, 5.0, n),
    )


def together(prop: ClusterProposal) -> set[tuple[str, str]]:
    return {(a, b) for c in prop.clusters for a in c.members for b in c.members if a < b}


@pytest.mark.parametrize(("method", "n"), [("exact", 10), ("heuristic", 60)])
def test_keep_apart_pairs_never_share_a_cluster_in_either_solver(method: str, n: int) -> None:
    inp = network(n)
    params = ClusterParams(min_size=3, max_size=5, method=method, time_limit_s=2)
    plain = propose_clusters(inp, params)
    assert plain.method.startswith("exact" if method == "exact" else "leiden")
    # the pairs the plain proposal puts together are the ones to keep apart
    pairs = sorted(together(plain))[: 3 if method == "exact" else 12]
    assert pairs
    apart = dataclasses.replace(params, keep_apart=tuple(pairs))
    prop = propose_clusters(inp, apart)
    assert prop.method.startswith("exact" if method == "exact" else "leiden")
    assert prop.clusters
    assert not together(prop) & set(pairs)
    assert_valid(inp, apart, prop)
    status = {s.name: s for s in prop.constraints}["keep_apart"]
    assert status.status == "satisfied" and status.satisfied == len(prop.clusters)


def test_a_pair_both_kept_together_and_apart_is_refused_by_name() -> None:
    inp = network(10)
    params = ClusterParams(
        min_size=3, max_size=5, locked={"t0": ("c1", "c2", "c3")}, keep_apart=(("c3", "c1"),)
    )
    with pytest.raises(ClusterInfeasible) as e:
        propose_clusters(inp, params)
    assert e.value.constraint == "keep_apart"
    assert "City 1 (c1) and City 3 (c3)" in str(e.value)
    assert "slot" not in str(e.value)


def test_an_edit_that_puts_a_kept_apart_pair_together_is_refused() -> None:
    inp = network(10)
    params = ClusterParams(min_size=3, max_size=5, keep_apart=(("c0", "c4"),))
    with pytest.raises(ClusterInfeasible) as e:
        evaluate_clusters(inp, params, {"t0#mine": ("c0", "c1", "c4")})
    assert "City 0 (c0) and City 4 (c4)" in str(e.value) and "'mine'" in str(e.value)
    ok = evaluate_clusters(inp, params, {"t0#mine": ("c0", "c1", "c2")})
    assert {s.name: s.status for s in ok.constraints}["keep_apart"] == "satisfied"


def test_the_planners_lead_is_kept_when_it_can_lead() -> None:
    inp = network(10)
    params = ClusterParams(min_size=3, max_size=5)
    plain = evaluate_clusters(inp, params, {"t0#a": ("c0", "c1", "c2", "c3")})
    wanted = next(m for m in plain.clusters[0].members if m != plain.clusters[0].lead_city)
    prop = evaluate_clusters(inp, params, {"t0#a": ("c0", "c1", "c2", "c3")}, {"t0#a": wanted})
    c = prop.clusters[0]
    assert c.lead_city == wanted
    assert c.lead_request is not None and c.lead_request.honoured
    # the planner made this cluster: no internal slot, no "kept together as asked"
    assert not any("slot" in r.text or r.kind == "locked" for r in c.reasons)


@pytest.mark.parametrize(
    ("wanted", "why"),
    [
        ("c8", "City 8 (c8) cannot lead: it scores 40 on Theme 0 (a lead needs 70)"),
        (
            "c9",
            "City 9 (c9) cannot lead: it shares no language with City 0, City 1, City 2 and City 8",
        ),
        ("c5", "City 5 (c5) cannot lead: it is not a member of this cluster"),
    ],
)
def test_a_lead_that_cannot_lead_is_refused_with_why_and_who_could(wanted: str, why: str) -> None:
    inp = network(10)
    params = ClusterParams(min_size=3, max_size=5, require_common_language=False)
    groups = {"t0#a": ("c0", "c1", "c2", "c8", "c9")}
    prop = evaluate_clusters(inp, params, groups, {"t0#a": wanted})
    c = prop.clusters[0]
    req = c.lead_request
    assert req is not None and not req.honoured and req.city_id == wanted
    assert req.reason.startswith(why), req.reason
    assert req.could_lead == ("c0", "c1", "c2")
    assert c.lead_city == "c0" and c.lead_city != wanted
    assert "members who could lead: City 0, City 1 and City 2" in req.reason
    assert any(r.kind == "lead_request" and r.text == req.reason for r in c.reasons)


def test_without_a_planners_lead_the_lead_speaks_with_everyone() -> None:
    inp = network(10)
    params = ClusterParams(min_size=3, max_size=5, require_common_language=False)
    # c9 (Russian only) would rank first on strength ties by index: make it the strongest
    strong = np.asarray(inp.strength).copy()
    strong[9, 0] = 99.0
    inp = dataclasses.replace(inp, strength=strong)
    prop = evaluate_clusters(inp, params, {"t0#a": ("c0", "c1", "c9")})
    assert prop.clusters[0].lead_city == "c0"


def test_a_lock_says_which_cities_were_kept_together_in_words() -> None:
    inp = network(10)
    params = ClusterParams(min_size=3, max_size=5, locked={"t0#x": ("c1", "c2")}, method="exact")
    prop = propose_clusters(inp, params)
    c = next(c for c in prop.clusters if c.locked_slot == "t0#x")
    texts = [r.text for r in c.reasons if r.kind == "locked"]
    assert texts == ["City 1 and City 2 kept together as asked"]


# --------------------------------------------------------------------------- compare


def doc(
    pid: str, clusters: dict[str, list[str]], objective: float, lead: str = "satisfied"
) -> dict:
    return {
        "id": pid,
        "kind": "thematic",
        "objective": objective,
        "clusters": [
            {"id": cid, "theme_ids": [cid.split("-")[0]], "members": ms}
            for cid, ms in clusters.items()
        ],
        "constraints": [
            {"name": "size_bounds", "status": "satisfied", "violated": 0},
            {"name": "lead", "status": lead, "violated": 0 if lead == "satisfied" else 1},
        ],
        "metrics": {"objective_coverage": 10.0, "objective_cohesion": 2.0, "worst_benefit": 0.5},
        "unassigned": [],
    }


def test_compare_names_moves_additions_departures_and_changed_terms() -> None:
    a = doc("A", {"edu-1": ["x", "y", "z"], "edu-2": ["p", "q", "r"], "art-1": ["x", "p"]}, 100.0)
    # edu clusters renumbered: edu-2 in B is A's edu-1 (x and y stay), z moves to the other;
    # r leaves, s joins; the art cluster is unchanged
    b = doc(
        "B",
        {"edu-1": ["p", "q", "z"], "edu-2": ["x", "y", "s"], "art-1": ["x", "p"]},
        98.5,
        lead="violated",
    )
    cmp = compare_proposals(a, b, {"z": "Zagreb", "r": "Rijeka", "s": "Split"})
    assert dict(cmp.matched) == {"edu-1": "edu-2", "edu-2": "edu-1", "art-1": "art-1"}
    assert [(m.city_id, m.from_cluster, m.to_cluster) for m in cmp.moved] == [
        ("z", "edu-1", "edu-1")
    ]
    assert [(m.city_id, m.to_cluster) for m in cmp.added] == [("s", "edu-2")]
    assert [(m.city_id, m.from_cluster) for m in cmp.left_out] == [("r", "edu-2")]
    terms = {t.name: t for t in cmp.terms}
    assert (terms["objective"].before, terms["objective"].after) == (100.0, 98.5)
    assert terms["objective"].change == -1.5
    rules = {r.name: r for r in cmp.rules}
    assert rules["lead"].changed and not rules["size_bounds"].changed
    assert cmp.reasons[0] == "1 city moved: Zagreb (edu-1 → edu-1)"
    assert "1 city added: Split (to edu-2)" in cmp.reasons
    assert "1 city left out: Rijeka (was in edu-2)" in cmp.reasons
    assert "lead: satisfied → violated (violated 0 → 1)" in cmp.reasons
    assert not cmp.same_clusters


def test_a_proposal_compared_with_itself_has_no_change() -> None:
    a = doc("A", {"edu-1": ["x", "y", "z"]}, 5.0)
    cmp = compare_proposals(a, a)
    assert cmp.same_clusters and cmp.reasons[0] == "The same cities are in the same clusters"
    assert all(t.change == 0 for t in cmp.terms) and not any(r.changed for r in cmp.rules)
