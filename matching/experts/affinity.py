"""Expert x cluster affinity: how well each expert suits each cluster, and what rules a pair out.

(Not to be confused with the city x city affinity the cluster matcher builds.) The
solvers only see a matrix; this is where it comes from, as a sum of named terms (profile
similarity, theme levels, expertise, working language, travel) so that every assigned pair
can say why in plain words, and where the hard rules (working language, conflicts of
interest, distance limit) become the forbidden mask.

Travel is measured to the cluster's *member cities*, not to a centre: an expert works with
the members, and the centre of a cluster spread over Australia, Spain, Japan and Mexico is
a point in an ocean that nobody travels to, so a distance to it says nothing about the
trips (it made an expert with no expertise in the cluster's theme look "near" in the
first version). The term is the mean great-circle distance over the members (the expected
length of one trip to a member), capped at ``travel_cap_km`` (12,000 km: a mean that far
means members all around the world, where no expert is near; a lower cap stopped
worldwide clusters from preferring nearer experts at all, and the cap keeps the expertise
bonus below at 1.2 instead of the 2.0 an uncapped term would need, so other terms still
count); the farthest member is reported in the reasons,
and a hard ``max_distance_km`` applies to it. Travel must never decide *who is qualified*:
an expert with a recorded level in one of the cluster's themes gets an ``expertise`` bonus
equal to the travel term's whole range, so no distance can make an expert without that
expertise score above one who has it, other terms being equal (and the optimum never
leaves a qualified expert with spare capacity idle while an unqualified one serves, unless
profile similarity or a rule says otherwise). It reads plain arrays (``ExpertClusterData``),
never the snapshot: ``inputs.py`` builds those.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import sparse

from matching.experts.problem import InvalidAssignmentInput
from matching.kernel.arrays import BoolArray, FloatArray, IntArray
from matching.kernel.geometry import EARTH_RADIUS_KM, unit_vectors


@dataclass(frozen=True, slots=True)
class AffinityWeights:
    """How the affinity of an expert for a cluster is made up (all terms add up).

    ``similarity`` x cosine similarity of profiles (-1..1); ``theme`` x theme match
    (0..1: the expert's levels in the cluster's themes, /5, weighted by the themes'
    weights); with ``expertise_over_travel``, a bonus of ``travel_range`` for a recorded
    level in one of the cluster's themes (see the module docstring: travel never outweighs
    expertise); ``language`` bonus for speaking the cluster's working language (required
    anyway); minus ``distance_per_1000_km`` per 1,000 km of the expert's mean distance to
    the member cities, counted up to ``travel_cap_km``. Pairs whose farthest member lies
    beyond ``max_distance_km`` (if set) are forbidden.
    """

    similarity: float = 1.0
    theme: float = 1.0
    language: float = 0.0
    distance_per_1000_km: float = 0.1
    travel_cap_km: float = 12000.0
    expertise_over_travel: bool = True
    max_distance_km: float | None = None

    @property
    def travel_range(self) -> float:
        """The most the travel term can take off a score: its cap's worth."""
        return self.distance_per_1000_km * self.travel_cap_km / 1000.0

    def __post_init__(self) -> None:
        if not self.travel_cap_km > 0 or not math.isfinite(self.travel_cap_km):
            raise InvalidAssignmentInput(
                f"AffinityWeights.travel_cap_km must be a finite number > 0, got {self.travel_cap_km}"
            )
        for name in ("similarity", "theme", "language", "distance_per_1000_km"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise InvalidAssignmentInput(
                    f"AffinityWeights.{name} must be a finite number >= 0, got {value}"
                )
        if self.max_distance_km is not None and not self.max_distance_km > 0:
            raise InvalidAssignmentInput(
                f"AffinityWeights.max_distance_km must be > 0 or None, got {self.max_distance_km}"
            )


@dataclass(frozen=True, slots=True, eq=False)
class ExpertClusterData:
    """Everything the affinity is made from, as arrays aligned with experts (E), clusters
    (C), themes (T) and languages (L). ``distance_km`` is the expert's mean distance to
    the cluster's member cities (see ``member_travel_km``), NaN for an unknown location
    (no penalty); ``farthest_km``/``farthest_city`` the farthest member's distance and
    index into ``city_names`` (None: not known apart, the mean stands for it; -1: none).
    ``cluster_language`` -1 means no required working language. ``profiled`` says which
    pairs have a profile text on both sides (None: all of them); the others' similarity
    is 0 for want of text, not a judgement, and no reason cites it. ``conflict_reasons``
    words the conflicts declared for single pairs (each also set in ``conflict``), e.g.
    ``{(e, c): "conflict with Lutsk (advised it last cycle)"}``."""

    similarity: npt.ArrayLike  # (E, C) cosine similarity, see cosine_similarity
    expert_levels: npt.ArrayLike  # (E, T) 0 = none, 1..5
    cluster_themes: npt.ArrayLike  # (C, T) weights >= 0 (e.g. member cities' priorities)
    theme_names: Sequence[str]  # (T,)
    expert_languages: npt.ArrayLike  # (E, L) bool: speaks it
    cluster_language: npt.ArrayLike  # (C,) index into languages, or -1
    language_names: Sequence[str]  # (L,)
    distance_km: npt.ArrayLike  # (E, C) mean km to the member cities, see member_travel_km
    conflict: npt.ArrayLike | None = None  # (E, C) bool, see place_conflicts
    profiled: npt.ArrayLike | None = None  # (E, C) bool: both have a profile text
    farthest_km: npt.ArrayLike | None = None  # (E, C) km to the farthest member
    farthest_city: npt.ArrayLike | None = None  # (E, C) index into city_names, -1: none
    city_names: Sequence[str] = ()
    conflict_reasons: Mapping[tuple[int, int], str] | None = None


def _frozen(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a.setflags(write=False)
    return a


COMPONENTS: Final = ("similarity", "theme", "expertise", "language", "distance")


@dataclass(frozen=True, slots=True, eq=False)
class Affinity:
    """The affinity matrix, what must not be paired, and the breakdown behind each score.

    ``score`` is ``sum(components.values())``; every array is E x C and read-only.
    ``best_theme``/``best_level``: the cluster theme behind the theme term (-1/0: none).
    The ``no_language``/``conflict``/``too_far`` masks say why a pair is forbidden;
    ``profiled`` which pairs had profile texts to compare. ``distance_km`` is the mean
    to the members, ``farthest_km``/``farthest_city`` the farthest member (NaN/-1: unknown).
    """

    score: FloatArray
    forbidden: BoolArray
    components: Mapping[str, FloatArray]
    similarity: FloatArray
    best_theme: IntArray
    best_level: IntArray
    distance_km: FloatArray
    farthest_km: FloatArray
    farthest_city: IntArray
    no_language: BoolArray
    conflict: BoolArray
    too_far: BoolArray
    profiled: BoolArray


_SIZES = "experts and clusters from similarity, themes and languages from their names"


def _matrix(
    value: Any, name: str, shape: tuple[int, int], kind: str, dims: str
) -> npt.NDArray[Any]:
    a = np.array(value)  # a copy
    if a.shape != shape:
        raise InvalidAssignmentInput(
            f"{name} must be {dims} {shape} ({_SIZES}), got shape {a.shape}"
        )
    if kind == "bool":
        if a.dtype != np.bool_:
            raise InvalidAssignmentInput(f"{name} must be boolean, got dtype {a.dtype}")
        return a
    if a.dtype == np.bool_ or not (
        np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
    ):
        raise InvalidAssignmentInput(f"{name} must be numeric, got dtype {a.dtype}")
    return a.astype(np.float64)


def build_affinity(
    data: ExpertClusterData, weights: AffinityWeights = AffinityWeights()
) -> Affinity:
    """Affinity of each expert for each cluster, with its parts and the forbidden pairs."""
    sim = np.asarray(data.similarity)
    if sim.ndim != 2:
        raise InvalidAssignmentInput(
            f"similarity must be experts x clusters, got shape {sim.shape}"
        )
    n_e, n_c = (int(v) for v in sim.shape)
    n_t, n_l = len(data.theme_names), len(data.language_names)
    similarity = _matrix(data.similarity, "similarity", (n_e, n_c), "float", "experts x clusters")
    if not np.isfinite(similarity).all() or (np.abs(similarity) > 1 + 1e-9).any():
        raise InvalidAssignmentInput("similarity must be finite cosines in [-1, 1]")
    levels = _matrix(data.expert_levels, "expert_levels", (n_e, n_t), "float", "experts x themes")
    if ((levels < 0) | (levels > 5) | (levels != np.round(levels))).any():
        raise InvalidAssignmentInput("expert_levels must be whole levels 0 (none) to 5")
    themes = _matrix(
        data.cluster_themes, "cluster_themes", (n_c, n_t), "float", "clusters x themes"
    )
    if not np.isfinite(themes).all() or (themes < 0).any():
        raise InvalidAssignmentInput("cluster_themes must be finite weights >= 0")
    speaks = _matrix(
        data.expert_languages, "expert_languages", (n_e, n_l), "bool", "experts x languages"
    )
    required = np.array(data.cluster_language)
    if required.shape != (n_c,) or not np.issubdtype(required.dtype, np.integer):
        raise InvalidAssignmentInput(
            f"cluster_language must be {n_c} integer language indices (-1: none), got "
            f"{required.shape} {required.dtype}"
        )
    if ((required < -1) | (required >= n_l)).any():
        raise InvalidAssignmentInput(
            f"cluster_language entries must be -1 or an index below {n_l} (language_names)"
        )
    distance = _matrix(data.distance_km, "distance_km", (n_e, n_c), "float", "experts x clusters")
    if (distance[~np.isnan(distance)] < 0).any() or np.isinf(distance).any():
        raise InvalidAssignmentInput("distance_km must be finite kilometres >= 0, or NaN (unknown)")
    conflict = (
        np.zeros((n_e, n_c), dtype=np.bool_)
        if data.conflict is None
        else _matrix(data.conflict, "conflict", (n_e, n_c), "bool", "experts x clusters")
    )
    profiled = (
        np.ones((n_e, n_c), dtype=np.bool_)
        if data.profiled is None
        else _matrix(data.profiled, "profiled", (n_e, n_c), "bool", "experts x clusters")
    )
    farthest = (
        distance
        if data.farthest_km is None
        else _matrix(data.farthest_km, "farthest_km", (n_e, n_c), "float", "experts x clusters")
    )
    if not (np.isnan(farthest) | (farthest >= distance - 1e-6)).all():
        raise InvalidAssignmentInput("farthest_km must be at least distance_km (the mean)")
    farthest_city = (
        np.full((n_e, n_c), -1, dtype=np.int64)
        if data.farthest_city is None
        else _matrix(
            data.farthest_city, "farthest_city", (n_e, n_c), "float", "experts x clusters"
        ).astype(np.int64)
    )
    if ((farthest_city < -1) | (farthest_city >= len(data.city_names))).any():
        raise InvalidAssignmentInput(
            f"farthest_city entries must be -1 or an index below {len(data.city_names)} "
            "(city_names)"
        )
    for e, c in data.conflict_reasons or {}:
        if not (0 <= e < n_e and 0 <= c < n_c and conflict[e, c]):
            raise InvalidAssignmentInput(
                f"conflict_reasons names pair ({e}, {c}), which is not a conflict in conflict"
            )

    # Theme match: weighted mean of the expert's levels (/5) over the cluster's themes.
    totals = themes.sum(axis=1)
    share = np.divide(themes, totals[:, None], out=np.zeros_like(themes), where=totals[:, None] > 0)
    theme_match = (levels / 5.0) @ share.T
    best_theme = np.full((n_e, n_c), -1, dtype=np.int64)
    best_value = np.zeros((n_e, n_c))
    for t in range(n_t):
        value = levels[:, t, None] * themes[None, :, t]
        better = value > best_value
        best_theme[better], best_value[better] = t, value[better]
    best_level = (
        np.where(best_theme >= 0, np.take_along_axis(levels, np.maximum(best_theme, 0), axis=1), 0)
        if n_t
        else np.zeros((n_e, n_c))  # a network without themes: no level to read
    ).astype(np.int64)

    has_language = required >= 0
    # without any language (n_l == 0) no cluster requires one: every pair is allowed
    speaks_required = (
        np.where(has_language[None, :], speaks[:, np.maximum(required, 0)], True)
        if n_l
        else np.ones((n_e, n_c), dtype=np.bool_)
    )
    no_language = ~speaks_required
    known = ~np.isnan(distance)
    too_far = (
        ~np.isnan(farthest) & (farthest > weights.max_distance_km)
        if weights.max_distance_km is not None
        else np.zeros((n_e, n_c), dtype=np.bool_)
    )
    components = {
        "similarity": weights.similarity * similarity,
        "theme": weights.theme * theme_match,
        "expertise": (weights.travel_range if weights.expertise_over_travel else 0.0)
        * (best_level > 0),
        "language": weights.language * (has_language[None, :] & speaks_required),
        "distance": -weights.distance_per_1000_km
        * np.minimum(np.where(known, distance, 0.0), weights.travel_cap_km)
        / 1000.0,
    }
    score = np.zeros((n_e, n_c))
    for name in COMPONENTS:
        score = score + components[name]
    return Affinity(
        score=_frozen(score),
        forbidden=_frozen(no_language | conflict | too_far),
        components=MappingProxyType(
            {k: _frozen(np.asarray(v, dtype=np.float64)) for k, v in components.items()}
        ),
        similarity=_frozen(similarity),
        best_theme=_frozen(best_theme),
        best_level=_frozen(best_level),
        distance_km=_frozen(distance),
        farthest_km=_frozen(farthest),
        farthest_city=_frozen(farthest_city),
        no_language=_frozen(no_language),
        conflict=_frozen(conflict),
        too_far=_frozen(too_far),
        profiled=_frozen(profiled),
    )


# --- making the data's arrays ---------------------------------------------------------


def cosine_similarity(expert_vectors: npt.ArrayLike, cluster_vectors: npt.ArrayLike) -> FloatArray:
    """Cosine similarity of every expert embedding with every cluster embedding (E x C).

    A zero vector (no text) has similarity 0 with everything.
    """
    u = np.asarray(expert_vectors, dtype=np.float64)
    v = np.asarray(cluster_vectors, dtype=np.float64)
    if u.ndim != 2 or v.ndim != 2 or u.shape[1] != v.shape[1]:
        raise InvalidAssignmentInput(
            f"embeddings must be 2-D with the same width, got {u.shape} and {v.shape}"
        )
    un = np.linalg.norm(u, axis=1, keepdims=True)
    vn = np.linalg.norm(v, axis=1, keepdims=True)
    u = np.divide(u, un, out=np.zeros_like(u), where=un > 0)
    v = np.divide(v, vn, out=np.zeros_like(v), where=vn > 0)
    out: FloatArray = np.clip(u @ v.T, -1.0, 1.0)
    return out


def member_travel_km(
    expert_lat: npt.ArrayLike,
    expert_lon: npt.ArrayLike,
    city_lat: npt.ArrayLike,
    city_lon: npt.ArrayLike,
    members: Sequence[Sequence[int]],
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Each expert's travel to each cluster's member cities (E x C): the mean great-circle
    km over the members, the farthest member's km, and that member (a city index). NaN
    (and -1) where the expert's place is unknown or the cluster has no members; cities
    always have coordinates.

    Distances come from unit vectors (one matrix product, then the chord's arc: within
    ~0.1 km near zero, far below what the term can tell apart); the mean is one product
    with a sparse clusters-by-members matrix, the farthest member a running maximum over
    the members' slots (as many passes as the largest cluster has members), so 1,500
    experts x 600 clusters of up to 8 members take a fraction of a second, not a
    haversine and a loop per pair.
    """
    e_xyz = unit_vectors(expert_lat, expert_lon)
    n_e, n_c = e_xyz.shape[0], len(members)
    mean = np.full((n_e, n_c), np.nan)
    farthest = np.full((n_e, n_c), np.nan)
    which = np.full((n_e, n_c), -1, dtype=np.int64)
    used = np.array(sorted({int(i) for idx in members for i in idx}), dtype=np.int64)
    if not used.size or not n_e:
        return mean, farthest, which
    c_xyz = unit_vectors(np.asarray(city_lat)[used], np.asarray(city_lon)[used])
    # (used cities, E) km, in place: half the chord is sqrt((1 - cos) / 2); NaN stays NaN
    d = c_xyz @ e_xyz.T
    np.subtract(1.0, d, out=d)
    np.multiply(d, 0.5, out=d)
    np.maximum(d, 0.0, out=d)
    np.sqrt(d, out=d)
    np.minimum(d, 1.0, out=d)
    np.arcsin(d, out=d)
    np.multiply(d, 2.0 * EARTH_RADIUS_KM, out=d)
    column = np.zeros(int(used.max()) + 1, dtype=np.int64)
    column[used] = np.arange(used.size)
    sizes = np.array([len(idx) for idx in members])
    rows = np.concatenate([column[np.asarray(idx, dtype=np.int64)] for idx in members])
    cols = np.repeat(np.arange(n_c), sizes)
    share = sparse.csr_matrix(
        (1.0 / np.repeat(np.maximum(sizes, 1), sizes), (cols, rows)), shape=(n_c, used.size)
    )
    has = sizes > 0
    mean[:, has] = np.asarray(share @ d).T[:, has]
    # the farthest member: the members' slots taken in turn, padded with a row of -1 km
    padded = np.concatenate([d, np.full((1, n_e), -1.0)])
    slots = np.full((n_c, int(sizes.max())), used.size, dtype=np.int64)
    slots[cols, np.arange(rows.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)] = rows
    best = np.full((n_c, n_e), -1.0)
    best_slot = np.full((n_c, n_e), used.size, dtype=np.int64)
    for slot in slots.T:
        km = padded[slot]  # (C, E); NaN (unknown place) is never better
        better = km > best
        best = np.where(better, km, best)
        best_slot = np.where(better, slot[:, None], best_slot)
    found = (best_slot < used.size).T
    farthest[found] = best.T[found]
    which[found] = used[best_slot.T[found]]
    return mean, farthest, which


def place_conflicts(
    expert_countries: Sequence[str | None],
    cluster_countries: Sequence[Collection[str]],
    expert_cities: Sequence[str | None] | None = None,
    cluster_cities: Sequence[Collection[str]] | None = None,
    *,
    same_country: bool = True,
) -> BoolArray:
    """Conflicts of interest (E x C): the expert is based in one of the cluster's member
    cities, or (``same_country``) in one of its member cities' countries."""
    n_e, n_c = len(expert_countries), len(cluster_countries)
    out = np.zeros((n_e, n_c), dtype=np.bool_)
    for c in range(n_c):
        countries = set(cluster_countries[c]) if same_country else set()
        cities = set(cluster_cities[c]) if cluster_cities is not None else set()
        for e in range(n_e):
            home_city = expert_cities[e] if expert_cities is not None else None
            out[e, c] = (expert_countries[e] in countries) or (
                home_city is not None and home_city in cities
            )
    return out
