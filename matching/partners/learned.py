"""Partner suggestions ranked by the model learned from the network's own ties.

The query path of ``matching.partners.learn``: every city that passes the filters gets
the fitted two-sided utility, shown as a match relative to the query's best candidate
(``exp(u - u_best)``: 1 for the best, 0.5 for a city half as likely to be the one). The
same diversity re-rank as the default path then keeps one country from filling the
list; the score shown is the one the list is ordered by, and a suggestion moved down by
the re-rank says so. Reasons come from the model's own contributions: a reason is shown
only when its features moved the utility by at least ``SHOWN_FROM``, in words with the
numbers behind them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matching.kernel.arrays import FloatArray, NetworkArrays
from matching.kernel.geometry import haversine_km
from matching.kernel.wording import Reason, country_name, language_names, name_list, plural
from matching.partners.index import PartnerIndex
from matching.partners.learn import (
    DEFAULT_WEIGHTS,
    FEATURES,
    MIN_TIES,
    LearnedRanker,
    TieContext,
    fit_ranker,
)
from matching.partners.model import DIVERSITY, PartnerFilters, PartnerSuggestion
from matching.partners.report import _best_gain_themes
from matching.partners.terms import _Columns, _Graph

SHOWN_FROM = 0.15
"""A feature group's part of the utility (log-odds) below which it is not given as a reason."""

NEAR_BY_KM = 500.0
"""Distance up to which a pair is called "close by"."""

# feature groups read as one reason, in the order they are written when they tie
_GROUPS: dict[str, tuple[str, ...]] = {
    "shared_partners": (
        "resource_allocation",
        "adamic_adar",
        "common_partners",
        "any_common_partner",
    ),
    "network_paths": ("three_step_paths",),
    "country_habit": ("country_habit", "country_habit_back"),
    "partners_in_your_country": ("partners_in_your_country",),
    "your_partners_there": ("your_partners_in_their_country",),
    "well_connected": ("degree",),
    "proximity": ("distance",),
    "same_country": ("same_country",),
    "language": ("languages",),
    "size": ("size_gap",),
    "shared_theme": ("shared_priorities", "shared_priorities_back"),
    "complementary_strength": ("gain", "gain_back"),
    "profile_similarity": ("similarity",),
    "regional_ties": ("partners_near_you", "your_partners_near_them"),
}

NEAR_TIES_KM = 150.0
"""How near a partner must be to be named in a "partners near you" reason."""


@dataclass(frozen=True, eq=False)
class PartnerModel:
    """A fitted ranker with the tie layout of the revision it scores."""

    ranker: LearnedRanker
    context: TieContext

    def describe(self) -> str:
        r = self.ranker
        return f"learned from {plural(r.ties_learned_from, 'hidden tie')} of this network" + (
            f" and {plural(r.answers_learned_from, 'coordinator answer')}"
            if r.answers_learned_from
            else ""
        )


def fit_partner_model(
    arr: NetworkArrays,
    profiles: NDArray[np.float32],
    answers: tuple[tuple[int, int, bool], ...] = (),
    *,
    seed: int = 0,
    index: PartnerIndex | None = None,
) -> tuple[PartnerModel | None, str]:
    """The revision's model and the line every result carries about the ranking: the
    learned model, or the default weights and why (too few ties to learn from)."""
    ranker = fit_ranker(arr, profiles, answers=answers, seed=seed)
    if ranker is None:
        ties = len(arr.tie_kinds)
        return None, (
            f"default weights: this network has {plural(ties, 'tie')}, and learning from "
            f"its own ties needs at least {MIN_TIES}"
        )
    model = PartnerModel(ranker, TieContext.build(arr, profiles, index))
    return model, model.describe()


def rank_learned(
    model: PartnerModel, ix: PartnerIndex, i: int, ok: NDArray[np.bool_], graph: _Graph
) -> tuple[FloatArray, _Columns, FloatArray, FloatArray]:
    """(features of ``i`` against every city, the default terms behind them, match of every city relative to the best
    that passes the filters, with the exposure lift; the same with -inf where not ok)."""
    x, terms = model.context.features_and_terms(i, graph=graph)
    utility = model.ranker.scores(x)
    best = float(utility[ok].max()) if ok.any() else 0.0
    score = np.exp(np.minimum(utility - best, 50.0)) * ix.lift
    top = float(score[ok].max()) if ok.any() else 1.0
    score /= top if top > 0 else 1.0  # the best listed city reads 1.00, lift included
    return x, terms, score, np.where(ok, score, -np.inf)


