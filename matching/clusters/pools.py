"""From a request to pools: who is a candidate for which cluster, and what is asked of them.

A thematic request builds one *pool* per theme: the cities that prioritise the theme
(priority > 0), are not excluded and have capacity, plus any city locked into a cluster
of that theme. Without ``params.themes`` the ``max_themes`` most demanded themes (sum of
priorities) that can host a cluster are used. A thematic pool's affinity is the input
affinity restricted to its candidates; the theme's own data decide who is a candidate,
what a membership is worth (priority / 5) and who can lead (Index strength). A
geographic request has one pool of every eligible city, with an affinity that blends the
input affinity with proximity: ``(1 - w) * A / max(A) + w * exp(-distance_km / scale)``.

A request with ``max_span_km`` forbids pairs farther apart than the span: their affinity
is set to 0 in the pool (:func:`apart_beyond_span`), so Leiden never joins them and the
resolution is read among pairs that may share a cluster; the rule itself is checked by
``rules`` in both solvers.

Building pools is also where impossible requests are caught early (:func:`build_problem`
with ``strict``): locks that break a rule, a pool that cannot host one valid cluster.
Each refusal is a :class:`ClusterInfeasible` that names the parameter to change and by
how much, because the planner's next step is to change it.

A rule the network's data cannot support at all is waived instead (:func:`rule_waivers`):
with no Index score and no good practice anywhere nobody can be shown to be strong in a
theme, and with no languages listed nobody can be shown to share one. Refusing would ask
for data the network does not keep (a ties-only network still deserves geographic
clusters), so the rule is not applied and the proposal says so in its constraint status.
"""

from __future__ import annotations

import math
import types
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from matching.clusters.model import (
    GEO_KEY,
    ClusterInfeasible,
    ClusterInput,
    ClusterInputError,
    ClusterParams,
)
from matching.clusters.rules import Lock, PoolData, Rules, span_dot, tune_gamma
from matching.kernel.arrays import BoolArray, FloatArray, IntArray, Matrix
from matching.kernel.geometry import EARTH_RADIUS_KM, chord_km, distance_matrix_km, unit_vectors
from matching.kernel.wording import and_join

POOL_DENSE_MAX = 2500
"""A pool of at most this many candidates gets a dense affinity matrix."""
REGION_CITIES = 12_000
"""A geographic request over more cities than this is solved as regional pools
(:func:`regions`): one pool's working state grows with cities x clusters (about 20 GB
for 100,000 cities), a region's with its own share, and no geographic cluster spans
more than a region anyway (its members are within the span, 1,500 km by default)."""
GEO_NEIGHBOURS = 31
"""Beyond ``POOL_DENSE_MAX``, proximity is kept for each city's nearest 31 (itself included)."""


@dataclass(frozen=True, eq=False)
class PoolProblem:
    """One request made ready to solve: its pools, the rules they share, the capacities.

    ``pool_strength`` and ``pool_lead_theme`` hold, per pool, each candidate's lead score
    and the theme it is on (the report names the lead from them); ``explicit`` marks the
    pools the planner asked for (they must not come out empty); ``skipped`` says why a
    theme got no pool and ``mixed_waived`` why a pool need not mix; ``waived`` maps a
    constraint the data cannot support (``"lead"``, ``"common_language"``) to why.
    """

    inp: ClusterInput
    params: ClusterParams
    pools: tuple[PoolData, ...]
    pool_strength: tuple[FloatArray, ...]
    pool_lead_theme: tuple[IntArray, ...]
    explicit: tuple[bool, ...]
    rules: Rules
    cap: IntArray
    skipped: Mapping[str, str]
    mixed_waived: Mapping[int, str]
    waived: Mapping[str, str]


@dataclass(frozen=True, eq=False)
class CityCodes:
    """Per-city facts every pool slices: country code, national networks, membership."""

    country: IntArray
    networks: BoolArray  # n x networks
    intl: BoolArray


def city_codes(inp: ClusterInput) -> CityCodes:
    countries = {c: k for k, c in enumerate(sorted(set(inp.countries)))}
    country = np.asarray([countries[c] for c in inp.countries], dtype=np.int64)
    net_ids = sorted({g for row in inp.networks for g in row})
    networks = np.zeros((inp.n, len(net_ids)), dtype=bool)
    for i, row in enumerate(inp.networks):
        for g in row:
            networks[i, net_ids.index(g)] = True
    intl = np.asarray([m == "international" for m in inp.membership])
    return CityCodes(country, networks, intl)


