"""Every score term of one city against chosen candidates, and the tie facts behind them:
what ``pair_features`` and ``score_components`` compute, restricted to a few columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matching.kernel.geometry import arc_km
from matching.kernel.scores import PROXIMITY_KM, PartnerWeights
from matching.partners.index import PartnerIndex
from matching.partners.model import (
    F,
)


def _ranges(
    indptr: NDArray[np.int64], rows: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The positions of ``rows``' entries in a CSR layout, and which of ``rows`` each belongs to."""
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    total = int(lengths.sum())
    owner = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return starts[owner] + offsets, owner


@dataclass(frozen=True, eq=False)
class _Graph:
    """The query city's neighbourhood: partners (1 hop) and Adamic-Adar to every city (2 hops)."""

    partners: NDArray[np.int64]
    tied: NDArray[np.bool_]  # (n,)
    common: NDArray[np.float64]  # (n,)
    adamic_adar: NDArray[np.float64]  # (n,)


def _graph(ix: PartnerIndex, i: int) -> _Graph:
    n = ix.n
    partners = ix.ties_indices[ix.ties_indptr[i] : ix.ties_indptr[i + 1]]
    tied = np.zeros(n, dtype=bool)
    tied[partners] = True
    at, owner = _ranges(ix.ties_indptr, partners)
    second = ix.ties_indices[at]
    common = np.bincount(second, minlength=n).astype(np.float64)
    aa = np.bincount(second, weights=ix.inv_log_degree[partners][owner], minlength=n)
    return _Graph(partners, tied, common, aa.astype(np.float64))


@dataclass(frozen=True, eq=False)
class _Columns:
    """Pair features and score terms of city ``i`` against the cities ``cols`` (1-D arrays)."""

    cols: NDArray[np.int64]
    shared: F
    shared_back: F
    gain: F
    gain_back: F
    similarity: F
    languages: NDArray[np.int64]
    distance_km: F
    tied: NDArray[np.bool_]
    common: F
    adamic_adar: F
    parts: dict[str, F]

    @property
    def score(self) -> F:
        return np.asarray(sum(self.parts.values()))

    def subset(self, at: NDArray[np.int64]) -> _Columns:
        return _Columns(
            cols=self.cols[at],
            shared=self.shared[at],
            shared_back=self.shared_back[at],
            gain=self.gain[at],
            gain_back=self.gain_back[at],
            similarity=self.similarity[at],
            languages=self.languages[at],
            distance_km=self.distance_km[at],
            tied=self.tied[at],
            common=self.common[at],
            adamic_adar=self.adamic_adar[at],
            parts={name: v[at] for name, v in self.parts.items()},
        )


def _query_themes(
    ix: PartnerIndex, i: int, theme: int | None
) -> tuple[NDArray[np.int64], F, NDArray[np.int64], F]:
    """The query's themes (priorities) and the themes it gains on, with their weights."""
    p_i = ix.pri[i]
    mine = np.flatnonzero(p_i)
    if theme is None:
        care = p_i[mine] / 5.0
        return mine, p_i[mine], mine, care / max(float(care.sum()), 1e-9)
    return mine, p_i[mine], np.array([theme]), np.array([1.0])


def _thematic(
    ix: PartnerIndex, i: int, cols: NDArray[np.int64] | slice, theme: int | None
) -> tuple[F, F, F]:
    """shared, shared_back and gain (what ``i`` gains) against the cities ``cols`` (or a
    slice of all of them: views instead of gathers): a few calls per theme of the query,
    each on a theme row."""
    mine, p_mine, gain_themes, gain_w = _query_themes(ix, i, theme)
    inter = np.zeros(ix.n if isinstance(cols, slice) else len(cols))
    for t, p in zip(mine, p_mine, strict=True):
        inter += np.minimum(ix.pri_t[t][cols], p)
    shared_back = inter / np.maximum(ix.psum[cols], 1.0)
    if theme is None:
        shared = inter / max(float(ix.psum[i]), 1.0)
    else:
        asked = max(float(ix.pri[i, theme]), 3.0)
        shared = (asked / 5.0) * (ix.pri_t[theme][cols] / 5.0)
    gain = np.zeros(len(inter))
    for t, w in zip(gain_themes, gain_w, strict=True):
        term = ix.bonus[cols, t]  # a view when cols is a slice: never changed in place
        if ix.known[i, t]:  # max(s_j - s_i, 0); an unknown s_j is -inf, so 0
            term = term + np.maximum(ix.score_t[t][cols] - ix.s0[i, t], 0.0) / 100.0
        gain += w * term
    return shared, shared_back, gain


