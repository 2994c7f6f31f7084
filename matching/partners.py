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
import threading
import weakref
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Literal

import numpy as np
import pycountry
from numpy.typing import NDArray

from matching.encoder import EARTH_RADIUS_KM, NetworkArrays, distance_km
from matching.features import PRACTICE_BONUS, PairFeatures
from matching.reasons import Reason

F = NDArray[np.float64]

PROXIMITY_KM = 1500.0
DIVERSITY = 0.85
EXPOSURE_NATIONAL = 0.05
EXPOSURE_SMALL = 0.05
SMALL_CITY = 100_000


class UnknownCity(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class PartnerWeights:
    shared: float = 0.35
    gain: float = 0.25
    similarity: float = 0.20
    language: float = 0.10
    proximity: float = 0.10
    graph: float = 1.0
    same_country: float = -0.20
    graph_with_theme: float = 0.25
    """With a theme asked for, the thematic terms lead: the graph weight is scaled by this."""


@dataclass(frozen=True, slots=True)
class PartnerFilters:
    theme: str | None = None
    """Only cities that prioritise the theme, are strong in it (Index >= 60) or have a practice on it."""
    languages: tuple[str, ...] = ()
    """Only cities speaking at least one of these (ISO 639-1)."""
    max_distance_km: float | None = None
    membership: Literal["international", "national"] | None = None
    exclude_current: bool = True
    """Leave out cities that are partners already."""
    forced: tuple[str, ...] = ()
    """Always listed (after the ranked ones if they would not make the cut)."""
    forbidden: tuple[str, ...] = ()
    """Never listed."""


@dataclass(frozen=True, slots=True)
class PartnerSuggestion:
    city_id: str
    name: str
    country: str
    score: float
    reasons: tuple[Reason, ...]
    components: dict[str, float] = field(hash=False)
    forced: bool = False


@dataclass(frozen=True, slots=True)
class PartnerResult:
    city_id: str
    suggestions: tuple[PartnerSuggestion, ...]
    considered: int
    """Cities that passed the filters."""


def score_components(
    f: PairFeatures, countries: NDArray[np.int64], w: PartnerWeights = PartnerWeights()
) -> dict[str, NDArray[np.float64]]:
    """The score's terms for every pair of a feature block (same shapes as the features)."""
    b_ij = w.shared * f.shared + w.gain * f.gain
    b_ji = w.shared * f.shared_back + w.gain * f.gain_back
    total = np.maximum(b_ij + b_ji, 1e-12)
    reciprocal = np.where(b_ij + b_ji > 0, 2 * b_ij * b_ji / total, 0.0)
    country = countries
    return {
        "reciprocal_benefit": reciprocal,
        "similarity": w.similarity * np.clip(f.similarity, 0.0, 1.0),
        "language": w.language * np.minimum(f.languages, 2) / 2.0,
        "proximity": w.proximity * np.exp(-f.distance_km / PROXIMITY_KM),
        "graph": w.graph * np.log1p(f.adamic_adar),
        "same_country": w.same_country * (country[f.rows][:, None] == country[None, :]),
    }


def total_score(
    f: PairFeatures, countries: NDArray[np.int64], w: PartnerWeights = PartnerWeights()
) -> NDArray[np.float64]:
    return np.asarray(sum(score_components(f, countries, w).values()))


# --- the per-snapshot index and the fast path ---------------------------------------------


@dataclass(frozen=True, eq=False)
class PartnerIndex:
    """What a partner query needs, laid out once per snapshot revision.

    The bound pass (``_rest``) reads every city, so its inputs are laid out for whole-row
    passes: theme-major copies (``(T, n)``) make the query's 3-5 themes contiguous rows;
    practices are rare, so they are lists of cities per theme; "what each city would gain
    from the query city" reads only the priority entries with a known Index score. The
    exact pass (``_columns``) gathers the surviving cities from the same theme rows.
    Languages are a bit mask per city; ties are the raw CSR arrays (no scipy call on the
    hot path).
    """

    arrays: NetworkArrays
    embeddings: NDArray[np.float32]  # (n, d) unit rows, or empty
    pri: NDArray[np.float64]  # (n, T)
    pri_t: NDArray[np.float64]  # (T, n)
    psum: NDArray[np.float64]  # (n,) sum of priorities
    inv_psum: NDArray[np.float64]  # (n,) 1 / max(psum, 1)
    s0: NDArray[np.float64]  # (n, T) Index score, 0 where unknown
    score_t: NDArray[np.float64]  # (T, n) Index score, -inf where unknown
    known: NDArray[np.bool_]  # (n, T) Index score known
    bonus: NDArray[np.float64]  # (n, T) PRACTICE_BONUS where the city has a practice
    practice_indptr: NDArray[np.int64]  # (T + 1,) the cities with a practice, per theme
    practice_city: NDArray[np.int64]
    theme_ok_t: NDArray[np.bool_]  # (T, n) passes the theme filter
    care_t: NDArray[np.float64]  # (T, n) each city's normalised care (care_w) per theme
    care_indptr: NDArray[np.int64]  # (n + 1,) each city's priority entries
    care_theme: NDArray[np.int64]  # (nnz,) its theme
    care_w: NDArray[np.float64]  # (nnz,) priority / 5, normalised by the city's total care
    care_s: NDArray[np.float64]  # (nnz,) the city's Index score on it (0 when unknown)
    care_known: NDArray[np.bool_]  # (nnz,)
    scored_row: NDArray[np.int64]  # the entries with a known score: their city,
    scored_theme: NDArray[np.int64]  # theme,
    scored_w: NDArray[np.float64]  # care_w / 100
    scored_s: NDArray[np.float64]  # and score
    lang_mask: NDArray[np.uint64] | None  # (n,) one bit per language (None beyond 64)
    lat_r: NDArray[np.float64]
    lon_r: NDArray[np.float64]
    cos_lat: NDArray[np.float64]
    xyz: NDArray[np.float64]  # (n, 3) unit vectors of the places: 1 - dot = 2 haversine(h)
    ties_indptr: NDArray[np.int64]
    ties_indices: NDArray[np.int64]
    inv_log_degree: NDArray[np.float64]  # Adamic-Adar's weight of each city as a go-between
    lift: NDArray[np.float64]  # (n,) exposure lift for national members and small cities
    country_indptr: NDArray[np.int64]  # (countries + 1,) the cities of each country code
    country_city: NDArray[np.int64]

    @property
    def n(self) -> int:
        return self.arrays.n


def _indptr(owner: NDArray[np.int64], size: int) -> NDArray[np.int64]:
    """CSR row pointers for entries grouped by ``owner`` (0..size-1), in owner order."""
    indptr = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=size), out=indptr[1:])
    return indptr