def base_capacity(inp: ClusterInput, params: ClusterParams) -> IntArray:
    """Clusters each city can be in at all: ``params.max_per_city`` when given, else its
    capacity (from its coordinator's hours)."""
    if params.max_per_city is not None:
        return np.full(inp.n, params.max_per_city, dtype=np.int64)
    return np.asarray(inp.capacity, dtype=np.int64).copy()


def effective_capacity(inp: ClusterInput, params: ClusterParams) -> IntArray:
    """New clusters each city can join: its :func:`base_capacity` less the accepted
    clusters of the running period it is already in (``inp.accepted``), never below 0:
    a coordinator's hours cover the clusters already running too."""
    cap = base_capacity(inp, params)
    if inp.accepted is not None:
        cap = np.maximum(cap - np.fromiter((len(a) for a in inp.accepted), np.int64, inp.n), 0)
    return cap


def lead_capable(inp: ClusterInput, params: ClusterParams) -> BoolArray:
    """``n x T``: the city can lead a cluster on the theme.

    Strong means an Index score of at least ``lead_min_strength``, or -- for themes the
    Index does not score, and for cities it has not scored -- a published good practice on
    a theme the city prioritises at 3/5 or more.
    """
    strong = np.nan_to_num(inp.strength, nan=-1.0) >= params.lead_min_strength
    if inp.practices is not None:
        strong = strong | ((inp.priority >= 3) & inp.practices)
    return np.asarray(strong)


def rule_waivers(inp: ClusterInput, params: ClusterParams) -> dict[str, str]:
    """The rules of ``params`` the network's data cannot support anywhere, each with why
    (keyed by constraint name); a rule the data supports somewhere is always applied."""
    out: dict[str, str] = {}
    if np.isnan(inp.strength).all() and (inp.practices is None or not inp.practices.any()):
        out["lead"] = (
            "the network has no Index scores and no good practices, "
            "so no city can be shown to be strong in a theme"
        )
    if params.require_common_language and not inp.languages.any():
        out["common_language"] = "the network lists no languages for its cities"
    return out


def apply_waivers(
    inp: ClusterInput, params: ClusterParams
) -> tuple[ClusterParams, BoolArray, dict[str, str]]:
    """The request as it can be applied, who can lead (``n x T``), and the waived rules."""
    waived = rule_waivers(inp, params)
    if "common_language" in waived:
        params = replace(params, require_common_language=False)
    lead_ok = lead_capable(inp, params)
    if "lead" in waived:
        lead_ok = np.ones_like(lead_ok)
    return params, lead_ok, waived


def regions(inp: ClusterInput, idx: IntArray, together: Sequence[Sequence[int]]) -> list[IntArray]:
    """``idx`` (global city indices) split into regions of at most ``REGION_CITIES``: each
    part halved at the median of its widest axis (of the cities' unit vectors) until it
    fits, then every group kept ``together`` (a planner's lock) moved whole into the region
    of its first member. Deterministic; regions in the order of their first city."""
    xyz = unit_vectors(inp.lat[idx], inp.lon[idx])
    todo, done = [np.arange(len(idx))], []
    while todo:
        part = todo.pop()
        if len(part) <= REGION_CITIES:
            done.append(part)
            continue
        pts = xyz[part]
        axis = int(np.argmax(pts.max(axis=0) - pts.min(axis=0)))
        order = np.argsort(pts[:, axis], kind="stable")
        half = len(part) // 2
        todo += [part[order[half:]], part[order[:half]]]
    region_of = np.empty(len(idx), dtype=np.int64)
    for r, part in enumerate(done):
        region_of[part] = r
    at = {int(g): a for a, g in enumerate(idx)}
    for group in together:
        region_of[[at[g] for g in group]] = region_of[at[group[0]]]
    out = [np.sort(idx[region_of == r]) for r in range(len(done))]
    return sorted((r for r in out if len(r)), key=lambda r: int(r[0]))


def pool_affinity(A: Matrix, idx: IntArray) -> Matrix:
    """``A`` restricted to the candidates ``idx``, zero diagonal; dense unless large."""
    if isinstance(A, np.ndarray):
        W = np.array(A[np.ix_(idx, idx)], dtype=np.float64)
        np.fill_diagonal(W, 0.0)
        return W
    S = sp.csr_matrix(A)[idx][:, idx].tocsr()
    if len(idx) <= POOL_DENSE_MAX:
        W = S.toarray()
        np.fill_diagonal(W, 0.0)
        return W
    S.setdiag(0.0)
    S.eliminate_zeros()
    return S


