"""Exact cluster proposals with OR-Tools CP-SAT, for small instances.

Clique-partitioning model, one for every pool (theme) at once so capacity is shared
exactly. Per pool, for candidates ``i < j``:

* ``a[i]``: ``i`` is in a cluster of this pool; ``y[i, j]``: ``i`` and ``j`` are together
  (``y <= a`` on both ends); transitivity ``y[i, j] + y[j, l] - y[i, l] <= 1`` for every
  triple (in all three rotations), so "together" is an equivalence: clusters;
* size: ``min_size * a[i] <= a[i] + sum_j y[i, j] <= max_size * a[i]``;
* lead: ``a[i] <= lead[i] + sum over lead-capable j of y[i, j]``;
* language: ``z[i, l]`` picks a language ``i`` speaks and shares with its whole cluster
  (``y[i, j] + z[i, l] <= 1`` when ``j`` does not speak ``l``), ``sum_l z[i, l] >= a[i]``;
* not one country: ``sum over j in another country of y[i, j] >= a[i]``; not one national
  network: for each network ``g`` of ``i``, ``sum over j outside g of y[i, j] >= a[i]``;
* span and keep-apart: ``y[i, j] == 0`` for a pair farther apart than ``max_span_km`` or
  kept apart by the planner;
* ``r[i]``: ``i`` is its cluster's smallest member (``r[i] <= a[i]``,
  ``r[i] <= 1 - y[j, i]`` for ``j < i``, ``r[i] >= a[i] - sum_{j < i} y[j, i]``), so
  ``sum r`` counts clusters: ``== n_clusters`` when given, ``>= 1`` for a pool the planner
  asked for; mixed: ``mx[i] <= r[i]`` marks a mixed cluster (an international and a
  national member) and ``sum mx >= min(sum r, mix_allowance)``;
* locks: members together, in a cluster apart from every other lock of the pool;
* capacity: ``sum over pools of a[i] <= cap[i]``;
* objective, integer-scaled: ``coverage_weight * cov[i] * a[i] + (W[i, j] - gamma) * y[i, j]``.

The fair objective (:func:`solve_fair`) is lexicographic on the same model: keep the
plain proposal's coverage, maximise the worst-off benefit ``t``, then fix it and
maximise the objective. A member's benefit ``cov[i] + sum_j W[i, j] y[i, j] / s_i``
(``s_i = sum_j y[i, j]``, its cluster-mates) is at least ``t`` exactly when
``sum_j (W[i, j] + cov[i] - t) * y[i, j] >= 0`` (multiply by ``s_i > 0``; an unplaced
city has every ``y`` at 0 and passes): linear for a fixed ``t``, so ``t`` is found by
bisection, each probe a feasibility model hinted with the best proposal so far.

There are no slot labels, so no symmetry to break. Search is deterministic: one worker, a
fixed seed and a *deterministic* time limit (the solver's own work counter), warm-started
with the heuristic's proposal; a wall-clock limit is a safety net only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ortools.sat.python import cp_model

from matching.clusters.rules import PoolCluster, PoolData, Rules, objective, worst_benefit
from matching.kernel.arrays import IntArray

EXACT_HARD_LIMIT = 80  # candidate memberships; the triangle constraints grow as k**3
FAIR_PROBES = 10
"""Bisection steps for the worst-off benefit (a range of ~1 to within ~0.001)."""
FAIR_TOLERANCE = 1e-3
BENEFIT_SCALE = 1e6
"""Integer scale of the benefit constraints: a rounded coefficient is off by 0.5e-6 at most."""

_STATUS = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "infeasible",
}


@dataclass(frozen=True, slots=True)
class ExactResult:
    """``status``: "optimal", "feasible", "infeasible" or "unknown" (no proposal in time)."""

    status: str
    clusters: tuple[PoolCluster, ...] | None


@dataclass
class _PoolVars:
    pool: int
    a: list[cp_model.IntVar]
    y: dict[tuple[int, int], cp_model.IntVar] = field(default_factory=dict)
    z: dict[tuple[int, int], cp_model.IntVar] = field(default_factory=dict)
    r: list[cp_model.IntVar] = field(default_factory=list)
    mx: list[cp_model.IntVar] = field(default_factory=list)

    def Y(self, i: int, j: int) -> cp_model.IntVar:
        """``y`` for the unordered pair ``{i, j}``."""
        return self.y[min(i, j), max(i, j)]


@dataclass
class _Model:
    model: cp_model.CpModel
    pools: list[_PoolVars]


@dataclass
class _Terms:
    """What the pools add to as the model is built: memberships per city, objective terms."""

    scale: float
    with_objective: bool
    memberships: dict[int, list[cp_model.IntVar]] = field(default_factory=dict)
    objective: list[tuple[int, cp_model.IntVar]] = field(default_factory=list)


def _model(
    pools: Sequence[PoolData],
    rules: Rules,
    cap: IntArray,
    nonempty: Sequence[bool],
    with_objective: bool,
) -> _Model:
    """The whole model; variables and constraints are added in a fixed order, which keeps
    CP-SAT's search, and so the proposal, the same from run to run."""
    model = cp_model.CpModel()
    spread = max(
        [max(float(np.abs(np.asarray(p.W) - p.gamma).max()), 1e-9) for p in pools if p.k > 1]
        or [1.0]
    )
    terms = _Terms(scale=1000.0 / spread, with_objective=with_objective)
    out = [_pool(model, p, pool, rules, nonempty[p], terms) for p, pool in enumerate(pools)]
    for g, vs in terms.memberships.items():
        if len(vs) > int(cap[g]):
            model.add(sum(vs) <= int(cap[g]))
    if with_objective:
        model.maximize(sum(w * v for w, v in terms.objective))
    return _Model(model, out)