def partner_index(arr: NetworkArrays, embeddings: NDArray[np.float32]) -> PartnerIndex:
    """Build the query layout for one snapshot (O(n * themes); done once per revision)."""
    pri = arr.priority.astype(np.float64)
    known = ~np.isnan(arr.strength)
    s0 = np.where(known, arr.strength, 0.0)
    bonus = np.where(arr.practices > 0, PRACTICE_BONUS, 0.0)
    care = pri / 5.0
    care_sum = np.maximum(care.sum(axis=1), 1e-9)
    rows, themes = np.nonzero(pri)
    care_w = care[rows, themes] / care_sum[rows]
    care_t = np.zeros((arr.n, pri.shape[1]))
    care_t[rows, themes] = care_w
    scored = known[rows, themes]
    score = np.where(known, s0, -np.inf)
    psum = pri.sum(axis=1)
    practice_themes, practice_city = np.nonzero(arr.practices.T > 0)  # grouped by theme
    strong = s0 >= 60  # unknown scores count as 0, as the reference filter's nan_to_num does
    if len(arr.language_codes) <= 64:
        bits = np.left_shift(np.uint64(1), np.arange(len(arr.language_codes), dtype=np.uint64))
        lang_mask: NDArray[np.uint64] | None = (arr.languages.astype(np.uint64) * bits).sum(
            axis=1, dtype=np.uint64
        )
    else:
        lang_mask = None
    ties = arr.ties
    degree = np.diff(ties.indptr)
    small = np.nan_to_num(arr.population, nan=np.inf) < SMALL_CITY
    lat_r = np.radians(arr.lat)
    if embeddings.size:
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    country_city = np.argsort(arr.country_codes, kind="stable").astype(np.int64)
    return PartnerIndex(
        arrays=arr,
        embeddings=embeddings,
        pri=pri,
        pri_t=np.ascontiguousarray(pri.T),
        psum=psum,
        inv_psum=1.0 / np.maximum(psum, 1.0),
        s0=s0,
        score_t=np.ascontiguousarray(score.T),
        known=known,
        bonus=bonus,
        practice_indptr=_indptr(practice_themes, pri.shape[1]),
        practice_city=practice_city.astype(np.int64),
        theme_ok_t=np.ascontiguousarray(((arr.priority > 0) | strong | (arr.practices > 0)).T),
        care_t=np.ascontiguousarray(care_t.T),
        care_indptr=_indptr(rows, arr.n),
        care_theme=themes.astype(np.int64),
        care_w=care_w,
        care_s=s0[rows, themes],
        care_known=scored,
        scored_row=rows[scored].astype(np.int64),
        scored_theme=themes[scored].astype(np.int64),
        scored_w=care_w[scored] / 100.0,
        scored_s=s0[rows, themes][scored],
        lang_mask=lang_mask,
        lat_r=lat_r,
        lon_r=np.radians(arr.lon),
        cos_lat=np.cos(lat_r),
        xyz=np.column_stack(
            [
                np.cos(lat_r) * np.cos(np.radians(arr.lon)),
                np.cos(lat_r) * np.sin(np.radians(arr.lon)),
                np.sin(lat_r),
            ]
        ),
        ties_indptr=ties.indptr.astype(np.int64),
        ties_indices=ties.indices.astype(np.int64),
        inv_log_degree=np.where(degree > 1, 1.0 / np.log(np.maximum(degree, 2)), 0.0),
        lift=1.0 + EXPOSURE_NATIONAL * arr.national + EXPOSURE_SMALL * small,
        country_indptr=_indptr(arr.country_codes, int(arr.country_codes.max(initial=-1)) + 1),
        country_city=country_city,
    )


