"""Network analytics: the shape of the city-city tie graph, and what the secretariat should look at.

``network_stats(snapshot, clusters, seed=...)`` reads a ``NetworkSnapshot`` (plain data) and
returns one frozen ``NetworkStats``: components, degree and betweenness centrality,
bridges and articulation points, Leiden communities compared with the national
networks, cities that bridge national networks, isolated and peripheral cities,
newcomers that need a buddy, theme coverage (themes in demand without an expert, a
cluster or a practice) and clusters at risk of being closed (the worry of the 2019
coordinators' meeting: "clusters can become too closed"). Every flagged item carries
``reasons`` in words, with the numbers behind them.

How it stays fast at 10,000+ cities: the tie graph is encoded once (city ids <-> indices,
deduplicated undirected edges as numpy arrays, CSR adjacency); components, coreness,
betweenness and Leiden run in igraph (C), built straight from the index arrays; bridges
and articulation points (with the size of what each one cuts off) come from one iterative
Tarjan DFS, O(cities + ties); "far from the core" is one multi-source BFS from the
innermost k-core. Nothing is all-pairs: closeness and eccentricity are not computed.
Betweenness is exact (igraph) up to ``exact_betweenness_max`` cities; above that it is
estimated from ``betweenness_samples`` source cities drawn with ``seed`` (igraph's
subset betweenness, scaled by n/k: the Brandes-Pich estimator networkx uses for ``k``).

Randomness only through ``seed``: igraph's Leiden draws from the Python RNG igraph is
given, so the call installs ``random.Random(seed)`` for its duration (under a lock) and
then restores igraph's default (the ``random`` module).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import igraph as ig
import numpy as np
import pycountry

from graph.errors import InvalidInput
from graph.snapshot import NetworkSnapshot
from matching.reasons import Reason

INTERNATIONAL_ONLY = "(international only)"
"""The group of a city that belongs to no national network (used in ``networks_reached``)."""

DEFAULT_KIND_WEIGHTS: Mapping[str, float] = {
    "twinning": 1.0,
    "project": 1.0,
    "visit": 1.0,
    "cluster": 1.0,
}
"""Weight of one partnership row by kind (only Leiden and exports use weights)."""

_IGRAPH_RNG_LOCK = threading.Lock()
Buddies = Callable[[int], tuple[str, ...]]  # city index -> suggested buddy city ids
_DASH = "\u2013"  # en dash, between two names or years
_LIST_LIMIT = 3  # names spelled out in a reason before "and N others"
_DESCRIBE_LIMIT = 200  # describe the cities a cut separates only up to this many


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CityScore:
    """A city in a ranking (degree, betweenness)."""

    city_id: str
    name: str
    value: float
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class ComponentStats:
    count: int  # connected components, isolated cities included (each is one)
    sizes: tuple[int, ...]  # largest first
    largest_size: int
    largest_share: float  # of all cities
    largest_city_ids: tuple[str, ...]  # sorted


@dataclass(frozen=True, slots=True)
class Bridge:
    """A tie whose removal splits its component in two."""

    city_a: str
    city_b: str
    name_a: str
    name_b: str
    kinds: tuple[str, ...]
    side_a: int  # cities left on city_a's side once the tie is gone
    side_b: int
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class ArticulationPoint:
    """A city whose removal splits its component."""

    city_id: str
    name: str
    cut_off: int  # cities separated from the largest remaining piece
    pieces: tuple[int, ...]  # sizes of the pieces its removal leaves, largest first
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class Community:
    id: int  # 0 = largest; ids follow (size desc, smallest member id)
    size: int
    city_ids: tuple[str, ...]  # sorted
    dominant_network: str | None  # network id, or None when no member is in one
    network_share: float  # members in the dominant network / size
    dominant_country: str
    country_share: float
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class CommunityStats:
    method: str
    seed: int
    modularity: float
    communities: tuple[Community, ...]  # two or more members; largest first
    singletons: int  # cities alone in their community (isolated cities)
    ari_vs_networks: float | None  # adjusted Rand index, cities with a national network
    nmi_vs_networks: float | None
    compared_with_networks: int  # cities in that comparison
    ari_vs_countries: float | None  # every city in a community of two or more
    nmi_vs_countries: float | None
    compared_with_countries: int

    def community_of(self) -> dict[str, int]:
        """City id -> community id (cities alone in their community are absent)."""
        return {cid: c.id for c in self.communities for cid in c.city_ids}


@dataclass(frozen=True, slots=True)
class NetworkBridger:
    """A city whose ties reach national networks (or international-only cities) beyond its own."""

    city_id: str
    name: str
    own_networks: tuple[str, ...]  # its national networks, or (INTERNATIONAL_ONLY,)
    networks_reached: tuple[str, ...]  # groups of its partners, most ties first
    cross_ties: int  # ties to partners in a group it is not in
    reasons: tuple[Reason, ...]


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
    without_cluster: tuple[
        ThemeCoverage, ...
    ]  # in demand and no cluster; only when clusters name themes
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


@dataclass(frozen=True, slots=True)
class NetworkStats:
    revision: int
    seed: int
    cities: int
    ties: int  # distinct city pairs with at least one partnership
    partnerships: int  # partnership rows (a pair may have one per kind)
    components: ComponentStats
    top_degree: tuple[CityScore, ...]
    top_betweenness: tuple[CityScore, ...]
    betweenness_method: str
    bridges: tuple[Bridge, ...]  # most cities cut off first
    articulation_points: tuple[ArticulationPoint, ...]  # most cities cut off first
    communities: CommunityStats
    network_bridgers: tuple[NetworkBridger, ...]  # most groups reached first
    isolated: tuple[CityFlag, ...]
    peripheral: tuple[CityFlag, ...]
    needs_buddy: tuple[CityFlag, ...]  # newcomers with (almost) no ties
    newcomer_since: int | None  # joined in or after this year counts as a newcomer
    themes: ThemeStats
    clusters: tuple[ClusterOpenness, ...]  # in the order given (stored ones: by id)

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, str, int, float, bool and None: ready for ``json.dumps``."""
        return asdict(self)


