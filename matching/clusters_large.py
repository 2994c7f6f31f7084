"""Cluster pools as plain arrays, their constraints and objective, and the large-instance solver.

This module knows nothing about city ids or themes by name: ``matching.clusters`` turns a
``ClusterInput`` into one :class:`PoolData` per theme (or one for geographic clusters)
and calls :func:`solve_large` (or ``matching.clusters_exact.solve_exact``, which shares
:func:`cluster_violations` and :func:`objective_terms` from here, so both paths are
judged by the same rules and the same objective).

Objective (both paths)
    ``coverage_weight * sum(cov[i] for each membership) + sum over clusters of
    sum over member pairs (W[i, j] - gamma)``. ``cov`` is the city's priority for the
    theme / 5 (1 for geographic clusters), so placing a willing city always comes first
    (``coverage_weight`` is large enough to dominate any cohesion change one city can
    make); ``gamma`` is the pool's resolution: a pair counts as cohesive when its affinity
    is above it. Without ``gamma`` any non-negative affinity would favour merging every
    group up to ``max_size``.

Large path: Leiden + repair, per pool
    1. Leiden (igraph's ``community_leiden``, CPM objective, resolution ``gamma``, seeded)
       on the pool's affinity graph; locked groups are contracted into one weighted node
       so Leiden never separates them. Graphs above ``_DENSE_LEIDEN_MAX`` nodes are
       sparsified to each node's strongest ``_KNN`` neighbours first.
    2. Each community keeps the language most of its members speak (one every locked
       member speaks); the others go back to the pool.
    3. Communities above ``max_size`` are split around far-apart seeds; communities
       below ``min_size`` (without a lock) are dissolved into the pool.
    4. New clusters are grown from the pool around lead-capable seeds, then every pool
       city is placed into the compatible cluster with room where it adds most.
    5. Violations (no lead, not mixed, one country, one network, a locked cluster too
       small) are fixed by adding, swapping or borrowing the city that fixes it at the
       best objective change.
    6. Local search: single moves and pair swaps that raise the objective and keep every
       cluster valid.
    7. Clusters that still break a hard rule and hold no lock are dissolved, one at a
       time, and their members re-placed; so are unmixed clusters while the pool mixes
       fewer clusters than it could (at least ``min(clusters, mix_allowance)`` must be
       mixed). What remains broken (only locked clusters) is reported.

``gamma`` is set per pool by :func:`tune_gamma`: the affinity of the pair ranked
``k * (target - 1) / 2`` (target = the middle of the size bounds), so each city has on
average ``target - 1`` partners above it, as in a partition into groups of that size. Randomness: igraph's generator is swapped for ``random.Random(seed)`` for the
duration of a call (under a lock, then restored), and numpy's ``default_rng(seed)``
orders the local search, so the same seed gives the same result.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import igraph as ig
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
Matrix: TypeAlias = FloatArray | sp.csr_matrix

_KNN = 24
_DENSE_LEIDEN_MAX = 400
_EPS = 1e-9
_IGRAPH_RNG_LOCK = threading.Lock()

VIOLATIONS = ("size", "lead", "language", "mixed", "country", "network")


@dataclass(frozen=True, slots=True)
class Lock:
    """A planner's 'keep these together': ``members`` are local indices of one pool."""

    slot: str
    members: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Rules:
    """The hard rules shared by every pool of one request."""

    min_size: int
    max_size: int
    require_language: bool
    single_country_ok: bool
    single_network_ok: bool
    coverage_weight: float


@dataclass(frozen=True, eq=False)
class PoolData:
    """One theme's (or the geographic) candidates as arrays, in local indices ``0..k-1``.

    ``idx`` maps local to global city indices. ``W`` is the pool's affinity (dense or CSR,
    symmetric, zero diagonal). ``mix_allowance`` is -1 when mixed membership is not
    required, else ``min(#international, #national)`` candidates: at most that many
    clusters can be mixed, so up to ``n_clusters - mix_allowance`` may stay unmixed.
    """

    key: str
    theme: int
    idx: IntArray
    W: Matrix
    gamma: float
    cov: FloatArray
    lead_ok: BoolArray
    langs: BoolArray
    intl: BoolArray
    national: BoolArray
    country: IntArray
    net: BoolArray
    locks: tuple[Lock, ...]
    n_clusters: int | None
    mix_allowance: int

    @property
    def k(self) -> int:
        return len(self.idx)


@dataclass(frozen=True, slots=True)
class RawCluster:
    """A solver's cluster: the pool it belongs to, sorted local members, its lock slot."""

    pool: int
    members: tuple[int, ...]
    slot: str | None = None


@dataclass(frozen=True, slots=True)
class LargeResult:
    clusters: tuple[RawCluster, ...]
    dissolved: tuple[tuple[int, str, int], ...]  # (pool, violation, size) per dissolved cluster


# --------------------------------------------------------------------------- constraints


def _bitmasks(rows: BoolArray) -> list[int]:
    """Each row of a boolean matrix as a Python int (bit ``b`` set when ``row[b]``)."""
    width = rows.shape[1]
    if width <= 62:
        weights = np.left_shift(np.int64(1), np.arange(width, dtype=np.int64))
        return [int(x) for x in (rows.astype(np.int64) * weights).sum(axis=1).tolist()]
    return [sum(1 << int(b) for b in np.flatnonzero(row)) for row in rows]


