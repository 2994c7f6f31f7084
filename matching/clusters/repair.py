"""Mending clusters in one pool until every unlocked cluster keeps every rule.

The later steps of the large solver (``large``), on the state seeding left: every
unplaced city joins the compatible cluster with room where it adds most (:meth:`place`);
clusters that break a rule (no lead, not mixed, one country, one network, a locked
cluster too small) are mended by adding, swapping or borrowing the city that fixes it
at the best objective change (:meth:`fix`); local search moves and swaps cities while
that raises the objective and keeps every cluster valid; and what is still broken is
dissolved, one cluster at a time, its members re-placed (:meth:`finish`). Only a locked
cluster can come out broken, and the report says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matching.clusters.pool_state import PoolState
from matching.clusters.rules import EPS, unmixed_allowed
from matching.kernel.arrays import BoolArray


class Repair(PoolState):
    """The steps that mend clusters: place, fix, local search, finish."""

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
                            gains[b] > EPS
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
            if d > EPS and (best is None or d > best[0]):
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
