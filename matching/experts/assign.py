"""``assign_experts``: the expert matcher's entry point, from plain data to reasons.

It runs the three steps in order (inputs -> solve -> report): the expert x cluster affinity
from ``ExpertClusterData`` (``affinity.py``), the exact assignment (``flow.py``, or
``fair.py`` when asked), and the report the secretariat reads: each pair with its score,
components and plain-language reasons, each expert's load, and each cluster left short
with what to relax (``shortfall.py``). Infeasibility is an answer here, not an error,
unless the caller asks for all or nothing.

A planner can also fix pairs (an expert they want for a cluster) and declare conflicts
(``ExpertClusterData.conflict_reasons``). A fixed pair is honoured when the rules allow it
(it then takes a seat of the cluster and one of the expert's assignments, and the rest is
solved optimally around it: the result is the best assignment *containing* the fixed
pairs) or refused with the reason; every declared conflict that ruled a pair out is
listed, in words, so nobody wonders why an expert was not chosen. Experts and clusters
are named in every sentence (by name when given, else by id).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from matching.experts.affinity import (
    COMPONENTS,
    Affinity,
    AffinityWeights,
    ExpertClusterData,
    build_affinity,
)
from matching.experts.fair import cluster_mean_affinity, fairest_assignment
from matching.experts.flow import best_flow
from matching.experts.problem import InvalidAssignmentInput, TransportProblem, validate_problem
from matching.experts.shortfall import (
    InfeasibleAssignment,
    ShortfallGroup,
    describe_shortfall,
    shortfall_groups,
)
from matching.kernel.arrays import IntArray
from matching.kernel.wording import Reason, name_list, plural


@dataclass(frozen=True, slots=True)
class AssignedPair:
    """One expert assigned to one cluster.

    ``score`` is the pair's affinity, ``components`` its parts (they add up to it).
    ``reasons`` go largest first; a reason's ``weight`` is its component's signed share
    of the sum of |components| (0 for the language reason unless it carries a bonus).
    """

    expert_id: str
    cluster_id: str
    score: float
    reasons: tuple[Reason, ...]
    components: dict[str, float]
    expert_name: str
    cluster_name: str
    fixed: bool = False  # asked for by the planner, not chosen by the solver


@dataclass(frozen=True, slots=True)
class ExpertLoad:
    """How many clusters an expert got, out of the most they take."""

    expert_id: str
    name: str
    assigned: int
    capacity: int


@dataclass(frozen=True, slots=True)
class FixedPair:
    """A pair the planner fixed: ``honoured`` (it is in the assignment) or refused, and why."""

    expert_id: str
    expert_name: str
    cluster_id: str
    cluster_name: str
    honoured: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ExcludedPair:
    """A pair a declared conflict ruled out; ``reason`` is the whole sentence."""

    expert_id: str
    expert_name: str
    cluster_id: str
    cluster_name: str
    reason: str


@dataclass(frozen=True, slots=True)
class UnservedCluster:
    """A cluster that gets fewer experts than it asked for, and what to relax."""

    cluster_id: str
    cluster_name: str
    demand: int
    assigned: int
    eligible_experts: int  # with capacity > 0 and allowed
    excluded_by_language: int
    excluded_by_conflict: int
    excluded_by_distance: int
    competing_clusters: tuple[str, ...]  # the other clusters short of the same experts
    relax: str

    @property
    def missing(self) -> int:
        return self.demand - self.assigned


@dataclass(frozen=True, slots=True)
class ExpertAssignment:
    """The outcome of ``assign_experts``; ``notes`` say when seats were left unfilled."""

    pairs: tuple[AssignedPair, ...]  # by cluster, then by descending score
    loads: tuple[ExpertLoad, ...]  # in expert order
    unserved: tuple[UnservedCluster, ...]  # empty when every cluster got its demand
    objective: float  # total affinity of the pairs
    fair: bool  # solved with solve_fair_assignment's max-min objective
    worst_cluster_mean: float | None  # smallest mean affinity over clusters with experts
    notes: tuple[str, ...] = ()
    fixed: tuple[FixedPair, ...] = ()  # the planner's fixed pairs, in the order given
    excluded: tuple[ExcludedPair, ...] = ()  # pairs declared conflicts ruled out


def _similarity_text(value: float) -> str:
    if value >= 0.5:
        closeness = "close to"
    elif value >= 0.25:
        closeness = "somewhat close to"
    else:
        closeness = "far from"
    return f"profile {closeness} the cluster's (similarity {value:.2f})"


def _km(km: float) -> str:
    if km < 10:
        return "less than 10 km"
    rounded = round(km, -1) if km < 1000 else round(km, -2)
    return f"{rounded:,.0f} km"


def _travel_text(mean: float, farthest: float, city: str | None) -> str:
    if city is None:
        return f"based on average {_km(mean)} from the cluster's member cities"
    if farthest - mean < 1.0:  # one member, or all at the same distance
        return f"based {_km(farthest)} from {city}, the cluster's member city"
    return (
        f"based on average {_km(mean)} from the cluster's member cities "
        f"(farthest: {city}, {_km(farthest)})"
    )


def _reasons(
    aff: Affinity,
    data: ExpertClusterData,
    e: int,
    c: int,
    n_themes_of: IntArray,
    required: IntArray,
) -> tuple[tuple[Reason, ...], dict[str, float]]:
    parts = {name: float(aff.components[name][e, c]) for name in COMPONENTS}
    magnitude = sum(abs(v) for v in parts.values())

    def share(*names: str) -> float:
        return sum(parts[n] for n in names) / magnitude if magnitude else 0.0

    reasons: list[Reason] = []
    if aff.profiled[e, c]:  # without a text on both sides a similarity of 0 says nothing
        text = _similarity_text(float(aff.similarity[e, c]))
        reasons.append(Reason("similarity", text, share("similarity")))
    if n_themes_of[c] > 0:
        t = int(aff.best_theme[e, c])
        if t >= 0:
            which = "the cluster's theme" if n_themes_of[c] == 1 else "one of the cluster's themes"
            text = f"level {int(aff.best_level[e, c])}/5 in {data.theme_names[t]}, {which}"
        else:
            text = "no recorded expertise in the cluster's themes"
        reasons.append(Reason("theme_level", text, share("theme", "expertise")))
    if required[c] >= 0:
        reasons.append(
            Reason(
                "language",
                f"speaks {data.language_names[int(required[c])]}, the cluster's working language",
                share("language"),
            )
        )
    km = float(aff.distance_km[e, c])
    if not math.isnan(km):
        city = int(aff.farthest_city[e, c])
        text = _travel_text(
            km, float(aff.farthest_km[e, c]), data.city_names[city] if city >= 0 else None
        )
        reasons.append(Reason("distance", text, share("distance")))
    if not reasons:
        reasons.append(
            Reason("available", "free to serve: no profile, theme, language or place to compare")
        )
    reasons.sort(key=lambda r: -abs(r.weight))
    return tuple(reasons), parts


def assign_experts(
    expert_ids: Sequence[str],
    cluster_ids: Sequence[str],
    data: ExpertClusterData,
    capacity: npt.ArrayLike,
    demand: npt.ArrayLike,
    *,
    weights: AffinityWeights = AffinityWeights(),
    fair: bool = False,
    allow_partial: bool = True,
    time_limit_s: float | None = None,
    seed: int = 0,
    fixed: Sequence[tuple[str, str]] = (),
    expert_names: Sequence[str] | None = None,
    cluster_names: Sequence[str] | None = None,
) -> ExpertAssignment:
    """Assign experts to clusters, each pair with its reasons.

    ``expert_ids``/``cluster_ids`` name the rows/columns of ``data``'s arrays;
    ``expert_names``/``cluster_names`` (default: the ids) are what sentences say. The
    affinity comes from ``build_affinity(data, weights)``; the assignment from
    ``solve_assignment`` (max total) or, with ``fair``, ``solve_fair_assignment``.
    ``fixed``: (expert id, cluster id) pairs the planner wants; each is honoured (and the
    rest solved optimally around it) or refused with a reason, see ``FixedPair``.
    When not every cluster can get its demand: with ``allow_partial`` (default) the
    assignment fills as many seats as possible (best total among those; with ``fair``,
    fair over the seats filled) and lists the clusters left short in ``unserved`` with
    what to relax; otherwise ``InfeasibleAssignment`` is raised, naming clusters.
    With ``fair`` and ``time_limit_s``, ``FairnessTimeout`` when the limit is reached.
    """
    aff = build_affinity(data, weights)
    n_e, n_c = aff.score.shape
    if len(expert_ids) != n_e or len(cluster_ids) != n_c:
        raise InvalidAssignmentInput(
            f"got {len(expert_ids)} expert ids and {len(cluster_ids)} cluster ids for data of "
            f"{n_e} experts x {n_c} clusters"
        )
    for what, ids in (("expert", expert_ids), ("cluster", cluster_ids)):
        if len(set(ids)) != len(ids):
            raise InvalidAssignmentInput(f"{what} ids must be unique")
    e_names = _names(expert_names, expert_ids, "expert")
    c_names = _names(cluster_names, cluster_ids, "cluster")
    full = validate_problem(aff.score, capacity, demand, aff.forbidden)
    pinned, fixed_pairs = _fix(full, aff, data, fixed, expert_ids, cluster_ids, e_names, c_names)
    # the rest of the seats around the fixed pairs, which cannot be chosen twice
    p = replace(
        full,
        capacity=full.capacity - pinned.sum(axis=1),
        demand=full.demand - pinned.sum(axis=0),
        allowed=full.allowed & (pinned == 0),
    )
    x, complete = best_flow(p)
    unserved: tuple[UnservedCluster, ...] = ()
    notes: list[str] = []
    if not complete:
        groups = shortfall_groups(p, x)
        if not allow_partial:
            raise InfeasibleAssignment(groups, c_names)
        unserved = _unserved(p, aff, x, groups, cluster_ids, c_names, pinned.sum(axis=0))
        notes.append(
            f"{plural(sum(u.missing for u in unserved), 'expert seat')} could not be "
            "filled; the assignment fills as many as possible"
        )
    served = x.sum(axis=0)
    if fair:
        x = fairest_assignment(replace(p, demand=served), x, time_limit_s, seed)
        if pinned.any():
            notes.append(
                "the fixed pairs are kept as given; the fair objective chose the other experts"
            )
    x = x + pinned

    required = np.asarray(data.cluster_language)
    n_themes_of = (np.asarray(data.cluster_themes, dtype=np.float64) > 0).sum(axis=1)
    pairs: list[AssignedPair] = []
    for c in range(n_c):
        es = np.flatnonzero(x[:, c])
        for e in sorted(es.tolist(), key=lambda e: (-aff.score[e, c], e)):
            reasons, parts = _reasons(aff, data, e, c, n_themes_of, required)
            if pinned[e, c]:
                reasons = (Reason("fixed", "fixed by the planner"), *reasons)
            pairs.append(
                AssignedPair(
                    expert_ids[e],
                    cluster_ids[c],
                    float(aff.score[e, c]),
                    reasons,
                    parts,
                    e_names[e],
                    c_names[c],
                    bool(pinned[e, c]),
                )
            )
    loads = tuple(
        ExpertLoad(expert_ids[e], e_names[e], int(x[e].sum()), int(full.capacity[e]))
        for e in range(n_e)
    )
    blind = sum(1 for e, c in zip(*np.nonzero(x), strict=True) if not aff.profiled[e, c])
    if blind:
        notes.append(
            f"{plural(blind, 'pair')} had no profile text to compare (an empty bio or no city "
            "profiles): their profile similarity counts 0 and is not given as a reason"
        )
    excluded = tuple(
        ExcludedPair(
            expert_ids[e],
            e_names[e],
            cluster_ids[c],
            c_names[c],
            f"{e_names[e]} is not assigned to cluster {c_names[c]}: {text}",
        )
        for (e, c), text in sorted((data.conflict_reasons or {}).items())
    )
    means = cluster_mean_affinity(full.affinity, x)
    finite = means[~np.isnan(means)]
    return ExpertAssignment(
        pairs=tuple(pairs),
        loads=loads,
        unserved=unserved,
        objective=float((full.affinity * x).sum()),
        fair=fair,
        worst_cluster_mean=float(finite.min()) if finite.size else None,
        notes=tuple(notes),
        fixed=fixed_pairs,
        excluded=excluded,
    )


def _names(names: Sequence[str] | None, ids: Sequence[str], what: str) -> list[str]:
    if names is None:
        return list(ids)
    if len(names) != len(ids):
        raise InvalidAssignmentInput(f"got {len(names)} {what} names for {len(ids)} {what} ids")
    return list(names)


def _fix(
    p: TransportProblem,
    aff: Affinity,
    data: ExpertClusterData,
    fixed: Sequence[tuple[str, str]],
    expert_ids: Sequence[str],
    cluster_ids: Sequence[str],
    e_names: Sequence[str],
    c_names: Sequence[str],
) -> tuple[IntArray, tuple[FixedPair, ...]]:
    """The fixed pairs the rules allow (a 0/1 matrix), and each request's outcome in words.

    Taken in the order given: a pair is refused for an unknown expert or a cluster not in
    this assignment, a rule (conflict, working language, distance limit), or when the
    expert's capacity or the cluster's demand is already taken by earlier fixed pairs.
    """
    e_at = {e: i for i, e in enumerate(expert_ids)}
    c_at = {c: k for k, c in enumerate(cluster_ids)}
    pinned = np.zeros(p.shape, dtype=np.int64)
    out: list[FixedPair] = []
    for expert_id, cluster_id in dict.fromkeys(fixed):
        e, c = e_at.get(expert_id), c_at.get(cluster_id)
        en = e_names[e] if e is not None else expert_id
        cn = c_names[c] if c is not None else cluster_id
        why = None
        if e is None:
            why = f"there is no expert with id {expert_id!r}"
        elif c is None:
            why = f"{cluster_id!r} is not one of the clusters being assigned"
        elif aff.conflict[e, c]:
            declared = (data.conflict_reasons or {}).get((e, c))
            why = declared or "a conflict of interest (based in a member city's country)"
        elif aff.no_language[e, c]:
            lang = data.language_names[int(np.asarray(data.cluster_language)[c])]
            why = f"{en} does not speak {lang}, the cluster's working language"
        elif aff.too_far[e, c]:
            why = f"a member city lies beyond max_distance_km from {en}"
        elif pinned[e].sum() >= p.capacity[e]:
            taken = [c_names[k] for k in np.flatnonzero(pinned[e]).tolist()]
            why = f"{en} takes at most {plural(int(p.capacity[e]), 'cluster')}" + (
                f", already fixed to {name_list(taken, limit=5)}" if taken else ""
            )
        elif pinned[:, c].sum() >= p.demand[c]:
            taken = [e_names[i] for i in np.flatnonzero(pinned[:, c]).tolist()]
            why = f"{cn} asks for {plural(int(p.demand[c]), 'expert')}" + (
                f", already fixed: {name_list(taken, limit=5)}" if taken else ""
            )
        if why is None:
            assert e is not None and c is not None
            pinned[e, c] = 1
            out.append(
                FixedPair(expert_id, en, cluster_id, cn, True, f"{en} serves {cn}, as fixed")
            )
        else:
            out.append(
                FixedPair(expert_id, en, cluster_id, cn, False, f"{en} is not fixed to {cn}: {why}")
            )
    return pinned, tuple(out)


def _unserved(
    p: TransportProblem,
    aff: Affinity,
    x: IntArray,
    groups: Sequence[ShortfallGroup],
    cluster_ids: Sequence[str],
    cluster_names: Sequence[str],
    pinned: IntArray,
) -> tuple[UnservedCluster, ...]:
    """The clusters short of experts; ``p``/``x``: the seats around the ``pinned`` (fixed)
    ones, which count toward each cluster's demand and assignment."""
    served = x.sum(axis=0)
    group_of = {c: g for g in groups for c in g.clusters}
    out = []
    for c in np.flatnonzero(served < p.demand).tolist():
        g = group_of[c]
        others = tuple(cluster_ids[k] for k in g.clusters if k != c)
        with_cap = p.capacity > 0
        reasons = []
        lang, conf, far = (
            int((aff.no_language[:, c] & with_cap).sum()),
            int((aff.conflict[:, c] & with_cap).sum()),
            int((aff.too_far[:, c] & with_cap).sum()),
        )
        for n, one, many in (
            (lang, "does not speak its working language", "do not speak its working language"),
            (conf, "has a conflict of interest", "have a conflict of interest"),
            (far, "lives beyond max_distance_km", "live beyond max_distance_km"),
        ):
            if n:
                reasons.append(f"{plural(n, 'expert')} {one if n == 1 else many}")
        relax = describe_shortfall(g, list(cluster_names))
        if reasons:
            relax += " (" + "; ".join(reasons) + ")"
        out.append(
            UnservedCluster(
                cluster_id=cluster_ids[c],
                cluster_name=cluster_names[c],
                demand=int(p.demand[c] + pinned[c]),
                assigned=int(served[c] + pinned[c]),
                eligible_experts=int((p.allowed[:, c] & with_cap).sum()),
                excluded_by_language=lang,
                excluded_by_conflict=conf,
                excluded_by_distance=far,
                competing_clusters=others,
                relax=relax,
            )
        )
    return tuple(out)
