"""Leiden + repair: cluster proposals for instances of any size.

``solve_large`` first gives each city's capacity to the pools it cares most about
(:func:`allocate`: locked memberships first, then its highest priorities), then solves
each pool on its own with a :class:`PoolSolver`:

    1. Leiden communities on the pool's affinity graph, cut to one language and the
       size bounds, new clusters grown around lead-capable seeds (``seeding``);
    2. every city placed where it adds most, broken clusters mended, local search,
       what is still broken dissolved and re-placed (``repair``);

and finally lets cities left out of one theme, with capacity to spare, join another they
prioritise. The result is judged by the same rules and objective as the exact solver
(``rules``). Randomness: igraph's generator seeded per call (``seeded_igraph``) and
numpy's ``default_rng(seed)`` ordering the local search, so the same seed gives the
same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from matching.clusters.repair import Repair
from matching.clusters.rules import PoolCluster, PoolData, Rules
from matching.clusters.seeding import Seeding
from matching.kernel.arrays import BoolArray, FloatArray, IntArray

KEEP_SUMS = 20_000_000
"""A solved pool whose cities x clusters sums (``PoolState.S``) hold more entries than
this (160 MB) sets them aside until the spare-capacity phase rebuilds them, so that at
100,000 cities the pools' sums are not all held at once (12 thematic pools of ~30,000
cities: about 6 GB together). Smaller pools keep theirs: the same picks as ever."""


@dataclass(frozen=True, slots=True)
class LargeResult:
    clusters: tuple[PoolCluster, ...]
    dissolved: tuple[tuple[int, str, int], ...]  # (pool, violation, size) per dissolved cluster


class PoolSolver(Seeding, Repair):
    """Leiden + repair for one pool; lives only inside :func:`solve_large` (and tests)."""

    def run(self) -> list[PoolCluster]:
        """The pool's clusters, in the order of the module doc's steps (their ``pool`` is
        -1 here: :func:`solve_large` files them)."""
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
            out.append(PoolCluster(-1, tuple(sorted(self.members[c])), self.slot[c]))
        return out


def fit(pool: PoolData, width: int) -> FloatArray:
    """How well each candidate fits the pool: the sum, over its ``width`` strongest pairs
    in the pool, of the affinity times the partner's ``cov`` (its priority for the theme).

    A city that ranks two themes alike belongs where its closest cities care most: a
    group sharing a signature of themes agrees on the first one more often than any
    single member states it (measured: on planted networks with priority noise this
    tie-break sends a third fewer cities to the wrong pool).
    """
    W = pool.W
    if pool.k < 2:
        return np.zeros(pool.k)
    width = min(width, pool.k - 1)
    if isinstance(W, np.ndarray):
        weighted = W * pool.cov[None, :]
        return np.asarray(-np.partition(-weighted, width - 1, axis=1)[:, :width].sum(axis=1))
    csr = sp.csr_matrix(W)
    out = np.zeros(pool.k)
    for i in range(pool.k):
        lo, hi = csr.indptr[i], csr.indptr[i + 1]
        vals = csr.data[lo:hi] * pool.cov[csr.indices[lo:hi]]
        if len(vals) > width:
            vals = np.partition(vals, len(vals) - width)[len(vals) - width :]
        out[i] = float(vals.sum())
    return out


def allocate(
    pools: Sequence[PoolData], cap: IntArray, strength: Sequence[FloatArray], width: int
) -> list[BoolArray]:
    """Give each city's capacity to the pools it cares most about.

    Locked memberships come first, then pools ordered by the city's priority (``cov``),
    its :func:`fit` with the pool over ``width`` pairs, lead capability, strength and
    pool order. Returns one active mask per pool.
    """
    rem = cap.astype(np.int64).copy()
    active = [np.zeros(p.k, dtype=bool) for p in pools]
    for p, pool in enumerate(pools):
        for lock in pool.locks:
            for i in lock.members:
                if not active[p][i]:
                    active[p][i] = True
                    rem[pool.idx[i]] -= 1
    wants: list[tuple[float, float, int, float, int, int]] = []
    for p, pool in enumerate(pools):
        st = np.nan_to_num(strength[p], nan=0.0)
        fits = fit(pool, width)
        for i in range(pool.k):
            if not active[p][i]:
                wants.append(
                    (
                        -float(pool.cov[i]),
                        -float(fits[i]),
                        -int(pool.lead_ok[i]),
                        -float(st[i]),
                        p,
                        i,
                    )
                )
    wants.sort()
    for *_, p, i in wants:
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
    active = allocate(pools, cap, strength, rules.max_size - 1)
    used = np.zeros(len(cap), dtype=np.int64)
    result: list[PoolCluster] = []
    dissolved: list[tuple[int, str, int]] = []
    solvers = []
    for p, pool in enumerate(pools):
        solver = PoolSolver(pool, rules, active[p], seed + 7919 * p)
        raw = solver.run()
        if solver.S.size > KEEP_SUMS:
            solver.release()
        solvers.append(solver)
        for rc in raw:
            used[pool.idx[list(rc.members)]] += 1
        dissolved.extend((p, v, s) for v, s in solver.dissolved)
    # spare capacity: cities left out of one theme may still join another they prioritise
    for p, (pool, solver) in enumerate(zip(pools, solvers, strict=True)):
        spare = (cap[pool.idx] - used[pool.idx] > 0) & (solver.label == -1)
        if spare.any():
            released = solver.S.shape[1] == 0
            if released:
                solver.restore()
            before = solver.label.copy()
            solver.active = solver.active | spare
            solver.place()
            joined = (before == -1) & (solver.label >= 0)
            used[pool.idx[joined]] += 1
            if released:
                solver.release()
        for c in solver.live():
            result.append(PoolCluster(p, tuple(sorted(solver.members[c])), solver.slot[c]))
    return LargeResult(tuple(result), tuple(dissolved))