def geographic_affinity(inp: ClusterInput, params: ClusterParams, idx: IntArray) -> Matrix:
    """The input affinity (scaled to a maximum of 1) blended with proximity."""
    A = pool_affinity(inp.affinity, idx)
    top = float(A.max()) if A.shape[0] > 1 else 0.0
    scale = top if top > 0 else 1.0
    w = params.distance_weight
    lat, lon = inp.lat[idx], inp.lon[idx]
    if len(idx) <= POOL_DENSE_MAX:
        prox = np.exp(-distance_matrix_km(lat, lon, lat, lon) / params.distance_scale_km)
        A_d = A if isinstance(A, np.ndarray) else A.toarray()
        W = (1 - w) * A_d / scale + w * prox
        np.fill_diagonal(W, 0.0)
        return np.asarray(W)
    from scipy.spatial import cKDTree  # only large geographic pools pay its import

    # nearest neighbours by chord length on the unit sphere (same order as great-circle)
    xyz = unit_vectors(lat, lon)
    k = min(len(idx), GEO_NEIGHBOURS)
    chord, nb = cKDTree(xyz).query(xyz, k=k)
    rows = np.repeat(np.arange(len(idx)), k)
    vals = np.exp(-chord_km(chord.ravel()) / params.distance_scale_km)
    P = sp.csr_matrix((vals, (rows, nb.ravel())), shape=(len(idx), len(idx)))
    P = P.maximum(P.T)
    W = ((1 - w) / scale) * sp.csr_matrix(A) + w * P
    W.setdiag(0.0)
    W.eliminate_zeros()
    return sp.csr_matrix(W)


def apart_beyond_span(W: Matrix, xyz: FloatArray, span_km: float | None) -> Matrix:
    """``W`` with 0 for every pair farther apart than ``span_km`` (unchanged without one)."""
    if span_km is None or W.shape[0] < 2:
        return W
    limit = span_dot(span_km)
    if isinstance(W, np.ndarray):
        out = np.array(W, dtype=np.float64)
        out[xyz @ xyz.T < limit] = 0.0
        return out
    coo = sp.coo_matrix(W)
    near = np.einsum("ij,ij->i", xyz[coo.row], xyz[coo.col]) >= limit
    return sp.csr_matrix(
        (coo.data[near], (coo.row[near], coo.col[near])), shape=W.shape, dtype=np.float64
    )


def span_km_of(lat: FloatArray, lon: FloatArray) -> float:
    """The largest great-circle distance between two of the places (0 for fewer than 2)."""
    if len(lat) < 2:
        return 0.0
    return float(distance_matrix_km(lat, lon, lat, lon).max())


def smallest_span_for(xyz: FloatArray, lat: FloatArray, lon: FloatArray, size: int) -> float:
    """The span of the tightest group of ``size`` candidates around one of them (each
    candidate with its ``size - 1`` nearest): a span that lets at least one such group be."""
    from scipy.spatial import cKDTree  # only requests with a span pay its import

    k = len(xyz)
    size = min(size, k)
    _, nb = cKDTree(xyz).query(xyz, k=size)
    nb = np.asarray(nb).reshape(k, size)
    best = math.inf
    for row in nb:
        best = min(best, span_km_of(lat[row], lon[row]))
    return best


def slot_theme(params: ClusterParams, inp: ClusterInput, slot: str) -> int:
    """The theme index a lock slot belongs to (-1 for geographic requests)."""
    if params.kind == "geographic":
        return -1
    theme = slot.split("#", 1)[0]
    if theme not in inp.theme_ids:
        raise ClusterInputError(
            f"locked slot {slot!r} names no known theme: name it '<theme_id>' or '<theme_id>#<label>' "
            f"with a theme id such as {inp.theme_ids[0] if inp.theme_ids else 'education'!r}"
        )
    return inp.theme_ids.index(theme)


# --------------------------------------------------------------------------- building