def learned_suggestion(
    model: PartnerModel,
    ix: PartnerIndex,
    i: int,
    j: int,
    x: FloatArray,
    terms: _Columns,
    shown_score: float,
    graph: _Graph,
    filters: PartnerFilters,
    *,
    above_same_country: int,
    forced: bool,
) -> PartnerSuggestion:
    """City ``j`` for ``i``: the score the list is ordered by, each feature group's part of
    the utility, and the reasons that really moved it."""
    arr = ix.arrays
    ranker = model.ranker
    parts = ranker.contributions(x[j : j + 1])[0]
    by_feature = dict(zip(ranker.used, parts.tolist(), strict=True))
    groups = {g: sum(by_feature.get(f, 0.0) for f in fs) for g, fs in _GROUPS.items()}
    for g, v in _default_share(terms, j, by_feature.get("default_score", 0.0)).items():
        groups[g] += v
    utility = float(parts.sum())
    components = {
        f"model_{g}": round(v, 4)
        for g, v in groups.items()
        if any(f in by_feature for f in _GROUPS[g])
    }
    components.update(
        model_utility=round(utility, 4),
        exposure_lift=round(float(ix.lift[j]), 4),
        diversity=round(DIVERSITY**above_same_country, 4),
        common_partners=int(graph.common[j]),
    )
    positive = sum(v for v in groups.values() if v > 0) or 1.0
    reasons: list[Reason] = []
    for g, v in sorted(groups.items(), key=lambda kv: -kv[1]):
        if v < SHOWN_FROM:
            continue
        text = _reason_text(g, model, ix, i, j, x[j], graph, filters)
        if text:
            reasons.append(Reason(g, text, round(v / positive, 4)))
    reasons.extend(_notes(arr, i, j, graph, above_same_country, forced, reasons))
    return PartnerSuggestion(
        city_id=arr.city_ids[j],
        name=arr.names[j],
        country=arr.countries[j],
        score=round(shown_score, 4),
        reasons=tuple(reasons),
        components=components,
        forced=forced,
    )


def _default_share(terms: _Columns, j: int, value: float) -> dict[str, float]:
    """The default score's part of the utility, split over the groups its own terms read
    as (so "both prioritise" gets the share shared priorities earned, and so on)."""
    if value == 0.0:
        return {}
    c = terms.subset(np.array([j], dtype=np.int64))  # ``terms`` covers every city
    parts = {k: max(float(v[0]), 0.0) for k, v in c.parts.items()}
    total = sum(parts.values())
    if total <= 0:
        return {}
    thematic = DEFAULT_WEIGHTS.shared * float(c.shared[0] + c.shared_back[0])
    gained = DEFAULT_WEIGHTS.gain * float(c.gain[0] + c.gain_back[0])
    split = thematic / (thematic + gained) if thematic + gained > 0 else 0.5
    share = {k: value * v / total for k, v in parts.items()}
    return {
        "shared_theme": share["reciprocal_benefit"] * split,
        "complementary_strength": share["reciprocal_benefit"] * (1 - split),
        "profile_similarity": share["similarity"],
        "language": share["language"],
        "proximity": share["proximity"],
        "shared_partners": share["graph"],
        "same_country": share["same_country"],
    }


