"""Forming clusters in one pool: Leiden communities, then cut to the rules' shape.

The first steps of the large solver (``large``): igraph's Leiden (CPM, resolution
``gamma``, seeded) finds groups of cities with more good pairs inside than the
resolution; locked groups are contracted into one weighted node so Leiden never
separates them, and graphs above ``DENSE_LEIDEN_MAX`` nodes are sparsified to each
node's strongest ``KNN`` neighbours first. Each community then keeps the language most
of its members speak (one every locked member speaks) and the part within the span
(where the request sets one), communities above ``max_size``
are split around far-apart seeds and those below ``min_size`` (without a lock) go back
to the pool, where new clusters are grown around lead-capable seeds. ``n_clusters`` is
met here too, by dissolving the weakest clusters or growing and splitting more.

igraph's generator is seeded through ``matching.kernel.randomness.seeded_igraph`` (one
lock for the process), so the same seed gives the same communities under load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import igraph as ig
import numpy as np
import scipy.sparse as sp

from matching.clusters.pool_state import PoolState
from matching.clusters.rules import knn_for, pair_sum, positive_edges
from matching.kernel.arrays import FloatArray, IntArray, Matrix
from matching.kernel.randomness import seeded_igraph


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
    with seeded_igraph(seed):
        part = g.community_leiden(
            objective_function="CPM",
            weights=weights.tolist(),
            resolution=gamma,
            n_iterations=-1,
            node_weights=list(node_weights) if node_weights is not None else None,
        )
    return np.asarray(part.membership, dtype=np.int64)


class Seeding(PoolState):
    """The steps that form clusters: Leiden, seeding, splitting, growing, the count."""

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
        r, c, w = positive_edges(U, knn_for(u))
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
            rest = self.one_side(self.one_region(self.one_language(rest)))
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

    def one_region(self, group: list[int]) -> list[int]:
        """The part of ``group`` within the span: around its locked members (which are
        within it of one another, ``pools`` checks), else around the member with most others
        near; then the member with most far pairs goes until none is left. The rest go
        back to the pool."""
        limit = self.rules.min_dot
        if limit is None or self.pool.xyz is None or self.f.within_span(group):
            return group
        xyz = self.pool.xyz[np.asarray(group)]
        near = xyz @ xyz.T >= limit
        locked = [t for t, i in enumerate(group) if self.locked_slot[i] is not None]
        keep = near[locked].all(axis=0) if locked else near[int(np.argmax(near.sum(axis=1)))]
        keep = keep.copy()
        while True:
            kept = np.flatnonzero(keep)
            far = (~near[np.ix_(kept, kept)]).sum(axis=1)
            far[np.isin(kept, locked)] = -1
            if far.max() <= 0:
                break
            keep[kept[int(np.argmax(far))]] = False
        return [group[t] for t in np.flatnonzero(keep)]

    def one_side(self, group: list[int]) -> list[int]:
        """``group`` without kept-apart pairs: while one is inside, the unlocked member in
        most of them goes back to the pool (locked members are never kept apart from one
        another: ``pools`` refuses that)."""
        if not self.pool.apart:
            return group
        keep = list(group)
        while True:
            inside = set(keep)
            clash = {i: len(self.pool.apart.get(i, frozenset()) & inside) for i in keep}
            free = [i for i in keep if clash[i] and self.locked_slot[i] is None]
            if not free:
                return keep
            keep.remove(max(free, key=lambda i: (clash[i], -i)))

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
            self.add_column(gain, where, seed)
            wl = self.pool.langs[seed].copy()
            free[where[seed]] = False
            reach = self.pool.near(self.rules, seed, arr)
            while len(group) < hi:
                ok = free & reach
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
                reach &= self.pool.near(self.rules, i, arr)
                wl &= self.pool.langs[i]
                self.add_column(gain, where, i)
            if len(group) < lo:
                continue
            c = self.new_cluster()
            for i in group:
                self.add(i, c)

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
