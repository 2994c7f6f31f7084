"""The shape of the tie graph: components, degree and betweenness, bridges and cut cities.

Components and betweenness run in igraph (C) on the graph built straight from the index
arrays. Betweenness is exact up to ``exact_max`` cities; above that it is estimated from
``samples`` source cities drawn with ``seed`` (igraph's subset betweenness scaled by n/k,
the Brandes-Pich estimator networkx uses for ``k``), so nothing here is all-pairs.
Bridges and articulation points, with the size of what each one cuts off, come from one
iterative Tarjan DFS, O(cities + ties); the cities a cut separates are named in words
(``EncodedNetwork.describe``) when there are few enough of them to read.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import igraph as ig
import numpy as np

from matching.analytics.context import EncodedNetwork
from matching.kernel.arrays import FloatArray, IntArray
from matching.kernel.ties import TieGraph
from matching.kernel.wording import DASH, Reason, percent, plural

_DESCRIBE_LIMIT = 200  # describe the cities a cut separates only up to this many


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


# --- components --------------------------------------------------------------------------------


def component_labels(net: EncodedNetwork, graph: ig.Graph) -> tuple[IntArray, IntArray, int]:
    """Each city's component, the components' sizes, and the largest one (-1 without cities)."""
    comp = np.asarray(graph.connected_components().membership, dtype=np.int64)
    comp_sizes = np.bincount(comp) if net.g.n else np.zeros(0, dtype=np.int64)
    big = _largest_component(net, comp, comp_sizes) if net.g.n else -1
    return comp, comp_sizes, big


def _largest_component(net: EncodedNetwork, comp: IntArray, sizes: IntArray) -> int:
    """The largest component; a tie goes to the one holding the smallest city id."""
    first: dict[int, str] = {}
    for i, c in enumerate(comp.tolist()):
        cid = net.g.city_ids[i]
        if c not in first or cid < first[c]:
            first[c] = cid
    return min(range(len(sizes)), key=lambda c: (-int(sizes[c]), first[c]))


def component_stats(
    net: EncodedNetwork, comp: IntArray, sizes: IntArray, big: int
) -> ComponentStats:
    """How many components, their sizes, and the largest one's cities."""
    n = net.g.n
    if n == 0:
        return ComponentStats(0, (), 0, 0.0, ())
    members = tuple(sorted(net.g.city_ids[i] for i in np.flatnonzero(comp == big).tolist()))
    return ComponentStats(
        count=len(sizes),
        sizes=tuple(sorted((int(s) for s in sizes), reverse=True)),
        largest_size=int(sizes[big]),
        largest_share=float(sizes[big]) / n,
        largest_city_ids=members,
    )


# --- centrality --------------------------------------------------------------------------------


def _ranked(values: IntArray | FloatArray, net: EncodedNetwork, top: int) -> list[int]:
    """Indices of the ``top`` largest values, ties by city id (deterministic)."""
    if top == 0 or net.g.n == 0:
        return []
    k = min(top, net.g.n)
    # candidates: everything >= the k-th largest value, then an exact sort of those
    kth = np.partition(values, -k)[-k]
    cand = np.flatnonzero(values >= kth)
    return sorted(cand.tolist(), key=lambda i: (-float(values[i]), net.g.city_ids[i]))[:k]


def top_degree(net: EncodedNetwork, top: int) -> tuple[CityScore, ...]:
    """The ``top`` cities with the most partner cities (none without a tie)."""
    g = net.g
    out = []
    for i in _ranked(g.degree, net, top):
        d = int(g.degree[i])
        if d == 0:
            break
        partners = g.neighbours(i)
        countries = len({net.countries[j] for j in partners})
        text = (
            f"{net.names[i]} has {plural(d, 'partner city', 'partner cities')} "
            f"in {plural(countries, 'country', 'countries')}"
        )
        out.append(CityScore(g.city_ids[i], net.names[i], float(d), (Reason("degree", text),)))
    return tuple(out)


def top_betweenness(
    net: EncodedNetwork, graph: ig.Graph, top: int, seed: int, exact_max: int, samples: int
) -> tuple[tuple[CityScore, ...], str]:
    """The ``top`` cities on the most shortest paths, and how betweenness was computed."""
    n = net.g.n
    pairs = (n - 1) * (n - 2) / 2
    if n < 3 or len(net.g.edges) == 0:
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
    for i in _ranked(norm, net, top):
        if norm[i] <= 0:
            break
        share = float(norm[i])
        text = (
            f"{net.names[i]} lies on about {percent(share) if share >= 0.01 else 'under 1%'} of the "
            "shortest paths between other cities"
        )
        out.append(
            CityScore(net.g.city_ids[i], net.names[i], share, (Reason("betweenness", text),))
        )
    return tuple(out), method


# --- cuts: bridges and articulation points ---------------------------------------------------


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


def bridges_and_articulation_points(
    net: EncodedNetwork, comp: IntArray, comp_sizes: IntArray
) -> tuple[tuple[Bridge, ...], tuple[ArticulationPoint, ...]]:
    """Ties and cities whose loss splits their component, most cities cut off first; the
    cities each one separates are named when there are few enough of them."""
    g = net.g
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
        side = f"{plural(small_n, 'city', 'cities')} on {net.names[small]}'s side"
        if small_n <= _DESCRIBE_LIMIT:
            members = subtree(v) if small == v else outside(v, set(subtree(v)))
            side += f" ({net.describe(members)})"
        a, b = (p, v) if g.city_ids[p] < g.city_ids[v] else (v, p)
        text = (
            f"The {net.names[a]}{DASH}{net.names[b]} tie is the only link between {side} and the "
            f"{plural(big_n, 'city', 'cities')} on {net.names[big]}'s side"
        )
        bridges.append(
            Bridge(
                city_a=g.city_ids[a],
                city_b=g.city_ids[b],
                name_a=net.names[a],
                name_b=net.names[b],
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
        what = plural(cut_off, "city", "cities")
        if cut_off <= _DESCRIBE_LIMIT:
            if rest >= max(below):  # the largest piece is the part above v
                members = [i for c in children for i in subtree(c)]
            else:
                keep = max(children, key=lambda c: (size[c], -tin[c]))
                members = outside(v, {*subtree(keep), v})
            what += f" ({net.describe(members)})"
        text = (
            f"{net.names[v]} is the only link between {what} and the other "
            f"{plural(pieces[0], 'city', 'cities')} of its part of the network"
        )
        if len(pieces) > 2:
            text += f"; without it, that part falls into {len(pieces)} pieces"
        points.append(
            ArticulationPoint(
                city_id=g.city_ids[v],
                name=net.names[v],
                cut_off=cut_off,
                pieces=tuple(pieces),
                reasons=(Reason("articulation_point", text),),
            )
        )
    points.sort(key=lambda ap: (-ap.cut_off, ap.city_id))
    return tuple(bridges), tuple(points)