def build_problem(inp: ClusterInput, params: ClusterParams, strict: bool = True) -> PoolProblem:
    """The pools, rules and capacities of a request.

    ``strict`` refuses a request no proposal can satisfy (locks that break a rule, a pool
    that cannot host a valid cluster). ``evaluate_clusters`` builds with ``strict=False``:
    it checks groups the planner already chose, so a broken rule is a finding to report
    there, not a reason to refuse.
    """
    pos = {c: i for i, c in enumerate(inp.city_ids)}
    unknown = sorted(set(params.excluded) - set(pos))
    if unknown:
        raise ClusterInputError(f"excluded city {unknown[0]!r} is not in the network")
    cap = effective_capacity(inp, params)
    excluded = np.zeros(inp.n, dtype=bool)
    excluded[[pos[c] for c in params.excluded]] = True
    eligible = ~excluded & (cap > 0)
    params, lead_ok, waived = apply_waivers(inp, params)
    locks = _locks(inp, params, pos, excluded)
    apart = _apart(inp, params, pos, locks)
    if strict:
        _check_locks(inp, params, cap, locks)
    themes, explicit, skipped = _pool_themes(inp, params, eligible, locks)
    codes = city_codes(inp)

    pools: list[PoolData] = []
    strengths: list[FloatArray] = []
    lead_theme: list[IntArray] = []
    explicit_out: list[bool] = []
    mixed_waived: dict[int, str] = {}
    parts: list[tuple[int, bool, IntArray, list[tuple[str, list[int]]]]] = []
    for t, is_explicit in zip(themes, explicit, strict=True):
        mask = eligible.copy() if t < 0 else eligible & (inp.priority[:, t] > 0)
        theme_locks = [(slot, m) for slot, (tt, m) in locks.items() if tt == t]
        for _, m in theme_locks:
            mask[m] = True
        everyone = np.flatnonzero(mask).astype(np.int64)
        if t >= 0 or params.n_clusters is not None or len(everyone) <= REGION_CITIES:
            parts.append((t, is_explicit, everyone, theme_locks))
            continue
        for region in regions(inp, everyone, [m for _, m in theme_locks]):
            inside = set(region.tolist())
            mine = [(slot, m) for slot, m in theme_locks if m[0] in inside]
            parts.append((t, False, region, mine))
    n_regions = sum(1 for t, _, _, _ in parts if t < 0)
    for t, is_explicit, idx, my_locks in parts:
        key = GEO_KEY if t < 0 else inp.theme_ids[t]
        local = {int(g): a for a, g in enumerate(idx)}
        W, cov, st, lt, lok = _pool_arrays(inp, params, t, idx, lead_ok)
        xyz = unit_vectors(inp.lat[idx], inp.lon[idx])
        W = apart_beyond_span(W, xyz, params.max_span_km)
        away = _local_apart(apart, local)
        W = _without_pairs(W, away)
        if "lead" in waived:  # a geographic pool of a network without themes too
            lok = np.ones(len(idx), dtype=bool)
        refusal = _precheck(inp, params, key, idx, lok, st, codes.networks[idx]) if strict else None
        if refusal is not None:
            if is_explicit:
                raise refusal
            if t < 0 and n_regions > 1:
                where = and_join([inp.names[int(g)] for g in idx[:3]])
                skipped[f"{key} region of {where}"] = refusal.detail
            else:
                skipped[key] = refusal.detail
            continue
        intl = codes.intl[idx]
        n_int, n_nat = int(intl.sum()), int((~intl).sum())
        if params.mixed_membership and n_int and n_nat:
            allowance = min(n_int, n_nat)
        else:
            allowance = -1
            if params.mixed_membership:
                kind_missing = "national-network" if n_int else "international"
                mixed_waived[len(pools)] = f"the {key} pool has no {kind_missing} city"
        pools.append(
            PoolData(
                key=key,
                theme=t,
                idx=idx,
                W=W,
                gamma=float(tune_gamma(W, params.min_size, params.max_size)),
                cov=np.asarray(cov, dtype=np.float64),
                lead_ok=np.asarray(lok, dtype=bool),
                langs=np.asarray(inp.languages[idx], dtype=bool),
                intl=intl,
                national=~intl,
                country=codes.country[idx],
                net=codes.networks[idx],
                locks=tuple(Lock(slot, tuple(local[g] for g in m)) for slot, m in my_locks),
                n_clusters=params.n_clusters,
                mix_allowance=allowance,
                xyz=xyz,
                apart=away,
            )
        )
        strengths.append(np.asarray(st, dtype=np.float64))
        lead_theme.append(np.asarray(lt, dtype=np.int64))
        explicit_out.append(is_explicit)

    return PoolProblem(
        inp=inp,
        params=params,
        pools=tuple(pools),
        pool_strength=tuple(strengths),
        pool_lead_theme=tuple(lead_theme),
        explicit=tuple(explicit_out),
        rules=_rules(params, pools),
        cap=cap,
        skipped=types.MappingProxyType(skipped),
        mixed_waived=types.MappingProxyType(mixed_waived),
        waived=types.MappingProxyType(waived),
    )


