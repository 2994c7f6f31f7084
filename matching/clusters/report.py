"""A solver's clusters turned into what a planner reads: a :class:`ClusterProposal`.

Each cluster gets its lead (the strongest member that can lead, or, where the data could
not support the lead rule, the member most like the others), its working languages,
its cohesion (the mean input affinity of member pairs, beside a random pair of the
pool's) and reasons in plain sentences: the shared theme, who leads and why, the common
language, the mix of countries and networks, existing and new ties, and a buddy for
each newcomer. Every city left out gets the most useful reason it was (a language it
shares with no cluster, full clusters, a theme without a pool, ...). The numbers behind
the sentences travel in ``components`` and ``metrics``.
"""

from __future__ import annotations

import math
import types
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from matching.clusters.model import (
    ClusterInput,
    ClusterProposal,
    LeadRequest,
    ProposedCluster,
    UnassignedCity,
)
from matching.clusters.pools import REGION_CITIES, PoolProblem, span_km_of
from matching.clusters.rules import (
    VIOLATIONS,
    PoolCluster,
    PoolData,
    PoolFacts,
    member_benefits,
    objective_terms,
    pair_sum,
    worst_benefit,
)
from matching.clusters.statuses import constraint_statuses
from matching.kernel.arrays import BoolArray, IntArray, Matrix
from matching.kernel.geometry import distance_matrix_km
from matching.kernel.wording import Reason, and_join, language_name, language_names, plural


def report(
    problem: PoolProblem,
    raw: Sequence[PoolCluster],
    method: str,
    fair: Mapping[str, float] | None = None,
    leads: Mapping[str, str] | None = None,
) -> ClusterProposal:
    """The proposal for ``raw``: clusters in a stable order (per pool, locked first), the
    cities left out, the objective, every constraint's status and the metrics.

    ``fair`` (a fair proposal) carries the plain proposal's ``plain_objective`` and
    ``plain_worst_benefit``: with this one's they are the price of fairness. ``leads``
    (a planner's edit, see ``evaluate_clusters``) maps a cluster's slot to the lead the
    planner chose; every cluster is then the planner's own, so none is said to be "kept
    together as asked"."""
    inp, params = problem.inp, problem.params
    statuses, _per = constraint_statuses(problem, raw)
    cov, coh = objective_terms(problem.pools, problem.rules, raw)
    ordered = sorted(
        raw, key=lambda c: (c.pool, c.slot is None, problem.pools[c.pool].idx[c.members[0]])
    )
    clusters: list[ProposedCluster] = []
    counters: Counter[str] = Counter()  # by pool key: regional pools number on
    latest = int(inp.joined.max()) if inp.joined is not None and inp.joined.size else 0
    for c in ordered:
        key = problem.pools[c.pool].key
        counters[key] += 1
        wanted = leads.get(c.slot) if leads is not None and c.slot is not None else None
        clusters.append(
            describe(problem, c, counters[key], latest, wanted=wanted, edited=leads is not None)
        )
    unassigned = unassigned_cities(problem, raw)
    placed = {int(problem.pools[c.pool].idx[i]) for c in raw for i in c.members}
    candidate_memberships = sum(p.k for p in problem.pools)
    per_city = Counter(int(g) for p in problem.pools for g in p.idx.tolist())
    reachable = sum(min(int(problem.cap[g]), k) for g, k in per_city.items())
    memberships = sum(len(c.members) for c in raw)
    checks = sum(s.satisfied + s.violated for s in statuses)
    violated = sum(s.violated for s in statuses)
    metrics: dict[str, float | int | str] = {
        "n_cities": inp.n,
        "n_pools": len(problem.pools),
        "n_clusters": len(raw),
        "n_cities_placed": len(placed),
        "n_memberships": memberships,
        "n_candidate_memberships": candidate_memberships,
        "n_reachable_memberships": reachable,
        "coverage": round(memberships / reachable, 6) if reachable else 0.0,
        "n_unassigned": len(unassigned),
        "mean_cohesion": round(float(np.mean([c.score for c in clusters])), 6) if clusters else 0.0,
        "clusters_below_random_pair": sum(
            c.score < c.components["pool_baseline"] - 1e-12 for c in clusters
        ),
        "objective_coverage": round(cov, 6),
        "objective_cohesion": round(coh, 6),
        "coverage_weight": round(problem.rules.coverage_weight, 6),
        "hard_constraints_satisfied_pct": round(100.0 * (checks - violated) / checks, 3)
        if checks
        else 100.0,
    }
    worst = worst_benefit(problem.pools, raw)
    metrics["worst_benefit"] = round(worst, 6) if worst is not None else 0.0
    objective = float(problem.rules.coverage_weight * cov + coh)
    if fair is not None:
        metrics["plain_objective"] = round(fair["plain_objective"], 6)
        metrics["plain_worst_benefit"] = round(fair["plain_worst_benefit"], 6)
        metrics["price_of_fairness"] = round(fair["plain_objective"] - objective, 6)
    if params.max_span_km is not None:
        metrics["max_span_km"] = params.max_span_km
    if clusters:
        metrics["widest_span_km"] = round(max(c.components["span_km"] for c in clusters), 3)
    for pool in problem.pools:
        metrics[f"gamma.{pool.key}"] = round(pool.gamma, 6)
    regional = [p for p in problem.pools if p.theme < 0]
    if len(regional) > 1:
        metrics["regional_pools"] = len(regional)
        metrics["regional_pools_note"] = (
            f"{sum(p.k for p in regional):,} cities, more than {REGION_CITIES:,}, were solved "
            f"as {len(regional)} regional pools of at most {max(p.k for p in regional):,} "
            "cities (each part halved at the median of its widest axis): no cluster takes "
            "members from two regions"
        )
    for key, why in problem.skipped.items():
        metrics[f"skipped.{key}"] = why
    limited = (
        {inp.city_ids[i]: load_note(problem, i) for i in range(inp.n) if inp.accepted[i]}
        if inp.accepted is not None
        else {}
    )
    return ClusterProposal(
        limited=types.MappingProxyType(limited),
        kind=params.kind,
        clusters=tuple(clusters),
        unassigned=tuple(unassigned),
        objective=objective,
        constraints=tuple(statuses),
        method=method,
        seed=params.seed,
        metrics=types.MappingProxyType(metrics),
        fair=fair is not None,
    )


