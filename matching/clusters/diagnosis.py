"""Why a request has no proposal, said as the one change that would give it one.

A planner who hits a wall needs the parameter to change, not "infeasible": the exact
model is re-solved with one rule relaxed at a time (:func:`diagnose`), and a pool Leiden
+ repair left empty is explained by the rule its candidate groups broke most
(:func:`explain_empty`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from matching.clusters.model import ClusterInfeasible, ClusterParams
from matching.clusters.pools import PoolProblem, build_problem

_PARAMETER_OF = {
    "lead": "lead_min_strength",
    "mixed": "mixed_membership",
    "country": "allow_single_country",
    "network": "allow_single_network",
    "language": "require_common_language",
    "size": "min_size",
    "span": "max_span_km",
    "apart": "keep_apart",
}
"""The parameter that relaxes each rule of ``rules.VIOLATIONS``."""


def _relaxations(params: ClusterParams) -> list[tuple[str, ClusterParams, str]]:
    """(parameter, relaxed request, advice) to try, one rule at a time, mildest first."""
    replace = dataclasses.replace
    probes: list[tuple[str, ClusterParams, str]] = []
    if params.mixed_membership:
        probes.append(
            (
                "mixed_membership",
                replace(params, mixed_membership=False),
                "set mixed_membership=False",
            )
        )
    if not params.allow_single_country:
        probes.append(
            (
                "allow_single_country",
                replace(params, allow_single_country=True),
                "set allow_single_country=True",
            )
        )
    if not params.allow_single_network:
        probes.append(
            (
                "allow_single_network",
                replace(params, allow_single_network=True),
                "set allow_single_network=True",
            )
        )
    if params.require_common_language:
        probes.append(
            (
                "require_common_language",
                replace(params, require_common_language=False),
                "drop require_common_language",
            )
        )
    if params.max_span_km is not None:
        for factor in (2, 4):
            wider = params.max_span_km * factor
            probes.append(
                (
                    "max_span_km",
                    replace(params, max_span_km=wider),
                    f"raise max_span_km to {wider:,.0f}",
                )
            )
    if params.keep_apart:
        probes.append(("keep_apart", replace(params, keep_apart=()), "drop the keep-apart pairs"))
    for m in range(params.min_size - 1, 1, -1):
        probes.append(("min_size", replace(params, min_size=m), f"lower min_size to {m}"))
    if params.n_clusters is not None:
        for k in range(params.n_clusters - 1, 0, -1):
            probes.append(("n_clusters", replace(params, n_clusters=k), f"lower n_clusters to {k}"))
    return probes


def diagnose(problem: PoolProblem) -> ClusterInfeasible:
    """Find the relaxations that make the exact model feasible, and say so."""
    from matching.clusters import exact  # ortools loads only when a request is solved exactly

    params = problem.params
    found: dict[str, str] = {}
    for name, relaxed, text in _relaxations(params):
        if name in found:
            continue
        try:
            p2 = build_problem(problem.inp, relaxed)
        except ClusterInfeasible:
            continue
        if exact.is_feasible(
            p2.pools,
            p2.rules,
            p2.cap,
            min(2.0, params.time_limit_s),
            params.seed,
            nonempty=p2.explicit,
        ):
            found[name] = text
    if found:
        first = next(iter(found))
        return ClusterInfeasible(
            "no proposal satisfies every constraint together (locks, n_clusters and the rules): "
            + " or ".join(found.values()),
            constraint=first,
        )
    return ClusterInfeasible(
        "no proposal satisfies every constraint together and no single relaxation fixes it: "
        "unlock some cities or lower n_clusters",
        constraint="locked",
    )


def explain_empty(
    problem: PoolProblem, p: int, dissolved: Sequence[tuple[int, str, int]]
) -> ClusterInfeasible:
    """Why pool ``p``, which the planner asked for, came out with no cluster."""
    pool = problem.pools[p]
    params = problem.params
    what = f"theme {pool.key!r}" if pool.theme >= 0 else "geographic clusters"
    why = Counter(v for q, v, _ in dissolved if q == p)
    hint = {
        "lead": f"lower lead_min_strength below {params.lead_min_strength:g}",
        "mixed": "set mixed_membership=False",
        "country": "set allow_single_country=True",
        "network": "set allow_single_network=True",
        "language": "drop require_common_language",
        "size": f"lower min_size below {params.min_size}",
        "span": f"raise max_span_km above {params.max_span_km or 0:,.0f}",
        "apart": "drop a keep-apart pair",
    }
    if why:
        v = why.most_common(1)[0][0]
        return ClusterInfeasible(
            f"no valid cluster could be formed for {what}: the candidate groups broke the {v} rule; {hint[v]}",
            constraint=_PARAMETER_OF[v],
            theme=pool.key,
        )
    if params.max_span_km is not None:
        return ClusterInfeasible(
            f"no valid cluster could be formed for {what} within max_span_km "
            f"{params.max_span_km:,.0f} km: the cities near enough to one another break another "
            f"rule together (one country, one language, mixing); raise max_span_km above "
            f"{params.max_span_km:,.0f} or relax one of those rules",
            constraint="max_span_km",
            theme=pool.key,
        )
    return ClusterInfeasible(
        f"no valid cluster could be formed for {what} with the capacity its candidates have left: "
        "raise max_per_city or request fewer themes",
        constraint="max_per_city",
        theme=pool.key,
    )