def _locks(
    inp: ClusterInput, params: ClusterParams, pos: Mapping[str, int], excluded: BoolArray
) -> dict[str, tuple[int, list[int]]]:
    """The planner's locks as slot -> (theme index, sorted global members)."""
    locks: dict[str, tuple[int, list[int]]] = {}
    for slot, ids in params.locked.items():
        missing = [c for c in ids if c not in pos]
        if missing:
            raise ClusterInputError(
                f"locked slot {slot!r} names {missing[0]!r}, which is not in the network"
            )
        members = sorted({pos[c] for c in ids})
        for i in members:
            if excluded[i]:
                raise ClusterInputError(
                    f"{inp.names[i]} is both locked (slot {slot!r}) and excluded: remove it from one of them"
                )
        locks[slot] = (slot_theme(params, inp, slot), members)
    return locks


def together_slots(
    inp: ClusterInput, params: ClusterParams, groups: Sequence[Sequence[str]]
) -> dict[str, tuple[str, ...]]:
    """A planner's "keep these together" groups as lock slots (``ClusterParams.locked``).

    A thematic group goes to the theme its members prioritise most (among
    ``params.themes`` when given; ties: the earlier theme), so the planner names cities,
    never a slot; a geographic group needs no theme. Unknown cities are refused by name.
    """
    pos = {c: i for i, c in enumerate(inp.city_ids)}
    out: dict[str, tuple[str, ...]] = {}
    for k, group in enumerate(groups, 1):
        ids = tuple(dict.fromkeys(str(c) for c in group))
        missing = [c for c in ids if c not in pos]
        if missing:
            raise ClusterInputError(
                f"keep_together names {missing[0]!r}, which is not in the network"
            )
        if len(ids) < 2:
            raise ClusterInputError(f"keep_together group {k} names fewer than two cities")
        if params.kind == "geographic" or not inp.theme_ids:
            out[f"together-{k}"] = ids
            continue
        themes = (
            [inp.theme_ids.index(t) for t in params.themes if t in inp.theme_ids]
            if params.themes
            else list(range(len(inp.theme_ids)))
        )
        rows = [pos[c] for c in ids]
        t = max(themes, key=lambda t: (int(inp.priority[rows, t].sum()), -t))
        out[f"{inp.theme_ids[t]}#together-{k}"] = ids
    return out


def _apart(
    inp: ClusterInput,
    params: ClusterParams,
    pos: Mapping[str, int],
    locks: Mapping[str, tuple[int, list[int]]],
) -> list[tuple[int, int]]:
    """The planner's keep-apart pairs as global indices; a pair that is also kept together
    (one lock holds both: a lock or an edited cluster) is refused, naming the pair, since
    no proposal can honour both."""
    pairs: list[tuple[int, int]] = []
    for a, b in params.keep_apart:
        missing = [c for c in (a, b) if c not in pos]
        if missing:
            raise ClusterInputError(f"keep_apart names {missing[0]!r}, which is not in the network")
        pairs.append((pos[a], pos[b]))
    for slot, (_, members) in locks.items():
        inside = set(members)
        for i, j in pairs:
            if i in inside and j in inside:
                raise ClusterInfeasible(
                    f"{inp.names[i]} ({inp.city_ids[i]}) and {inp.names[j]} ({inp.city_ids[j]}) "
                    f"are to be kept apart but {_together(params, slot)} puts them in one "
                    "cluster: drop the pair from keep_apart or take one of them out",
                    constraint="keep_apart",
                )
    return pairs


def _together(params: ClusterParams, slot: str) -> str:
    """How a planner asked for a group, in words (a lock slot is an internal name)."""
    label = slot.split("#", 1)[1] if "#" in slot else slot
    return f"cluster {label!r}" if params.kind == "thematic" else f"group {label!r}"


def _local_apart(
    pairs: Sequence[tuple[int, int]], local: Mapping[int, int]
) -> Mapping[int, frozenset[int]]:
    """The keep-apart pairs inside one pool, both ways, in its local indices."""
    away: dict[int, set[int]] = {}
    for i, j in pairs:
        if i in local and j in local:
            away.setdefault(local[i], set()).add(local[j])
            away.setdefault(local[j], set()).add(local[i])
    return types.MappingProxyType({k: frozenset(v) for k, v in away.items()})


