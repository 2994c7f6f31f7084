"""Reasons for a partner suggestion, in words with the numbers behind them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matching.kernel.arrays import NetworkArrays
from matching.kernel.wording import Reason, language_names
from matching.partners.index import PartnerIndex
from matching.partners.model import F, PartnerSuggestion
from matching.partners.terms import _Columns, _Graph


@dataclass(frozen=True, eq=False)
class _ReasonContext:
    """What the reasons of one query's listed cities read, gathered once for all of them."""

    mine: list[int]  # the query city's priority themes, in theme order
    priority_i: list[int]
    priority: list[list[int]]  # (listed, T)
    languages_i: list[int]  # the query city's language indices
    languages: list[list[bool]]  # (listed, L)
    partners_i: set[int]
    gain_for_you: list[int | None]  # the theme each listed city offers most on
    gain_for_them: list[int | None]  # the theme the query city offers each most on

    @staticmethod
    def build(
        ix: PartnerIndex, i: int, listed: NDArray[np.int64], theme: int | None, graph: _Graph
    ) -> _ReasonContext:
        arr = ix.arrays
        care_i = ix.pri[i]
        if theme is not None:
            care_i = np.zeros_like(care_i)
            care_i[theme] = 5.0
        both_known = ix.known[listed] & ix.known[i]
        return _ReasonContext(
            mine=np.flatnonzero(arr.priority[i]).tolist(),
            priority_i=arr.priority[i].tolist(),
            priority=arr.priority[listed].tolist(),
            languages_i=np.flatnonzero(arr.languages[i]).tolist(),
            languages=arr.languages[listed].tolist(),
            partners_i=set(graph.partners.tolist()),
            gain_for_you=_best_gain_themes(care_i[None, :], ix.s0[listed] - ix.s0[i], both_known),
            gain_for_them=_best_gain_themes(ix.pri[listed], ix.s0[i] - ix.s0[listed], both_known),
        )


def _best_gain_themes(care: F, diff: F, known: NDArray[np.bool_]) -> list[int | None]:
    """Per row: the theme where the receiver cares and the giver is clearly (>= 15 points)
    stronger, by care times the difference (first such theme on ties), or None."""
    diff = np.where(known, diff, 0.0)
    value = np.where((care > 0) & (diff >= 15), care * diff, 0.0)
    if value.shape[1] == 0:  # a network without themes: nothing to gain on
        return [None] * len(value)
    best = np.argmax(value, axis=1)
    found = value[np.arange(len(value)), best] > 0
    return [int(t) if ok else None for t, ok in zip(best, found, strict=True)]