class _Facts:
    """Per-city facts of one pool as Python ints, for fast checks on clusters of ~8."""

    def __init__(self, pool: PoolData, rules: Rules) -> None:
        self.rules = rules
        self.lang = _bitmasks(pool.langs)
        self.netm = _bitmasks(pool.net)
        self.country = pool.country.tolist()
        self.intl = pool.intl.tolist()
        self.nat = pool.national.tolist()
        self.lead = pool.lead_ok.tolist()
        self.mixed_required = pool.mix_allowance >= 0

    def violations(self, members: Sequence[int]) -> set[str]:
        r = self.rules
        out: set[str] = set()
        if not r.min_size <= len(members) <= r.max_size:
            out.add("size")
        if not members:
            return out
        if not any(self.lead[i] for i in members):
            out.add("lead")
        if r.require_language:
            wl = -1
            for i in members:
                wl &= self.lang[i]
            if wl == 0:
                out.add("language")
        if self.mixed_required and not (
            any(self.intl[i] for i in members) and any(self.nat[i] for i in members)
        ):
            out.add("mixed")
        if not r.single_country_ok and len({self.country[i] for i in members}) < 2:
            out.add("country")
        if not r.single_network_ok:
            common = -1
            for i in members:
                common &= self.netm[i]
            if common != 0:
                out.add("network")
        return out

    def working(self, members: Sequence[int]) -> int:
        wl = -1
        for i in members:
            wl &= self.lang[i]
        return wl if members else 0


def cluster_violations(pool: PoolData, rules: Rules, members: Sequence[int]) -> set[str]:
    """The hard rules one cluster (local members) breaks, from ``VIOLATIONS``.

    "mixed" is reported whenever the pool requires mixing and the cluster is not mixed;
    whether that is allowed (the pool's ``mix_allowance``) is decided per pool. To check
    many clusters of one pool, use :func:`violation_checker` once.
    """
    return _Facts(pool, rules).violations(members)


def violation_checker(pool: PoolData, rules: Rules) -> Callable[[Sequence[int]], set[str]]:
    """``cluster_violations`` for one pool, with the pool's facts prepared once."""
    return _Facts(pool, rules).violations


def unmixed_allowed(pool: PoolData, n_clusters: int) -> int:
    """How many of the pool's ``n_clusters`` clusters may be unmixed (the pool lacks cities)."""
    if pool.mix_allowance < 0:
        return n_clusters
    return max(0, n_clusters - pool.mix_allowance)


def pair_sum(W: Matrix, members: Sequence[int]) -> float:
    """Sum of ``W[i, j]`` over unordered pairs of ``members``."""
    if len(members) < 2:
        return 0.0
    m = np.asarray(members)
    if isinstance(W, np.ndarray):
        return float(W[np.ix_(m, m)].sum()) / 2.0
    return float(W[m][:, m].sum()) / 2.0


def objective_terms(
    pools: Sequence[PoolData], rules: Rules, clusters: Sequence[RawCluster]
) -> tuple[float, float]:
    """``(coverage, cohesion)``: the objective is ``coverage_weight * coverage + cohesion``."""
    coverage = 0.0
    cohesion = 0.0
    for c in clusters:
        pool = pools[c.pool]
        coverage += float(pool.cov[list(c.members)].sum())
        s = len(c.members)
        cohesion += pair_sum(pool.W, c.members) - pool.gamma * s * (s - 1) / 2.0
    return coverage, cohesion


# --------------------------------------------------------------------------- Leiden


def _leiden(
    n: int,
    rows: IntArray,
    cols: IntArray,
    weights: FloatArray,
    gamma: float,
    seed: int,
    node_weights: Sequence[float] | None = None,
) -> IntArray:
    """igraph's Leiden (CPM) on an edge list, seeded without touching global state for long."""
    g = ig.Graph(n=n, edges=np.column_stack([rows, cols]).tolist())
    with _IGRAPH_RNG_LOCK:
        ig.set_random_number_generator(random.Random(seed))
        try:
            part = g.community_leiden(
                objective_function="CPM",
                weights=weights.tolist(),
                resolution=gamma,
                n_iterations=-1,
                node_weights=list(node_weights) if node_weights is not None else None,
            )
        finally:
            ig.set_random_number_generator(random)
    return np.asarray(part.membership, dtype=np.int64)