def _pool(
    model: cp_model.CpModel, p: int, pool: PoolData, rules: Rules, nonempty: bool, terms: _Terms
) -> _PoolVars:
    """One pool's variables and constraints (see the module doc)."""
    k = pool.k
    a = [model.new_bool_var(f"a_{p}_{i}") for i in range(k)]
    pv = _PoolVars(p, a)
    y = pv.y
    limit = rules.min_dot
    far = (
        np.asarray(pool.xyz @ pool.xyz.T < limit)
        if limit is not None and pool.xyz is not None
        else np.zeros((k, k), dtype=bool)
    )
    for i, away in pool.apart.items():
        far[i, list(away)] = True
    for i in range(k):
        for j in range(i + 1, k):
            v = model.new_bool_var(f"y_{p}_{i}_{j}")
            model.add_implication(v, a[i])
            model.add_implication(v, a[j])
            if far[i, j]:
                model.add(v == 0)
            y[i, j] = v
    for i in range(k):
        for j in range(i + 1, k):
            for m in range(j + 1, k):
                yij, yjm, yim = y[i, j], y[j, m], y[i, m]
                model.add(yij + yjm - yim <= 1)
                model.add(yij + yim - yjm <= 1)
                model.add(yim + yjm - yij <= 1)
    for i in range(k):
        _city(model, pv, pool, rules, i, terms)
    for t, lock in enumerate(pool.locks):
        for i in lock.members:
            model.add(a[i] == 1)
            for j in lock.members:
                if i < j:
                    model.add(y[i, j] == 1)
        for other in pool.locks[t + 1 :]:
            model.add(pv.Y(lock.members[0], other.members[0]) == 0)
    n_used = sum(pv.r)
    if pool.n_clusters is not None:
        model.add(n_used == pool.n_clusters)
    if nonempty:
        model.add(n_used >= 1)
    if pool.mix_allowance >= 0 and k:
        used = model.new_int_var(0, k, f"nu_{p}")
        model.add(used == n_used)
        need = model.new_int_var(0, k, f"need_{p}")
        model.add_min_equality(need, [used, model.new_constant(pool.mix_allowance)])
        model.add(sum(pv.mx) >= need)
    if terms.with_objective and k > 1:
        W = np.asarray(pool.W, dtype=np.float64)
        for (i, j), v in y.items():
            w = round(terms.scale * (float(W[i, j]) - pool.gamma))
            if w:
                terms.objective.append((w, v))
    return pv