def _suggestion(
    arr: NetworkArrays,
    i: int,
    p: int,
    f: _Columns,
    theme: int | None,
    c: _ReasonContext,
    *,
    forced: bool,
) -> PartnerSuggestion:
    """One listed city (position ``p`` of ``f``) with its components and reasons."""
    j = int(f.cols[p])
    values = {name: float(v[p]) for name, v in f.parts.items()}
    score = sum(values.values())
    components = {name: round(v, 4) for name, v in values.items()}
    components.update(
        shared_priorities=round(float(f.shared[p]), 4),
        gain_for_you=round(float(f.gain[p]), 4),
        gain_for_them=round(float(f.gain_back[p]), 4),
        profile_similarity=round(float(f.similarity[p]), 4),
        shared_languages=int(f.languages[p]),
        distance_km=float(round(float(f.distance_km[p]))),  # whole km, as the reason words it
        common_partners=int(f.common[p]),
        adamic_adar=round(float(f.adamic_adar[p]), 4),
    )
    positive = sum(max(v, 0.0) for v in values.values()) or 1.0
    share = {name: max(v, 0.0) / positive for name, v in values.items()}
    reasons: list[Reason] = []
    name_j = arr.names[j]
    # shared priorities
    pi, pj = c.priority_i, c.priority[p]
    # a weak overlap (a 1/5 or 2/5 on either side) is no reason to meet
    both = [t for t in c.mine if min(pi[t], pj[t]) >= 3 and (theme is None or t == theme)]
    if both:
        order = sorted(both, key=lambda t: -min(pi[t], pj[t]))[:2]
        text = "; ".join(f"{arr.theme_names[t]} ({pi[t]}/5 and {pj[t]}/5)" for t in order)
        reasons.append(
            Reason("shared_theme", f"Both prioritise {text}", share["reciprocal_benefit"] / 2)
        )
    elif theme is not None and pj[theme] > 0:
        text = f"{name_j} prioritises {arr.theme_names[theme]} ({pj[theme]}/5)"
        reasons.append(Reason("shared_theme", text, share["reciprocal_benefit"] / 2))
    # complementarity, both ways: what you gain on the theme asked (or any you care about),
    # and what they gain on anything they care about
    for src, dst, t, kind, template in (
        (
            i,
            j,
            c.gain_for_you[p],
            "complementary_strength",
            "{dst} scores {sd:.0f} on {theme} where you score {ss:.0f}",
        ),
        (
            j,
            i,
            c.gain_for_them[p],
            "mutual_gain",
            "You score {sd:.0f} on {theme} where {src} scores {ss:.0f}, so they gain too",
        ),
    ):
        if t is not None:
            text = template.format(
                dst=arr.names[dst],
                src=arr.names[src],
                theme=arr.theme_names[t],
                sd=arr.strength[dst, t],
                ss=arr.strength[src, t],
            )
            title = arr.practice_titles.get((dst, t))
            if title and dst == j:
                text += f", and has a good practice on it (\u201c{title}\u201d)"
            reasons.append(Reason(kind, text, share["reciprocal_benefit"] / 4))
    if (
        theme is not None
        and (j, theme) in arr.practice_titles
        and not any(r.kind == "complementary_strength" for r in reasons)
    ):
        reasons.append(
            Reason(
                "practice",
                f"{name_j} has a good practice on {arr.theme_names[theme]} (\u201c{arr.practice_titles[(j, theme)]}\u201d)",
                0.0,
            )
        )
    if f.similarity[p] >= 0.35:
        reasons.append(
            Reason(
                "profile_similarity",
                f"Similar profiles (similarity {f.similarity[p]:.2f})",
                share["similarity"],
            )
        )
    shared_langs = [arr.language_codes[x] for x in c.languages_i if c.languages[p][x]]
    if shared_langs:
        reasons.append(
            Reason("language", f"You share {language_names(shared_langs)}", share["language"])
        )
    elif c.languages_i and any(c.languages[p]):  # both list languages, none shared
        reasons.append(
            Reason("language", "No working language in common: plan for interpretation", 0.0)
        )
    reasons.append(Reason("distance", f"{f.distance_km[p]:,.0f} km apart", share["proximity"]))
    if f.tied[p]:
        kind, since = arr.tie_kinds.get((min(i, j), max(i, j)), ("partnership", None))
        reasons.append(
            Reason(
                "existing_tie",
                f"Already partners ({kind}{f' since {since}' if since else ''})",
                0.0,
            )
        )
    elif f.common[p] > 0:
        via = sorted(c.partners_i.intersection(arr.partners_of(j).tolist()))
        names = ", ".join(arr.names[v] for v in via[:2])
        more = f" and {len(via) - 2} more" if len(via) > 2 else ""
        reasons.append(
            Reason("graph_proximity", f"Two steps away through {names}{more}", share["graph"])
        )
    if arr.national[j] and not arr.national[i]:
        reasons.append(
            Reason(
                "exposure",
                f"{name_j} joined through its national network: a chance to bring it closer",
                0.0,
            )
        )
    if forced:
        reasons.append(Reason("forced", "Listed because you asked for it", 0.0))
    return PartnerSuggestion(
        city_id=arr.city_ids[j],
        name=name_j,
        country=arr.countries[j],
        score=round(score, 4),
        reasons=tuple(reasons),
        components=components,
        forced=forced,
    )