# --- the encoded tie graph (ids <-> indices in one place) -------------------------------------


@dataclass(frozen=True, slots=True)
class TieGraph:
    """The city-city tie graph as arrays. ``edges[k] = (i, j)`` with ``i < j``, no duplicates."""

    city_ids: tuple[str, ...]
    index: Mapping[str, int]
    edges: np.ndarray  # (m, 2) int64
    weights: np.ndarray  # (m,) float64: sum of the kind weights of the pair's rows
    kinds: tuple[tuple[str, ...], ...]  # per edge, sorted
    since: tuple[int | None, ...]  # per edge, the earliest known year
    degree: np.ndarray  # (n,) int64: distinct partners
    indptr: np.ndarray  # CSR adjacency (both directions)
    indices: np.ndarray

    @property
    def n(self) -> int:
        return len(self.city_ids)

    def neighbours(self, i: int) -> np.ndarray:
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    def igraph(self) -> ig.Graph:
        return ig.Graph(n=self.n, edges=self.edges)


def tie_graph(
    snapshot: NetworkSnapshot, kind_weights: Mapping[str, float] | None = None
) -> TieGraph:
    """Encode the partnerships of ``snapshot`` as an undirected simple graph over its cities.

    Several rows for one pair (one per kind) make one edge whose weight is the sum of
    their kind weights. A partnership naming a city the snapshot lacks is an error.
    """
    weights_of = DEFAULT_KIND_WEIGHTS if kind_weights is None else kind_weights
    city_ids = tuple(c.id for c in snapshot.cities)
    index = {cid: i for i, cid in enumerate(city_ids)}
    if len(index) != len(city_ids):
        raise InvalidInput("the snapshot lists a city id twice; city ids must be unique")
    pairs: dict[tuple[int, int], tuple[float, set[str], int | None]] = {}
    for p in snapshot.partnerships:
        a, b = index.get(p.city_a), index.get(p.city_b)
        if a is None or b is None:
            missing = p.city_a if a is None else p.city_b
            raise InvalidInput(
                f"partnership {p.city_a}{_DASH}{p.city_b} names city {missing!r}, which the snapshot "
                "does not have: add the city or drop the partnership"
            )
        if a == b:
            continue
        key = (a, b) if a < b else (b, a)
        w = float(weights_of.get(p.kind, 1.0))
        old = pairs.get(key)
        if old is None:
            pairs[key] = (w, {p.kind}, p.since)
        else:
            first = old[2]
            if p.since is not None and (first is None or p.since < first):
                first = p.since
            old[1].add(p.kind)
            pairs[key] = (old[0] + w, old[1], first)
    keys = sorted(pairs)
    n = len(city_ids)
    edges = np.array(keys, dtype=np.int64).reshape(-1, 2)
    weights = np.array([pairs[k][0] for k in keys], dtype=np.float64)
    kinds = tuple(tuple(sorted(pairs[k][1])) for k in keys)
    since = tuple(pairs[k][2] for k in keys)
    src = np.concatenate([edges[:, 0], edges[:, 1]])
    dst = np.concatenate([edges[:, 1], edges[:, 0]])
    order = np.lexsort((dst, src))
    indices = dst[order]
    degree = np.bincount(src, minlength=n).astype(np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(degree, out=indptr[1:])
    return TieGraph(city_ids, index, edges, weights, kinds, since, degree, indptr, indices)


# --- words -----------------------------------------------------------------------------------


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _names(names: Sequence[str], limit: int = _LIST_LIMIT) -> str:
    if len(names) <= limit + 1:
        return _join(list(names))
    return ", ".join(names[:limit]) + f" and {len(names) - limit} others"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def _pct(x: float) -> str:
    return f"{round(100 * x)}%"


_THE_COUNTRIES = frozenset(
    [
        "AE",
        "BS",
        "CD",
        "CF",
        "CZ",
        "DO",
        "FO",
        "GB",
        "GM",
        "KY",
        "MH",
        "NL",
        "PH",
        "SB",
        "SC",
        "US",
        "VA",
    ]
)


@cache
def _country_name(code: str) -> str:
    """'Italy', 'the Netherlands' (reads after 'in')."""
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return code
    name = str(getattr(country, "common_name", None) or country.name)
    return f"the {name}" if code in _THE_COUNTRIES else name


# --- the analysis ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ctx:
    """What every section reads: the encoded graph and per-city plain attributes."""

    g: TieGraph
    names: tuple[str, ...]
    countries: tuple[str, ...]
    networks: tuple[tuple[str, ...], ...]
    joined: tuple[int | None, ...]
    network_names: Mapping[str, str]

    def net_name(self, nid: str) -> str:
        if nid == INTERNATIONAL_ONLY:
            return "international-only cities"
        return self.network_names.get(nid, nid)

    def groups(self, i: int) -> tuple[str, ...]:
        return self.networks[i] or (INTERNATIONAL_ONLY,)

    def describe(self, members: Sequence[int]) -> str:
        """'Messina, Palermo and Catania; all in Città del Dialogo' for a small set of cities."""
        k = len(members)
        names = _names(sorted(self.names[i] for i in members))
        nets = Counter(nw for i in members for nw in self.networks[i])
        if nets:
            nid, c = min(nets.items(), key=lambda kv: (-kv[1], kv[0]))
            where = self.net_name(nid)
        else:
            cc, c = min(
                Counter(self.countries[i] for i in members).items(),
                key=lambda kv: (-kv[1], kv[0]),
            )
            where = _country_name(cc)
        if k == 1:
            share = "in"
        elif c == k:
            share = "all in"
        else:
            share = f"{c} of them in"
        return f"{names}; {share} {where}"


def _theme_ids(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(t) for t in value)


def _parse_clusters(clusters: Iterable[Any]) -> list[ClusterSpec]:
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


def network_stats(
    snapshot: NetworkSnapshot,
    clusters: Iterable[Any] | None = None,
    *,
    seed: int = 0,
    top: int = 10,
    kind_weights: Mapping[str, float] | None = None,
    resolution: float = 1.0,
    leiden_iterations: int = 2,
    exact_betweenness_max: int = 3000,
    betweenness_samples: int = 256,
    far_hops: int = 3,
    newcomer_years: int = 3,
    as_of_year: int | None = None,
    buddy_max_ties: int = 0,
    demand_priority: int = 4,
    expert_level: int = 3,
    min_outside_share: float = 0.25,
) -> NetworkStats:
    """Analyse the tie graph of ``snapshot``; see the module docstring.

    ``clusters``: ``None`` (default) reads the snapshot's accepted clusters; otherwise each
    is a ``ClusterSpec``, a tuple ``(cluster_id, member_city_ids[, theme_ids])``, or a
    mapping / object with ``cluster_id`` (or ``id``), ``city_ids`` (or ``members``) and
    optionally ``theme_ids`` (or ``theme_id``). Pass ``()`` for none.
    ``as_of_year``: "now" for newcomers; default the latest ``joined`` year in the data (so
    the result never depends on the clock). A newcomer joined in the last ``newcomer_years``
    years; it needs a buddy when it has at most ``buddy_max_ties`` ties.
    A cluster is flagged closed when less than ``min_outside_share`` of its members' ties
    leave it (or none does).
    """
    if top < 0 or far_hops < 1 or newcomer_years < 1 or betweenness_samples < 1:
        raise InvalidInput(
            "top must be >= 0; far_hops, newcomer_years and betweenness_samples >= 1"
        )
    if not 0.0 <= min_outside_share <= 1.0:
        raise InvalidInput("min_outside_share is a share of ties: give a number from 0 to 1")
    specs = _parse_clusters(snapshot.clusters if clusters is None else clusters)
    g = tie_graph(snapshot, kind_weights)
    ctx = _Ctx(
        g=g,
        names=tuple(c.name for c in snapshot.cities),
        countries=tuple(c.country for c in snapshot.cities),
        networks=tuple(tuple(c.networks) for c in snapshot.cities),
        joined=tuple(c.joined for c in snapshot.cities),
        network_names={nw.id: nw.name for nw in snapshot.networks},
    )
    graph = g.igraph()
    comp = np.asarray(graph.connected_components().membership, dtype=np.int64)
    comp_sizes = np.bincount(comp) if g.n else np.zeros(0, dtype=np.int64)
    big = _largest(ctx, comp, comp_sizes) if g.n else -1

    components = _components(ctx, comp, comp_sizes, big)
    top_degree = _top_degree(ctx, top)
    top_betweenness, method = _betweenness(
        ctx, graph, top, seed, exact_betweenness_max, betweenness_samples
    )
    bridges, cuts = _cuts(ctx, comp, comp_sizes)
    communities = _communities(ctx, graph, seed, resolution, leiden_iterations)
    bridgers = _network_bridgers(ctx)
    buddies = _buddy_finder(ctx)
    isolated, peripheral = _periphery(ctx, graph, comp, comp_sizes, big, far_hops, buddies)
    needs_buddy, newcomer_since = _needs_buddy(
        ctx, newcomer_years, as_of_year, buddy_max_ties, buddies
    )
    themes = _themes(snapshot, specs, demand_priority, expert_level)
    openness = tuple(_openness(ctx, spec, min_outside_share) for spec in specs)
    return NetworkStats(
        revision=snapshot.revision,
        seed=seed,
        cities=g.n,
        ties=len(g.edges),
        partnerships=len(snapshot.partnerships),
        components=components,
        top_degree=top_degree,
        top_betweenness=top_betweenness,
        betweenness_method=method,
        bridges=bridges,
        articulation_points=cuts,
        communities=communities,
        network_bridgers=bridgers,
        isolated=isolated,
        peripheral=peripheral,
        needs_buddy=needs_buddy,
        newcomer_since=newcomer_since,
        themes=themes,
        clusters=openness,
    )


# --- sections --------------------------------------------------------------------------------


def _largest(ctx: _Ctx, comp: np.ndarray, sizes: np.ndarray) -> int:
    """The largest component; a tie goes to the one holding the smallest city id."""
    first: dict[int, str] = {}
    for i, c in enumerate(comp.tolist()):
        cid = ctx.g.city_ids[i]
        if c not in first or cid < first[c]:
            first[c] = cid
    return min(range(len(sizes)), key=lambda c: (-int(sizes[c]), first[c]))


def _components(ctx: _Ctx, comp: np.ndarray, sizes: np.ndarray, big: int) -> ComponentStats:
    n = ctx.g.n
    if n == 0:
        return ComponentStats(0, (), 0, 0.0, ())
    members = tuple(sorted(ctx.g.city_ids[i] for i in np.flatnonzero(comp == big).tolist()))
    return ComponentStats(
        count=len(sizes),
        sizes=tuple(sorted((int(s) for s in sizes), reverse=True)),
        largest_size=int(sizes[big]),
        largest_share=float(sizes[big]) / n,
        largest_city_ids=members,
    )


def _ranked(values: np.ndarray, ctx: _Ctx, top: int) -> list[int]:
    """Indices of the ``top`` largest values, ties by city id (deterministic)."""
    if top == 0 or ctx.g.n == 0:
        return []
    k = min(top, ctx.g.n)
    # candidates: everything >= the k-th largest value, then an exact sort of those
    kth = np.partition(values, -k)[-k]
    cand = np.flatnonzero(values >= kth)
    return sorted(cand.tolist(), key=lambda i: (-float(values[i]), ctx.g.city_ids[i]))[:k]


def _top_degree(ctx: _Ctx, top: int) -> tuple[CityScore, ...]:
    g = ctx.g
    out = []
    for i in _ranked(g.degree, ctx, top):
        d = int(g.degree[i])
        if d == 0:
            break
        partners = g.neighbours(i)
        countries = len({ctx.countries[j] for j in partners})
        text = (
            f"{ctx.names[i]} has {_plural(d, 'partner city', 'partner cities')} "
            f"in {_plural(countries, 'country', 'countries')}"
        )
        out.append(CityScore(g.city_ids[i], ctx.names[i], float(d), (Reason("degree", text),)))
    return tuple(out)


def _betweenness(
    ctx: _Ctx, graph: ig.Graph, top: int, seed: int, exact_max: int, samples: int
) -> tuple[tuple[CityScore, ...], str]:
    n = ctx.g.n
    pairs = (n - 1) * (n - 2) / 2
    if n < 3 or len(ctx.g.edges) == 0:
        return (), "none (fewer than 3 cities or no ties)"
    if n <= exact_max or samples >= n:
        raw = np.asarray(graph.betweenness(directed=False), dtype=np.float64)
        method = "exact (igraph)"
    else:
        sources = sorted(random.Random(seed).sample(range(n), samples))
        raw = np.asarray(graph.betweenness(directed=False, sources=sources), dtype=np.float64)
        raw *= n / samples
        method = (
            f"estimated from {samples} source cities sampled with seed {seed} "
            f"(igraph subset betweenness scaled by n/k; exact up to {exact_max} cities)"
        )
    norm = raw / pairs
    out = []
    for i in _ranked(norm, ctx, top):
        if norm[i] <= 0:
            break
        share = float(norm[i])
        text = (
            f"{ctx.names[i]} lies on about {_pct(share) if share >= 0.01 else 'under 1%'} of the "
            "shortest paths between other cities"
        )
        out.append(
            CityScore(ctx.g.city_ids[i], ctx.names[i], share, (Reason("betweenness", text),))
        )
    return tuple(out), method


@dataclass(frozen=True, slots=True)
class _Dfs:
    order: list[int]  # preorder; order[tin[v]] == v, a subtree is one run of it
    tin: list[int]
    size: list[int]  # subtree sizes
    root_of: list[int]  # the DFS root of each city's component
    bridges: list[tuple[int, int]]  # (parent, child)
    separated: dict[int, list[int]]  # articulation point -> DFS children it separates


def _tarjan(g: TieGraph) -> _Dfs:
    """Bridges and articulation points in one iterative DFS (Tarjan), O(cities + ties)."""
    n = g.n
    indptr = g.indptr.tolist()
    indices = g.indices.tolist()
    tin = [-1] * n
    low = [0] * n
    size = [1] * n
    parent = [-1] * n
    root_of = [-1] * n
    order: list[int] = []
    bridges: list[tuple[int, int]] = []
    separated: dict[int, list[int]] = {}
    timer = 0
    for root in range(n):
        if tin[root] != -1:
            continue
        tin[root] = low[root] = timer
        root_of[root] = root
        timer += 1
        order.append(root)
        stack = [(root, indptr[root])]
        root_children: list[int] = []
        while stack:
            v, ptr = stack[-1]
            if ptr < indptr[v + 1]:
                stack[-1] = (v, ptr + 1)
                w = indices[ptr]
                if tin[w] == -1:
                    parent[w] = v
                    root_of[w] = root
                    tin[w] = low[w] = timer
                    timer += 1
                    order.append(w)
                    stack.append((w, indptr[w]))
                elif w != parent[v] and tin[w] < low[v]:
                    low[v] = tin[w]
                continue
            stack.pop()
            p = parent[v]
            if p == -1:
                continue
            size[p] += size[v]
            if low[v] < low[p]:
                low[p] = low[v]
            if low[v] > tin[p]:
                bridges.append((p, v))
            if p == root:
                root_children.append(v)
            elif low[v] >= tin[p]:
                separated.setdefault(p, []).append(v)
        if len(root_children) >= 2:
            separated[root] = root_children
    return _Dfs(order, tin, size, root_of, bridges, separated)


def _cuts(
    ctx: _Ctx, comp: np.ndarray, comp_sizes: np.ndarray
) -> tuple[tuple[Bridge, ...], tuple[ArticulationPoint, ...]]:
    g = ctx.g
    dfs = _tarjan(g)
    order, tin, size = dfs.order, dfs.tin, dfs.size
    kinds_of = {(int(a), int(b)): g.kinds[k] for k, (a, b) in enumerate(g.edges.tolist())}

    def subtree(v: int) -> list[int]:
        return order[tin[v] : tin[v] + size[v]]

    def outside(v: int, keep: set[int]) -> list[int]:
        """Cities of v's component that are not in ``keep`` (the component is one preorder run)."""
        r = dfs.root_of[v]
        return [i for i in order[tin[r] : tin[r] + size[r]] if i not in keep]

    bridges = []
    for p, v in dfs.bridges:
        total = int(comp_sizes[comp[v]])
        side_v, side_p = size[v], total - size[v]
        small, big = (v, p) if side_v <= side_p else (p, v)
        small_n, big_n = min(side_v, side_p), max(side_v, side_p)
        side = f"{_plural(small_n, 'city', 'cities')} on {ctx.names[small]}'s side"
        if small_n <= _DESCRIBE_LIMIT:
            members = subtree(v) if small == v else outside(v, set(subtree(v)))
            side += f" ({ctx.describe(members)})"
        a, b = (p, v) if g.city_ids[p] < g.city_ids[v] else (v, p)
        text = (
            f"The {ctx.names[a]}{_DASH}{ctx.names[b]} tie is the only link between {side} and the "
            f"{_plural(big_n, 'city', 'cities')} on {ctx.names[big]}'s side"
        )
        bridges.append(
            Bridge(
                city_a=g.city_ids[a],
                city_b=g.city_ids[b],
                name_a=ctx.names[a],
                name_b=ctx.names[b],
                kinds=kinds_of[(min(p, v), max(p, v))],
                side_a=side_v if a == v else side_p,
                side_b=side_v if b == v else side_p,
                reasons=(Reason("bridge", text),),
            )
        )
    bridges.sort(
        key=lambda br: (-min(br.side_a, br.side_b), -(br.side_a + br.side_b), br.city_a, br.city_b)
    )

    points = []
    for v, children in dfs.separated.items():
        total = int(comp_sizes[comp[v]])
        below = [size[c] for c in children]
        rest = total - 1 - sum(below)  # the part above v (0 when v is the DFS root)
        pieces = sorted([*below, *([rest] if rest > 0 else [])], reverse=True)
        cut_off = total - 1 - pieces[0]
        what = _plural(cut_off, "city", "cities")
        if cut_off <= _DESCRIBE_LIMIT:
            if rest >= max(below):  # the largest piece is the part above v
                members = [i for c in children for i in subtree(c)]
            else:
                keep = max(children, key=lambda c: (size[c], -tin[c]))
                members = outside(v, {*subtree(keep), v})
            what += f" ({ctx.describe(members)})"
        text = (
            f"{ctx.names[v]} is the only link between {what} and the other "
            f"{_plural(pieces[0], 'city', 'cities')} of its part of the network"
        )
        if len(pieces) > 2:
            text += f"; without it, that part falls into {len(pieces)} pieces"
        points.append(
            ArticulationPoint(
                city_id=g.city_ids[v],
                name=ctx.names[v],
                cut_off=cut_off,
                pieces=tuple(pieces),
                reasons=(Reason("articulation_point", text),),
            )
        )
    points.sort(key=lambda ap: (-ap.cut_off, ap.city_id))
    return tuple(bridges), tuple(points)


def _leiden_membership(
    graph: ig.Graph, weights: np.ndarray, seed: int, resolution: float, iterations: int
) -> tuple[list[int], float]:
    with _IGRAPH_RNG_LOCK:
        ig.set_random_number_generator(random.Random(seed))
        try:
            part = graph.community_leiden(
                objective_function="modularity",
                weights=weights.tolist() if len(weights) else None,
                resolution=resolution,
                n_iterations=iterations,
            )
        finally:
            ig.set_random_number_generator(random)
    membership = list(part.membership)
    modularity = graph.modularity(
        membership, weights=weights.tolist() if len(weights) else None, resolution=resolution
    )
    return membership, float(modularity)


def _compare(a: Sequence[str], b: Sequence[int]) -> tuple[float | None, float | None]:
    """ARI and NMI between two labelings of the same cities (igraph's compare_communities)."""
    if len(a) < 2:
        return None, None
    codes: dict[str, int] = {}
    la = [codes.setdefault(x, len(codes)) for x in a]
    codes2: dict[int, int] = {}
    lb = [codes2.setdefault(x, len(codes2)) for x in b]
    if len(codes) == 1 and len(codes2) == 1:
        return 1.0, 1.0  # both put everyone together: identical partitions
    ari = float(ig.compare_communities(la, lb, method="adjusted_rand"))
    nmi = float(ig.compare_communities(la, lb, method="nmi"))
    return (None if np.isnan(ari) else ari), (None if np.isnan(nmi) else nmi)


def _communities(
    ctx: _Ctx, graph: ig.Graph, seed: int, resolution: float, iterations: int
) -> CommunityStats:
    g = ctx.g
    method = (
        f"Leiden, modularity (igraph community_leiden, resolution {resolution:g}, "
        f"{'until stable' if iterations < 0 else _plural(iterations, 'iteration')}, seed {seed})"
    )
    if g.n == 0:
        return CommunityStats(method, seed, 0.0, (), 0, None, None, 0, None, None, 0)
    if len(g.edges) == 0:
        membership, modularity = list(range(g.n)), 0.0
    else:
        membership, modularity = _leiden_membership(graph, g.weights, seed, resolution, iterations)
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(membership):
        groups.setdefault(c, []).append(i)
    real = [m for m in groups.values() if len(m) >= 2]
    real.sort(key=lambda m: (-len(m), min(g.city_ids[i] for i in m)))
    communities = []
    label = [-1] * g.n
    for cid, members in enumerate(real):
        for i in members:
            label[i] = cid
        k = len(members)
        nets = Counter(nw for i in members for nw in ctx.networks[i])
        countries = Counter(ctx.countries[i] for i in members)
        cc, cc_n = min(countries.items(), key=lambda kv: (-kv[1], kv[0]))
        reasons = []
        if nets:
            nid, net_n = min(nets.items(), key=lambda kv: (-kv[1], kv[0]))
            reasons.append(
                Reason(
                    "community_network",
                    f"{net_n} of its {k} cities ({_pct(net_n / k)}) {_are(net_n)} in "
                    f"{ctx.net_name(nid)}",
                )
            )
        else:
            nid, net_n = None, 0
            reasons.append(
                Reason("community_network", f"none of its {k} cities is in a national network")
            )
        reasons.append(
            Reason(
                "community_country",
                f"{cc_n} of its {k} cities ({_pct(cc_n / k)}) {_are(cc_n)} in {_country_name(cc)}",
            )
        )
        hubs = sorted(members, key=lambda i: (-int(g.degree[i]), g.city_ids[i]))[:_LIST_LIMIT]
        reasons.append(
            Reason("community_hubs", f"best connected: {_join([ctx.names[i] for i in hubs])}")
        )
        communities.append(
            Community(
                id=cid,
                size=k,
                city_ids=tuple(sorted(g.city_ids[i] for i in members)),
                dominant_network=nid,
                network_share=net_n / k,
                dominant_country=cc,
                country_share=cc_n / k,
                reasons=tuple(reasons),
            )
        )
    in_comm = [i for i in range(g.n) if label[i] >= 0]
    with_net = [i for i in in_comm if ctx.networks[i]]
    ari_n, nmi_n = _compare([ctx.networks[i][0] for i in with_net], [label[i] for i in with_net])
    ari_c, nmi_c = _compare([ctx.countries[i] for i in in_comm], [label[i] for i in in_comm])
    return CommunityStats(
        method=method,
        seed=seed,
        modularity=modularity,
        communities=tuple(communities),
        singletons=g.n - len(in_comm),
        ari_vs_networks=ari_n,
        nmi_vs_networks=nmi_n,
        compared_with_networks=len(with_net),
        ari_vs_countries=ari_c,
        nmi_vs_countries=nmi_c,
        compared_with_countries=len(in_comm),
    )


def _network_bridgers(ctx: _Ctx) -> tuple[NetworkBridger, ...]:
    """Cities with ties into national networks (or to international-only cities) not their own."""
    g = ctx.g
    groups = [ctx.groups(i) for i in range(g.n)]
    group_sets = [frozenset(x) for x in groups]
    indptr, indices = g.indptr.tolist(), g.indices.tolist()
    found: list[tuple[int, int, NetworkBridger]] = []
    for i in range(g.n):
        own = group_sets[i]
        reached: Counter[str] = Counter()
        cross = 0
        for j in indices[indptr[i] : indptr[i + 1]]:
            reached.update(groups[j])
            if not group_sets[j] <= own:
                cross += 1
        if cross == 0:
            continue
        ranked = sorted(reached.items(), key=lambda kv: (-kv[1], kv[0]))
        parts = [
            f"{_plural(c, 'partner')} "
            + ("among " if nid == INTERNATIONAL_ONLY else "in ")
            + ctx.net_name(nid)
            for nid, c in ranked[:4]
        ]
        if len(ranked) > 4:
            parts.append(f"partners in {_plural(len(ranked) - 4, 'more group')}")
        foreign = [nid for nid in reached if nid not in own]
        nets = sum(1 for nid in foreign if nid != INTERNATIONAL_ONLY)
        if INTERNATIONAL_ONLY in own:
            own_words, reach = "no national network", _plural(nets, "national network")
        else:
            own_words = _join([ctx.net_name(x) for x in groups[i]])
            reach = f"{_plural(nets, 'national network')} besides its own"
            if INTERNATIONAL_ONLY in foreign:
                reach += " and international-only cities"
        text = f"{ctx.names[i]} ({own_words}) has {_join(parts)}: its ties reach {reach}"
        bridger = NetworkBridger(
            g.city_ids[i],
            ctx.names[i],
            groups[i],
            tuple(nid for nid, _ in ranked),
            cross,
            (Reason("network_bridge", text),),
        )
        found.append((len(foreign), cross, bridger))
    found.sort(key=lambda t: (-t[0], -t[1], t[2].city_id))
    return tuple(b for _, _, b in found)


def _core_distance(
    ctx: _Ctx, graph: ig.Graph, comp: np.ndarray, big: int
) -> tuple[list[int], int, int]:
    """Ties from each city to the innermost k-core of the largest component (-1: unreachable)."""
    g = ctx.g
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


def _periphery(
    ctx: _Ctx,
    graph: ig.Graph,
    comp: np.ndarray,
    comp_sizes: np.ndarray,
    big: int,
    far_hops: int,
    buddies: Buddies,
) -> tuple[tuple[CityFlag, ...], tuple[CityFlag, ...]]:
    g = ctx.g
    if g.n == 0:
        return (), ()
    big_size = int(comp_sizes[big])
    dist, k, core_n = _core_distance(ctx, graph, comp, big)
    isolated, peripheral = [], []
    comp_members: dict[int, list[int]] = {}
    small = {c for c in range(len(comp_sizes)) if c != big and comp_sizes[c] >= 2}
    if small:
        for i in np.flatnonzero(np.isin(comp, list(small))).tolist():
            comp_members.setdefault(int(comp[i]), []).append(i)
    for i in range(g.n):
        d = int(g.degree[i])
        cid, name = g.city_ids[i], ctx.names[i]
        if d == 0:
            text = f"{name} has no partnership with any other city"
            if ctx.joined[i] is not None:
                text += f" (member since {ctx.joined[i]})"
            isolated.append(
                CityFlag(cid, name, 0, ctx.joined[i], (Reason("isolated", text),), None, buddies(i))
            )
            continue
        reasons = []
        c = int(comp[i])
        if c != big:
            others = sorted(ctx.names[j] for j in comp_members[c] if j != i)
            reasons.append(
                Reason(
                    "separate_group",
                    f"{name} is in a separate group of {int(comp_sizes[c])} cities (with "
                    f"{_names(others)}) that has no tie to the main network of {big_size} cities",
                )
            )
        if d == 1:
            (j,) = g.neighbours(i).tolist()
            reasons.append(
                Reason(
                    "single_tie",
                    f"{name} has a single tie, to {ctx.names[j]}; losing it would leave "
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
                    ctx.joined[i],
                    tuple(reasons),
                    None if dist[i] < 0 else dist[i],
                    buddies(i),
                )
            )
    peripheral.sort(key=lambda f: (f.degree, -(f.core_distance or 0), f.city_id))
    isolated.sort(key=lambda f: f.city_id)
    return tuple(isolated), tuple(peripheral)


def _buddy_finder(ctx: _Ctx, k: int = 3) -> Buddies:
    """``buddies(i)``: up to ``k`` best-connected cities sharing a national network with
    city ``i``, then its country (most ties first, then id); never ``i`` itself."""
    g = ctx.g
    by_group: dict[str, list[int]] = {}
    for i in range(g.n):
        if g.degree[i] == 0:
            continue
        for nw in ctx.networks[i]:
            by_group.setdefault("n:" + nw, []).append(i)
        by_group.setdefault("c:" + ctx.countries[i], []).append(i)
    best = {
        key: sorted(members, key=lambda i: (-int(g.degree[i]), g.city_ids[i]))[: k + 1]
        for key, members in by_group.items()
    }

    def buddies(i: int) -> tuple[str, ...]:
        out: list[str] = []
        for key in [*("n:" + nw for nw in ctx.networks[i]), "c:" + ctx.countries[i]]:
            for j in best.get(key, ()):
                if j != i and g.city_ids[j] not in out and len(out) < k:
                    out.append(g.city_ids[j])
        return tuple(out)

    return buddies


def _needs_buddy(
    ctx: _Ctx, years: int, as_of: int | None, max_ties: int, buddies: Buddies
) -> tuple[tuple[CityFlag, ...], int | None]:
    g = ctx.g
    known = [y for y in ctx.joined if y is not None]
    if as_of is None:
        if not known:
            return (), None
        as_of = max(known)
    since = as_of - years + 1
    out = []
    for i in range(g.n):
        y = ctx.joined[i]
        d = int(g.degree[i])
        if y is None or y < since or y > as_of or d > max_ties:
            continue
        ties = "no partnership yet" if d == 0 else f"only {_plural(d, 'tie')}"
        text = (
            f"{ctx.names[i]} joined in {y} (a newcomer: {since}{_DASH}{as_of}) and has {ties}: "
            "it needs a buddy city"
        )
        found = buddies(i)
        reasons = [Reason("needs_buddy", text)]
        if found:
            names = [ctx.names[g.index[b]] for b in found]
            reasons.append(
                Reason(
                    "buddy_candidates",
                    f"well-connected cities of its network or country: {_join(names)}",
                )
            )
        out.append(CityFlag(g.city_ids[i], ctx.names[i], d, y, tuple(reasons), None, found))
    out.sort(key=lambda f: (-(f.joined or 0), f.city_id))
    return tuple(out), since


def _themes(
    snapshot: NetworkSnapshot, specs: Sequence[ClusterSpec], priority: int, level: int
) -> ThemeStats:
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
        wanted = f"{_plural(dem, 'city', 'cities')} give it priority {priority} or more"
        missing, reasons = [], []
        if exp == 0:
            missing.append("expert")
            lower = (
                f" ({_plural(exp_any, 'expert')} list{'s' if exp_any == 1 else ''} it at a lower level)"
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


def _openness(ctx: _Ctx, spec: ClusterSpec, min_share: float) -> ClusterOpenness:
    g = ctx.g
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
            f"{label}: {outside} of its members' {_plural(total, 'tie')} ({_pct(share)}) go "
            f"outside the cluster, to {_plural(len(partners), 'city', 'cities')}; "
            f"{inside} stay inside"
        )
        closed = share < min_share or outside == 0
        if closed:
            text += f" (below {_pct(min_share)}: at risk of becoming closed)"
        reasons.append(Reason("closed_cluster" if closed else "cluster_openness", text))
        if lonely and closed:
            reasons.append(
                Reason(
                    "members_without_outside_ties",
                    f"{len(lonely)} of its {size} members have no tie outside the cluster: "
                    f"{_names(sorted(ctx.names[g.index[c]] for c in lonely))}",
                )
            )
    if unknown:
        reasons.append(
            Reason(
                "unknown_members",
                f"{_plural(len(unknown), 'member id')} not in the network: {_names(list(unknown))}",
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
