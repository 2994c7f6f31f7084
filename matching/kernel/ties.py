"""The city-city tie graph as arrays: deduplicated undirected edges and CSR adjacency.

Built once per snapshot from its partnerships (ids <-> indices here, as in
``matching.kernel.arrays``); analytics, exports and the tie features read it, and
``TieGraph.igraph()`` hands it to igraph's C routines without a per-edge Python object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import igraph as ig
import numpy as np

from graph.errors import InvalidInput
from graph.snapshot import NetworkSnapshot
from matching.kernel.wording import DASH

DEFAULT_KIND_WEIGHTS: Mapping[str, float] = {
    "twinning": 1.0,
    "project": 1.0,
    "visit": 1.0,
    "cluster": 1.0,
    "agreement": 1.0,
}
"""Weight of one partnership row by kind (only Leiden and exports use weights)."""
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
                f"partnership {p.city_a}{DASH}{p.city_b} names city {missing!r}, which the snapshot "
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