def _without_pairs(W: Matrix, away: Mapping[int, frozenset[int]]) -> Matrix:
    """``W`` with 0 between kept-apart candidates, so Leiden has no edge to join them by."""
    if not away:
        return W
    rows = [i for i, js in away.items() for _ in js]
    cols = [j for js in away.values() for j in js]
    if isinstance(W, np.ndarray):
        out = np.array(W, dtype=np.float64)
        out[rows, cols] = 0.0
        return out
    lil = sp.lil_matrix(W)
    lil[rows, cols] = 0.0
    out_s = sp.csr_matrix(lil)
    out_s.eliminate_zeros()
    return out_s


def _pool_themes(
    inp: ClusterInput,
    params: ClusterParams,
    eligible: BoolArray,
    locks: Mapping[str, tuple[int, list[int]]],
) -> tuple[list[int], list[bool], dict[str, str]]:
    """Which pools to build: theme indices (-1: geographic), whether each was asked for,
    and why demanded themes were skipped."""
    if params.kind == "geographic":
        return [-1], [True], {}
    themes: list[int] = []
    explicit: list[bool] = []
    skipped: dict[str, str] = {}
    if params.themes is not None:
        bad = [t for t in params.themes if t not in inp.theme_ids]
        if bad:
            raise ClusterInputError(
                f"theme {bad[0]!r} is not in the network; known themes: {and_join(inp.theme_ids[:8])}"
            )
        themes = [inp.theme_ids.index(t) for t in dict.fromkeys(params.themes)]
        explicit = [True] * len(themes)
    else:
        demand = (inp.priority * eligible[:, None]).sum(axis=0)
        count = ((inp.priority > 0) & eligible[:, None]).sum(axis=0)
        order = sorted(range(len(inp.theme_ids)), key=lambda t: (-int(demand[t]), t))
        for t in order:
            if count[t] < params.min_size:
                if count[t] > 0:
                    skipped[inp.theme_ids[t]] = (
                        f"only {count[t]} eligible cities prioritise it (min_size {params.min_size})"
                    )
                continue
            if len(themes) < params.max_themes:
                themes.append(t)
                explicit.append(False)
    for t, _ in locks.values():
        if t not in themes:
            themes.append(t)
            explicit.append(True)
    return themes, explicit, skipped


def _pool_arrays(
    inp: ClusterInput, params: ClusterParams, t: int, idx: IntArray, lead_ok: BoolArray
) -> tuple[Matrix, FloatArray, FloatArray, IntArray, BoolArray]:
    """A pool's affinity, coverage per candidate, lead score, the theme of that score and
    who can lead; a geographic pool leads on each city's strongest theme."""
    T = len(inp.theme_ids)
    if t >= 0:
        W = pool_affinity(inp.affinity, idx)
        cov = np.maximum(inp.priority[idx, t], 1) / 5.0
        st = np.nan_to_num(inp.strength[idx, t], nan=-1.0)
        return W, cov, st, np.full(len(idx), t, dtype=np.int64), lead_ok[idx, t]
    W = geographic_affinity(inp, params, idx)
    st_all = np.nan_to_num(inp.strength[idx], nan=-1.0)
    lt = np.argmax(st_all, axis=1) if T else np.zeros(len(idx), dtype=np.int64)
    st = st_all[np.arange(len(idx)), lt] if T else np.full(len(idx), -1.0)
    lok = np.asarray(lead_ok[idx].any(axis=1)) if T else np.zeros(len(idx), dtype=bool)
    return W, np.ones(len(idx)), st, lt, lok


def _rules(params: ClusterParams, pools: Sequence[PoolData]) -> Rules:
    """The rules of a request, with a coverage weight no cohesion change can outweigh."""
    spread = 0.0
    for p in pools:
        top = float(p.W.max()) if p.k > 1 else 0.0
        spread = max(spread, top - p.gamma, p.gamma)
    return Rules(
        min_size=params.min_size,
        max_size=params.max_size,
        require_language=params.require_common_language,
        single_country_ok=params.allow_single_country,
        single_network_ok=params.allow_single_network,
        coverage_weight=5.0 * params.max_size * max(spread, 1e-6),
        max_span_km=params.max_span_km,
    )


# --------------------------------------------------------------------------- refusals