def _edges(W: Matrix, knn: int | None) -> tuple[IntArray, IntArray, FloatArray]:
    """Upper-triangle edges of ``W`` (positive weights), optionally the union of kNN lists."""
    n = W.shape[0]
    if knn is not None and n > knn + 1:
        if isinstance(W, np.ndarray):
            top = np.argpartition(-W, knn, axis=1)[:, :knn]
            r = np.repeat(np.arange(n), knn)
            c = top.ravel()
            v = W[r, c]
        else:
            csr = sp.csr_matrix(W)
            rs, cs, vs = [], [], []
            for i in range(n):
                lo, hi = csr.indptr[i], csr.indptr[i + 1]
                cols_i, vals_i = csr.indices[lo:hi], csr.data[lo:hi]
                if len(cols_i) > knn:
                    keep = np.argpartition(-vals_i, knn)[:knn]
                    cols_i, vals_i = cols_i[keep], vals_i[keep]
                rs.append(np.full(len(cols_i), i))
                cs.append(cols_i)
                vs.append(vals_i)
            r, c, v = np.concatenate(rs), np.concatenate(cs), np.concatenate(vs)
        a, b = np.minimum(r, c), np.maximum(r, c)
        keep = (v > 0) & (a != b)
        key = np.unique(a[keep] * n + b[keep])
        a, b = key // n, key % n
        w = W[a, b] if isinstance(W, np.ndarray) else np.asarray(sp.csr_matrix(W)[a, b]).ravel()
        return a.astype(np.int64), b.astype(np.int64), w.astype(np.float64)
    if isinstance(W, np.ndarray):
        ta, tb = np.triu_indices(n, 1)
        tw = np.asarray(W[ta, tb], dtype=np.float64)
    else:
        coo = sp.triu(W, k=1).tocoo()
        ta, tb, tw = coo.row, coo.col, np.asarray(coo.data, dtype=np.float64)
    positive = tw > 0
    return ta[positive].astype(np.int64), tb[positive].astype(np.int64), tw[positive]


def _knn_for(n: int) -> int | None:
    return _KNN if n > _DENSE_LEIDEN_MAX else None


def tune_gamma(W: Matrix, min_size: int, max_size: int) -> float:
    """The CPM resolution: the affinity above which a pair counts as a good pair.

    A partition into groups of the target size ``(min_size + max_size) / 2`` has about
    ``k * (target - 1) / 2`` pairs inside groups, so ``gamma`` is the affinity of the
    pool's pair ranked just there: each city then has, on average, ``target - 1`` pairs
    above it. Deterministic, and cheap (one partial sort).
    """
    n = W.shape[0]
    if n < 2:
        return _EPS
    _, _, w = _edges(W, _knn_for(n))
    w = w[w > 0]
    if len(w) == 0:
        return _EPS
    target = (min_size + max_size) / 2.0
    m = round(n * (target - 1) / 2.0)
    m = min(max(m, 1), len(w))
    kth = float(np.partition(w, len(w) - m)[len(w) - m])
    return max(kth, _EPS)


# --------------------------------------------------------------------------- repair