def load_note(problem: PoolProblem, i: int) -> str:
    """Why city ``i`` may join fewer new clusters: the accepted clusters of the running
    period it is already in, named, and how many more it may join."""
    held = problem.inp.accepted[i] if problem.inp.accepted is not None else ()
    left = int(problem.cap[i])
    more = f"at most {left} more" if left else "no more"
    return f"already in {plural(len(held), 'accepted cluster')} ({', '.join(held)}): {more}"


# --------------------------------------------------------------------------- one cluster


def describe(
    problem: PoolProblem,
    c: PoolCluster,
    number: int,
    latest: int,
    wanted: str | None = None,
    edited: bool = False,
) -> ProposedCluster:
    """Cluster ``c`` as a planner reads it; ``number`` counts clusters in its pool and
    ``latest`` is the latest year any city joined (0: unknown). ``wanted``: the lead the
    planner chose, kept when it can lead, else refused with the reason and the members
    who could (:func:`_lead_choice`). ``edited``: the planner made this cluster."""
    inp, params = problem.inp, problem.params
    pool = problem.pools[c.pool]
    local = list(c.members)
    g = pool.idx[local]
    names = [inp.names[i] for i in g]
    size = len(g)
    order, can, talks = _lead_order(problem, c)
    lead_a = order[0]
    request = None
    if wanted is not None:
        lead_a, request = _lead_choice(problem, c, wanted, order, can, talks)
    lead_g = int(g[lead_a])
    lead_theme = int(problem.pool_lead_theme[c.pool][local][lead_a])
    # languages all members share
    shared = inp.languages[g].all(axis=0)
    wl = tuple(inp.language_codes[b] for b in np.flatnonzero(shared))
    raw_pairs = pair_sum(inp.affinity, g.tolist())
    pairs = size * (size - 1) / 2
    cohesion = raw_pairs / pairs if pairs else 0.0
    baseline = _mean_offdiag(pool.W)

    theme_ids, reasons = _theme_reasons(inp, pool, g, names)
    lead_score, lead_text = _lead(problem, lead_g, lead_theme, bool(can[lead_a]))
    reasons.append(Reason("lead", lead_text))
    if request is not None and not request.honoured:
        reasons.append(Reason("lead_request", request.reason))
    if wl:
        reasons.append(Reason("language", f"All {size} speak {language_names(wl)}"))
    elif "common_language" in problem.waived:
        reasons.append(Reason("language", "No working language: the network lists no languages"))
    else:
        reasons.append(Reason("language", f"The {size} members share no language"))
    n_countries = len({inp.countries[i] for i in g})
    nets = {x for i in g for x in inp.networks[i]}
    n_int = int(sum(inp.membership[i] == "international" for i in g))
    reasons.append(
        Reason(
            "mix",
            f"{plural(n_countries, 'country', 'countries')}, {plural(len(nets), 'national network')} "
            f"and {plural(n_int, 'international member')}",
        )
    )
    existing, new = 0, int(pairs)
    if inp.ties is not None:
        existing = _ties_within(inp.ties, g)
        new = int(pairs) - existing
        reasons.append(
            Reason(
                "ties",
                f"Members already share {plural(existing, 'tie')}; "
                f"{plural(new, 'new tie')} would form",
            )
        )
    reasons.append(
        Reason(
            "cohesion",
            f"Cohesion {cohesion:.2f}: the mean affinity of its {int(pairs)} pairs "
            f"(a random pair of {pool.key} candidates: {baseline:.2f})",
            weight=1.0,
        )
    )
    check = _cohesion_check(problem, pool, local, cohesion, baseline)
    if check is not None:
        reasons.append(check)
    reasons.extend(_buddies(problem, g, names, latest))
    lock = next((lk for lk in pool.locks if lk.slot == c.slot), None)
    if lock is not None and not edited:
        asked = [inp.names[int(pool.idx[i])] for i in lock.members]
        reasons.append(
            Reason(
                "locked",
                "Kept together as asked"
                if len(asked) == size
                else f"{and_join(asked)} kept together as asked",
            )
        )
    key = pool.key if pool.theme >= 0 else "geo"
    components = {
        "size": float(size),
        "cohesion": cohesion,
        "pool_baseline": baseline,
        "gamma": pool.gamma,
        "objective_cohesion": pair_sum(pool.W, local) - pool.gamma * pairs,
        "objective_coverage": float(pool.cov[local].sum()),
        "countries": float(n_countries),
        "national_networks": float(len(nets)),
        "international_members": float(n_int),
        "national_members": float(size - n_int),
        "existing_ties": float(existing),
        "new_ties": float(new),
        "span_km": span_km_of(inp.lat[g], inp.lon[g]),
        "lowest_benefit": float(member_benefits(pool, local).min()),
    }
    if not math.isnan(lead_score):
        components["lead_strength"] = lead_score  # absent when the lead qualifies by practice
    return ProposedCluster(
        id=f"{key}-{number}",
        kind=params.kind,
        theme_ids=theme_ids,
        members=tuple(inp.city_ids[i] for i in g),
        lead_city=inp.city_ids[lead_g],
        working_languages=wl,
        score=float(cohesion),
        reasons=tuple(reasons),
        components=types.MappingProxyType(components),
        locked_slot=c.slot,
        lead_request=request,
    )


