"""Where the network needs attention: lone cities, newcomers, uncovered themes, closed clusters.

*Isolated* cities have no tie; *peripheral* ones sit in a separate group, hang on a single
tie, or lie ``far_hops`` or more ties from the innermost k-core of the largest component
(one multi-source BFS, never all-pairs). A *newcomer* that joined recently with (almost)
no ties needs a buddy; buddies are the best-connected cities of its network or country.
Theme coverage finds themes in demand with no expert, cluster or good practice, and a
cluster is at risk of being *closed* (the worry of the 2019 coordinators' meeting) when
too few of its members' ties leave it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import igraph as ig
import numpy as np

from graph.errors import InvalidInput
from graph.snapshot import NetworkSnapshot
from matching.analytics.context import EncodedNetwork
from matching.kernel.arrays import IntArray
from matching.kernel.wording import DASH, Reason, and_join, name_list, percent, plural

Buddies = Callable[[int], tuple[str, ...]]  # city index -> suggested buddy city ids


@dataclass(frozen=True, slots=True)
class CityFlag:
    """A city flagged as isolated, peripheral or a newcomer needing a buddy."""

    city_id: str
    name: str
    degree: int
    joined: int | None
    reasons: tuple[Reason, ...]
    core_distance: int | None = None  # ties away from the innermost k-core (None: unreachable)
    suggested_buddies: tuple[str, ...] = ()  # well-connected cities of its network / country


@dataclass(frozen=True, slots=True)
class ThemeCoverage:
    theme_id: str
    name: str
    demand: int  # cities giving it priority >= demand_priority
    experts: int  # experts at level >= expert_level
    experts_any_level: int
    clusters: int  # clusters given with this theme
    practices: int
    missing: tuple[str, ...]  # of "expert", "cluster", "practice"
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class ThemeStats:
    demand_priority: int
    expert_level: int
    coverage: tuple[ThemeCoverage, ...]  # every theme, most demanded first
    without_expert: tuple[ThemeCoverage, ...]  # most demanded first
    # in demand and no cluster; only when the clusters given name themes
    without_cluster: tuple[ThemeCoverage, ...]
    without_practice: tuple[ThemeCoverage, ...]


@dataclass(frozen=True, slots=True)
class ClusterOpenness:
    cluster_id: str
    theme_ids: tuple[str, ...]
    size: int  # known members
    inside_ties: int  # ties between two members
    outside_ties: int  # ties from a member to a non-member
    outside_share: float | None  # outside / (inside + outside); None without ties
    outside_partners: int  # distinct non-members tied to the cluster
    members_without_outside_ties: tuple[str, ...]
    unknown_members: tuple[str, ...]  # ids the snapshot has no city for
    closed: bool
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """A cluster as plain data: ``network_stats`` also takes tuples and mappings (see there)."""

    cluster_id: str
    city_ids: tuple[str, ...]
    theme_ids: tuple[str, ...] = ()


# --- isolated and peripheral cities, newcomers ---------------------------------------------


def _core_distance(
    net: EncodedNetwork, graph: ig.Graph, comp: IntArray, big: int
) -> tuple[list[int], int, int]:
    """Ties from each city to the innermost k-core of the largest component (-1: unreachable)."""
    g = net.g
    coreness = np.asarray(graph.coreness(), dtype=np.int64)
    in_big = comp == big
    k = int(coreness[in_big].max()) if in_big.any() else 0
    core = np.flatnonzero(in_big & (coreness == k)).tolist()
    dist = [-1] * g.n
    for c in core:
        dist[c] = 0
    indptr, indices = g.indptr.tolist(), g.indices.tolist()
    frontier = core
    d = 0
    while frontier:
        d += 1
        nxt = []
        for v in frontier:
            for w in indices[indptr[v] : indptr[v + 1]]:
                if dist[w] == -1:
                    dist[w] = d
                    nxt.append(w)
        frontier = nxt
    return dist, k, len(core)


def isolated_and_peripheral(
    net: EncodedNetwork,
    graph: ig.Graph,
    comp: IntArray,
    comp_sizes: IntArray,
    big: int,
    far_hops: int,
    buddies: Buddies,
) -> tuple[tuple[CityFlag, ...], tuple[CityFlag, ...]]:
    """Cities with no tie (isolated), and those in a separate group, on a single tie or
    ``far_hops`` or more ties from the core (peripheral)."""
    g = net.g
    if g.n == 0:
        return (), ()
    big_size = int(comp_sizes[big])
    dist, k, core_n = _core_distance(net, graph, comp, big)
    isolated, peripheral = [], []
    comp_members: dict[int, list[int]] = {}
    small = {c for c in range(len(comp_sizes)) if c != big and comp_sizes[c] >= 2}
    if small:
        for i in np.flatnonzero(np.isin(comp, list(small))).tolist():
            comp_members.setdefault(int(comp[i]), []).append(i)
    for i in range(g.n):
        d = int(g.degree[i])
        cid, name = g.city_ids[i], net.names[i]
        if d == 0:
            text = f"{name} has no partnership with any other city"
            if net.joined[i] is not None:
                text += f" (member since {net.joined[i]})"
            isolated.append(
                CityFlag(cid, name, 0, net.joined[i], (Reason("isolated", text),), None, buddies(i))
            )
            continue
        reasons = []
        c = int(comp[i])
        if c != big:
            others = sorted(net.names[j] for j in comp_members[c] if j != i)
            reasons.append(
                Reason(
                    "separate_group",
                    f"{name} is in a separate group of {int(comp_sizes[c])} cities (with "
                    f"{name_list(others)}) that has no tie to the main network of {big_size} cities",
                )
            )
        if d == 1:
            (j,) = g.neighbours(i).tolist()
            reasons.append(
                Reason(
                    "single_tie",
                    f"{name} has a single tie, to {net.names[j]}; losing it would leave "
                    f"{name} isolated",
                )
            )
        if dist[i] >= far_hops:
            reasons.append(
                Reason(
                    "far_from_core",
                    f"{name} is {dist[i]} ties away from the core of the network (the "
                    f"{core_n} cities that each have {k} or more ties among themselves)",
                )
            )
        if reasons:
            peripheral.append(
                CityFlag(
                    cid,
                    name,
                    d,
                    net.joined[i],
                    tuple(reasons),
                    None if dist[i] < 0 else dist[i],
                    buddies(i),
                )
            )
    peripheral.sort(key=lambda f: (f.degree, -(f.core_distance or 0), f.city_id))
    isolated.sort(key=lambda f: f.city_id)
    return tuple(isolated), tuple(peripheral)


def buddy_finder(net: EncodedNetwork, k: int = 3) -> Buddies:
    """``buddies(i)``: up to ``k`` best-connected cities sharing a national network with
    city ``i``, then its country (most ties first, then id); never ``i`` itself."""
    g = net.g
    by_group: dict[str, list[int]] = {}
    for i in range(g.n):
        if g.degree[i] == 0:
            continue
        for nw in net.networks[i]:
            by_group.setdefault("n:" + nw, []).append(i)
        by_group.setdefault("c:" + net.countries[i], []).append(i)
    best = {
        key: sorted(members, key=lambda i: (-int(g.degree[i]), g.city_ids[i]))[: k + 1]
        for key, members in by_group.items()
    }

    def buddies(i: int) -> tuple[str, ...]:
        out: list[str] = []
        for key in [*("n:" + nw for nw in net.networks[i]), "c:" + net.countries[i]]:
            for j in best.get(key, ()):
                if j != i and g.city_ids[j] not in out and len(out) < k:
                    out.append(g.city_ids[j])
        return tuple(out)

    return buddies


def newcomers_needing_buddy(
    net: EncodedNetwork, years: int, as_of: int | None, max_ties: int, buddies: Buddies
) -> tuple[tuple[CityFlag, ...], int | None]:
    """Newcomers (joined in the last ``years`` up to ``as_of``) with at most ``max_ties``
    ties, and the first year that counts as new."""
    g = net.g
    known = [y for y in net.joined if y is not None]
    if as_of is None:
        if not known:
            return (), None
        as_of = max(known)
    since = as_of - years + 1
    out = []
    for i in range(g.n):
        y = net.joined[i]
        d = int(g.degree[i])
        if y is None or y < since or y > as_of or d > max_ties:
            continue
        ties = "no partnership yet" if d == 0 else f"only {plural(d, 'tie')}"
        text = (
            f"{net.names[i]} joined in {y} (a newcomer: {since}{DASH}{as_of}) and has {ties}: "
            "it needs a buddy city"
        )
        found = buddies(i)
        reasons = [Reason("needs_buddy", text)]
        if found:
            names = [net.names[g.index[b]] for b in found]
            reasons.append(
                Reason(
                    "buddy_candidates",
                    f"well-connected cities of its network or country: {and_join(names)}",
                )
            )
        out.append(CityFlag(g.city_ids[i], net.names[i], d, y, tuple(reasons), None, found))
    out.sort(key=lambda f: (-(f.joined or 0), f.city_id))
    return tuple(out), since


# --- themes and clusters ---------------------------------------------------------------------


def _theme_ids(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(t) for t in value)


def parse_clusters(clusters: Iterable[Any]) -> list[ClusterSpec]:
    """Clusters as plain data: ``ClusterSpec``; ``(id, members)`` or ``(id, members, themes)``;
    a mapping or an object (e.g. a stored ``graph.model.Cluster``) with ``cluster_id`` or
    ``id``, ``city_ids`` or ``members``, and optionally ``theme_ids`` or ``theme_id``."""
    out: list[ClusterSpec] = []
    for item in clusters:
        if isinstance(item, ClusterSpec):
            out.append(item)
            continue
        if isinstance(item, tuple | list):
            if len(item) not in (2, 3):
                raise InvalidInput(
                    "a cluster as a tuple is (cluster_id, member_city_ids) or "
                    f"(cluster_id, member_city_ids, theme_ids); got {len(item)} items"
                )
            fields = dict(zip(("cluster_id", "city_ids", "theme_ids"), item, strict=False))
        elif isinstance(item, Mapping):
            fields = dict(item)
        else:
            fields = {
                k: getattr(item, k)
                for k in ("cluster_id", "id", "city_ids", "members", "theme_ids", "theme_id")
                if hasattr(item, k)
            }
        cid = fields.get("cluster_id", fields.get("id"))
        members = fields.get("city_ids", fields.get("members"))
        themes = fields.get("theme_ids", fields.get("theme_id"))
        if cid is None or members is None or isinstance(members, str):
            raise InvalidInput(
                "each cluster needs an id and a list of member city ids, e.g. "
                "('c1', ['pt-lisbon', 'es-getxo'])"
            )
        out.append(ClusterSpec(str(cid), tuple(str(m) for m in members), _theme_ids(themes)))
    return out


def theme_coverage(
    snapshot: NetworkSnapshot, specs: Sequence[ClusterSpec], priority: int, level: int
) -> ThemeStats:
    """Per theme: how many cities want it, and whether an expert, a cluster, a practice cover it."""
    demand: dict[str, set[str]] = {}
    for ct in snapshot.city_themes:
        if ct.priority >= priority:
            demand.setdefault(ct.theme_id, set()).add(ct.city_id)
    experts: dict[str, set[str]] = {}
    experts_any: dict[str, set[str]] = {}
    for et in snapshot.expert_themes:
        experts_any.setdefault(et.theme_id, set()).add(et.expert_id)
        if et.level >= level:
            experts.setdefault(et.theme_id, set()).add(et.expert_id)
    practices = Counter(t for p in snapshot.practices for t in set(p.themes))
    clusters = Counter(t for s in specs for t in set(s.theme_ids))
    clusters_name_themes = bool(clusters)
    coverage = []
    for theme in snapshot.themes:
        tid, name = theme.id, theme.name
        dem = len(demand.get(tid, ()))
        exp = len(experts.get(tid, ()))
        exp_any = len(experts_any.get(tid, ()))
        prac = practices.get(tid, 0)
        clu = clusters.get(tid, 0)
        wanted = f"{plural(dem, 'city', 'cities')} give it priority {priority} or more"
        missing, reasons = [], []
        if exp == 0:
            missing.append("expert")
            lower = (
                f" ({plural(exp_any, 'expert')} list{'s' if exp_any == 1 else ''} it at a lower level)"
                if exp_any
                else " (no expert lists it at all)"
            )
            reasons.append(
                Reason(
                    "theme_without_expert",
                    f"{name}: {wanted}, but no expert works on it at level {level} or above{lower}",
                )
            )
        if clusters_name_themes and clu == 0 and dem > 0:
            missing.append("cluster")
            reasons.append(
                Reason("theme_without_cluster", f"{name}: {wanted}, but no cluster works on it")
            )
        if prac == 0:
            missing.append("practice")
            reasons.append(
                Reason(
                    "theme_without_practice",
                    f"{name}: {wanted}, but no good practice in the network is about it",
                )
            )
        coverage.append(
            ThemeCoverage(tid, name, dem, exp, exp_any, clu, prac, tuple(missing), tuple(reasons))
        )
    coverage.sort(key=lambda t: (-t.demand, t.theme_id))
    return ThemeStats(
        demand_priority=priority,
        expert_level=level,
        coverage=tuple(coverage),
        without_expert=tuple(t for t in coverage if "expert" in t.missing),
        without_cluster=tuple(t for t in coverage if "cluster" in t.missing),
        without_practice=tuple(t for t in coverage if "practice" in t.missing),
    )


def cluster_openness(net: EncodedNetwork, spec: ClusterSpec, min_share: float) -> ClusterOpenness:
    """How many of a cluster's ties leave it; closed when under ``min_share`` do (or none does)."""
    g = net.g
    members = sorted({g.index[c] for c in spec.city_ids if c in g.index})
    unknown = tuple(sorted({c for c in spec.city_ids if c not in g.index}))
    inside_set = set(members)
    inside2 = outside = 0
    partners: set[int] = set()
    lonely = []
    for i in members:
        out_i = 0
        for j in g.neighbours(i).tolist():
            if j in inside_set:
                inside2 += 1
            else:
                out_i += 1
                partners.add(j)
        outside += out_i
        if out_i == 0:
            lonely.append(g.city_ids[i])
    inside = inside2 // 2
    total = inside + outside
    share = outside / total if total else None
    size = len(members)
    label = f"Cluster {spec.cluster_id}"
    reasons = []
    closed = False
    if size == 0:
        reasons.append(Reason("cluster_unknown", f"{label} has no member the network knows"))
    elif total == 0:
        closed = size >= 2
        reasons.append(
            Reason("closed_cluster", f"{label}: none of its {size} members has any partnership yet")
        )
    else:
        assert share is not None
        text = (
            f"{label}: {outside} of its members' {plural(total, 'tie')} ({percent(share)}) go "
            f"outside the cluster, to {plural(len(partners), 'city', 'cities')}; "
            f"{inside} stay inside"
        )
        closed = share < min_share or outside == 0
        if closed:
            text += f" (below {percent(min_share)}: at risk of becoming closed)"
        reasons.append(Reason("closed_cluster" if closed else "cluster_openness", text))
        if lonely and closed:
            reasons.append(
                Reason(
                    "members_without_outside_ties",
                    f"{len(lonely)} of its {size} members have no tie outside the cluster: "
                    f"{name_list(sorted(net.names[g.index[c]] for c in lonely))}",
                )
            )
    if unknown:
        reasons.append(
            Reason(
                "unknown_members",
                f"{plural(len(unknown), 'member id')} not in the network: {name_list(list(unknown))}",
            )
        )
    return ClusterOpenness(
        cluster_id=spec.cluster_id,
        theme_ids=spec.theme_ids,
        size=size,
        inside_ties=inside,
        outside_ties=outside,
        outside_share=share,
        outside_partners=len(partners),
        members_without_outside_ties=tuple(lonely),
        unknown_members=unknown,
        closed=closed,
        reasons=tuple(reasons),
    )
