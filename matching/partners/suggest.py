"""Partner suggestions for a city: reciprocal, filtered, diverse, each with its reasons.

The score of a pair (i, j) rewards what both sides gain, not just one:

    benefit(i <- j) = shared * shared(i, j) + gain * gain(i <- j)
    reciprocal      = 2 * b_ij * b_ji / (b_ij + b_ji)        (harmonic mean: both must gain)
    score           = reciprocal + similarity * max(cos, 0) + language * min(shared langs, 2) / 2
                      + proximity * exp(-km / 1500) + graph * log(1 + adamic_adar)
                      + same_country * [same country]

with the weights of ``PartnerWeights``. The graph term gives warm introductions (partners
of partners) their due; the same-country term is negative because the network exists to
connect cities across borders (national networks already connect a country's cities).
Measured on the sample by hiding 20% of the ties (scripts/bench_partners.py), these
defaults rank hidden ties at least as well as Adamic-Adar alone while keeping the
thematic terms in charge where the graph says nothing (newcomers, isolated cities).

The top list is then re-ranked for diversity (each further city of a country already
listed is discounted by ``DIVERSITY``) and for exposure (national-network members and
smaller cities get a small lift, so the same big names do not fill every list). Filters
narrow the candidates first; forbidden pairs never appear; forced pairs always do. When
a theme is asked for, the graph weight is scaled down (``graph_with_theme``): the user
told us what matters, and partners of partners should not crowd out the theme's leaders.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from graph.errors import InvalidInput
from matching.kernel.arrays import NetworkArrays
from matching.kernel.features import PRACTICE_BONUS
from matching.kernel.geometry import arc_km, haversine_km
from matching.kernel.scores import PROXIMITY_KM, PartnerWeights
from matching.partners.index import PartnerIndex, cached_partner_index
from matching.partners.learned import PartnerModel, learned_suggestion, rank_learned
from matching.partners.model import (
    DIVERSITY,
    F,
    PartnerFilters,
    PartnerResult,
    UnknownCity,
)
from matching.partners.report import _ReasonContext, _suggestion
from matching.partners.terms import _columns, _Graph, _graph, _query_themes


def _pool(
    ix: PartnerIndex, i: int, filters: PartnerFilters, theme: int | None, graph: _Graph
) -> NDArray[np.bool_]:
    """The cities that pass the filters (exact, over every city)."""
    arr = ix.arrays
    ok = np.ones(arr.n, dtype=bool)
    ok[i] = False
    if filters.exclude_current:
        ok[graph.partners] = False
    if theme is not None:
        ok &= ix.theme_ok_t[theme]
    if filters.languages:
        idx = [arr.language_codes.index(c) for c in filters.languages if c in arr.language_codes]
        ok &= arr.languages[:, idx].any(axis=1) if idx else False
    if filters.shared_language and arr.languages[i].any():
        ok &= arr.languages[:, arr.languages[i]].any(axis=1)
    if filters.max_distance_km is not None:
        ok &= haversine_km(arr.lat[i], arr.lon[i], arr.lat, arr.lon) <= filters.max_distance_km
    if filters.membership is not None:
        ok &= arr.national == (filters.membership == "national")
    for city in filters.forbidden:
        if city in arr.index:
            ok[arr.index[city]] = False
    return ok


def _check_pairs(arr: NetworkArrays, city_id: str, filters: PartnerFilters) -> None:
    """Forced and forbidden partners must name other cities, and no city can be both."""
    for what, ids in (("forced", filters.forced), ("forbidden", filters.forbidden)):
        unknown = [c for c in ids if c not in arr.index]
        if unknown:
            raise UnknownCity(f"{what} partners name no city: {', '.join(map(repr, unknown))}")
        if city_id in ids:
            raise InvalidInput(f"{city_id!r} cannot be its own {what} partner")
    both = sorted(set(filters.forced) & set(filters.forbidden))
    if both:
        raise InvalidInput(f"{', '.join(map(repr, both))} cannot be both forced and forbidden")


def _top(values: F, m: int) -> NDArray[np.int64]:
    """Positions of the ``m`` largest values, largest first, ties by position (a stable sort's order)."""
    values = np.where(np.isnan(values), -np.inf, values)
    if len(values) > m:
        part = np.argpartition(-values, m - 1)[:m]
        threshold = values[part].min()
        above = np.flatnonzero(values > threshold)
        level = np.flatnonzero(values == threshold)[: m - len(above)]
        chosen = np.concatenate([above, level])
    else:
        chosen = np.arange(len(values))
    return chosen[np.lexsort((chosen, -values[chosen]))]


def _rest(ix: PartnerIndex, i: int, theme: int | None, graph: _Graph, w: PartnerWeights) -> F:
    """Every score term but profile similarity, for every city. Used only to bound the
    score, never shown, so it is written for whole-row passes rather than to mirror
    ``_columns`` line by line: the same terms, rearranged (equal up to rounding; tested)."""
    n = ix.n
    mine, p_mine, gain_themes, gain_w = _query_themes(ix, i, theme)
    tmp = np.empty(n)
    inter = np.zeros(n)
    for t, p in zip(mine, p_mine, strict=True):
        inter += np.minimum(ix.pri_t[t], p, out=tmp)
    # b_ij: what i gets from each city (shared priorities, its stronger scores, its practices)
    if theme is None:
        b_ij = inter * (w.shared / max(float(ix.psum[i]), 1.0))
    else:
        b_ij = ix.pri_t[theme] * (w.shared * max(float(ix.pri[i, theme]), 3.0) / 25.0)
    for t, wt in zip(gain_themes, gain_w, strict=True):
        if ix.known[i, t]:  # max(s_j - s_i, 0), and 0 where s_j is unknown (-inf)
            s_i = ix.s0[i, t]
            np.maximum(ix.score_t[t], s_i, out=tmp)
            tmp -= s_i
            tmp *= w.gain * wt / 100.0
            b_ij += tmp
        b_ij[ix.practice_city[ix.practice_indptr[t] : ix.practice_indptr[t + 1]]] += (
            w.gain * wt * PRACTICE_BONUS
        )
    # b_ji: what each city gets from i, on the themes it cares about
    offer = np.where(ix.known[i], ix.s0[i], -np.inf)[ix.scored_theme]
    offer -= ix.scored_s
    np.maximum(offer, 0.0, out=offer)
    offer *= ix.scored_w
    gain_back = np.bincount(ix.scored_row, weights=offer, minlength=n)
    for t in np.flatnonzero(ix.bonus[i]):
        gain_back += PRACTICE_BONUS * ix.care_t[t]
    b_ji = inter
    b_ji *= ix.inv_psum
    b_ji *= w.shared
    b_ji += w.gain * gain_back
    both = b_ij + b_ji
    rest = np.where(both > 0, 2 * b_ij * b_ji / np.maximum(both, 1e-12), 0.0)
    if ix.lang_mask is not None:
        languages = np.bitwise_count(ix.lang_mask & ix.lang_mask[i])
    else:
        lang = ix.arrays.languages.astype(np.int64)
        languages = lang @ lang[i]
    rest += (w.language / 2.0) * np.minimum(languages, 2)
    # haversine's h from the chord: for places a few metres apart the rounding under the
    # square root puts the distance up to ~1e-4 km off, the score ~1e-8 (BOUND_SLACK is 1e-7)
    h = (1.0 - ix.xyz @ ix.xyz[i]) / 2
    rest += w.proximity * np.exp(-arc_km(h) / PROXIMITY_KM)
    near = np.flatnonzero(graph.adamic_adar)
    rest[near] += w.graph * np.log1p(graph.adamic_adar[near])
    code = ix.arrays.country_codes[i]
    rest[ix.country_city[ix.country_indptr[code] : ix.country_indptr[code + 1]]] += w.same_country
    return rest


BOUND_SLACK = 1e-7
"""Room for rounding between the bound pass and the exact scores (ten times the ~1e-8 the
chord form of the distance can differ by for nearly coincident places)."""
PRUNE_FROM = 1_000
"""Below this many cities passing the filters, the bound pass costs more than it saves."""


def _candidates(
    ix: PartnerIndex,
    i: int,
    ok: NDArray[np.bool_],
    theme: int | None,
    graph: _Graph,
    w: PartnerWeights,
    m: int,
) -> NDArray[np.int64]:
    """The cities that can still be among the ``m`` best: exact pruning by a bound.

    Profile similarity is the only term that needs the 384-d vectors. Every other term is
    computed for every city first (``_rest``); the similarity term lies between
    ``min(0, w)`` and ``max(0, w)`` (the cosine is clipped to 0..1), so each city's lifted
    score lies in a known interval. A city whose upper end is below the ``m``-th best lower
    end cannot reach the top ``m``: its vector is never read. What is left (a few per cent
    of the network in practice) is scored exactly. The result is the exhaustive ranking.
    """
    if not ix.embeddings.size or int(ok.sum()) <= max(m, PRUNE_FROM):
        return np.flatnonzero(ok)
    rest = _rest(ix, i, theme, graph, w)
    low = ix.lift * (rest + min(w.similarity, 0.0)) - BOUND_SLACK
    high = low + ix.lift * abs(w.similarity) + 2 * BOUND_SLACK
    low[~ok] = -np.inf
    threshold = np.partition(low, ix.n - m)[ix.n - m]
    kept: NDArray[np.int64] = np.flatnonzero(ok & ~(high < threshold))
    return kept  # (a NaN upper end stays in: the exact pass decides)


def suggest_partners(
    arr: NetworkArrays,
    embeddings: NDArray[np.float32],
    city_id: str,
    *,
    k: int = 10,
    filters: PartnerFilters = PartnerFilters(),
    weights: PartnerWeights = PartnerWeights(),
    index: PartnerIndex | None = None,
    prune: bool = True,
    model: PartnerModel | None = None,
    default_note: str = "default weights",
) -> PartnerResult:
    """Rank partners for one city. Scores are reciprocal: both sides must gain.

    ``index`` is the snapshot's ``partner_index`` (built and kept beside ``arr`` when not
    given). Only the cities that can still make the list are scored in full
    (``_candidates``; ``prune=False`` scores every city that passes the filters, with the
    same result). The numbers are those of ``pair_features`` + ``score_components``.
    With a fitted ``model`` (``matching.partners.learned``), its two-sided score ranks
    instead; ``default_note`` says why the default weights were used when it is None.
    """
    if city_id not in arr.index:
        raise UnknownCity(f"no city with id {city_id!r}")
    _check_pairs(arr, city_id, filters)
    theme = None
    if filters.theme is not None:
        if filters.theme not in arr.theme_index:
            raise InvalidInput(
                f"no theme with id {filters.theme!r}; themes are: {', '.join(arr.theme_ids)}"
            )
        theme = arr.theme_index[filters.theme]
    ix = index if index is not None else cached_partner_index(arr, embeddings)
    i = arr.index[city_id]
    if theme is not None:
        weights = replace(weights, graph=weights.graph * weights.graph_with_theme)
    graph = _graph(ix, i)
    ok = _pool(ix, i, filters, theme, graph)
    if model is not None:
        return _suggest_learned(model, ix, i, ok, graph, filters, k)
    m = _pool_size(k)
    cols = _candidates(ix, i, ok, theme, graph, weights, m) if prune else np.flatnonzero(ok)
    scored = _columns(ix, i, cols, theme, graph, weights)
    chosen = [int(cols[p]) for p in _diverse_top(arr, ix.lift[cols] * scored.score, cols, k)]
    forced = [arr.index[c] for c in filters.forced if c in arr.index and arr.index[c] != i]
    extra = [j for j in forced if j not in chosen]
    final = np.array(chosen[: max(0, k - len(extra))] + extra, dtype=np.int64)
    if extra:
        shown = _columns(ix, i, final, theme, graph, weights)
    else:  # the listed cities were all scored above: pick their columns
        shown = scored.subset(np.searchsorted(cols, final))
    context = _ReasonContext.build(ix, i, final, theme, graph)
    out = [
        _suggestion(arr, i, p, shown, theme, context, forced=int(j) in forced)
        for p, j in enumerate(final)
    ]
    return PartnerResult(city_id, tuple(out), int(ok.sum()), default_note)


def _suggest_learned(
    model: PartnerModel,
    ix: PartnerIndex,
    i: int,
    ok: NDArray[np.bool_],
    graph: _Graph,
    filters: PartnerFilters,
    k: int,
) -> PartnerResult:
    arr = ix.arrays
    x, terms, score, masked = rank_learned(model, ix, i, ok, graph)
    every = np.arange(arr.n, dtype=np.int64)
    chosen = [int(p) for p in _diverse_top(arr, masked, every, k) if masked[p] > -np.inf]
    forced = [arr.index[c] for c in filters.forced if c in arr.index and arr.index[c] != i]
    extra = [j for j in forced if j not in chosen]
    final = chosen[: max(0, k - len(extra))] + extra
    seen: dict[int, int] = {}
    out = []
    for j in final:
        code = int(arr.country_codes[j])
        above = seen.get(code, 0)
        seen[code] = above + 1
        shown = float(score[j]) * DIVERSITY**above if j in chosen else float(score[j])
        out.append(
            learned_suggestion(
                model,
                ix,
                i,
                j,
                x,
                terms,
                shown,
                graph,
                filters,
                above_same_country=above if j in chosen else 0,
                forced=j in forced,
            )
        )
    return PartnerResult(arr.city_ids[i], tuple(out), int(ok.sum()), model.describe())


def _pool_size(k: int) -> int:
    """How many of the best the diversity re-ranking chooses from."""
    return max(k * 5, 50)


def _diverse_top(arr: NetworkArrays, lifted: F, cols: NDArray[np.int64], k: int) -> list[int]:
    """Greedy re-ranking over positions in ``cols``: discount further cities of a country
    already listed (``lifted`` already carries the exposure lift for the less visible).
    Ties go to the lower city index. Plain Python: the pool is about 50 cities, where a
    dozen numpy calls per step cost more than the work."""
    pool = _top(lifted, _pool_size(k)).tolist()
    values = [-math.inf if math.isnan(v) else v for v in lifted[pool].tolist()]
    order = cols[pool].tolist()
    codes = arr.country_codes[order].tolist()
    same: dict[int, list[int]] = {}
    for p, code in enumerate(codes):
        same.setdefault(code, []).append(p)
    listed = dict.fromkeys(same, 0)  # cities of each country already chosen
    current = values.copy()
    free = [True] * len(pool)
    chosen: list[int] = []
    for _ in range(min(k, len(pool))):
        p = max(range(len(pool)), key=current.__getitem__)
        best = current[p]
        if best == -math.inf or current.count(best) > 1:
            p = min(
                (q for q in range(len(pool)) if free[q] and current[q] == best),
                key=order.__getitem__,
            )
        free[p] = False
        chosen.append(pool[p])
        listed[codes[p]] += 1
        discount = DIVERSITY ** listed[codes[p]]
        for q in same[codes[p]]:
            current[q] = values[q] * discount if free[q] else -math.inf
    return chosen
