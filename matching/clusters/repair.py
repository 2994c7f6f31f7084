"""Mending clusters in one pool until every unlocked cluster keeps every rule.

The later steps of the large solver (``large``), on the state seeding left: every
unplaced city joins the compatible cluster with room where it adds most (:meth:`place`);
clusters that break a rule (no lead, not mixed, one country, one network, a locked
cluster too small) are mended by adding, swapping or borrowing the city that fixes it
at the best objective change (:meth:`fix`); local search moves and swaps cities while
that raises the objective and keeps every cluster valid; and what is still broken is
dissolved, one cluster at a time, its members re-placed (:meth:`finish`). Only a locked
cluster can come out broken, and the report says so.

Dissolving one cluster at a time re-runs :meth:`fix` on every cluster still broken, so a
network where many clusters cannot be mended (cities whose only language no foreigner
speaks) would cost clusters x clusters full searches. A search that failed is therefore
remembered with what it read (:meth:`still_failing`), and moves the rules would turn
down for the common language are skipped before they are checked; both leave every
choice as it was, only faster (3,200 cities of that kind: 120 s -> 12 s).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matching.clusters.pool_state import PoolState
from matching.clusters.rules import EPS, unmixed_allowed
from matching.kernel.arrays import BoolArray, IntArray


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

    def within_span_of(self, nodes: IntArray, clusters: IntArray) -> BoolArray | None:
        """``[a, b]``: node ``nodes[a]`` is within the span of every member of cluster
        ``clusters[b]`` and kept apart from none (None without a span or keep-apart rule)."""
        limit = self.rules.min_dot
        span = limit is not None and self.pool.xyz is not None
        if not span and not self.pool.apart:
            return None
        xyz = self.pool.xyz
        out = np.ones((len(nodes), len(clusters)), dtype=bool)
        for b, c in enumerate(clusters.tolist()):
            m = self.members[c]
            if m and span and xyz is not None and limit is not None:
                out[:, b] = (xyz[nodes] @ xyz[m].T >= limit).all(axis=1)
            away = [x for i in m for x in self.pool.apart.get(i, ())]
            if away:
                out[:, b] &= ~np.isin(nodes, away)
        return out

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
        reach = self.within_span_of(rows, cols)
        ok = self.compatible(rows.tolist(), cols.tolist())
        gain = np.where(ok if reach is None else ok & reach, gain, -np.inf)
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
                if reach is not None:
                    reach[:, b] &= self.pool.near(self.rules, int(rows[a]), rows)
                    column = np.where(reach[:, b], column, -np.inf)
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
        """Mend clusters that break lead / mixed / country / network / size rules (a common
        language, the span or a kept-apart pair cannot be mended by adding a city:
        :meth:`finish` dissolves)."""
        for _round in range(4 * max(1, len(self.members))):
            broken = [
                (c, v)
                for c in self.live()
                for v in sorted(self.f.violations(self.members[c]) - {"language", "span", "apart"})
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

    def shared_without(self, m: Sequence[int], before: set[str]) -> list[int] | None:
        """For each member of ``m``, the languages (bitmask) the others share: a city must
        speak one of them to replace it without breaking the common language. None when
        the common language cannot break (not required, or broken already)."""
        if not self.rules.require_language or "language" in before:
            return None
        lang = self.f.lang
        out = []
        for leaving in m:
            shared = -1  # what the others share (everything, when there are none)
            for i in m:
                if i != leaving:
                    shared &= lang[i]
            out.append(shared)
        return out

    def newcomer_languages(self, m: Sequence[int], before: set[str]) -> int:
        """Languages (bitmask) a city must speak one of to join ``m`` or replace one of its
        members without breaking the common language; -1 when any city may."""
        shared = self.shared_without(m, before)
        if shared is None:
            return -1
        union = 0
        for bits in shared:
            union |= bits
        return union

    def anyone_could_mend(self, c: int, v: str, need: int) -> bool:
        """Whether any city outside ``c`` both fixes ``v`` and speaks a language of ``need``
        (a quick, vectorised necessary condition; True when it cannot be told quickly)."""
        langs = self.pool.langs
        if langs.shape[1] > 62 or v not in ("lead", "mixed", "country", "size"):
            return True
        if self._lang_bits is None:
            self._lang_bits = np.asarray(self.f.lang, dtype=np.int64)
        m = self.members[c]
        ok = self.active & (self.label != c) & ((self._lang_bits & need) != 0)
        if v == "lead":
            ok &= self.pool.lead_ok
        elif v == "mixed":
            ok &= self.pool.national if any(self.f.intl[i] for i in m) else self.pool.intl
        elif v == "country":
            ok &= self.pool.country != self.f.country[m[0]]
        elif len(m) >= self.rules.min_size:  # "size": only too small a cluster takes more
            return False
        return bool(ok.any())

    def fix_one(self, c: int, v: str) -> bool:
        """Mend rule ``v`` of cluster ``c`` by the best add or swap; False when none mends it."""
        m = list(self.members[c])
        if self.still_failing(c, v):
            return False
        before = self.f.violations(m)
        need = self.newcomer_languages(m, before)
        if need != -1 and not self.anyone_could_mend(c, v, need):
            return False
        order = np.argsort(-self.S[:, c], kind="stable")
        cands, scanned = self.mend_candidates(c, v, order, need)
        best = self.best_mend(c, v, m, before, cands)
        if best is None:
            self.remember_failure(c, v, order[:scanned])
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

    def mend_candidates(self, c: int, v: str, order: IntArray, need: int) -> tuple[list[int], int]:
        """The candidates to mend ``v`` of ``c`` (in ``order``), and how much of ``order``
        was read to find them.

        The 40 best cities that fix ``v`` (unplaced, or free to leave their cluster) are
        the candidates; those that speak no language of ``need`` would be turned down by
        :meth:`best_mend`, so they count without being tried (with many clusters that no
        foreigner can mend, trying them was nearly all the solve time).
        """
        cands: list[int] = []
        seen = 0
        read = 0
        for j in order.tolist():
            read += 1
            if (
                self.active[j]
                and self.label[j] != c
                and self.fixes(c, v, j)
                and (self.label[j] == -1 or self.removable(j))
            ):
                if need == -1 or need & self.f.lang[j]:
                    cands.append(j)
                seen += 1
                if seen >= 40:
                    break
        return cands, read

    def best_mend(
        self, c: int, v: str, m: Sequence[int], before: set[str], cands: Sequence[int]
    ) -> tuple[float, int, int | None] | None:
        """The best (objective change, city, member swapped out or None) that mends ``v``
        of cluster ``c`` (members ``m``) without breaking another rule."""
        hi = self.rules.max_size
        # a move that breaks the common language is turned down: skip it before the checks
        shared = self.shared_without(m, before)
        whole = self.f.working(m)
        lang = self.f.lang
        best: tuple[float, int, int | None] | None = None  # (delta, j, member swapped out)
        for j in cands:
            src = int(self.label[j])
            leave = 0.0 if src == -1 else self.gain_out(j)
            cover = self.cw * float(self.pool.cov[j]) if src == -1 else 0.0
            if len(m) < hi and (shared is None or whole & lang[j]):
                after = self.f.violations([*m, j])
                if v not in after and after <= before:
                    d = self.gain_in(j, c) - leave + cover
                    if best is None or d > best[0]:
                        best = (d, j, None)
            for k, out in enumerate(m):
                if self.locked_slot[out] is not None:
                    continue
                if shared is not None and not shared[k] & lang[j]:
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
        return best

    def still_failing(self, c: int, v: str) -> bool:
        """Whether mending ``v`` of ``c`` failed before and nothing it read has changed
        since: ``c`` itself, and the cities its search read (their place, their clusters)."""
        seen = self._failed.get((c, v))
        if seen is None or seen[0] != self.version[c]:
            return False
        _, cities, labels, versions, active = seen
        now = self.label[cities]
        return bool(
            np.array_equal(now, labels)
            and np.array_equal(self.active[cities], active)
            and np.array_equal(self.version[np.maximum(now, 0)] * (now >= 0), versions)
        )

    def remember_failure(self, c: int, v: str, cities: IntArray) -> None:
        labels = self.label[cities].copy()
        versions = self.version[np.maximum(labels, 0)] * (labels >= 0)
        self._failed[(c, v)] = (
            int(self.version[c]),
            cities,
            labels,
            versions,
            self.active[cities].copy(),
        )

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
                            and self.f.may_join(i, self.members[b])
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