def _city(
    model: cp_model.CpModel, pv: _PoolVars, pool: PoolData, rules: Rules, i: int, terms: _Terms
) -> None:
    """Candidate ``i``'s rules: size, lead, language, country, network, the cluster-count
    and mixed markers, its membership and its coverage term."""
    k, p, a, Y = pool.k, pv.pool, pv.a, pv.Y
    lo, hi = rules.min_size, rules.max_size
    others = [Y(i, j) for j in range(k) if j != i]
    model.add(a[i] + sum(others) >= lo * a[i])
    model.add(a[i] + sum(others) <= hi * a[i])
    if not pool.lead_ok[i]:
        model.add(sum(Y(i, j) for j in range(k) if j != i and pool.lead_ok[j]) >= a[i])
    if rules.require_language:
        speakers = pool.langs.sum(axis=0)
        mine = [b for b in np.flatnonzero(pool.langs[i]).tolist() if speakers[b] >= lo]
        zs = []
        for b in mine:
            z = model.new_bool_var(f"z_{p}_{i}_{b}")
            pv.z[i, b] = z
            zs.append(z)
            for j in range(k):
                if j != i and not pool.langs[j, b]:
                    model.add_bool_or([Y(i, j).negated(), z.negated()])
        model.add(sum(zs) >= a[i])
    if not rules.single_country_ok:
        model.add(sum(Y(i, j) for j in range(k) if pool.country[j] != pool.country[i]) >= a[i])
    if not rules.single_network_ok:
        for g in np.flatnonzero(pool.net[i]).tolist():
            model.add(sum(Y(i, j) for j in range(k) if not pool.net[j, g]) >= a[i])
    r = model.new_bool_var(f"r_{p}_{i}")
    model.add_implication(r, a[i])
    for j in range(i):
        model.add_bool_or([r.negated(), Y(j, i).negated()])
    model.add(r >= a[i] - sum(Y(j, i) for j in range(i)))
    pv.r.append(r)
    if pool.mix_allowance >= 0:
        mx = model.new_bool_var(f"mx_{p}_{i}")
        model.add_implication(mx, r)
        if not pool.intl[i]:
            model.add(sum(Y(i, j) for j in range(k) if j != i and pool.intl[j]) >= mx)
        if not pool.national[i]:
            model.add(sum(Y(i, j) for j in range(k) if j != i and pool.national[j]) >= mx)
        pv.mx.append(mx)
    terms.memberships.setdefault(int(pool.idx[i]), []).append(a[i])
    if terms.with_objective:
        terms.objective.append(
            (round(terms.scale * rules.coverage_weight * float(pool.cov[i])), a[i])
        )


def _hint(built: _Model, pools: Sequence[PoolData], hint: Sequence[PoolCluster]) -> None:
    """Warm start from a heuristic proposal."""
    model = built.model
    for pv in built.pools:
        pool = pools[pv.pool]
        label = [-1] * pool.k
        groups = [c.members for c in hint if c.pool == pv.pool]
        for g, members in enumerate(groups):
            for i in members:
                label[i] = g
        for i, a in enumerate(pv.a):
            model.add_hint(a, 1 if label[i] >= 0 else 0)
        for (i, j), v in pv.y.items():
            model.add_hint(v, 1 if label[i] >= 0 and label[i] == label[j] else 0)
        first = {}
        for g, members in enumerate(groups):
            first[g] = min(members)
        for i, r in enumerate(pv.r):
            model.add_hint(r, 1 if label[i] >= 0 and first[label[i]] == i else 0)
        for (i, b), z in pv.z.items():
            members = groups[label[i]] if label[i] >= 0 else ()
            shared = pool.langs[list(members)].all(axis=0) if members else None
            pick = (
                next((c for c in np.flatnonzero(shared).tolist() if (i, c) in pv.z), None)
                if shared is not None
                else None
            )
            model.add_hint(z, 1 if pick == b else 0)
        for i, mx in enumerate(pv.mx):
            members = groups[label[i]] if label[i] >= 0 else ()
            ok = (
                bool(members)
                and first[label[i]] == i
                and bool(pool.intl[list(members)].any() and pool.national[list(members)].any())
            )
            model.add_hint(mx, 1 if ok else 0)


def _extract(built: _Model, pools: Sequence[PoolData], value: Any) -> tuple[PoolCluster, ...]:
    out: list[PoolCluster] = []
    for pv in built.pools:
        pool = pools[pv.pool]
        seen: set[int] = set()
        for i in range(pool.k):
            if i in seen or not value(pv.a[i]):
                continue
            members = [i] + [j for j in range(i + 1, pool.k) if value(pv.y[i, j])]
            seen.update(members)
            slot = next((lk.slot for lk in pool.locks if set(lk.members) <= set(members)), None)
            out.append(PoolCluster(pv.pool, tuple(sorted(members)), slot))
    return tuple(out)


def _solver(time_limit_s: float, seed: int) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    solver.parameters.max_deterministic_time = float(time_limit_s)
    # a wall-clock safety net only; normally the deterministic limit stops first
    solver.parameters.max_time_in_seconds = 3.0 * float(time_limit_s) + 1.0
    return solver


def solve_exact(
    pools: Sequence[PoolData],
    rules: Rules,
    cap: IntArray,
    hint: Sequence[PoolCluster],
    time_limit_s: float,
    seed: int,
    nonempty: Sequence[bool] | None = None,
) -> ExactResult:
    """Maximise the shared objective over every pool at once (see the module doc)."""
    need = list(nonempty) if nonempty is not None else [False] * len(pools)
    built = _model(pools, rules, cap, need, with_objective=True)
    _hint(built, pools, hint)
    solver = _solver(time_limit_s, seed)
    code = solver.solve(built.model)
    status = _STATUS.get(code, "unknown")
    if status not in ("optimal", "feasible"):
        return ExactResult(status, None)
    clusters = _extract(built, pools, solver.value)
    return ExactResult(status, clusters)