def _gain_back(ix: PartnerIndex, i: int, cols: NDArray[np.int64] | slice) -> F:
    """What each city of ``cols`` (or of a slice of all of them) gains from ``i``, on
    everything it cares about."""
    if isinstance(cols, slice):
        at: NDArray[np.int64] | slice = slice(None)
        owner, m = ix.care_row, ix.n
    else:
        at, owner = _ranges(ix.care_indptr, cols)
        m = len(cols)
    t = ix.care_theme[at]
    # i's score where it is known, -inf where not: no gain from an unknown score
    offer = np.where(ix.known[i], ix.s0[i], -np.inf)[t]
    diff = np.where(ix.care_known[at], np.maximum(offer - ix.care_s[at], 0.0), 0.0)
    values = ix.care_w[at] * (diff / 100.0 + ix.bonus[i][t])
    return np.bincount(owner, weights=values, minlength=m).astype(np.float64)


def _columns(
    ix: PartnerIndex,
    i: int,
    cols: NDArray[np.int64],
    theme: int | None,
    graph: _Graph,
    w: PartnerWeights,
) -> _Columns:
    """Every feature and score term of ``i`` against ``cols``: what ``pair_features`` and
    ``score_components`` compute for one row, restricted to those columns."""
    arr = ix.arrays
    # every city in order (the learned ranker's pass): slices read rows as views
    sel: NDArray[np.int64] | slice = (
        slice(None) if len(cols) == ix.n and bool((np.diff(cols) == 1).all()) else cols
    )
    shared, shared_back, gain = _thematic(ix, i, sel, theme)
    gain_back = _gain_back(ix, i, sel)
    if ix.embeddings.size:
        # a few per cent of the vectors: gather them; most of them: one pass over all
        many = 3 * len(cols) >= ix.n
        vectors = ix.embeddings if many else ix.embeddings[cols]
        sim = np.asarray(vectors @ ix.embeddings[i], dtype=np.float64)
        sim = sim[sel] if many else sim
    else:
        sim = np.zeros(len(cols))
    if ix.lang_mask is not None:
        languages = np.bitwise_count(ix.lang_mask[sel] & ix.lang_mask[i]).astype(np.int64)
    else:
        lang = arr.languages.astype(np.int64)
        languages = lang[sel] @ lang[i]
    h = (
        np.sin((ix.lat_r[sel] - ix.lat_r[i]) / 2) ** 2
        + ix.cos_lat[i] * ix.cos_lat[sel] * np.sin((ix.lon_r[sel] - ix.lon_r[i]) / 2) ** 2
    )
    dist = arc_km(h)
    aa = graph.adamic_adar[sel]
    b_ij = w.shared * shared + w.gain * gain
    b_ji = w.shared * shared_back + w.gain * gain_back
    total = np.maximum(b_ij + b_ji, 1e-12)
    return _Columns(
        cols=cols,
        shared=shared,
        shared_back=shared_back,
        gain=gain,
        gain_back=gain_back,
        similarity=sim,
        languages=languages,
        distance_km=dist,
        tied=graph.tied[sel],
        common=graph.common[sel],
        adamic_adar=aa,
        parts={
            "reciprocal_benefit": np.where(b_ij + b_ji > 0, 2 * b_ij * b_ji / total, 0.0),
            "similarity": w.similarity * np.clip(sim, 0.0, 1.0),
            "language": w.language * np.minimum(languages, 2) / 2.0,
            "proximity": w.proximity * np.exp(-dist / PROXIMITY_KM),
            "graph": w.graph * np.log1p(aa),
            "same_country": w.same_country * (arr.country_codes[sel] == arr.country_codes[i]),
        },
    )