_INDEXES: weakref.WeakKeyDictionary[NetworkArrays, tuple[int, PartnerIndex]] = (
    weakref.WeakKeyDictionary()
)
_INDEXES_LOCK = threading.Lock()


def cached_partner_index(arr: NetworkArrays, embeddings: NDArray[np.float32]) -> PartnerIndex:
    """``partner_index``, kept beside ``arr`` for as long as it lives (for callers without a service)."""
    with _INDEXES_LOCK:
        hit = _INDEXES.get(arr)
        if (
            hit is not None
            and hit[0] == id(embeddings)
            and hit[1].embeddings.shape == embeddings.shape
        ):
            return hit[1]
    built = partner_index(arr, embeddings)
    with _INDEXES_LOCK:
        _INDEXES[arr] = (id(embeddings), built)
    return built


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
    ix: PartnerIndex, i: int, cols: NDArray[np.int64], theme: int | None
) -> tuple[F, F, F]:
    """shared, shared_back and gain (what ``i`` gains) against the cities ``cols``: a few
    calls per theme of the query, each on a gathered theme row."""
    mine, p_mine, gain_themes, gain_w = _query_themes(ix, i, theme)
    inter = np.zeros(len(cols))
    for t, p in zip(mine, p_mine, strict=True):
        inter += np.minimum(ix.pri_t[t][cols], p)
    shared_back = inter / np.maximum(ix.psum[cols], 1.0)
    if theme is None:
        shared = inter / max(float(ix.psum[i]), 1.0)
    else:
        asked = max(float(ix.pri[i, theme]), 3.0)
        shared = (asked / 5.0) * (ix.pri_t[theme][cols] / 5.0)
    gain = np.zeros(len(cols))
    for t, w in zip(gain_themes, gain_w, strict=True):
        term = ix.bonus[cols, t]
        if ix.known[i, t]:  # max(s_j - s_i, 0); an unknown s_j is -inf, so 0
            term += np.maximum(ix.score_t[t][cols] - ix.s0[i, t], 0.0) / 100.0
        gain += w * term
    return shared, shared_back, gain