class _PoolSolver:
    """Mutable working state for one pool; lives only inside :func:`solve_large`."""

    def __init__(self, pool: PoolData, rules: Rules, active: BoolArray, seed: int) -> None:
        self.pool = pool
        self.rules = rules
        self.f = _Facts(pool, rules)
        self.active = active.copy()
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        k = pool.k
        self.k = k
        self.dense = isinstance(pool.W, np.ndarray)
        self.Wd: FloatArray | None = pool.W if isinstance(pool.W, np.ndarray) else None
        self.Ws: sp.csr_matrix | None = None
        if not self.dense:
            self.Ws = sp.csr_matrix(pool.W, copy=True)
            self.Ws.sort_indices()
        self.gamma = pool.gamma
        self.cw = rules.coverage_weight
        self.locked_slot: list[str | None] = [None] * k
        for lock in pool.locks:
            for i in lock.members:
                self.locked_slot[i] = lock.slot
                self.active[i] = True
        self.label = np.full(k, -1, dtype=np.int64)
        self.members: list[list[int]] = []
        self.slot: list[str | None] = []
        cap_clusters = k // max(rules.min_size, 1) + len(pool.locks) + 2
        self.S = np.zeros((k, cap_clusters), dtype=np.float64)
        self.size = np.zeros(cap_clusters, dtype=np.int64)
        self.dissolved: list[tuple[str, int]] = []

    # -- primitives ---------------------------------------------------------------

    def col(self, i: int) -> tuple[IntArray | slice, FloatArray]:
        if self.Wd is not None:
            return slice(None), self.Wd[:, i]
        assert self.Ws is not None
        lo, hi = self.Ws.indptr[i], self.Ws.indptr[i + 1]
        return self.Ws.indices[lo:hi].astype(np.int64), self.Ws.data[lo:hi]

    def w(self, i: int, j: int) -> float:
        if self.Wd is not None:
            return float(self.Wd[i, j])
        assert self.Ws is not None
        lo, hi = self.Ws.indptr[i], self.Ws.indptr[i + 1]
        cols = self.Ws.indices[lo:hi]
        t = int(np.searchsorted(cols, j))
        return float(self.Ws.data[lo + t]) if t < len(cols) and cols[t] == j else 0.0

    def new_cluster(self, slot: str | None = None) -> int:
        c = len(self.members)
        if c >= self.S.shape[1]:
            self.S = np.hstack([self.S, np.zeros((self.k, self.S.shape[1]), dtype=np.float64)])
            self.size = np.concatenate([self.size, np.zeros(len(self.size), dtype=np.int64)])
        self.members.append([])
        self.slot.append(slot)
        return c

    def add(self, i: int, c: int) -> None:
        assert self.label[i] == -1
        self.members[c].append(i)
        self.size[c] += 1
        self.label[i] = c
        rows, vals = self.col(i)
        self.S[rows, c] += vals

    def remove(self, i: int) -> None:
        c = int(self.label[i])
        assert c >= 0
        self.members[c].remove(i)
        self.size[c] -= 1
        self.label[i] = -1
        rows, vals = self.col(i)
        self.S[rows, c] -= vals

    def dissolve(self, c: int) -> list[int]:
        out = list(self.members[c])
        for i in out:
            self.remove(i)
        self.slot[c] = None
        return out

    def live(self) -> list[int]:
        return [c for c, m in enumerate(self.members) if m]

    def unplaced(self) -> list[int]:
        return [i for i in range(self.k) if self.active[i] and self.label[i] == -1]

    def gain_in(self, i: int, c: int) -> float:
        """Cohesion change of adding ``i`` to ``c`` (``i`` not in ``c``)."""
        return float(self.S[i, c]) - self.gamma * len(self.members[c])

    def gain_out(self, i: int) -> float:
        """Cohesion ``i`` brings to its own cluster."""
        c = int(self.label[i])
        return float(self.S[i, c]) - self.gamma * (len(self.members[c]) - 1)

    def removable(self, i: int) -> bool:
        """Taking ``i`` out keeps its cluster valid (and ``i`` is not locked)."""
        if self.locked_slot[i] is not None:
            return False
        c = int(self.label[i])
        rest = [j for j in self.members[c] if j != i]
        return not (self.f.violations(rest) - self.f.violations(self.members[c]) - {"language"})

    def speaks_with(self, i: int, members: Sequence[int]) -> bool:
        if not self.rules.require_language or not members:
            return True
        return (self.f.working(members) & self.f.lang[i]) != 0

    # -- steps --------------------------------------------------------------------

    def communities(self) -> list[list[int]]:
        """Leiden on the active cities, locked groups contracted into one node each."""
        nodes = [i for i in range(self.k) if self.active[i]]
        if not nodes:
            return []
        unit_of: dict[int, int] = {}
        units: list[list[int]] = []
        for lock in self.pool.locks:
            unit_of.update({i: len(units) for i in lock.members})
            units.append(list(lock.members))
        for i in nodes:
            if i not in unit_of:
                unit_of[i] = len(units)
                units.append([i])
        sub = np.asarray(nodes)
        W = self.pool.W
        Wsub: Matrix = (
            W[np.ix_(sub, sub)] if isinstance(W, np.ndarray) else sp.csr_matrix(W)[sub][:, sub]
        )
        u = len(units)
        P = sp.csr_matrix(
            (np.ones(len(nodes)), (np.arange(len(nodes)), [unit_of[i] for i in nodes])),
            shape=(len(nodes), u),
        )
        U: Matrix
        if not self.pool.locks:
            U = Wsub  # units are the nodes, in the same order
        else:
            if isinstance(Wsub, np.ndarray):
                U = np.asarray(P.T @ Wsub @ P)
                np.fill_diagonal(U, 0.0)
            else:
                U = sp.csr_matrix(P.T @ Wsub @ P)
                U.setdiag(0.0)
                U.eliminate_zeros()
        r, c, w = _edges(U, _knn_for(u))
        sizes = [float(len(x)) for x in units]
        labels = _leiden(u, r, c, w, self.gamma, self.seed, sizes)
        groups: dict[int, list[int]] = {}
        for unit, lab in enumerate(labels.tolist()):
            groups.setdefault(lab, []).extend(units[unit])
        return [sorted(g) for _, g in sorted(groups.items())]

    def seed_clusters(self, groups: list[list[int]]) -> None:
        """Turn communities into clusters: one lock each, one language, within size bounds."""
        lo = self.rules.min_size
        for group in groups:
            slots = []
            for i in group:
                s = self.locked_slot[i]
                if s is not None and s not in slots:
                    slots.append(s)
            # one lock per cluster: extra locks become clusters of their own
            keep_slot = slots[0] if slots else None
            for s in slots[1:]:
                c = self.new_cluster(s)
                for i in group:
                    if self.locked_slot[i] == s:
                        self.add(i, c)
            rest = [i for i in group if self.locked_slot[i] in (None, keep_slot)]
            rest = self.one_language(rest)
            for part in self.split(rest, keep_slot):
                has_lock = keep_slot is not None and any(
                    self.locked_slot[i] == keep_slot for i in part
                )
                if len(part) < lo and not has_lock:
                    continue
                c = self.new_cluster(keep_slot if has_lock else None)
                for i in part:
                    self.add(i, c)

    def one_language(self, group: list[int]) -> list[int]:
        if not self.rules.require_language or not group or self.f.working(group):
            return group
        locked = [i for i in group if self.locked_slot[i] is not None]
        allowed = self.f.working(locked) if locked else -1
        L = self.pool.langs.shape[1]
        best, best_key = -1, (-1, -1.0)
        for b in range(L):
            if not (allowed >> b) & 1:
                continue
            speakers = [i for i in group if (self.f.lang[i] >> b) & 1]
            key = (len(speakers), -b)
            if key > best_key:
                best, best_key = b, key
        if best < 0:
            return locked
        return [i for i in group if (self.f.lang[i] >> best) & 1 or self.locked_slot[i] is not None]

    def split(self, group: list[int], slot: str | None) -> list[list[int]]:
        """Cut an oversized group into parts of sizes within bounds where possible."""
        lo, hi = self.rules.min_size, self.rules.max_size
        s = len(group)
        if s <= hi:
            return [group]
        parts = math.ceil(s / hi)
        if s < parts * lo:
            parts = max(1, s // lo)
        size_cap = min(hi, math.ceil(s / parts))
        g = np.asarray(group)
        sub = self.sub_matrix(g)
        # seeds: the lock (if any), then the node least like the chosen seeds
        seeds: list[int] = []
        locked = [
            t for t, i in enumerate(group) if slot is not None and self.locked_slot[i] == slot
        ]
        if locked:
            seeds.append(locked[0])
        else:
            seeds.append(int(np.argmax(sub.sum(axis=1))))
        while len(seeds) < parts:  # (the other locked cities join the first part below)
            sim = sub[:, seeds].max(axis=1)
            sim[seeds] = np.inf
            sim[locked] = np.inf
            seeds.append(int(np.argmin(sim)))
        out: list[list[int]] = [[] for _ in range(parts)]
        assigned = np.full(s, -1)
        for p, t in enumerate(seeds):
            out[p].append(t)
            assigned[t] = p
        for t in locked[1:]:
            out[0].append(t)
            assigned[t] = 0
        while True:
            free = np.flatnonzero(assigned < 0)
            if len(free) == 0:
                break
            scores = np.full((len(free), parts), -np.inf)
            for p in range(parts):
                if len(out[p]) < size_cap:
                    scores[:, p] = sub[np.ix_(free, np.asarray(out[p]))].mean(axis=1)
            if not np.isfinite(scores).any():
                break  # the extras go back to the pool
            row, part = np.unravel_index(int(np.argmax(scores)), scores.shape)
            t = int(free[row])
            out[int(part)].append(t)
            assigned[t] = int(part)
        return [[group[t] for t in part] for part in out]

    def sub_matrix(self, g: IntArray) -> FloatArray:
        if self.Wd is not None:
            return np.asarray(self.Wd[np.ix_(g, g)])
        assert self.Ws is not None
        return np.asarray(self.Ws[g][:, g].toarray())

    def grow_new(self, limit: int | None) -> None:
        """Grow new clusters from unplaced cities around lead-capable seeds.

        Seeds are tried strongest first (summed affinity to the unplaced cities); a group
        takes the compatible unplaced city that adds most until it reaches ``min_size``,
        then keeps growing while the addition is a good pair on average (positive gain).
        """
        lo, hi = self.rules.min_size, self.rules.max_size
        pool = self.unplaced()
        if len(pool) < lo:
            return
        arr = np.asarray(pool, dtype=np.int64)
        where = np.full(self.k, -1, dtype=np.int64)
        where[arr] = np.arange(len(arr))
        if self.Wd is not None:
            strength = self.Wd[np.ix_(arr, arr)].sum(axis=1)
        else:
            assert self.Ws is not None
            strength = np.asarray(self.Ws[arr][:, arr].sum(axis=1)).ravel()
        seeds = sorted(
            (i for i in pool if self.f.lead[i]), key=lambda i: (-float(strength[where[i]]), i)
        )
        langs = self.pool.langs[arr]
        for seed in seeds:
            if limit is not None and len(self.live()) >= limit:
                return
            if self.label[seed] != -1:
                continue
            free = np.asarray(
                [self.label[i] == -1 and self.active[i] for i in arr.tolist()], dtype=bool
            )
            if int(free.sum()) < lo:
                return
            group = [seed]
            gain = np.zeros(len(arr))
            self._add_column(gain, where, seed)
            wl = self.pool.langs[seed].copy()
            free[where[seed]] = False
            while len(group) < hi:
                ok = free.copy()
                if self.rules.require_language:
                    ok &= (langs & wl).any(axis=1)
                if not ok.any():
                    break
                score = np.where(ok, gain - self.gamma * len(group), -np.inf)
                t = int(np.argmax(score))
                if len(group) >= lo and score[t] <= 0:
                    break
                i = int(arr[t])
                group.append(i)
                free[t] = False
                wl &= self.pool.langs[i]
                self._add_column(gain, where, i)
            if len(group) < lo:
                continue
            c = self.new_cluster()
            for i in group:
                self.add(i, c)

    def _add_column(self, acc: FloatArray, where: IntArray, i: int) -> None:
        """``acc[where[j]] += W[j, i]`` for every ``j`` that ``where`` maps."""
        rows, vals = self.col(i)
        if isinstance(rows, slice):
            mask = where >= 0
            acc[where[mask]] += vals[mask]
        else:
            pos = where[rows]
            keep = pos >= 0
            acc[pos[keep]] += vals[keep]

    def working_matrix(self, clusters: Sequence[int]) -> BoolArray:
        """Working languages (cluster x language) of ``clusters``; all True when not required."""
        L = self.pool.langs.shape[1]
        if not self.rules.require_language:
            return np.ones((len(clusters), max(L, 1)), dtype=bool)
        out = np.zeros((len(clusters), L), dtype=bool)
        for t, c in enumerate(clusters):
            out[t] = self.pool.langs[self.members[c]].all(axis=0)
        return out

    def compatible(self, nodes: Sequence[int], clusters: Sequence[int]) -> BoolArray:
        """``[a, b]``: node ``nodes[a]`` speaks a working language of cluster ``clusters[b]``."""
        if not self.rules.require_language:
            return np.ones((len(nodes), len(clusters)), dtype=bool)
        wl = self.working_matrix(clusters).astype(np.int64)
        return np.asarray(self.pool.langs[list(nodes)].astype(np.int64) @ wl.T > 0)

    def place(self) -> None:
        """Place every unplaced city into the compatible cluster with room where it adds most.

        Greedy, best (city, cluster) pair first. Placing city ``r`` in cluster ``c`` changes
        only column ``c`` (its affinity sums, size and working languages) and retires row
        ``r``, so the gain matrix is computed once and patched one column per step, and
        each row keeps its best column: a step costs O(cities) plus a re-scan of the rows
        whose best was ``c``, not a new gain matrix. The picks are the ones a full
        recomputation makes (first row, then first column, among equal gains); at 100,000
        cities this is the difference between hours and seconds.
        """
        hi = self.rules.max_size
        rows = np.asarray(self.unplaced(), dtype=np.int64)
        cols = np.asarray([c for c in self.live() if self.size[c] < hi], dtype=np.int64)
        if not len(rows) or not len(cols):
            return
        cover = self.cw * self.pool.cov[rows]
        gain = self.S[np.ix_(rows, cols)] - self.gamma * self.size[cols][None, :] + cover[:, None]
        gain = np.where(self.compatible(rows.tolist(), cols.tolist()), gain, -np.inf)
        speaks = self.pool.langs[rows].astype(np.int64)
        every = np.arange(len(rows))
        best = gain.argmax(axis=1)
        best_gain = gain[every, best]
        alive = np.ones(len(rows), dtype=bool)
        while True:
            a = int(np.argmax(np.where(alive, best_gain, -np.inf)))
            if not alive[a] or best_gain[a] == -np.inf:
                return
            b = int(best[a])
            c = int(cols[b])
            self.add(int(rows[a]), c)
            alive[a] = False
            if self.size[c] >= hi:
                gain[:, b] = -np.inf
            else:
                column = self.S[rows, c] - self.gamma * self.size[c] + cover
                if self.rules.require_language:
                    shared = self.pool.langs[self.members[c]].all(axis=0).astype(np.int64)
                    column = np.where(speaks @ shared > 0, column, -np.inf)
                gain[:, b] = column
            stale = np.flatnonzero(alive & (best == b))
            if len(stale):
                best[stale] = gain[stale].argmax(axis=1)
                best_gain[stale] = gain[stale, best[stale]]
            new = gain[:, b]
            better = alive & (best != b) & ((new > best_gain) | ((new == best_gain) & (b < best)))
            best[better] = b
            best_gain[better] = new[better]

    def fix(self) -> None:
        """Mend clusters that break lead / mixed / country / network / size rules."""
        for _round in range(4 * max(1, len(self.members))):
            broken = [
                (c, v)
                for c in self.live()
                for v in sorted(self.f.violations(self.members[c]) - {"language"})
            ]
            if not broken:
                return
            progress = False
            for c, v in broken:
                if v not in self.f.violations(self.members[c]):
                    continue
                if self.fix_one(c, v):
                    progress = True
            if not progress:
                return

    def fixes(self, c: int, v: str, j: int) -> bool:
        m = self.members[c]
        f = self.f
        if v == "lead":
            return bool(f.lead[j])
        if v == "mixed":
            has_i = any(f.intl[i] for i in m)
            return bool(f.nat[j]) if has_i else bool(f.intl[j])
        if v == "country":
            return bool(f.country[j] != f.country[m[0]])
        if v == "network":
            common = -1
            for i in m:
                common &= f.netm[i]
            return common & f.netm[j] == 0
        if v == "size":
            return len(m) < self.rules.min_size
        return False

    def fix_one(self, c: int, v: str) -> bool:
        hi = self.rules.max_size
        m = list(self.members[c])
        before = self.f.violations(m)
        order = np.argsort(-self.S[:, c], kind="stable")
        cands: list[int] = []
        for j in order.tolist():
            if (
                self.active[j]
                and self.label[j] != c
                and self.fixes(c, v, j)
                and (self.label[j] == -1 or self.removable(j))
            ):
                cands.append(j)
                if len(cands) >= 40:
                    break
        if not cands:
            return False
        best: tuple[float, int, int | None] | None = None  # (delta, j, member swapped out)
        for j in cands:
            src = int(self.label[j])
            leave = 0.0 if src == -1 else self.gain_out(j)
            cover = self.cw * float(self.pool.cov[j]) if src == -1 else 0.0
            if len(m) < hi:
                after = self.f.violations([*m, j])
                if v not in after and after <= before:
                    d = self.gain_in(j, c) - leave + cover
                    if best is None or d > best[0]:
                        best = (d, j, None)
            for out in m:
                if self.locked_slot[out] is not None:
                    continue
                new_m = [i for i in m if i != out] + [j]
                after = self.f.violations(new_m)
                if v in after or not after <= before:
                    continue
                if src >= 0:
                    back = [i for i in self.members[src] if i != j] + [out]
                    if self.f.violations(back) - self.f.violations(self.members[src]):
                        continue
                d = (
                    self.gain_in(j, c)
                    - self.w(j, out)
                    - (float(self.S[out, c]) - self.gamma * (len(m) - 1))
                    - leave
                    + cover
                )
                if src >= 0:
                    d += (
                        float(self.S[out, src])
                        - self.w(out, j)
                        - self.gamma * (len(self.members[src]) - 1)
                    )
                else:
                    d -= self.cw * float(self.pool.cov[out])
                if best is None or d > best[0]:
                    best = (d, j, out)
        if best is None:
            return False
        _, j, swapped = best
        src = int(self.label[j])
        if src >= 0:
            self.remove(j)
        if swapped is not None:
            self.remove(swapped)
            if src >= 0:
                self.add(swapped, src)
        self.add(j, c)
        return True

    def local_search(self, passes: int = 12) -> None:
        """Single moves and pair swaps that raise the objective and keep clusters valid."""
        hi = self.rules.max_size
        for _ in range(passes):
            improved = False
            for i in self.rng.permutation(self.k).tolist():
                a = int(self.label[i])
                if a < 0 or self.locked_slot[i] is not None:
                    continue
                n_c = len(self.members)
                sizes = self.size[:n_c]
                gains = self.S[i, :n_c] - self.gamma * sizes - self.gain_out(i)
                gains[a] = -np.inf
                gains[sizes == 0] = -np.inf
                top = np.argsort(-gains, kind="stable")[:4]
                for b in top.tolist():
                    if not np.isfinite(gains[b]):
                        break
                    if sizes[b] < hi:
                        if (
                            gains[b] > _EPS
                            and self.speaks_with(i, self.members[b])
                            and self.removable(i)
                        ):
                            self.remove(i)
                            self.add(i, b)
                            improved = True
                            break
                    elif self.try_swap(i, a, b):
                        improved = True
                        break
            if not improved:
                return

    def try_swap(self, i: int, a: int, b: int) -> bool:
        ma, mb = self.members[a], self.members[b]
        base_i = float(self.S[i, b]) - float(self.S[i, a])
        best: tuple[float, int] | None = None
        for j in mb:
            if self.locked_slot[j] is not None:
                continue
            d = base_i + float(self.S[j, a]) - float(self.S[j, b]) - 2.0 * self.w(i, j)
            if d > _EPS and (best is None or d > best[0]):
                best = (d, j)
        if best is None:
            return False
        j = best[1]
        new_a = [x for x in ma if x != i] + [j]
        new_b = [x for x in mb if x != j] + [i]
        if self.f.violations(new_a) - self.f.violations(ma) or self.f.violations(
            new_b
        ) - self.f.violations(mb):
            return False
        self.remove(i)
        self.remove(j)
        self.add(i, b)
        self.add(j, a)
        return True

    def enforce_count(self) -> None:
        """Meet ``n_clusters`` exactly where asked: dissolve the weakest or grow more."""
        want = self.pool.n_clusters
        if want is None:
            return
        live = self.live()
        if len(live) > want:

            def strength(c: int) -> float:
                m = self.members[c]
                return pair_sum(self.pool.W, m) / max(1, len(m) * (len(m) - 1) / 2)

            spare = sorted(
                (c for c in live if self.slot[c] is None), key=lambda c: (strength(c), c)
            )
            for c in spare[: len(live) - want]:
                self.dissolve(c)
        elif len(live) < want:
            self.grow_new(want)
            # split the largest splittable clusters until the count is met
            while len(self.live()) < want:
                big = [
                    c
                    for c in self.live()
                    if self.slot[c] is None and len(self.members[c]) >= 2 * self.rules.min_size
                ]
                if not big:
                    break
                c = max(big, key=lambda c: (len(self.members[c]), -c))
                members = self.dissolve(c)
                half = self.split_in_two(members)
                for part in half:
                    c2 = self.new_cluster()
                    for i in part:
                        self.add(i, c2)

    def split_in_two(self, members: list[int]) -> list[list[int]]:
        g = np.asarray(members)
        sub = self.sub_matrix(g)
        a = int(np.argmin(sub.sum(axis=1)))
        b = int(np.argmin(sub[a] + np.where(np.arange(len(g)) == a, np.inf, 0.0)))
        left, right = [a], [b]
        half = len(g) // 2
        for t in np.argsort(-(sub[:, a] - sub[:, b])).tolist():
            if t in (a, b):
                continue
            (left if len(left) < half else right).append(t)
        return [[members[t] for t in left], [members[t] for t in right]]

    def finish(self) -> None:
        """Dissolve clusters that still break a rule (unless locked); re-place their members.

        One cluster at a time: first the smallest that breaks a rule other than mixing (a
        cluster that is also unmixed goes for that other rule: it must not hide behind the
        mix allowance), then, while the pool mixes fewer clusters than it could, the
        smallest unmixed one (see :meth:`mixed_excess`). After each, the members are
        re-placed and the rest mended, since they may mend another broken cluster. Each
        round dissolves a cluster and nothing here opens one, so this ends with no
        unlocked cluster broken.
        """
        for _ in range(len(self.live()) + 1):
            bad = self.broken_unlocked() or self.mixed_excess()
            if bad is None:
                return
            c, v = bad
            self.dissolved.append((v, len(self.members[c])))
            self.dissolve(c)
            self.place()
            self.fix()

    def broken_unlocked(self) -> tuple[int, str] | None:
        """The smallest unlocked cluster that breaks a rule other than mixing, and that rule."""
        worst: tuple[int, int, str] | None = None
        for c in self.live():
            if self.slot[c] is not None:
                continue
            other = sorted(self.f.violations(self.members[c]) - {"mixed"})
            if other and (worst is None or len(self.members[c]) < worst[0]):
                worst = (len(self.members[c]), c, other[0])
        return None if worst is None else (worst[1], worst[2])

    def mixed_excess(self) -> tuple[int, str] | None:
        """The smallest unlocked unmixed cluster, while the pool has more unmixed than allowed.

        With ``A`` the pool's mix allowance and ``n`` clusters, at least ``min(n, A)`` must be
        mixed. Dissolving an unmixed cluster lowers ``n`` and the unmixed count together, so
        while fewer than ``A`` are mixed every unmixed cluster is one too many: they go one
        at a time (the re-placed members may mix another) until the rule holds or only
        locked ones are left, and those are reported.
        """
        if self.pool.mix_allowance < 0:
            return None
        live = self.live()
        unmixed = [c for c in live if "mixed" in self.f.violations(self.members[c])]
        if len(unmixed) <= unmixed_allowed(self.pool, len(live)):
            return None
        spare = [c for c in unmixed if self.slot[c] is None]
        if not spare:
            return None
        return min(spare, key=lambda c: (len(self.members[c]), c)), "mixed"

    def run(self) -> list[RawCluster]:
        self.seed_clusters(self.communities())
        # locks Leiden did not keep whole (language ejection never touches locked cities)
        for lock in self.pool.locks:
            if any(self.label[i] == -1 for i in lock.members):
                c = self.new_cluster(lock.slot)
                for i in lock.members:
                    if self.label[i] != -1:
                        self.remove(i)
                    self.add(i, c)
        limit = self.pool.n_clusters
        self.grow_new(limit)
        self.enforce_count()
        self.place()
        self.fix()
        self.local_search()
        self.place()
        self.fix()
        self.finish()
        if self.pool.n_clusters is not None:
            # meeting the count may split or grow clusters that break a rule: mend them and
            # dissolve what stays broken (a missed count is reported; a broken cluster must
            # not come out)
            self.enforce_count()
            self.place()
            self.fix()
            self.finish()
        self.place()
        out = []
        for c in self.live():
            out.append(RawCluster(-1, tuple(sorted(self.members[c])), self.slot[c]))
        return out


def allocate(
    pools: Sequence[PoolData], cap: IntArray, strength: Sequence[FloatArray]
) -> list[BoolArray]:
    """Give each city's capacity to the pools it cares most about.

    Locked memberships come first, then pools ordered by the city's priority (``cov``),
    lead capability, strength and pool order. Returns one active mask per pool.
    """
    rem = cap.astype(np.int64).copy()
    active = [np.zeros(p.k, dtype=bool) for p in pools]
    for p, pool in enumerate(pools):
        for lock in pool.locks:
            for i in lock.members:
                if not active[p][i]:
                    active[p][i] = True
                    rem[pool.idx[i]] -= 1
    wants: list[tuple[float, int, float, int, int]] = []
    for p, pool in enumerate(pools):
        st = np.nan_to_num(strength[p], nan=0.0)
        for i in range(pool.k):
            if not active[p][i]:
                wants.append((-float(pool.cov[i]), -int(pool.lead_ok[i]), -float(st[i]), p, i))
    wants.sort()
    for _, _, _, p, i in wants:
        g = pools[p].idx[i]
        if rem[g] > 0:
            active[p][i] = True
            rem[g] -= 1
    return active


def solve_large(
    pools: Sequence[PoolData],
    rules: Rules,
    cap: IntArray,
    strength: Sequence[FloatArray],
    seed: int,
) -> LargeResult:
    """Leiden + repair on every pool; capacity is shared across pools (see module doc)."""
    active = allocate(pools, cap, strength)
    used = np.zeros(len(cap), dtype=np.int64)
    result: list[RawCluster] = []
    dissolved: list[tuple[int, str, int]] = []
    solvers = []
    for p, pool in enumerate(pools):
        solver = _PoolSolver(pool, rules, active[p], seed + 7919 * p)
        raw = solver.run()
        solvers.append(solver)
        for rc in raw:
            used[pool.idx[list(rc.members)]] += 1
        dissolved.extend((p, v, s) for v, s in solver.dissolved)
    # spare capacity: cities left out of one theme may still join another they prioritise
    for p, (pool, solver) in enumerate(zip(pools, solvers, strict=True)):
        spare = (cap[pool.idx] - used[pool.idx] > 0) & (solver.label == -1)
        if spare.any():
            before = solver.label.copy()
            solver.active = solver.active | spare
            solver.place()
            joined = (before == -1) & (solver.label >= 0)
            used[pool.idx[joined]] += 1
        for c in solver.live():
            result.append(RawCluster(p, tuple(sorted(solver.members[c])), solver.slot[c]))
    return LargeResult(tuple(result), tuple(dissolved))
