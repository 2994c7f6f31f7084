"""Expert x cluster affinity: how well each expert suits each cluster, and what rules a pair out.

(Not to be confused with the city x city affinity the cluster matcher builds.) The
solvers only see a matrix; this is where it comes from, as a sum of named terms (profile
similarity, theme levels, working language, distance) so that every assigned pair can say
why in plain words, and where the hard rules (working language, conflicts of interest,
distance limit) become the forbidden mask. It reads plain arrays (``ExpertClusterData``),
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

from matching.experts.problem import InvalidAssignmentInput
from matching.kernel.arrays import BoolArray, FloatArray, IntArray


@dataclass(frozen=True, slots=True)
class AffinityWeights:
    """How the affinity of an expert for a cluster is made up (all terms add up).

    ``similarity`` x cosine similarity of profiles (-1..1); ``theme`` x theme match
    (0..1: the expert's levels in the cluster's themes, /5, weighted by the themes'
    weights); ``language`` bonus for speaking the cluster's working language (required
    anyway); minus ``distance_per_1000_km`` per 1,000 km between the expert's home and
    the cluster's centre. Pairs beyond ``max_distance_km`` (if set) are forbidden.
    """

    similarity: float = 1.0
    theme: float = 1.0
    language: float = 0.0
    distance_per_1000_km: float = 0.1
    max_distance_km: float | None = None

    def __post_init__(self) -> None:
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
    (C), themes (T) and languages (L). ``distance_km`` NaN means an unknown location (no
    penalty); ``cluster_language`` -1 means no required working language. ``profiled``
    says which pairs have a profile text on both sides (None: all of them); the others'
    similarity is 0 for want of text, not a judgement, and no reason cites it."""

    similarity: npt.ArrayLike  # (E, C) cosine similarity, see cosine_similarity
    expert_levels: npt.ArrayLike  # (E, T) 0 = none, 1..5
    cluster_themes: npt.ArrayLike  # (C, T) weights >= 0 (e.g. member cities' priorities)
    theme_names: Sequence[str]  # (T,)
    expert_languages: npt.ArrayLike  # (E, L) bool: speaks it
    cluster_language: npt.ArrayLike  # (C,) index into languages, or -1
    language_names: Sequence[str]  # (L,)
    distance_km: npt.ArrayLike  # (E, C), see matching.kernel.geometry.distance_matrix_km
    conflict: npt.ArrayLike | None = None  # (E, C) bool, see place_conflicts
    profiled: npt.ArrayLike | None = None  # (E, C) bool: both have a profile text


def _frozen(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a.setflags(write=False)
    return a


COMPONENTS: Final = ("similarity", "theme", "language", "distance")


@dataclass(frozen=True, slots=True, eq=False)
class Affinity:
    """The affinity matrix, what must not be paired, and the breakdown behind each score.

    ``score`` is ``sum(components.values())``; every array is E x C and read-only.
    ``best_theme``/``best_level``: the cluster theme behind the theme term (-1/0: none).
    The ``no_language``/``conflict``/``too_far`` masks say why a pair is forbidden;
    ``profiled`` which pairs had profile texts to compare.
    """

    score: FloatArray
    forbidden: BoolArray
    components: Mapping[str, FloatArray]
    similarity: FloatArray
    best_theme: IntArray
    best_level: IntArray
    distance_km: FloatArray
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
        known & (distance > weights.max_distance_km)
        if weights.max_distance_km is not None
        else np.zeros((n_e, n_c), dtype=np.bool_)
    )
    components = {
        "similarity": weights.similarity * similarity,
        "theme": weights.theme * theme_match,
        "language": weights.language * (has_language[None, :] & speaks_required),
        "distance": -weights.distance_per_1000_km * np.where(known, distance, 0.0) / 1000.0,
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