def _check_locks(
    inp: ClusterInput,
    params: ClusterParams,
    cap: IntArray,
    locks: Mapping[str, tuple[int, list[int]]],
) -> None:
    """Refuse locks no proposal can honour, saying what to relax."""
    lock_count = Counter(i for _, m in locks.values() for i in m)
    for i, k in sorted(lock_count.items()):
        if k > cap[i]:
            raise ClusterInfeasible(
                f"{inp.names[i]} is locked into {k} clusters but can be in at most {cap[i]}: "
                f"raise max_per_city to {k} or unlock it from {k - cap[i]} slot(s)",
                constraint="max_per_city",
                suggestion=k,
            )
    for slot, (_, members) in locks.items():
        if len(members) > params.max_size:
            raise ClusterInfeasible(
                f"locked slot {slot!r} keeps {len(members)} cities together but max_size is "
                f"{params.max_size}: raise max_size to {len(members)} or unlock {len(members) - params.max_size} of them",
                constraint="max_size",
                suggestion=len(members),
            )
        span = params.max_span_km
        if span is not None and len(members) > 1:
            d = distance_matrix_km(
                inp.lat[members], inp.lon[members], inp.lat[members], inp.lon[members]
            )
            if d.max() > span:
                a, b = np.unravel_index(int(np.argmax(d)), d.shape)
                need = math.ceil(float(d.max()))
                raise ClusterInfeasible(
                    f"the cities locked in slot {slot!r} are up to {d.max():,.0f} km apart "
                    f"({inp.names[members[a]]} and {inp.names[members[b]]}) but max_span_km is "
                    f"{span:,.0f}: raise max_span_km to {need} or unlock one of them",
                    constraint="max_span_km",
                    suggestion=need,
                )
        if params.require_common_language and not inp.languages[members].all(axis=0).any():
            raise ClusterInfeasible(
                f"the cities locked in slot {slot!r} ({and_join([inp.names[i] for i in members])}) share no "
                "language: drop require_common_language or unlock one of them",
                constraint="require_common_language",
            )
    if params.n_clusters is not None:
        slots_per_theme = Counter(t for t, _ in locks.values())
        for t, k in slots_per_theme.items():
            if k > params.n_clusters:
                what = "geographic clusters" if t < 0 else f"theme {inp.theme_ids[t]!r}"
                raise ClusterInfeasible(
                    f"{what} has {k} locked slots but n_clusters is {params.n_clusters}: "
                    f"raise n_clusters to {k} or merge the slots",
                    constraint="n_clusters",
                    suggestion=k,
                )
    per_theme_slots = Counter((t, i) for t, m in locks.values() for i in m)
    twice = [(t, i) for (t, i), k in per_theme_slots.items() if k > 1]
    if twice:
        t, i = twice[0]
        what = "geographic" if t < 0 else repr(inp.theme_ids[t])
        raise ClusterInfeasible(
            f"{inp.names[i]} is locked into two {what} clusters but a city joins one cluster per theme: "
            "unlock it from one slot",
            constraint="locked",
        )


def _precheck(
    inp: ClusterInput,
    params: ClusterParams,
    key: str,
    idx: IntArray,
    lok: BoolArray,
    strength: FloatArray,
    net: BoolArray,
) -> ClusterInfeasible | None:
    """Necessary conditions for at least one valid cluster in a pool, as a ready error."""
    lo = params.min_size
    what = f"theme {key!r}" if key != GEO_KEY else "geographic clusters"
    k = len(idx)
    if k < lo:
        who, more = (
            ("not excluded, with capacity", "add cities")
            if key == GEO_KEY
            else ("prioritising it, not excluded, with capacity", "add cities that prioritise it")
        )
        fix = f"lower min_size to {k} or {more}" if k >= 2 else f"a cluster needs 2: {more}"
        return ClusterInfeasible(
            f"{what} has {k} candidate {'city' if k == 1 else 'cities'} ({who}) but min_size is "
            f"{lo}: {fix}",
            constraint="min_size",
            theme=key,
            suggestion=k if k >= 2 else None,
        )
    if params.n_clusters is not None and params.n_clusters * lo > k:
        return ClusterInfeasible(
            f"n_clusters {params.n_clusters} for {what} needs {params.n_clusters * lo} cities but {k} are "
            f"candidates: lower n_clusters to {k // lo} or min_size to {max(2, k // params.n_clusters)}",
            constraint="n_clusters",
            theme=key,
            suggestion=k // lo,
        )
    span = params.max_span_km
    if span is not None and k >= 2:
        refusal = _span_refusal(inp, idx, lo, span, what, key)
        if refusal is not None:
            return refusal
    if not lok.any():
        best = int(np.argmax(strength))
        known = strength[best] >= 0
        hint = (
            f"lower lead_min_strength to {math.floor(strength[best])} ({inp.names[idx[best]]} scores that)"
            if known
            else "add Index scores for its candidates"
        )
        return ClusterInfeasible(
            f"no candidate for {what} can lead: none scores {params.lead_min_strength:g} or more "
            f"nor has a good practice on it: {hint}",
            constraint="lead_min_strength",
            theme=key,
            suggestion=math.floor(strength[best]) if known else None,
        )
    groups = _language_groups(inp, params, key, idx, lok, strength)
    if isinstance(groups, ClusterInfeasible):
        return groups
    if not params.allow_single_country:
        cc = np.asarray([inp.countries[g] for g in idx])
        if not any(len(set(cc[m])) > 1 for m in groups):
            only = sorted(set(cc))
            return ClusterInfeasible(
                f"every group of candidates for {what} that could form a cluster is in one country "
                f"({and_join(only)}): set allow_single_country=True",
                constraint="allow_single_country",
                theme=key,
                suggestion=True,
            )
    if (
        not params.allow_single_network
        and net.shape[1]
        and all(net[m].all(axis=0).any() for m in groups)
    ):
        return ClusterInfeasible(
            f"every group of candidates for {what} that could form a cluster belongs to one national "
            "network: set allow_single_network=True",
            constraint="allow_single_network",
            theme=key,
            suggestion=True,
        )
    return None