def _lead_order(problem: PoolProblem, c: PoolCluster) -> tuple[list[int], BoolArray, BoolArray]:
    """Members (positions in ``c.members``) in the order they would lead, who can lead
    (strong in the theme, or anyone where the rule is waived), and who *talks* to the
    cluster: shares a language with as many members as any member does (with everyone,
    in a cluster with a common language).

    The strongest member that can lead and talks to the cluster comes first: a lead must
    be able to run its meetings (an edit with no common language once got a lead who
    shared no language with anyone). With the lead rule waived there is no strength to
    rank by: the member most like the others."""
    inp, pool = problem.inp, problem.pools[c.pool]
    local = list(c.members)
    g = pool.idx[local]
    size = len(g)
    langs = inp.languages[g].astype(np.int64)
    if langs.shape[1] and "common_language" not in problem.waived:
        reach = (langs @ langs.T > 0).sum(axis=1)
        talks = np.asarray(reach == reach.max())
    else:
        talks = np.ones(size, dtype=bool)
    st = problem.pool_strength[c.pool][local]
    if "lead" in problem.waived:
        can = np.ones(size, dtype=bool)
        pull = _affinity_to_others(pool.W, local)
        order = sorted(range(size), key=lambda a: (not talks[a], -pull[a], int(g[a])))
    else:
        can = np.asarray(pool.lead_ok[local], dtype=bool)
        order = sorted(range(size), key=lambda a: (not can[a], not talks[a], -st[a], int(g[a])))
    return order, can, talks


