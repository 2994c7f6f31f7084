"""The fair objective for Leiden + repair: raise the worst-off city, never lower it.

The plain proposal serves as many willing cities as it can, then makes clusters as
cohesive as it can in total; one city may end up with cluster-mates it has little in
common with so that the others gain. :func:`raise_worst_off` starts from that proposal
and repeatedly tries the moves that could lift the member whose benefit
(``rules.member_benefits``: its coverage plus its mean affinity to its cluster-mates) is
the lowest: move it to another cluster, swap it with a member of another cluster, move a
cluster-mate it has little affinity with out, or take a city it likes in. A move is made
only if every cluster it touches keeps every rule it kept (``PoolFacts.violations``),
nobody locked moves, and the worst-off benefit over the whole proposal rises. Moves
keep every membership (a city leaves one cluster of a pool only for another of the
same pool), so coverage and capacity are unchanged; the total may fall, and that is the
price of fairness the proposal reports. The exact counterpart is ``exact.solve_fair``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from matching.clusters.rules import PoolCluster, PoolData, PoolFacts, Rules, member_benefits
from matching.kernel.arrays import FloatArray

CANDIDATE_CLUSTERS = 6
"""Clusters tried per move: those the moving city has most affinity with."""
RISE = 1e-12
"""The smallest rise of the worst-off benefit that counts."""


class _Pool:
    """One pool's clusters while the worst-off is raised: members, labels, benefits."""

    def __init__(self, pool: PoolData, rules: Rules, clusters: list[PoolCluster]) -> None:
        self.pool = pool
        self.facts = PoolFacts(pool, rules)
        self.max_size = rules.max_size
        self.members = [list(c.members) for c in clusters]
        self.slots = [c.slot for c in clusters]
        self.label = np.full(pool.k, -1, dtype=np.int64)
        for c, m in enumerate(self.members):
            self.label[m] = c
        self.locked = {i for lock in pool.locks for i in lock.members}
        self.low = np.asarray([float(member_benefits(pool, m).min()) for m in self.members])

    def row(self, i: int) -> FloatArray:
        W = self.pool.W
        if isinstance(W, np.ndarray):
            return np.asarray(W[i], dtype=np.float64)
        return np.asarray(sp.csr_matrix(W)[i].toarray()).ravel()

    def liked(self, i: int, skip: int) -> list[int]:
        """The clusters (other than ``skip``) ``i`` has most mean affinity with."""
        placed = self.label >= 0
        n_c = len(self.members)
        sums = np.bincount(self.label[placed], weights=self.row(i)[placed], minlength=n_c)
        sizes = np.asarray([max(len(m), 1) for m in self.members], dtype=np.float64)
        means = sums / sizes
        means[skip] = -np.inf
        order = np.argsort(-means, kind="stable")[:CANDIDATE_CLUSTERS]
        return [int(b) for b in order if np.isfinite(means[b]) and self.members[b]]

    def valid(self, before: Sequence[int], after: Sequence[int]) -> bool:
        """``after`` breaks no rule ``before`` kept."""
        return not (self.facts.violations(after) - self.facts.violations(before))

    def low_of(self, members: Sequence[int]) -> float:
        return float(member_benefits(self.pool, members).min()) if members else np.inf

    def moves(self, i: int) -> list[tuple[int, list[int], int, list[int]]]:
        """Candidate moves around ``i`` (in cluster ``a``): (a, new members of a, b, new
        members of b)."""
        a = int(self.label[i])
        ma = self.members[a]
        out: list[tuple[int, list[int], int, list[int]]] = []
        targets = self.liked(i, a)
        free_i = i not in self.locked
        for b in targets:
            mb = self.members[b]
            if free_i and len(mb) < self.max_size:
                out.append((a, [x for x in ma if x != i], b, [*mb, i]))
            for j in mb:
                if j in self.locked:
                    continue
                if free_i:
                    out.append(
                        (a, [x for x in ma if x != i] + [j], b, [x for x in mb if x != j] + [i])
                    )
                if len(ma) < self.max_size:
                    out.append((a, [*ma, j], b, [x for x in mb if x != j]))
        W_i = self.row(i)
        for x in sorted((x for x in ma if x != i and x not in self.locked), key=lambda x: W_i[x])[
            :2
        ]:
            for b in self.liked(x, a)[:3]:
                mb = self.members[b]
                if len(mb) < self.max_size:
                    out.append((a, [y for y in ma if y != x], b, [*mb, x]))
        return out

    def apply(self, a: int, new_a: list[int], b: int, new_b: list[int]) -> None:
        self.members[a], self.members[b] = sorted(new_a), sorted(new_b)
        self.label[new_a] = a
        self.label[new_b] = b
        self.low[a] = self.low_of(new_a)
        self.low[b] = self.low_of(new_b)


def raise_worst_off(
    pools: Sequence[PoolData],
    rules: Rules,
    clusters: Sequence[PoolCluster],
    max_steps: int | None = None,
) -> tuple[PoolCluster, ...]:
    """``clusters`` with the worst-off benefit raised by moves that keep every rule (see
    the module doc); the worst-off benefit of the result is never below the input's."""
    state: dict[int, _Pool] = {}
    for p in sorted({c.pool for c in clusters}):
        state[p] = _Pool(pools[p], rules, [c for c in clusters if c.pool == p])
    if not state:
        return tuple(clusters)
    steps = max_steps if max_steps is not None else 4 * len(clusters) + 50
    for _ in range(steps):
        # the worst cluster over every pool, and the runner-up outside it
        lows = [(float(s.low[c]), p, c) for p, s in state.items() for c in range(len(s.low))]
        lows.sort()
        worst, p, a = lows[0]
        s = state[p]
        ma = s.members[a]
        i = ma[int(np.argmin(member_benefits(s.pool, ma)))]
        best: tuple[float, tuple[int, list[int], int, list[int]]] | None = None
        for move in s.moves(i):
            a2, new_a, b, new_b = move
            if not (s.valid(s.members[a2], new_a) and s.valid(s.members[b], new_b)):
                continue
            elsewhere = next((v for v, q, c in lows if not (q == p and c in (a2, b))), np.inf)
            new_low = min(elsewhere, s.low_of(new_a), s.low_of(new_b))
            if new_low > worst + RISE and (best is None or new_low > best[0]):
                best = (new_low, move)
        if best is None:
            break
        s.apply(*best[1])
    out: list[PoolCluster] = []
    for p, s in state.items():
        for m, slot in zip(s.members, s.slots, strict=True):
            if m:
                out.append(PoolCluster(p, tuple(sorted(m)), slot))
    return tuple(out)
