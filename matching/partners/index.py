"""The per-snapshot partner index: what a query needs, laid out once per data revision."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matching.kernel.arrays import NetworkArrays
from matching.kernel.features import PRACTICE_BONUS
from matching.partners.model import EXPOSURE_NATIONAL, EXPOSURE_SMALL, SMALL_CITY

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
    care_row: NDArray[
        np.int64
    ]  # (nnz,) the city of each entry (a pass over every city needs no _ranges)
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
        care_row=rows.astype(np.int64),
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