def _lead_choice(
    problem: PoolProblem,
    c: PoolCluster,
    wanted: str,
    order: Sequence[int],
    can: BoolArray,
    talks: BoolArray,
) -> tuple[int, LeadRequest]:
    """The planner's lead when it can lead, else the usual one; and what became of the
    request, in words, with the members who could lead instead."""
    inp, pool = problem.inp, problem.pools[c.pool]
    g = [int(x) for x in pool.idx[list(c.members)]]
    ids = [inp.city_ids[i] for i in g]
    ok = [a for a in order if can[a] and talks[a] and problem.cap[g[a]] > 0]
    could = tuple(ids[a] for a in ok)
    name = inp.names[inp.city_ids.index(wanted)] if wanted in inp.city_ids else wanted
    if wanted not in ids:
        why = "it is not a member of this cluster"
    else:
        a = ids.index(wanted)
        if a in ok:
            return a, LeadRequest(wanted, True, f"{name} leads, as the planner chose", could)
        if not can[a]:
            why = _not_strong(problem, c, g[a])
        elif not talks[a]:
            others = [inp.names[g[b]] for b in range(len(g)) if not _shares(inp, g[a], g[b])]
            why = f"it shares no language with {and_join(others)}"
        else:
            why = "its coordinator has no hours for clusters"
    alternatives = (
        f"; members who could lead: {and_join([inp.names[inp.city_ids.index(x)] for x in could])}"
        if could
        else "; no member can lead"
    )
    lead_a = ok[0] if ok else order[0]
    return lead_a, LeadRequest(
        wanted, False, f"{name} ({wanted}) cannot lead: {why}{alternatives}", could
    )


def _shares(inp: ClusterInput, i: int, j: int) -> bool:
    return bool((inp.languages[i] & inp.languages[j]).any())


def _not_strong(problem: PoolProblem, c: PoolCluster, i: int) -> str:
    """Why city ``i`` is not strong enough to lead cluster ``c``'s theme, in words."""
    inp, params, pool = problem.inp, problem.params, problem.pools[c.pool]
    need = f"a lead needs {params.lead_min_strength:g}"
    if pool.theme < 0:
        top = np.nan_to_num(inp.strength[i], nan=-1.0)
        best = float(top.max()) if top.size else -1.0
        scored = f"its best Index score is {best:.0f}" if best >= 0 else "it has no Index score"
        return f"{scored} ({need}) and it has no good practice on a theme it prioritises"
    t = pool.theme
    score = inp.strength[i, t]
    scored = (
        f"it scores {score:.0f} on {inp.theme_names[t]}"
        if not math.isnan(score)
        else f"it has no Index score on {inp.theme_names[t]}"
    )
    return f"{scored} ({need}) and has no good practice on it"


def _theme_reasons(
    inp: ClusterInput, pool: PoolData, g: IntArray, names: list[str]
) -> tuple[tuple[str, ...], list[Reason]]:
    """The cluster's themes and the first reasons: the shared theme (and a second one the
    members share), or for a geographic cluster its spread and most shared priority."""
    size = len(g)
    reasons: list[Reason] = []
    if pool.theme >= 0:
        t = pool.theme
        pr = inp.priority[g, t]
        theme_ids: tuple[str, ...] = (inp.theme_ids[t],)
        reasons.append(
            Reason(
                "shared_theme",
                f"All {size} prioritise {inp.theme_names[t]} (mean priority {pr.mean():.1f}/5)"
                if (pr > 0).all()
                else f"{int((pr > 0).sum())} of {size} prioritise {inp.theme_names[t]}; the others were kept together as asked",
            )
        )
        second = _second_theme(inp, g, t)
        if second is not None:
            theme_ids = (*theme_ids, inp.theme_ids[second])
            k2 = int((inp.priority[g, second] >= 3).sum())
            reasons.append(
                Reason("second_theme", f"{k2} of {size} also prioritise {inp.theme_names[second]}")
            )
        return theme_ids, reasons
    d = distance_matrix_km(inp.lat[g], inp.lon[g], inp.lat[g], inp.lon[g])
    a, b = np.unravel_index(int(np.argmax(d)), d.shape)
    reasons.append(
        Reason(
            "distance",
            f"All within {d.max():.0f} km of each other (widest pair: {names[a]} and {names[b]})"
            if size > 1
            else "One city",
        )
    )
    top = _top_themes(inp, g)
    if top:
        reasons.append(Reason("shared_theme", f"Most shared priority: {inp.theme_names[top[0]]}"))
    return tuple(inp.theme_ids[t] for t in top), reasons


