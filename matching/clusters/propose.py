"""The entry points: propose clusters, check a planner's edit, judge any grouping.

``propose_clusters`` builds the pools (``pools``), runs Leiden + repair (``large``) on
every request, and the exact CP-SAT model (``exact``) when the pools are small enough
or it is asked for, warm-started from the heuristic's proposal and kept only when it is
no worse; then reports (``report``). An infeasible exact model is diagnosed
(``diagnosis``). With ``params.fair`` the plain proposal is made first, then made fair
(``exact.solve_fair`` where the exact path ran, else ``fair.raise_worst_off``) and kept
only if its worst-off benefit is no lower; the proposal reports both. ``evaluate_clusters`` and ``check_groups`` solve nothing: they build
pools around groups someone already chose and report the rules as they stand.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping, Sequence

import numpy as np

from matching.clusters.diagnosis import diagnose, explain_empty
from matching.clusters.fair import raise_worst_off
from matching.clusters.large import solve_large
from matching.clusters.model import (
    GEO_KEY,
    ClusterInput,
    ClusterInputError,
    ClusterParams,
    ClusterProposal,
    ConstraintStatus,
)
from matching.clusters.pools import (
    PoolProblem,
    apply_waivers,
    build_problem,
    city_codes,
    effective_capacity,
)
from matching.clusters.report import report
from matching.clusters.rules import PoolCluster, PoolData, Rules, objective, worst_benefit
from matching.clusters.statuses import constraint_statuses, violations_total
from matching.kernel.geometry import unit_vectors


def propose_clusters(inp: ClusterInput, params: ClusterParams = ClusterParams()) -> ClusterProposal:
    """Propose clusters for ``inp`` under ``params`` (see the package doc for the rules).

    Raises :class:`ClusterInfeasible` when no proposal can satisfy the request (the message
    names what to relax) and :class:`ClusterInputError` for malformed parameters.
    """
    from matching.clusters import exact  # ortools takes ~0.4 s to import: only solving pays it

    problem = build_problem(inp, params)
    pools = problem.pools
    heuristic = solve_large(pools, problem.rules, problem.cap, problem.pool_strength, params.seed)
    raw: tuple[PoolCluster, ...] = heuristic.clusters
    method = "leiden+repair"
    total = sum(p.k for p in pools)
    use_exact = params.method == "exact" or (
        params.method == "auto" and 0 < total <= params.exact_max_candidates
    )
    if use_exact and pools:
        if total > exact.EXACT_HARD_LIMIT:
            raise ClusterInputError(
                f"method='exact' handles at most {exact.EXACT_HARD_LIMIT} candidate memberships but "
                f"this request has {total}: use method='auto' or narrow the themes"
            )
        result = exact.solve_exact(
            pools,
            problem.rules,
            problem.cap,
            heuristic.clusters,
            params.time_limit_s,
            params.seed,
            nonempty=problem.explicit,
        )
        if result.status == "infeasible":
            raise diagnose(problem)
        if result.clusters is not None:
            ex = objective(pools, problem.rules, result.clusters)
            hx = objective(pools, problem.rules, heuristic.clusters)
            if ex >= hx - 1e-9 or violations_total(problem, heuristic.clusters) > 0:
                raw = result.clusters
                method = f"exact CP-SAT ({result.status})"
            else:
                method = "leiden+repair (better than CP-SAT's incumbent)"
        else:
            method = "leiden+repair (CP-SAT found no proposal within the time limit)"
    for p in range(len(pools)):
        if problem.explicit[p] and not any(c.pool == p for c in raw):
            raise explain_empty(problem, p, heuristic.dissolved)
    if not params.fair:
        return report(problem, raw, method)
    plain = raw
    if use_exact and pools:
        raw = exact.solve_fair(
            pools,
            problem.rules,
            problem.cap,
            plain,
            params.time_limit_s,
            params.seed,
            nonempty=problem.explicit,
        )
        how = "max-min by CP-SAT"
    else:
        raw = raise_worst_off(pools, problem.rules, plain)
        how = "worst-off raised by repair"
    before, after = worst_benefit(pools, plain), worst_benefit(pools, raw)
    if before is not None and after is not None and after <= before:
        raw, how = plain, "no change kept every rule and raised the worst-off city"
    if (before is not None and (after is None or after < before)) or violations_total(
        problem, raw
    ) > violations_total(problem, plain):
        raw, how = plain, "the plain proposal was already the fairest found"
    price = {
        "plain_objective": objective(pools, problem.rules, plain),
        "plain_worst_benefit": before if before is not None else 0.0,
    }
    return report(problem, raw, f"{method}; fair: {how}", fair=price)


def evaluate_clusters(
    inp: ClusterInput,
    params: ClusterParams,
    groups: Mapping[str, Sequence[str]],
    leads: Mapping[str, str] | None = None,
) -> ClusterProposal:
    """Describe and check a planner's own clusters exactly as they stand.

    ``groups`` maps a slot (named as in ``ClusterParams.locked``: ``"education#2"`` for a
    thematic cluster) to its member ids. Nothing is solved and nobody moves: each group is
    one cluster, described (lead, languages, cohesion, reasons) and checked against every
    hard rule of ``params``. A broken rule comes back as a violated constraint instead of
    :class:`ClusterInfeasible`, because a planner in the middle of an edit needs to see
    what the edit broke, not a refusal. Malformed groups (an unknown city or theme) still
    raise :class:`ClusterInputError`. ``leads`` maps a slot to the lead the planner chose:
    kept when it can lead, else the cluster's ``lead_request`` says why not and who could.
    A keep-apart pair of ``params`` that a group puts together is refused
    (:class:`ClusterInfeasible`): the planner asked for both, and only they can choose.
    """
    if not any(groups.values()):
        raise ClusterInputError("there is no cluster with members to check")
    placed = {c for ids in groups.values() for c in ids}
    check = dataclasses.replace(
        params,
        themes=() if params.kind == "thematic" else params.themes,
        locked={slot: tuple(ids) for slot, ids in groups.items() if ids},
        excluded=frozenset(c for c in inp.city_ids if c not in placed),
        n_clusters=None,
    )
    problem = build_problem(inp, check, strict=False)
    raw = [
        PoolCluster(p, tuple(sorted(lock.members)), lock.slot)
        for p, pool in enumerate(problem.pools)
        for lock in pool.locks
    ]
    return report(problem, raw, "evaluated as edited", leads=dict(leads or {}))


def check_groups(
    inp: ClusterInput, params: ClusterParams, groups: Sequence[Sequence[int]]
) -> tuple[ConstraintStatus, ...]:
    """Judge any grouping (e.g. a community detection's) by the same hard constraints.

    ``groups`` are lists of city indices. Each group's theme is the one its members
    prioritise most (thematic requests; among ``params.themes`` when given); the pool for
    the mixed-membership allowance is that theme's candidates.
    """
    problem, raw = _problem_for_groups(inp, params, groups)
    statuses, _ = constraint_statuses(problem, raw)
    return tuple(statuses)


def _problem_for_groups(
    inp: ClusterInput, params: ClusterParams, groups: Sequence[Sequence[int]]
) -> tuple[PoolProblem, list[PoolCluster]]:
    """Pools in which any grouping can be judged by the rules (``check_groups``).

    Each group's theme is the one its members prioritise most (thematic requests; among
    ``params.themes`` when given); its pool spans every city, and the mixed-membership
    allowance is counted on that theme's candidates. Nothing here is solved, so the pools
    carry no affinity.
    """
    themes = (
        [inp.theme_ids.index(t) for t in params.themes]
        if params.themes is not None
        else list(range(len(inp.theme_ids)))
    )
    relaxed, lead_ok, waived = apply_waivers(
        inp,
        dataclasses.replace(
            params, themes=tuple(inp.theme_ids[t] for t in themes), method="heuristic"
        ),
    )
    codes = city_codes(inp)
    intl = codes.intl
    key_pool: dict[int, int] = {}
    pools: list[PoolData] = []
    raw: list[PoolCluster] = []
    everyone = np.arange(inp.n, dtype=np.int64)
    places = unit_vectors(inp.lat, inp.lon)
    for group in groups:
        gl = sorted(int(x) for x in group)
        if params.kind == "thematic" and themes:
            t = max(themes, key=lambda t: (int(inp.priority[gl, t].sum()), -t))
        else:
            t = -1
        if t not in key_pool:
            if t >= 0:
                cand = everyone[(inp.priority[:, t] > 0) | np.isin(everyone, gl)]
                lok = lead_ok[:, t]
            else:
                cand = everyone
                lok = (
                    np.asarray(lead_ok.any(axis=1))
                    if lead_ok.size
                    else np.full(inp.n, "lead" in waived, dtype=bool)
                )
            n_i, n_n = int(intl[cand].sum()), int((~intl[cand]).sum())
            key_pool[t] = len(pools)
            pools.append(
                PoolData(
                    key=GEO_KEY if t < 0 else inp.theme_ids[t],
                    theme=t,
                    idx=everyone,
                    W=np.zeros((0, 0)),
                    gamma=0.0,
                    cov=np.ones(inp.n),
                    lead_ok=np.asarray(lok, dtype=bool),
                    langs=np.asarray(inp.languages, dtype=bool),
                    intl=intl,
                    national=~intl,
                    country=codes.country,
                    net=codes.networks,
                    locks=(),
                    n_clusters=None,
                    mix_allowance=min(n_i, n_n)
                    if (params.mixed_membership and n_i and n_n)
                    else -1,
                    xyz=places,
                )
            )
        raw.append(PoolCluster(key_pool[t], tuple(gl)))
    rules = Rules(
        params.min_size,
        params.max_size,
        relaxed.require_common_language,
        params.allow_single_country,
        params.allow_single_network,
        1.0,
        params.max_span_km,
    )
    problem = PoolProblem(
        inp=inp,
        params=relaxed,
        pools=tuple(pools),
        pool_strength=(),
        pool_lead_theme=(),
        explicit=(),
        rules=rules,
        cap=effective_capacity(inp, relaxed),
        skipped=types.MappingProxyType({}),
        mixed_waived=types.MappingProxyType({}),
        waived=types.MappingProxyType(waived),
    )
    return problem, raw
