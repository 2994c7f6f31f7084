"""Ids <-> matrix indices in one place: the snapshot turned into the arrays solvers need.

Everything downstream (features, partners, clusters, experts, analytics) works on these
arrays and never looks ids up again; ``NetworkArrays`` is immutable and built once per
snapshot revision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TypeAlias

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from graph.snapshot import NetworkSnapshot

FloatArray: TypeAlias = NDArray[np.float64]
IntArray: TypeAlias = NDArray[np.int64]
BoolArray: TypeAlias = NDArray[np.bool_]
Matrix: TypeAlias = FloatArray | sp.csr_matrix
"""A city x city matrix: dense for small networks, sparse (CSR) beyond."""

HOURS_PER_CLUSTER = 8.0
"""A coordinator needs about this many hours a month per cluster (meetings, visits, reports)."""
MAX_CLUSTERS_PER_CITY = 3
DEFAULT_CAPACITY = 2
"""Clusters per city when its coordinator's hours are unknown."""


def capacity_from_hours(hours: float | None) -> int:
    """How many clusters a city's coordinator can take: one per ~8 hours a month, 1 to 3."""
    if hours is None:
        return DEFAULT_CAPACITY
    return max(0 if hours <= 0 else 1, min(MAX_CLUSTERS_PER_CITY, int(hours // HOURS_PER_CLUSTER)))


@dataclass(frozen=True, eq=False)
class NetworkArrays:
    revision: int
    city_ids: tuple[str, ...]
    names: tuple[str, ...]
    countries: tuple[str, ...]
    country_codes: NDArray[np.int64]  # (n,) one integer per country, for fast comparisons
    networks: tuple[tuple[str, ...], ...]
    national: NDArray[np.bool_]  # (n,) member through a national network
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    population: NDArray[np.float64]  # NaN when unknown
    joined: NDArray[np.float64]  # NaN when unknown
    language_codes: tuple[str, ...]
    languages: NDArray[np.bool_]  # (n, L)
    theme_ids: tuple[str, ...]
    theme_names: tuple[str, ...]
    priority: NDArray[np.int8]  # (n, T) 0 = not a priority, 1-5
    strength: NDArray[np.float64]  # (n, T) Index score 0-100, NaN when unknown
    practices: NDArray[np.int16]  # (n, T) good practices on the theme
    practice_titles: dict[tuple[int, int], str]  # (city, theme) -> one practice title
    ties: sp.csr_matrix  # (n, n) symmetric 0/1: an existing partnership of any kind
    ties_aa: sp.csr_matrix  # ties with each row scaled by 1 / log(degree): Adamic-Adar's weights
    tie_kinds: dict[tuple[int, int], tuple[str, int | None]]  # (i<j) -> (kind, since)
    capacity: NDArray[np.int64]  # clusters each city can take
    index: dict[str, int] = field(repr=False)
    theme_index: dict[str, int] = field(repr=False)

    @property
    def n(self) -> int:
        return len(self.city_ids)

    def partners_of(self, i: int) -> NDArray[np.int32]:
        """Indices of the cities tied to city ``i``."""
        return np.asarray(self.ties.indices[self.ties.indptr[i] : self.ties.indptr[i + 1]])


def _tie_matrices(
    n: int, rows: NDArray[np.int64], cols: NDArray[np.int64]
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The 0/1 tie matrix (both directions given) and its Adamic-Adar weighting."""
    ties = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    ties.data[:] = 1.0  # duplicates (two kinds for one pair) count once
    ties.sum_duplicates()
    ties.data[:] = 1.0
    degree = np.asarray(ties.sum(axis=1)).ravel()
    inv_log = np.where(degree > 1, 1.0 / np.log(np.maximum(degree, 2)), 0.0)
    ties_aa = sp.csr_matrix(sp.diags(inv_log) @ ties)
    return ties, ties_aa


def with_ties(arr: NetworkArrays, edges: NDArray[np.int64]) -> NetworkArrays:
    """The same network with only the undirected ties ``edges`` ((m, 2) city indices):
    what evaluation and fitting see when they hide some ties. Kinds of kept ties stay."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    ties, ties_aa = _tie_matrices(arr.n, rows, cols)
    keep = {(min(int(a), int(b)), max(int(a), int(b))) for a, b in edges}
    kinds = {pair: kind for pair, kind in arr.tie_kinds.items() if pair in keep}
    return replace(arr, ties=ties, ties_aa=ties_aa, tie_kinds=kinds)


def tie_edges(arr: NetworkArrays) -> NDArray[np.int64]:
    """Every tie once, as (m, 2) city indices with i < j, sorted."""
    upper = sp.triu(arr.ties, k=1).tocoo()
    edges = np.column_stack([upper.row, upper.col]).astype(np.int64)
    return edges[np.lexsort((edges[:, 1], edges[:, 0]))]


def encode(snapshot: NetworkSnapshot) -> NetworkArrays:
    cities = snapshot.cities
    n = len(cities)
    index = {c.id: i for i, c in enumerate(cities)}
    themes = snapshot.themes
    theme_index = {t.id: k for k, t in enumerate(themes)}
    codes = tuple(sorted({lang for c in cities for lang in c.languages}))
    lang_index = {code: k for k, code in enumerate(codes)}

    languages = np.zeros((n, len(codes)), dtype=bool)
    for i, c in enumerate(cities):
        for lang in c.languages:
            languages[i, lang_index[lang]] = True

    priority = np.zeros((n, len(themes)), dtype=np.int8)
    for ct in snapshot.city_themes:
        if ct.city_id in index and ct.theme_id in theme_index:
            priority[index[ct.city_id], theme_index[ct.theme_id]] = ct.priority
    strength = np.full((n, len(themes)), np.nan)
    for s in snapshot.index_scores:
        if s.city_id in index and s.theme_id in theme_index:
            strength[index[s.city_id], theme_index[s.theme_id]] = s.score
    practices = np.zeros((n, len(themes)), dtype=np.int16)
    titles: dict[tuple[int, int], str] = {}
    for practice in snapshot.practices:
        at = index.get(practice.city_id)
        if at is None:
            continue
        for t_id in practice.themes:
            t = theme_index.get(t_id)
            if t is not None:
                practices[at, t] += 1
                titles.setdefault((at, t), practice.title)

    rows, cols = [], []
    kinds: dict[tuple[int, int], tuple[str, int | None]] = {}
    for tie in snapshot.partnerships:
        a, b = index.get(tie.city_a), index.get(tie.city_b)
        if a is None or b is None:
            continue
        rows += [a, b]
        cols += [b, a]
        kinds.setdefault((min(a, b), max(a, b)), (tie.kind, tie.since))
    ties, ties_aa = _tie_matrices(
        n, np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    )

    def floats(values: list[float | None]) -> NDArray[np.float64]:
        return np.array([math.nan if v is None else float(v) for v in values], dtype=float)

    return NetworkArrays(
        revision=snapshot.revision,
        city_ids=tuple(c.id for c in cities),
        names=tuple(c.name for c in cities),
        countries=tuple(c.country for c in cities),
        country_codes=np.unique([c.country for c in cities], return_inverse=True)[1].astype(
            np.int64
        )
        if n
        else np.zeros(0, dtype=np.int64),
        networks=tuple(c.networks for c in cities),
        national=np.array([c.membership == "national" for c in cities], dtype=bool),
        lat=floats([c.lat for c in cities]),
        lon=floats([c.lon for c in cities]),
        population=floats([c.population for c in cities]),
        joined=floats([c.joined for c in cities]),
        language_codes=codes,
        languages=languages,
        theme_ids=tuple(t.id for t in themes),
        theme_names=tuple(t.name for t in themes),
        priority=priority,
        strength=strength,
        practices=practices,
        practice_titles=titles,
        ties=ties,
        ties_aa=ties_aa,
        tie_kinds=kinds,
        capacity=np.array(
            [capacity_from_hours(c.coordinator_hours) for c in cities], dtype=np.int64
        ),
        index=index,
        theme_index=theme_index,
    )
