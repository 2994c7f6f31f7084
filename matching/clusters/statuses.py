"""Every hard constraint over a whole proposal: satisfied, violated or relaxed, and why.

The proposal, a planner's edit and any outside grouping (``check_groups``) are all judged
here, by the pools' own rule checker, so the statuses a planner reads are the rules the
solvers kept. Invariant tests recompute them from the input arrays instead, so a bug
here cannot hide a bug in a solver.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

import numpy as np

from matching.clusters.model import ConstraintStatus
from matching.clusters.pools import PoolProblem
from matching.clusters.rules import PoolCluster, unmixed_allowed, violation_checker
from matching.kernel.arrays import IntArray
from matching.kernel.wording import plural


def constraint_statuses(
    problem: PoolProblem, raw: Sequence[PoolCluster]
) -> tuple[list[ConstraintStatus], list[set[str]]]:
    """The status of every hard constraint, and the rules each cluster of ``raw`` breaks."""
    params = problem.params
    checkers = {p: violation_checker(pool, problem.rules) for p, pool in enumerate(problem.pools)}
    per: list[set[str]] = [checkers[c.pool](c.members) for c in raw]
    n_c = len(raw)

    def simple(name: str, tag: str, relaxed_by: str | None = None) -> ConstraintStatus:
        bad = sum(tag in v for v in per)
        if relaxed_by is not None:
            return ConstraintStatus(name, "relaxed", n_c - bad, 0, bad, relaxed_by)
        return ConstraintStatus(
            name,
            "violated" if bad else "satisfied",
            n_c - bad,
            bad,
            0,
            f"{bad} cluster(s) break it" if bad else "",
        )

    def waived(name: str) -> ConstraintStatus:
        """A rule the data cannot support: checked for no cluster, so relaxed for all."""
        return ConstraintStatus(name, "relaxed", 0, 0, n_c, f"not applied: {problem.waived[name]}")

    count = _memberships(problem, raw)
    statuses = [
        simple("size_bounds", "size"),
        _capacity(problem, raw, count),
        waived("lead") if "lead" in problem.waived else simple("lead", "lead"),
        waived("common_language")
        if "common_language" in problem.waived
        else simple(
            "common_language",
            "language",
            None if params.require_common_language else "require_common_language is off",
        ),
        _mixed(problem, raw, per),
        simple(
            "multi_country",
            "country",
            "allow_single_country is on" if params.allow_single_country else None,
        ),
        simple(
            "multi_network",
            "network",
            "allow_single_network is on" if params.allow_single_network else None,
        ),
    ]
    if params.max_span_km is not None:
        span = simple("max_span", "span")
        statuses.append(
            dataclasses.replace(
                span,
                detail=span.detail
                or f"no two members of a cluster more than {params.max_span_km:,.0f} km apart",
            )
        )
    if params.keep_apart:
        apart = simple("keep_apart", "apart")
        statuses.append(
            dataclasses.replace(
                apart,
                detail=apart.detail
                or f"no cluster holds a pair kept apart ({plural(len(params.keep_apart), 'pair')})",
            )
        )
    locked = _locks(problem, raw)
    if locked is not None:
        statuses.append(locked)
    excluded = {problem.inp.city_ids.index(c) for c in params.excluded}
    inside = sum(1 for i in excluded if count[i] > 0)
    statuses.append(
        ConstraintStatus(
            "excluded", "violated" if inside else "satisfied", len(excluded) - inside, inside
        )
    )
    if params.n_clusters is not None:
        statuses.append(_count(problem, raw, params.n_clusters))
    return statuses, per


def violations_total(problem: PoolProblem, raw: Sequence[PoolCluster]) -> int:
    """How many checks of every constraint fail."""
    return sum(s.violated for s in constraint_statuses(problem, raw)[0])


def _memberships(problem: PoolProblem, raw: Sequence[PoolCluster]) -> IntArray:
    """Clusters each city is in."""
    count = np.zeros(problem.inp.n, dtype=np.int64)
    for c in raw:
        count[problem.pools[c.pool].idx[list(c.members)]] += 1
    return count


def _capacity(
    problem: PoolProblem, raw: Sequence[PoolCluster], count: IntArray
) -> ConstraintStatus:
    """Memberships per city within capacity, and one cluster per theme."""
    per_pool: Counter[tuple[int, int]] = Counter()
    for c in raw:
        g = problem.pools[c.pool].idx[list(c.members)]
        per_pool.update((c.pool, int(x)) for x in g)
    members_any = count > 0
    over = int((count > problem.cap).sum()) + sum(1 for v in per_pool.values() if v > 1)
    return ConstraintStatus(
        "capacity",
        "violated" if over else "satisfied",
        int(members_any.sum()) - over,
        over,
        0,
        f"{over} cit(ies) over capacity" if over else "",
    )


def _mixed(
    problem: PoolProblem, raw: Sequence[PoolCluster], per: Sequence[set[str]]
) -> ConstraintStatus:
    """Mixed membership, with each pool's allowance: unmixed clusters a pool could not mix
    are *relaxed*, the ones beyond its allowance *violated*."""
    params = problem.params
    n_c = len(raw)
    if not params.mixed_membership:
        bad = sum(
            not (
                problem.pools[c.pool].intl[list(c.members)].any()
                and problem.pools[c.pool].national[list(c.members)].any()
            )
            for c in raw
        )
        return ConstraintStatus(
            "mixed_membership", "relaxed", n_c - bad, 0, bad, "mixed_membership is off"
        )
    unmixed_total, excess_total, relaxed_notes = 0, 0, []
    for p, pool in enumerate(problem.pools):
        mine = [k for k, c in enumerate(raw) if c.pool == p]
        unmixed = sum("mixed" in per[k] for k in mine)
        if pool.mix_allowance < 0:
            unmixed_here = sum(
                not (
                    pool.intl[list(raw[k].members)].any()
                    and pool.national[list(raw[k].members)].any()
                )
                for k in mine
            )
            if unmixed_here:
                unmixed_total += unmixed_here
                relaxed_notes.append(problem.mixed_waived.get(p, f"the {pool.key} pool cannot mix"))
            continue
        allowed = unmixed_allowed(pool, len(mine))
        excess = max(0, unmixed - allowed)
        excess_total += excess
        if unmixed - excess:
            unmixed_total += unmixed - excess
            scarce = (
                "national-network" if pool.national.sum() <= pool.intl.sum() else "international"
            )
            relaxed_notes.append(
                f"the {pool.key} pool has only {pool.mix_allowance} {scarce} cities"
            )
    if excess_total:
        return ConstraintStatus(
            "mixed_membership",
            "violated",
            n_c - excess_total - unmixed_total,
            excess_total,
            unmixed_total,
            f"{excess_total} cluster(s) unmixed although the pool could mix them",
        )
    if unmixed_total:
        return ConstraintStatus(
            "mixed_membership",
            "relaxed",
            n_c - unmixed_total,
            0,
            unmixed_total,
            "; ".join(sorted(set(relaxed_notes))),
        )
    return ConstraintStatus("mixed_membership", "satisfied", n_c, 0)


def _locks(problem: PoolProblem, raw: Sequence[PoolCluster]) -> ConstraintStatus | None:
    """Locked groups together, in a cluster of their slot's pool (None: no locks)."""
    ok_locks, bad_locks = 0, 0
    for p, pool in enumerate(problem.pools):
        for lock in pool.locks:
            hit = [c for c in raw if c.pool == p and set(lock.members) <= set(c.members)]
            if hit:
                ok_locks += 1
            else:
                bad_locks += 1
    if not (ok_locks or bad_locks):
        return None
    return ConstraintStatus(
        "locked",
        "violated" if bad_locks else "satisfied",
        ok_locks,
        bad_locks,
        0,
        f"{bad_locks} locked group(s) split" if bad_locks else "",
    )


def _count(problem: PoolProblem, raw: Sequence[PoolCluster], n_clusters: int) -> ConstraintStatus:
    """Exactly ``n_clusters`` clusters in every pool."""
    wrong = sum(1 for p in range(len(problem.pools)) if sum(c.pool == p for c in raw) != n_clusters)
    return ConstraintStatus(
        "n_clusters",
        "violated" if wrong else "satisfied",
        len(problem.pools) - wrong,
        wrong,
        0,
        f"{wrong} pool(s) without exactly {n_clusters} clusters" if wrong else "",
    )
