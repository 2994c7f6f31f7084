"""The rules and the objective both solvers share, on pools of plain arrays.

The exact solver (``exact``) and Leiden + repair (``large``) must judge a cluster the
same way, or "exact is never worse" would mean nothing; the report judges proposals and
a planner's edits with the same code too. So the hard rules (:func:`cluster_violations`,
``VIOLATIONS``), the mixed-membership allowance (:func:`unmixed_allowed`) and the
objective (:func:`objective_terms`, with its resolution :func:`tune_gamma`) live here,
once, on :class:`PoolData`: one theme's candidates (or the geographic pool's) in local
indices ``0..k-1``, with no city ids or theme names.

Hard rules, per cluster
    * size: ``min_size <= |cluster| <= max_size``;
    * lead: a member can lead (``PoolData.lead_ok``);
    * language: one language every member speaks (when ``Rules.require_language``);
    * mixed: an international and a national-network member, where the pool requires it
      (``mix_allowance >= 0``); a pool with fewer cities of the scarcer kind than clusters
      may leave ``n_clusters - mix_allowance`` unmixed;
    * country / network: not all in one country / one national network unless allowed;
    * span: no two members farther apart than ``Rules.max_span_km`` (great-circle km), when
      the request sets one. Geographic requests get one by default (the API's and CLI's
      setting ``cluster_max_span_km``), so a "geographic" cluster is a region; thematic
      requests get none unless asked, because a theme is worth sharing across a continent.
      Both solvers see far pairs as forbidden (the exact model fixes them apart; Leiden's
      graph has no edge between them and every repair move is checked), so a city with
      no candidate near enough is left out, never forced into a far cluster;
    * apart: no pair the planner asked to keep apart (``PoolData.apart``). Both solvers
      treat such a pair as they treat a far one: the exact model fixes it apart, Leiden's
      graph has no edge between them, and every placement and repair move is checked.

Objective
    ``coverage_weight * sum(cov[i] for each membership) + sum over clusters of
    sum over member pairs (W[i, j] - gamma)``. ``cov`` is the city's priority for the
    theme / 5 (1 for geographic clusters), so placing a willing city always comes first
    (``coverage_weight`` is large enough to dominate any cohesion change one city can
    make); ``gamma`` is the pool's resolution: a pair counts as cohesive when its affinity
    is above it. Without ``gamma`` any non-negative affinity would favour merging every
    group up to ``max_size``.

Benefit and the fair objective (:func:`member_benefits`, :func:`worst_benefit`)
    What one placed city gets from one of its clusters: ``cov[i] + mean over its
    cluster-mates j of W[i, j]`` -- its priority for the theme / 5 (1 in a geographic
    cluster) plus its mean affinity to the others. The *worst-off benefit* of a proposal
    is the smallest over every membership. The fair objective keeps the plain optimum's
    coverage (the same willing cities served), then raises the worst-off benefit, then
    the total (``exact.solve_fair``, ``fair.raise_worst_off``).
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from matching.kernel.arrays import BoolArray, FloatArray, IntArray, Matrix
from matching.kernel.geometry import EARTH_RADIUS_KM

KNN = 24
"""Graphs above ``DENSE_LEIDEN_MAX`` nodes keep each node's ``KNN`` strongest edges."""
DENSE_LEIDEN_MAX = 400
EPS = 1e-9
"""The smallest gain that counts as an improvement, and the floor of ``gamma``."""

VIOLATIONS = ("size", "lead", "language", "mixed", "country", "network", "span", "apart")
NO_APART: Mapping[int, frozenset[int]] = types.MappingProxyType({})


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
    max_span_km: float | None = None

    @property
    def min_dot(self) -> float | None:
        """The smallest dot product of two members' unit vectors within ``max_span_km``
        (None: no span rule). Comparing dot products is the same test as comparing
        great-circle distances, and cheap enough for the repair's inner loops."""
        if self.max_span_km is None:
            return None
        return span_dot(self.max_span_km)


