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

from matching.clusters.repair import Repair
from matching.clusters.rules import PoolCluster, PoolData, Rules
from matching.clusters.seeding import Seeding
from matching.kernel.arrays import BoolArray, FloatArray, IntArray


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
    result: list[PoolCluster] = []
    dissolved: list[tuple[int, str, int]] = []
    solvers = []
    for p, pool in enumerate(pools):
        solver = PoolSolver(pool, rules, active[p], seed + 7919 * p)
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
            result.append(PoolCluster(p, tuple(sorted(solver.members[c])), solver.slot[c]))
    return LargeResult(tuple(result), tuple(dissolved))