def _lead(problem: PoolProblem, lead_g: int, lead_theme: int, can_lead: bool) -> tuple[float, str]:
    """The lead's Index score (NaN when it leads by a good practice, or cannot lead) and
    the sentence saying why it leads."""
    inp, params = problem.inp, problem.params
    waiver = problem.waived.get("lead")
    if waiver:
        return (
            float("nan"),
            f"{inp.names[lead_g]} is proposed as lead, the member most like the others; "
            f"the lead rule was not applied: {waiver}",
        )
    if not can_lead:
        return (
            float("nan"),
            f"No member can lead ({inp.names[lead_g]} is the strongest, below {params.lead_min_strength:g})",
        )
    lead_score = (
        float(inp.strength[lead_g, lead_theme])
        if lead_theme < inp.strength.shape[1]
        else float("nan")
    )
    if not math.isnan(lead_score) and lead_score >= params.lead_min_strength:
        return (
            lead_score,
            f"{inp.names[lead_g]} leads: it scores {lead_score:.0f} on {inp.theme_names[lead_theme]}",
        )
    return lead_score, (
        f"{inp.names[lead_g]} leads: it prioritises {inp.theme_names[lead_theme]} at 5 "
        "and has a good practice on it"
    )


def _affinity_to_others(W: Matrix, local: Sequence[int]) -> list[float]:
    """Each member's summed affinity to the other members (local indices of ``W``)."""
    m = np.asarray(local)
    block = W[np.ix_(m, m)] if isinstance(W, np.ndarray) else sp.csr_matrix(W)[m][:, m].toarray()
    return [float(x) for x in np.asarray(block).sum(axis=1)]


def _ties_within(ties: Matrix, g: IntArray) -> int:
    """Existing ties among the cities ``g``."""
    if isinstance(ties, np.ndarray):
        return int(np.count_nonzero(ties[np.ix_(g, g)])) // 2
    return int(sp.csr_matrix(ties)[g][:, g].count_nonzero()) // 2


def _buddies(problem: PoolProblem, g: IntArray, names: Sequence[str], latest: int) -> list[Reason]:
    """A buddy for the first two newcomers: the experienced member most like each."""
    inp, params = problem.inp, problem.params
    if inp.joined is None or not latest:
        return []
    size = len(g)
    joined = inp.joined[g]
    since = latest - params.newcomer_years + 1
    newcomers = [a for a in range(size) if joined[a] and joined[a] >= since]
    veterans = [a for a in range(size) if joined[a] and joined[a] < since]
    if newcomers and veterans:
        out = []
        for nc in newcomers[:2]:
            buddy = max(
                veterans, key=lambda b: (float(inp.affinity[int(g[nc]), int(g[b])]), -int(g[b]))
            )
            out.append(
                Reason(
                    "buddy",
                    f"Newcomer {names[nc]} (joined {joined[nc]}) can pair with {names[buddy]} (member since {joined[buddy]})",
                )
            )
        return out
    if newcomers:
        return [Reason("buddy", "All members are newcomers: no experienced buddy in this cluster")]
    return []


def _cohesion_check(
    problem: PoolProblem, pool: PoolData, local: Sequence[int], cohesion: float, baseline: float
) -> Reason | None:
    """Why a cluster less cohesive than a random pair of its pool was kept (None when it
    is not): the rule its weakest member's leaving would break (size, lead, language,
    mixing, countries, networks), a planner's lock, or, failing those, that placing every
    willing city comes first and none of its members had a closer valid cluster."""
    if len(local) < 2 or cohesion >= baseline - 1e-12:
        return None
    W = pool.W
    block = np.asarray(
        W[np.ix_(local, local)]
        if isinstance(W, np.ndarray)
        else sp.csr_matrix(W)[local][:, local].toarray()
    )
    weakest = int(np.argmin(block.sum(axis=1)))
    rest = [m for t, m in enumerate(local) if t != weakest]
    broken = PoolFacts(pool, problem.rules).violations(rest)
    words = {
        "size": f"a cluster needs at least {problem.rules.min_size} members",
        "lead": "it would lose its only member that can lead",
        "language": "the others would share no language",
        "mixed": "it would no longer mix international and national members",
        "country": "the others are all from one country",
        "network": "the others are all in one national network",
    }
    why = next((words[v] for v in VIOLATIONS if v in broken and v in words), None)
    name = problem.inp.names[int(pool.idx[local[weakest]])]
    if any(set(local) & set(lock.members) for lock in pool.locks):
        because = "its members were kept together as asked"
    elif why is not None:
        because = f"a hard rule forced it: without {name}, its least cohesive member, {why}"
    else:
        because = (
            "placing every willing city comes first and no member has a more cohesive "
            "cluster that keeps every rule"
        )
    return Reason(
        "cohesion_check",
        f"Less cohesive than a random pair of its pool ({cohesion:.2f} against "
        f"{baseline:.2f}); kept because {because}",
    )