def span_dot(span_km: float) -> float:
    """``cos(span / R)``: two places are within ``span_km`` iff their unit vectors' dot
    product is at least this (a span beyond half the Earth's circumference allows all)."""
    angle = span_km / EARTH_RADIUS_KM
    return -1.0 - EPS if angle >= math.pi else math.cos(angle) - EPS


@dataclass(frozen=True, eq=False)
class PoolData:
    """One theme's (or the geographic) candidates as arrays, in local indices ``0..k-1``.

    ``theme`` is the theme's index (-1 for the geographic pool) and ``key`` its id (or
    ``GEO_KEY``). ``idx`` maps local to global city indices. ``W`` is the pool's affinity
    (dense or CSR, symmetric, zero diagonal). ``mix_allowance`` is -1 when mixed
    membership is not required, else ``min(#international, #national)`` candidates: at
    most that many clusters can be mixed, so up to ``n_clusters - mix_allowance`` may
    stay unmixed. ``xyz`` holds the candidates' places as unit vectors (``k x 3``), read
    by the span rule. ``apart`` maps a candidate to the candidates it must not share a
    cluster with (the planner's keep-apart pairs, both ways).
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
    xyz: FloatArray | None = None
    apart: Mapping[int, frozenset[int]] = field(default_factory=lambda: NO_APART)

    @property
    def k(self) -> int:
        return len(self.idx)

    def near(self, rules: Rules, i: int, others: IntArray | slice | None = None) -> BoolArray:
        """Which of ``others`` (default: every candidate) may share a cluster with ``i``:
        within the span of ``i`` and not kept apart from it (all True without either)."""
        rows = slice(None) if others is None else others
        limit = rules.min_dot
        if limit is None or self.xyz is None:
            ok = np.ones(self.k, dtype=bool)[rows]
        else:
            ok = np.asarray(self.xyz[rows] @ self.xyz[i] >= limit)
        away = self.apart.get(i)
        if away:
            ok = ok & ~np.isin(np.arange(self.k)[rows], list(away))
        return ok


@dataclass(frozen=True, slots=True)
class PoolCluster:
    """A solver's cluster: the pool it belongs to, sorted local members, its lock slot."""

    pool: int
    members: tuple[int, ...]
    slot: str | None = None


# --------------------------------------------------------------------------- constraints


def _bitmasks(rows: BoolArray) -> list[int]:
    """Each row of a boolean matrix as a Python int (bit ``b`` set when ``row[b]``)."""
    width = rows.shape[1]
    if width <= 62:
        weights = np.left_shift(np.int64(1), np.arange(width, dtype=np.int64))
        return [int(x) for x in (rows.astype(np.int64) * weights).sum(axis=1).tolist()]
    return [sum(1 << int(b) for b in np.flatnonzero(row)) for row in rows]


class PoolFacts:
    """Per-city facts of one pool as Python ints, for fast checks on clusters of ~8.

    The repair loop checks rules again and again on clusters of a few cities, where a
    Python int or list is cheaper to read than a numpy call.
    """

    def __init__(self, pool: PoolData, rules: Rules) -> None:
        self.rules = rules
        self.lang = _bitmasks(pool.langs)
        self.netm = _bitmasks(pool.net)
        self.country = pool.country.tolist()
        self.intl = pool.intl.tolist()
        self.nat = pool.national.tolist()
        self.lead = pool.lead_ok.tolist()
        self.mixed_required = pool.mix_allowance >= 0
        self.min_dot = rules.min_dot if pool.xyz is not None else None
        self.xyz = pool.xyz.tolist() if self.min_dot is not None and pool.xyz is not None else []
        self.apart = pool.apart

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
        if self.min_dot is not None and not self.within_span(members):
            out.add("span")
        if self.apart and not self.none_apart(members):
            out.add("apart")
        return out

    def none_apart(self, members: Sequence[int]) -> bool:
        """No two of ``members`` are kept apart."""
        inside = set(members)
        return not any(self.apart.get(i, frozenset()) & inside for i in members)

    def within_span(self, members: Sequence[int]) -> bool:
        """No two of ``members`` farther apart than the span (pure Python: clusters are small)."""
        limit = self.min_dot
        if limit is None:
            return True
        pts = [self.xyz[i] for i in members]
        for a in range(len(pts)):
            xa, ya, za = pts[a]
            for b in range(a + 1, len(pts)):
                xb, yb, zb = pts[b]
                if xa * xb + ya * yb + za * zb < limit:
                    return False
        return True

    def may_join(self, i: int, members: Sequence[int]) -> bool:
        """``i`` is within the span of every one of ``members`` and kept apart from none."""
        away = self.apart.get(i)
        if away and not away.isdisjoint(members):
            return False
        limit = self.min_dot
        if limit is None:
            return True
        x, y, z = self.xyz[i]
        for j in members:
            xj, yj, zj = self.xyz[j]
            if x * xj + y * yj + z * zj < limit:
                return False
        return True

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
    return PoolFacts(pool, rules).violations(members)