def _reason_text(
    group: str,
    model: PartnerModel,
    ix: PartnerIndex,
    i: int,
    j: int,
    row: FloatArray,
    graph: _Graph,
    filters: PartnerFilters,
) -> str | None:
    """The words for one feature group; ``row`` is ``j``'s feature row (counts are read
    back from it rather than computed again)."""
    arr, ctx = ix.arrays, model.context
    name_j = arr.names[j]
    ci, cj = int(arr.country_codes[i]), int(arr.country_codes[j])
    if group == "shared_partners" and graph.common[j] > 0:
        via = sorted(set(graph.partners.tolist()) & set(arr.partners_of(j).tolist()))
        names = [arr.names[v] for v in via]
        return f"Shares {plural(len(via), 'partner')} with you: {name_list(names)}"
    if group == "network_paths":
        count = round(float(np.expm1(row[FEATURES.index("three_step_paths")])))
        if count == 0:
            return None
        return f"Close in the network: {plural(count, 'path')} of three steps through partners' partners"
    if group == "country_habit":
        counts = ctx.country_counts
        total = counts[ci].sum()
        if total <= 0 or ci == cj:
            return None
        share = counts[ci, cj] / total
        here, there = country_name(arr.countries[i]), country_name(arr.countries[j])
        if share >= 0.1:
            return (
                f"Cities in {here} in this network often tie with cities in {there} "
                f"({share:.0%} of their {int(total):,} ties)"
            )
        return f"{share:.0%} of the {int(total):,} ties of cities in {here} here go to {there}"
    if group == "partners_in_your_country":
        m = int(ctx.in_country[j, ci])
        return (
            f"{name_j} already has {plural(m, 'partner')} in {country_name(arr.countries[i])}"
            if m
            else None
        )
    if group == "your_partners_there":
        m = int(ctx.in_country[i, cj])
        return (
            f"You already have {plural(m, 'partner')} in {country_name(arr.countries[j])}"
            if m
            else None
        )
    if group == "well_connected":
        return f"{name_j} is well connected ({plural(int(ctx.degree[j]), 'partner')})"
    if group == "proximity":
        km = float(_distance(arr, i, j))
        if math.isnan(km):
            return None
        return f"Close by: {km:,.0f} km apart" if km <= NEAR_BY_KM else f"{km:,.0f} km apart"
    if group == "same_country":
        return f"Also in {country_name(arr.countries[i])}"
    if group == "language":
        shared = [
            arr.language_codes[t] for t in np.flatnonzero(arr.languages[i] & arr.languages[j])
        ]
        return f"You share {language_names(shared)}" if shared else None
    if group == "size":
        return "Similar in size"
    if group == "shared_theme":
        both = [
            t
            for t in np.flatnonzero(np.minimum(arr.priority[i], arr.priority[j]) >= 3).tolist()
            if filters.theme is None or arr.theme_ids[t] == filters.theme
        ]
        if not both:
            return None
        top = sorted(both, key=lambda t: -int(min(arr.priority[i, t], arr.priority[j, t])))[:2]
        text = "; ".join(
            f"{arr.theme_names[t]} ({arr.priority[i, t]}/5 and {arr.priority[j, t]}/5)" for t in top
        )
        return f"Both prioritise {text}"
    if group == "complementary_strength":
        known = ix.known[[j]] & ix.known[i]
        t = _best_gain_themes(ix.pri[i][None, :], ix.s0[[j]] - ix.s0[i], known)[0]
        if t is None:
            return None
        return (
            f"{name_j} scores {arr.strength[j, t]:.0f} on {arr.theme_names[t]} "
            f"where you score {arr.strength[i, t]:.0f}"
        )
    if group == "regional_ties":
        theirs = [z for z in arr.partners_of(j).tolist() if _distance(arr, i, z) <= NEAR_TIES_KM]
        mine = [z for z in graph.partners.tolist() if _distance(arr, j, z) <= NEAR_TIES_KM]
        parts = []
        if theirs:
            parts.append(
                f"{name_j} has partners near you: {name_list([arr.names[z] for z in theirs])}"
            )
        if mine:
            parts.append(
                f"your partners {name_list([arr.names[z] for z in mine])} are near {name_j}"
                if len(mine) > 1
                else f"your partner {arr.names[mine[0]]} is near {name_j}"
            )
        if not parts:
            return None
        text = "; ".join(parts)
        return text[0].upper() + text[1:]
    if group == "profile_similarity":
        if not ix.embeddings.size:
            return None
        sim = float(ix.embeddings[i] @ ix.embeddings[j])
        return f"Similar profiles (similarity {sim:.2f})"
    return None


def _distance(arr: NetworkArrays, i: int, j: int) -> float:
    return float(haversine_km(arr.lat[i], arr.lon[i], arr.lat[j], arr.lon[j]))


def _notes(
    arr: NetworkArrays,
    i: int,
    j: int,
    graph: _Graph,
    above_same_country: int,
    forced: bool,
    given: list[Reason],
) -> list[Reason]:
    """Facts a coordinator needs whether or not they moved the score."""
    out: list[Reason] = []
    if (
        arr.languages[i].any()
        and arr.languages[j].any()
        and not (arr.languages[i] & arr.languages[j]).any()
    ):
        out.append(Reason("language", "No working language in common: plan for interpretation"))
    if not any(r.kind == "proximity" for r in given):
        km = _distance(arr, i, j)
        if not math.isnan(km):
            out.append(Reason("distance", f"{km:,.0f} km apart"))
    if graph.tied[j]:
        kind, since = arr.tie_kinds.get((min(i, j), max(i, j)), ("partnership", None))
        out.append(
            Reason("existing_tie", f"Already partners ({kind}{f' since {since}' if since else ''})")
        )
    if above_same_country:
        out.append(
            Reason(
                "diversity",
                f"Placed lower so one country does not fill the list: "
                f"{plural(above_same_country, 'city', 'cities')} of {country_name(arr.countries[j])} listed above",
            )
        )
    if forced:
        out.append(Reason("forced", "Listed because you asked for it"))
    return out