def _mean_offdiag(W: Matrix) -> float:
    """The mean affinity of a pair of distinct candidates."""
    k = W.shape[0]
    if k < 2:
        return 0.0
    total = float(W.sum()) - (
        float(W.diagonal().sum()) if not isinstance(W, np.ndarray) else float(np.trace(W))
    )
    return float(total / (k * (k - 1)))


def _second_theme(inp: ClusterInput, g: IntArray, t: int) -> int | None:
    """Another theme two thirds of the members prioritise at 3 or more, if any."""
    need = math.ceil(2 * len(g) / 3)
    counts = (inp.priority[g] >= 3).sum(axis=0)
    counts[t] = -1
    best = int(np.argmax(counts)) if counts.size else -1
    return best if best >= 0 and counts[best] >= need else None


def _top_themes(inp: ClusterInput, g: IntArray) -> list[int]:
    """The (up to two) themes the members prioritise most in sum."""
    if not inp.theme_ids:
        return []
    total = inp.priority[g].sum(axis=0)
    order = sorted(range(len(total)), key=lambda t: (-int(total[t]), t))
    return [t for t in order[:2] if total[t] > 0]


# --------------------------------------------------------------------------- cities left out


def unassigned_cities(problem: PoolProblem, raw: Sequence[PoolCluster]) -> list[UnassignedCity]:
    """Every city in no cluster, with the most useful reason (in city order)."""
    inp, params = problem.inp, problem.params
    placed: set[int] = set()
    by_pool: dict[int, list[PoolCluster]] = {}
    for c in raw:
        by_pool.setdefault(c.pool, []).append(c)
        placed.update(int(problem.pools[c.pool].idx[i]) for i in c.members)
    excluded = {inp.city_ids.index(c) for c in params.excluded}
    pool_of: dict[int, list[tuple[int, int]]] = {}
    for p, pool in enumerate(problem.pools):
        for a, gi in enumerate(pool.idx.tolist()):
            pool_of.setdefault(gi, []).append((p, a))
    chosen = [inp.theme_names[p.theme] for p in problem.pools if p.theme >= 0]
    # each pool's clusters' working languages (cluster x language), read once for everyone
    working = {
        p: np.array([problem.pools[p].langs[list(c.members)].all(axis=0) for c in clusters])
        for p, clusters in by_pool.items()
    }
    facts = {p: PoolFacts(problem.pools[p], problem.rules) for p in by_pool}
    out: list[UnassignedCity] = []
    for i in range(inp.n):
        if i in placed:
            continue
        cid, name = inp.city_ids[i], inp.names[i]
        if i in excluded:
            out.append(UnassignedCity(cid, name, "excluded by the planner", "excluded"))
        elif problem.cap[i] <= 0 and inp.accepted is not None and inp.accepted[i]:
            out.append(UnassignedCity(cid, name, load_note(problem, i), "capacity"))
        elif problem.cap[i] <= 0:
            out.append(
                UnassignedCity(
                    cid, name, "capacity 0: no coordinator time for clusters", "capacity"
                )
            )
        elif i not in pool_of:
            kind, text = _outside_every_pool(problem, i, chosen)
            out.append(UnassignedCity(cid, name, text, kind))
        else:
            kind, text = _left_out_of_pools(problem, by_pool, working, pool_of[i], facts)
            out.append(UnassignedCity(cid, name, text, kind))
    return out