def violation_checker(pool: PoolData, rules: Rules) -> Callable[[Sequence[int]], set[str]]:
    """``cluster_violations`` for one pool, with the pool's facts prepared once."""
    return PoolFacts(pool, rules).violations


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
    pools: Sequence[PoolData], rules: Rules, clusters: Sequence[PoolCluster]
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


def objective(pools: Sequence[PoolData], rules: Rules, clusters: Sequence[PoolCluster]) -> float:
    """The objective of a proposal: ``coverage_weight * coverage + cohesion``."""
    coverage, cohesion = objective_terms(pools, rules, clusters)
    return rules.coverage_weight * coverage + cohesion


def member_benefits(pool: PoolData, members: Sequence[int]) -> FloatArray:
    """Each member's benefit from this cluster: ``cov[i]`` plus its mean affinity to the
    other members (see the module doc), in the order of ``members``."""
    m = np.asarray(members, dtype=np.int64)
    if len(m) < 2:
        return np.asarray(pool.cov[m], dtype=np.float64)
    W = pool.W
    block = W[np.ix_(m, m)] if isinstance(W, np.ndarray) else sp.csr_matrix(W)[m][:, m].toarray()
    block = np.asarray(block, dtype=np.float64)
    np.fill_diagonal(block, 0.0)
    return np.asarray(pool.cov[m] + block.sum(axis=1) / (len(m) - 1))


def worst_benefit(pools: Sequence[PoolData], clusters: Sequence[PoolCluster]) -> float | None:
    """The smallest benefit any placed city gets from any of its clusters (None: nobody
    is placed)."""
    worst: float | None = None
    for c in clusters:
        low = float(member_benefits(pools[c.pool], c.members).min())
        worst = low if worst is None else min(worst, low)
    return worst


# --------------------------------------------------------------------------- resolution


def positive_edges(W: Matrix, knn: int | None) -> tuple[IntArray, IntArray, FloatArray]:
    """Upper-triangle edges of ``W`` (positive weights), optionally the union of kNN lists.

    Both Leiden's graph and :func:`tune_gamma`'s ranking of pairs read these, so the
    resolution is set on the very edges Leiden sees.
    """
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


def knn_for(n: int) -> int | None:
    """How many neighbours a node of an ``n``-node pool graph keeps (None: all of them)."""
    return KNN if n > DENSE_LEIDEN_MAX else None


def tune_gamma(W: Matrix, min_size: int, max_size: int) -> float:
    """The CPM resolution: the affinity above which a pair counts as a good pair.

    A partition into groups of the target size ``(min_size + max_size) / 2`` has about
    ``k * (target - 1) / 2`` pairs inside groups, so ``gamma`` is the affinity of the
    pool's pair ranked just there: each city then has, on average, ``target - 1`` pairs
    above it. Deterministic, and cheap (one partial sort).
    """
    n = W.shape[0]
    if n < 2:
        return EPS
    _, _, w = positive_edges(W, knn_for(n))
    w = w[w > 0]
    if len(w) == 0:
        return EPS
    target = (min_size + max_size) / 2.0
    m = round(n * (target - 1) / 2.0)
    m = min(max(m, 1), len(w))
    kth = float(np.partition(w, len(w) - m)[len(w) - m])
    return max(kth, EPS)