def _span_refusal(
    inp: ClusterInput, idx: IntArray, lo: int, span: float, what: str, key: str
) -> ClusterInfeasible | None:
    """Refuse a pool where no candidate has ``lo - 1`` others within the span, naming a
    span that would let one group of ``lo`` be."""
    from scipy.spatial import cKDTree  # only requests with a span pay its import

    xyz = unit_vectors(inp.lat[idx], inp.lon[idx])
    chord = 2.0 * math.sin(min(span / EARTH_RADIUS_KM, math.pi) / 2.0)
    counts = cKDTree(xyz).query_ball_point(xyz, r=chord * (1 + 1e-9), return_length=True)
    if int(np.max(counts)) >= lo:
        return None
    need = math.ceil(smallest_span_for(xyz, inp.lat[idx], inp.lon[idx], lo))
    most = int(np.max(counts))
    fix = f"raise max_span_km to {need}" + (f" or lower min_size to {most}" if most >= 2 else "")
    return ClusterInfeasible(
        f"no {lo} candidates for {what} lie within max_span_km {span:,.0f} km of one another "
        f"(at most {most} do): {fix}",
        constraint="max_span_km",
        theme=key,
        suggestion=need,
    )


def _language_groups(
    inp: ClusterInput,
    params: ClusterParams,
    key: str,
    idx: IntArray,
    lok: BoolArray,
    strength: FloatArray,
) -> list[BoolArray] | ClusterInfeasible:
    """The candidate groups a valid cluster could come from: the speakers of each language
    at least ``min_size`` candidates and a possible lead share (everyone when no common
    language is required), or why there is none."""
    lo = params.min_size
    what = f"theme {key!r}" if key != GEO_KEY else "geographic clusters"
    if not params.require_common_language:
        return [np.ones(len(idx), dtype=bool)]
    langs = inp.languages[idx]
    speakers = langs.sum(axis=0)
    big = speakers >= lo
    if not big.any():
        most = int(speakers.max()) if speakers.size else 0
        if most < 2:
            return ClusterInfeasible(
                f"no two candidates for {what} share a language: drop require_common_language",
                constraint="require_common_language",
                theme=key,
                suggestion=False,
            )
        return ClusterInfeasible(
            f"min_size {lo} needs {lo} cities sharing a language for {what} but at most {most} do: "
            f"lower min_size to {most} or drop require_common_language",
            constraint="min_size",
            theme=key,
            suggestion=most,
        )
    led = [b for b in np.flatnonzero(big) if (langs[:, b] & lok).any()]
    if not led:
        cands = [int(b) for b in np.flatnonzero(big)]
        best_b = max(cands, key=lambda b: float(strength[langs[:, b]].max()))
        s = float(strength[langs[:, best_b]].max())
        return ClusterInfeasible(
            f"no city that can lead {what} shares a language with {lo - 1} other candidates: lower "
            f"lead_min_strength to {math.floor(max(s, 0))} or drop require_common_language",
            constraint="lead_min_strength",
            theme=key,
            suggestion=math.floor(max(s, 0)),
        )
    return [langs[:, b] for b in led]