def is_feasible(
    pools: Sequence[PoolData],
    rules: Rules,
    cap: IntArray,
    time_limit_s: float,
    seed: int,
    nonempty: Sequence[bool] | None = None,
) -> bool:
    """Whether any proposal meets every constraint (used to diagnose infeasible requests)."""
    need = list(nonempty) if nonempty is not None else [False] * len(pools)
    built = _model(pools, rules, cap, need, with_objective=False)
    code = _solver(time_limit_s, seed).solve(built.model)
    return code in (cp_model.OPTIMAL, cp_model.FEASIBLE)


def _coverage_units(pool: PoolData) -> list[int]:
    """Each candidate's coverage as an integer: ``cov`` is a priority / 5 (or 1), so five
    times it is exact."""
    return [round(5 * float(c)) for c in pool.cov]


def _fair_model(
    pools: Sequence[PoolData],
    rules: Rules,
    cap: IntArray,
    nonempty: Sequence[bool],
    coverage_floor: int,
    t: float,
    with_objective: bool,
) -> _Model:
    """The model with the plain proposal's coverage kept and every benefit at least ``t``."""
    built = _model(pools, rules, cap, nonempty, with_objective)
    model = built.model
    cover: list[Any] = []
    for pv in built.pools:
        pool = pools[pv.pool]
        units = _coverage_units(pool)
        cover.extend(u * a for u, a in zip(units, pv.a, strict=True))
        if pool.k < 2:
            continue
        W = np.asarray(pool.W, dtype=np.float64)
        for i in range(pool.k):
            base = float(pool.cov[i]) - t
            terms = [
                (round(BENEFIT_SCALE * (float(W[i, j]) + base)), pv.Y(i, j))
                for j in range(pool.k)
                if j != i
            ]
            model.add(sum(w * v for w, v in terms if w) >= 0)
    model.add(sum(cover) >= coverage_floor)
    return built


def solve_fair(
    pools: Sequence[PoolData],
    rules: Rules,
    cap: IntArray,
    plain: Sequence[PoolCluster],
    time_limit_s: float,
    seed: int,
    nonempty: Sequence[bool] | None = None,
) -> tuple[PoolCluster, ...]:
    """The fair proposal, from ``plain`` (a proposal meeting every rule): lexicographic
    max-min (see the module doc).

    Bisection on the worst-off benefit ``t`` between ``plain``'s (reached) and a bound no
    member can pass (``cov + max W``); a probe that CP-SAT proves infeasible, or cannot
    settle in its share of ``time_limit_s``, lowers the bound, so a slow probe costs
    fairness, never validity. Then the objective is maximised at the best ``t`` found.
    Every answer is measured again in floating point and kept only if its worst-off
    benefit is no lower than the best so far, so the result never has a lower worst-off
    benefit than ``plain``.
    """
    need = list(nonempty) if nonempty is not None else [False] * len(pools)
    best = tuple(plain)
    lo = worst_benefit(pools, best)
    if lo is None:
        return best
    floor = sum(_coverage_units(pools[c.pool])[i] for c in best for i in c.members)
    hi = max(
        float(p.cov.max()) + (float(np.asarray(p.W).max()) if p.k > 1 else 0.0)
        for p in pools
        if p.k
    )
    probe_limit = max(0.05, time_limit_s / 4.0)
    for _ in range(FAIR_PROBES):
        if hi - lo <= FAIR_TOLERANCE:
            break
        t = (lo + hi) / 2.0
        built = _fair_model(pools, rules, cap, need, floor, t, with_objective=False)
        _hint(built, pools, best)
        solver = _solver(probe_limit, seed)
        code = solver.solve(built.model)
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            found = _extract(built, pools, solver.value)
            w = worst_benefit(pools, found)
            if w is not None and w > lo:
                best, lo = found, w
                continue
        hi = t
    # phase 2: keep the worst-off benefit reached, maximise the objective
    built = _fair_model(pools, rules, cap, need, floor, lo - 1e-6, with_objective=True)
    _hint(built, pools, best)
    solver = _solver(time_limit_s, seed)
    if solver.solve(built.model) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        found = _extract(built, pools, solver.value)
        w = worst_benefit(pools, found)
        if (
            w is not None
            and w >= lo
            and objective(pools, rules, found) > objective(pools, rules, best) + 1e-9
        ):
            best = found
    return best
