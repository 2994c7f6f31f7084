"""The working state of one pool in the Leiden + repair solver (see ``large``).

Seeding (``seeding``) and repair (``repair``) both work on this state; it holds the
bookkeeping they share (who is where, affinity sums per cluster) so each step only
decides *what* to move.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from matching.clusters.rules import PoolData, PoolFacts, Rules
from matching.kernel.arrays import BoolArray, FloatArray, IntArray


class PoolState:
    """The working state of one pool while it is solved, and the moves that keep it true.

    ``label[i]`` is city ``i``'s cluster (-1: unplaced), ``members[c]`` cluster ``c``'s
    cities and ``S[i, c]`` the affinity sum of ``i`` to cluster ``c``'s members: every
    gain the seeding and repair steps compare reads ``S``, and :meth:`add` / :meth:`remove`
    patch it one column at a time, so no step recomputes it.
    """

    def __init__(self, pool: PoolData, rules: Rules, active: BoolArray, seed: int) -> None:
        self.pool = pool
        self.rules = rules
        self.f = PoolFacts(pool, rules)
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
        # as many clusters as the active cities can make (more: the columns double)
        cap_clusters = int(self.active.sum()) // max(rules.min_size, 1) + len(pool.locks) + 2
        self.S = np.zeros((k, cap_clusters), dtype=np.float64)
        self.size = np.zeros(cap_clusters, dtype=np.int64)
        self.dissolved: list[tuple[str, int]] = []
        # each cluster's version, bumped by every add and remove: what is worked out from a
        # cluster's members (removable, a failed mend) is kept while its version stands
        self.version = np.zeros(cap_clusters, dtype=np.int64)
        self._removable: dict[int, tuple[int, int, bool]] = {}
        # (cluster, rule) -> a failed mend: the cluster's version, the cities its search
        # read, their labels, their clusters' versions and whether they were active
        self._failed: dict[tuple[int, str], tuple[int, IntArray, IntArray, IntArray, BoolArray]]
        self._failed = {}
        self._lang_bits: IntArray | None = None  # ``f.lang`` as an array, once needed

    # -- the sums, set aside between phases ----------------------------------------

    def release(self) -> None:
        """Drop ``S`` (the largest thing a pool holds) while other pools are solved;
        :meth:`restore` rebuilds it from the members."""
        self.S = np.zeros((self.k, 0), dtype=np.float64)

    def restore(self) -> None:
        """``S`` again, summed afresh from each cluster's members."""
        n_c = len(self.members)
        cols = self.size.shape[0]
        placed = np.flatnonzero(self.label >= 0)
        M = sp.csr_matrix(
            (np.ones(len(placed)), (placed, self.label[placed])), shape=(self.k, cols)
        )
        W = self.Ws if self.Ws is not None else self.Wd
        assert W is not None
        S = W @ M
        self.S = np.asarray(S.toarray() if sp.issparse(S) else S, dtype=np.float64)
        assert self.S.shape == (self.k, cols) and n_c <= cols

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
            self.version = np.concatenate([self.version, np.zeros_like(self.version)])
        self.members.append([])
        self.slot.append(slot)
        return c

    def add(self, i: int, c: int) -> None:
        assert self.label[i] == -1
        self.members[c].append(i)
        self.size[c] += 1
        self.label[i] = c
        self.version[c] += 1
        rows, vals = self.col(i)
        self.S[rows, c] += vals

    def remove(self, i: int) -> None:
        c = int(self.label[i])
        assert c >= 0
        self.members[c].remove(i)
        self.size[c] -= 1
        self.label[i] = -1
        self.version[c] += 1
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
        """Taking ``i`` out keeps its cluster valid (and ``i`` is not locked).

        Kept while ``i``'s cluster stands: repair asks it of the same cities for cluster
        after cluster."""
        if self.locked_slot[i] is not None:
            return False
        c = int(self.label[i])
        known = self._removable.get(i)
        if known is not None and known[0] == c and known[1] == self.version[c]:
            return known[2]
        rest = [j for j in self.members[c] if j != i]
        ok = not (self.f.violations(rest) - self.f.violations(self.members[c]) - {"language"})
        self._removable[i] = (c, int(self.version[c]), ok)
        return ok

    def speaks_with(self, i: int, members: Sequence[int]) -> bool:
        if not self.rules.require_language or not members:
            return True
        return (self.f.working(members) & self.f.lang[i]) != 0

    def sub_matrix(self, g: IntArray) -> FloatArray:
        if self.Wd is not None:
            return np.asarray(self.Wd[np.ix_(g, g)])
        assert self.Ws is not None
        return np.asarray(self.Ws[g][:, g].toarray())

    def add_column(self, acc: FloatArray, where: IntArray, i: int) -> None:
        """``acc[where[j]] += W[j, i]`` for every ``j`` that ``where`` maps."""
        rows, vals = self.col(i)
        if isinstance(rows, slice):
            mask = where >= 0
            acc[where[mask]] += vals[mask]
        else:
            pos = where[rows]
            keep = pos >= 0
            acc[pos[keep]] += vals[keep]
