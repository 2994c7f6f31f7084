"""``assign_experts``: the expert matcher's entry point, from plain data to reasons.

It runs the three steps in order (inputs -> solve -> report): the expert x cluster affinity
from ``ExpertClusterData`` (``affinity.py``), the exact assignment (``flow.py``, or
``fair.py`` when asked), and the report the secretariat reads: each pair with its score,
components and plain-language reasons, each expert's load, and each cluster left short
with what to relax (``shortfall.py``). Infeasibility is an answer here, not an error,
unless the caller asks for all or nothing.
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
from matching.kernel.wording import Reason, plural


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


@dataclass(frozen=True, slots=True)
class ExpertLoad:
    """How many clusters an expert got, out of the most they take."""

    expert_id: str
    assigned: int
    capacity: int


@dataclass(frozen=True, slots=True)
class UnservedCluster:
    """A cluster that gets fewer experts than it asked for, and what to relax."""

    cluster_id: str
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


def _similarity_text(value: float) -> str:
    if value >= 0.5:
        closeness = "close to"
    elif value >= 0.25:
        closeness = "somewhat close to"
    else:
        closeness = "far from"
    return f"profile {closeness} the cluster's (similarity {value:.2f})"


def _km_text(km: float) -> str:
    if km < 10:
        return "based less than 10 km from the cluster's centre"
    rounded = round(km, -1) if km < 1000 else round(km, -2)
    return f"based {rounded:,.0f} km from the cluster's centre"


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

    def share(name: str) -> float:
        return parts[name] / magnitude if magnitude else 0.0

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
        reasons.append(Reason("theme_level", text, share("theme")))
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
        reasons.append(Reason("distance", _km_text(km), share("distance")))
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
) -> ExpertAssignment:
    """Assign experts to clusters, each pair with its reasons.

    ``expert_ids``/``cluster_ids`` name the rows/columns of ``data``'s arrays. The
    affinity comes from ``build_affinity(data, weights)``; the assignment from
    ``solve_assignment`` (max total) or, with ``fair``, ``solve_fair_assignment``.
    When not every cluster can get its demand: with ``allow_partial`` (default) the
    assignment fills as many seats as possible (best total among those; with ``fair``,
    fair over the seats filled) and lists the clusters left short in ``unserved`` with
    what to relax; otherwise ``InfeasibleAssignment`` is raised, naming clusters by id.
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
    p = validate_problem(aff.score, capacity, demand, aff.forbidden)
    x, complete = best_flow(p)
    unserved: tuple[UnservedCluster, ...] = ()
    notes: list[str] = []
    if not complete:
        groups = shortfall_groups(p, x)
        if not allow_partial:
            raise InfeasibleAssignment(groups, list(cluster_ids))
        unserved = _unserved(p, aff, x, groups, cluster_ids)
        notes.append(
            f"{plural(sum(u.missing for u in unserved), 'expert seat')} could not be "
            "filled; the assignment fills as many as possible"
        )
    served = x.sum(axis=0)
    if fair:
        x = fairest_assignment(replace(p, demand=served), x, time_limit_s, seed)

    required = np.asarray(data.cluster_language)
    n_themes_of = (np.asarray(data.cluster_themes, dtype=np.float64) > 0).sum(axis=1)
    pairs: list[AssignedPair] = []
    for c in range(n_c):
        es = np.flatnonzero(x[:, c])
        for e in sorted(es.tolist(), key=lambda e: (-aff.score[e, c], e)):
            reasons, parts = _reasons(aff, data, e, c, n_themes_of, required)
            pairs.append(
                AssignedPair(expert_ids[e], cluster_ids[c], float(aff.score[e, c]), reasons, parts)
            )
    loads = tuple(
        ExpertLoad(expert_ids[e], int(x[e].sum()), int(p.capacity[e])) for e in range(n_e)
    )
    blind = sum(1 for e, c in zip(*np.nonzero(x), strict=True) if not aff.profiled[e, c])
    if blind:
        notes.append(
            f"{plural(blind, 'pair')} had no profile text to compare (an empty bio or no city "
            "profiles): their profile similarity counts 0 and is not given as a reason"
        )
    means = cluster_mean_affinity(p.affinity, x)
    finite = means[~np.isnan(means)]
    return ExpertAssignment(
        pairs=tuple(pairs),
        loads=loads,
        unserved=unserved,
        objective=float((p.affinity * x).sum()),
        fair=fair,
        worst_cluster_mean=float(finite.min()) if finite.size else None,
        notes=tuple(notes),
    )


def _unserved(
    p: TransportProblem,
    aff: Affinity,
    x: IntArray,
    groups: Sequence[ShortfallGroup],
    cluster_ids: Sequence[str],
) -> tuple[UnservedCluster, ...]:
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
        relax = describe_shortfall(g, list(cluster_ids))
        if reasons:
            relax += " (" + "; ".join(reasons) + ")"
        out.append(
            UnservedCluster(
                cluster_id=cluster_ids[c],
                demand=int(p.demand[c]),
                assigned=int(served[c]),
                eligible_experts=int((p.allowed[:, c] & with_cap).sum()),
                excluded_by_language=lang,
                excluded_by_conflict=conf,
                excluded_by_distance=far,
                competing_clusters=others,
                relax=relax,
            )
        )
    return tuple(out)