def _outside_every_pool(problem: PoolProblem, i: int, chosen: Sequence[str]) -> tuple[str, str]:
    """(kind, reason) for a city no pool took."""
    inp, params = problem.inp, problem.params
    if params.kind != "thematic":
        return "rules", "not eligible"
    if not inp.priority.any():
        return "no_theme", (
            "no city in the network prioritises a theme, so there is no theme to cluster on: "
            "ask for geographic clusters"
        )
    wanted = [inp.theme_ids[t] for t in np.flatnonzero(inp.priority[i] > 0)]
    skipped = [t for t in wanted if t in problem.skipped]
    if skipped:
        return "too_few", f"its theme {skipped[0]!r} has no pool: {problem.skipped[skipped[0]]}"
    return "no_theme", f"prioritises none of the selected themes ({and_join(chosen) or 'none'})"


def _left_out_of_pools(
    problem: PoolProblem,
    by_pool: dict[int, list[PoolCluster]],
    working: dict[int, BoolArray],
    mine: Sequence[tuple[int, int]],
    facts: dict[int, PoolFacts],
) -> tuple[str, str]:
    """(kind, reason) for a candidate no cluster took: a language or a full cluster says
    most, so either wins over the pool order."""
    inp, params = problem.inp, problem.params
    reasons: list[tuple[str, str]] = []
    for p, a in mine:
        pool = problem.pools[p]
        label = inp.theme_names[pool.theme] if pool.theme >= 0 else "geographic"
        too_far = _too_far(problem, p, a)
        if too_far is not None:
            reasons.append(("span", too_far))
            continue
        clusters = by_pool.get(p, [])
        if not clusters:
            reasons.append(("too_few", f"no valid {label} cluster could be formed"))
            continue
        shares = (working[p] & pool.langs[a]).any(axis=1)
        speak = [
            c
            for c, ok in zip(clusters, shares, strict=True)
            if ok or not params.require_common_language
        ]
        near = [c for c in speak if facts[p].may_join(a, c.members)]
        if speak and not near:
            reasons.append(
                (
                    "span",
                    f"every {label} cluster it shares a language with has a member more than "
                    f"{params.max_span_km:,.0f} km away (max_span_km)",
                )
            )
            continue
        speak = near
        if not speak:
            langs = sorted(inp.language_codes[b] for b in np.flatnonzero(working[p].any(axis=0)))
            reasons.append(
                (
                    "language",
                    f"shares no language with any {label} cluster "
                    f"(they work in {and_join([language_name(x) for x in langs]) or 'no common language'})",
                )
            )
            continue
        if all(len(c.members) >= params.max_size for c in speak):
            reasons.append(
                (
                    "full",
                    f"every {label} cluster it shares a language with is full "
                    f"(max_size {params.max_size})",
                )
            )
            continue
        reasons.append(("rules", f"joining a {label} cluster would not improve the proposal"))
    kind, text = reasons[0]
    for k2, t2 in reasons:
        if k2 in ("span", "language", "full"):
            kind, text = k2, t2
            break
    return kind, text


NEAR_NAMES = 3
"""How many near cities a left-out city's reason names."""


def _too_far(problem: PoolProblem, p: int, a: int) -> str | None:
    """Why candidate ``a`` of pool ``p`` cannot be in any cluster within the span, if
    distance alone (with the language and country rules) explains it; None otherwise."""
    params, rules = problem.params, problem.rules
    pool = problem.pools[p]
    span = params.max_span_km
    if span is None or pool.xyz is None:
        return None
    inp = problem.inp
    within = f"within {span:,.0f} km"
    need = params.min_size
    near = np.flatnonzero(pool.near(rules, a))
    near = near[near != a]
    names = and_join([inp.names[int(pool.idx[j])] for j in near[:NEAR_NAMES]])
    if len(near) == 0:
        return f"no other candidate {within} (max_span_km)"
    if len(near) < need - 1:
        return f"only {plural(len(near), 'other candidate')} {within} ({names}); a cluster needs {need}"
    if rules.require_language:
        near = near[(pool.langs[near] & pool.langs[a]).any(axis=1)]
        if len(near) == 0:
            return f"no candidate {within} shares a language with it"
        if len(near) < need - 1:
            return (
                f"only {plural(len(near), 'candidate')} {within} "
                f"{'shares' if len(near) == 1 else 'share'} a language with it; "
                f"a cluster needs {need}"
            )
    if not rules.single_country_ok and (pool.country[near] == pool.country[a]).all():
        country = inp.countries[int(pool.idx[a])]
        return (
            f"every candidate {within} that shares a language with it is in {country}, "
            "and a cluster needs two countries"
        )
    return None