def _gain_back(ix: PartnerIndex, i: int, cols: NDArray[np.int64]) -> F:
    """What each city of ``cols`` gains from ``i``, on everything it cares about."""
    at, owner = _ranges(ix.care_indptr, cols)
    t = ix.care_theme[at]
    # i's score where it is known, -inf where not: no gain from an unknown score
    offer = np.where(ix.known[i], ix.s0[i], -np.inf)[t]
    diff = np.where(ix.care_known[at], np.maximum(offer - ix.care_s[at], 0.0), 0.0)
    values = ix.care_w[at] * (diff / 100.0 + ix.bonus[i][t])
    return np.bincount(owner, weights=values, minlength=len(cols)).astype(np.float64)


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
    shared, shared_back, gain = _thematic(ix, i, cols, theme)
    gain_back = _gain_back(ix, i, cols)
    if ix.embeddings.size:
        # a few per cent of the vectors: gather them; most of them: one pass over all
        many = 3 * len(cols) >= ix.n
        vectors = ix.embeddings if many else ix.embeddings[cols]
        sim = np.asarray(vectors @ ix.embeddings[i], dtype=np.float64)
        sim = sim[cols] if many else sim
    else:
        sim = np.zeros(len(cols))
    if ix.lang_mask is not None:
        languages = np.bitwise_count(ix.lang_mask[cols] & ix.lang_mask[i]).astype(np.int64)
    else:
        lang = arr.languages.astype(np.int64)
        languages = lang[cols] @ lang[i]
    h = (
        np.sin((ix.lat_r[cols] - ix.lat_r[i]) / 2) ** 2
        + ix.cos_lat[i] * ix.cos_lat[cols] * np.sin((ix.lon_r[cols] - ix.lon_r[i]) / 2) ** 2
    )
    dist = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    aa = graph.adamic_adar[cols]
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
        tied=graph.tied[cols],
        common=graph.common[cols],
        adamic_adar=aa,
        parts={
            "reciprocal_benefit": np.where(b_ij + b_ji > 0, 2 * b_ij * b_ji / total, 0.0),
            "similarity": w.similarity * np.clip(sim, 0.0, 1.0),
            "language": w.language * np.minimum(languages, 2) / 2.0,
            "proximity": w.proximity * np.exp(-dist / PROXIMITY_KM),
            "graph": w.graph * np.log1p(aa),
            "same_country": w.same_country * (arr.country_codes[cols] == arr.country_codes[i]),
        },
    )


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
    if filters.max_distance_km is not None:
        ok &= distance_km(arr.lat[i], arr.lon[i], arr.lat, arr.lon) <= filters.max_distance_km
    if filters.membership is not None:
        ok &= arr.national == (filters.membership == "national")
    for city in filters.forbidden:
        if city in arr.index:
            ok[arr.index[city]] = False
    return ok


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
    rest += w.proximity * np.exp(
        -(2 * EARTH_RADIUS_KM / PROXIMITY_KM) * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    )
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
) -> PartnerResult:
    """Rank partners for one city. Scores are reciprocal: both sides must gain.

    ``index`` is the snapshot's ``partner_index`` (built and kept beside ``arr`` when not
    given). Only the cities that can still make the list are scored in full
    (``_candidates``; ``prune=False`` scores every city that passes the filters, with the
    same result). The numbers are those of ``pair_features`` + ``score_components``.
    """
    if city_id not in arr.index:
        raise UnknownCity(f"no city with id {city_id!r}")
    theme = None
    if filters.theme is not None:
        if filters.theme not in arr.theme_index:
            raise ValueError(
                f"no theme with id {filters.theme!r}; themes are: {', '.join(arr.theme_ids)}"
            )
        theme = arr.theme_index[filters.theme]
    ix = index if index is not None else cached_partner_index(arr, embeddings)
    i = arr.index[city_id]
    if theme is not None:
        weights = replace(weights, graph=weights.graph * weights.graph_with_theme)
    graph = _graph(ix, i)
    ok = _pool(ix, i, filters, theme, graph)
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
    return PartnerResult(city_id, tuple(out), int(ok.sum()))


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


@cache
def _language_name(code: str) -> str:
    lang = pycountry.languages.get(alpha_2=code)
    return str(lang.name) if lang else code


def _language_names(codes: list[str]) -> str:
    names = [_language_name(code) for code in codes]
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


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
        distance_km=round(float(f.distance_km[p]), 1),
        common_partners=int(f.common[p]),
        adamic_adar=round(float(f.adamic_adar[p]), 4),
    )
    positive = sum(max(v, 0.0) for v in values.values()) or 1.0
    share = {name: max(v, 0.0) / positive for name, v in values.items()}
    reasons: list[Reason] = []
    name_j = arr.names[j]
    # shared priorities
    pi, pj = c.priority_i, c.priority[p]
    both = [t for t in c.mine if pj[t] > 0 and (theme is None or t == theme)]
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
            Reason("language", f"You share {_language_names(shared_langs)}", share["language"])
        )
    else:
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
