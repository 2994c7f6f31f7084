"""Thematic and geographic cluster proposals for a network of cities.

``propose_clusters(inp, params)`` takes plain arrays (:class:`ClusterInput`) and request
parameters (:class:`ClusterParams`) and returns a :class:`ClusterProposal`: clusters with
their lead city, working languages, cohesion and plain-language reasons; the cities left
out and why; the objective; the status of every hard constraint; the method used.

Pools
    A thematic request builds one *pool* per theme: the cities that prioritise the theme
    (priority > 0), are not excluded and have capacity, plus any city locked into a
    cluster of that theme. Without ``params.themes`` the ``max_themes`` most demanded
    themes (sum of priorities) that can host a cluster are used. A thematic pool's
    affinity is the input affinity restricted to its candidates (the caller's blend of
    shared priorities, profiles, complementarity, languages, proximity and ties); the
    theme's own data decide who is a candidate, what a membership is worth (priority / 5)
    and who can lead (Index strength). A geographic request
    has one pool of every eligible city, with an affinity that blends the input affinity
    with proximity: ``(1 - w) * A / max(A) + w * exp(-distance_km / scale)``.

Hard constraints (checked on every proposal, see ``ClusterProposal.constraints``)
    * size: ``min_size <= |cluster| <= max_size``;
    * capacity: a city is in at most ``max_per_city`` clusters (default: its
      ``capacity``), and in at most one cluster per theme;
    * lead: a member *can lead*: it scores ``>= lead_min_strength`` on the theme in the
      Index, or prioritises it at 5 and has a good practice on it (``practices``); for a
      geographic cluster, the same on any theme;
    * common language: one language every member speaks (``require_common_language``);
    * mixed membership: international and national-network members together. When a
      pool has fewer cities of the scarcer kind than clusters, only that many clusters
      can be mixed; the others are reported as *relaxed*;
    * not one country / not one national network unless ``allow_single_country`` /
      ``allow_single_network``;
    * locked groups together in one cluster each (``locked``: slot -> city ids; for a
      thematic request the slot names the theme: ``"education"`` or ``"education#2"``);
      excluded cities nowhere; ``n_clusters`` per theme (thematic) or in total
      (geographic) when given.

Objective (both methods)
    ``coverage_weight * sum(priority / 5 of each membership) + sum over clusters of
    sum over member pairs (affinity - gamma)``. Placing willing cities comes first
    (``coverage_weight`` dominates any cohesion change one city can make); among equally
    covering proposals the most cohesive wins. ``gamma`` (per pool, in ``metrics``) is the
    affinity above which a pair counts as a good pair: the pool's pair ranked
    ``k * (target - 1) / 2`` with ``target = (min_size + max_size) / 2``, so each city has
    on average ``target - 1`` partners above it, as in a partition into groups of the
    target size. It is also Leiden's CPM resolution, and it stops the objective from
    merging every group up to ``max_size`` (any non-negative affinity would).

Methods
    * exact (``matching.clusters_exact``): OR-Tools CP-SAT on all pools at once, used when
      the pools hold at most ``exact_max_candidates`` candidate memberships in all
      (``method="auto"``) or when asked; deterministic (one worker, deterministic time
      limit, fixed seed) and warm-started from the heuristic's proposal, so it is never
      worse. An infeasible model is diagnosed by re-solving with one constraint relaxed
      at a time.
    * leiden+repair (``matching.clusters_large``): capacity allocated to each city's
      highest priorities, igraph Leiden (CPM, seeded) per pool, then repair to the hard
      constraints and local search. A cluster repair cannot make valid is dissolved and
      its members re-placed; only a locked cluster can come out violating a constraint,
      and then it is reported as violated.

``evaluate_clusters(inp, params, groups)`` describes and checks clusters a planner has
edited, as they stand: no solving, and broken rules reported rather than refused.

Infeasible requests raise :class:`ClusterInfeasible` (a ``ValueError``; HTTP 409) whose
message names the constraint to relax and by how much; malformed input raises
:class:`ClusterInputError` (a ``ValueError``; HTTP 422).
"""

from __future__ import annotations

import math
import types
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from graph.errors import Infeasible, InvalidInput
from matching.clusters_large import (
    BoolArray,
    FloatArray,
    IntArray,
    Lock,
    Matrix,
    PoolData,
    RawCluster,
    Rules,
    objective_terms,
    pair_sum,
    solve_large,
    tune_gamma,
    unmixed_allowed,
    violation_checker,
)
from matching.reasons import Reason

__all__ = [
    "Cluster",
    "ClusterInfeasible",
    "ClusterInput",
    "ClusterInputError",
    "ClusterParams",
    "ClusterProposal",
    "ConstraintStatus",
    "UnassignedCity",
    "check_groups",
    "evaluate_clusters",
    "propose_clusters",
]

Kind = Literal["thematic", "geographic"]
Method = Literal["auto", "exact", "heuristic"]
GEO_KEY = "geographic"
_EARTH_KM = 6371.0088
_DENSE_MAX = 2500


# --------------------------------------------------------------------------- errors


class ClusterInputError(InvalidInput, ValueError):
    """The input arrays or parameters are malformed (HTTP 422)."""


class ClusterInfeasible(Infeasible, ValueError):
    """No proposal satisfies the request; ``detail`` names what to relax (HTTP 409).

    ``constraint`` is the parameter to change (``"min_size"``, ``"lead_min_strength"``,
    ``"require_common_language"``, ...), ``theme`` the theme concerned (or None) and
    ``suggestion`` the value that would work, where one is known.
    """

    def __init__(
        self,
        detail: str,
        *,
        constraint: str,
        theme: str | None = None,
        suggestion: object = None,
    ) -> None:
        super().__init__(detail)
        self.constraint = constraint
        self.theme = theme
        self.suggestion = suggestion


# --------------------------------------------------------------------------- input


def _frozen(a: Any, dtype: Any) -> Any:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class ClusterInput:
    """The network as plain arrays, built by the caller from a snapshot.

    ``n`` cities, ``L`` languages, ``T`` themes. ``affinity`` is ``n x n``, symmetric,
    non-negative (dense, or ``scipy.sparse`` for large ``n``; the diagonal is ignored).
    ``priority`` is 0-5 (0: not a priority), ``strength`` the Index score 0-100 (NaN:
    unknown), ``capacity`` the most clusters each city can be in. Optional:
    ``practices`` (``n x T`` bool: has a good practice on the theme), ``ties`` (``n x n``:
    existing partnerships), ``joined`` (year each city joined, 0 if unknown).
    Arrays are copied and made read-only, so the caller's arrays are never touched.
    """

    city_ids: tuple[str, ...]
    names: tuple[str, ...]
    affinity: Matrix
    countries: tuple[str, ...]
    networks: tuple[tuple[str, ...], ...]
    membership: tuple[str, ...]
    languages: BoolArray
    language_codes: tuple[str, ...]
    theme_ids: tuple[str, ...]
    theme_names: tuple[str, ...]
    priority: IntArray
    strength: FloatArray
    capacity: IntArray
    lat: FloatArray
    lon: FloatArray
    practices: BoolArray | None = None
    ties: Matrix | None = None
    joined: IntArray | None = None

    def __post_init__(self) -> None:
        s = object.__setattr__
        n = len(self.city_ids)
        for name in (
            "city_ids",
            "names",
            "countries",
            "membership",
            "language_codes",
            "theme_ids",
            "theme_names",
        ):
            s(self, name, tuple(str(x) for x in getattr(self, name)))
        s(self, "networks", tuple(tuple(str(g) for g in row) for row in self.networks))
        if len(set(self.city_ids)) != n:
            dup = next(c for c, k in Counter(self.city_ids).items() if k > 1)
            raise ClusterInputError(f"city id {dup!r} appears twice: city ids must be unique")
        for name in ("names", "countries", "networks", "membership"):
            if len(getattr(self, name)) != n:
                raise ClusterInputError(
                    f"{name} has {len(getattr(self, name))} entries but there are {n} cities"
                )
        bad = [m for m in self.membership if m not in ("international", "national")]
        if bad:
            raise ClusterInputError(
                f"membership must be 'international' or 'national', not {bad[0]!r}"
            )
        T, L = len(self.theme_ids), len(self.language_codes)
        if len(self.theme_names) != T:
            raise ClusterInputError(
                f"theme_names has {len(self.theme_names)} entries but there are {T} themes"
            )
        s(self, "affinity", self._matrix(self.affinity, "affinity", n))
        s(self, "languages", self._shaped(self.languages, bool, (n, L), "languages"))
        s(self, "priority", self._shaped(self.priority, np.int64, (n, T), "priority"))
        s(self, "strength", self._shaped(self.strength, np.float64, (n, T), "strength"))
        s(self, "capacity", self._shaped(self.capacity, np.int64, (n,), "capacity"))
        s(self, "lat", self._shaped(self.lat, np.float64, (n,), "lat"))
        s(self, "lon", self._shaped(self.lon, np.float64, (n,), "lon"))
        if self.practices is not None:
            s(self, "practices", self._shaped(self.practices, bool, (n, T), "practices"))
        if self.ties is not None:
            s(self, "ties", self._matrix(self.ties, "ties", n))
        if self.joined is not None:
            s(self, "joined", self._shaped(self.joined, np.int64, (n,), "joined"))
        if self.priority.size and (self.priority.min() < 0 or self.priority.max() > 5):
            raise ClusterInputError("priority must be between 0 and 5 (0: not a priority)")
        known = self.strength[~np.isnan(self.strength)]
        if known.size and (known.min() < 0 or known.max() > 100):
            raise ClusterInputError(
                "strength (Index scores) must be between 0 and 100, or NaN when unknown"
            )
        if self.capacity.size and self.capacity.min() < 0:
            i = int(np.argmin(self.capacity))
            raise ClusterInputError(
                f"capacity of {self.city_ids[i]!r} is {self.capacity[i]}: it must be 0 or more"
            )
        if not (np.isfinite(self.lat).all() and np.isfinite(self.lon).all()):
            raise ClusterInputError("lat and lon must be finite numbers")

    @staticmethod
    def _shaped(a: Any, dtype: Any, shape: tuple[int, ...], name: str) -> Any:
        arr = np.asarray(a)
        if arr.size == 0:
            arr = arr.reshape(shape)
        if arr.shape != shape:
            raise ClusterInputError(f"{name} must have shape {shape}, not {arr.shape}")
        return _frozen(arr, dtype)

    @staticmethod
    def _matrix(a: Any, name: str, n: int) -> Matrix:
        if sp.issparse(a):
            m = sp.csr_matrix(a, dtype=np.float64, copy=True)
            if m.shape != (n, n):
                raise ClusterInputError(f"{name} must be {n} x {n}, not {m.shape}")
            if m.nnz and (not np.isfinite(m.data).all() or m.data.min() < 0):
                raise ClusterInputError(f"{name} must be finite and non-negative")
            diff = abs(m - m.T)
            if diff.nnz and diff.max() > 1e-9:
                raise ClusterInputError(f"{name} must be symmetric")
            return m
        d = np.asarray(a, dtype=np.float64)
        if d.shape != (n, n):
            raise ClusterInputError(f"{name} must be {n} x {n}, not {d.shape}")
        if d.size and (not np.isfinite(d).all() or d.min() < 0):
            raise ClusterInputError(f"{name} must be finite and non-negative")
        if d.size and not np.allclose(d, d.T, atol=1e-9):
            i, j = np.unravel_index(int(np.argmax(abs(d - d.T))), d.shape)
            raise ClusterInputError(
                f"{name} must be symmetric: [{i}, {j}] is {d[i, j]:g} but [{j}, {i}] is {d[j, i]:g}"
            )
        out: FloatArray = _frozen(d, np.float64)
        return out

    @property
    def n(self) -> int:
        return len(self.city_ids)


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class ClusterParams:
    """What the planner asks for. Defaults follow the issue; see the module doc for the rules.

    ``locked`` maps a slot name to city ids that must be in one cluster together (one
    cluster per slot); for a thematic request the slot is ``"<theme_id>"`` or
    ``"<theme_id>#<label>"``. ``max_per_city`` replaces every city's ``capacity`` when
    given. ``n_clusters`` is per theme (thematic) or in total (geographic). ``time_limit_s``
    bounds the exact solver (as CP-SAT deterministic time, so results do not depend on the
    machine's load).
    """

    kind: Kind = "thematic"
    themes: tuple[str, ...] | None = None
    max_themes: int = 5
    min_size: int = 4
    max_size: int = 8
    max_per_city: int | None = None
    n_clusters: int | None = None
    lead_min_strength: float = 70.0
    require_common_language: bool = True
    mixed_membership: bool = True
    allow_single_country: bool = False
    allow_single_network: bool = False
    locked: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    excluded: frozenset[str] = frozenset()
    seed: int = 0
    time_limit_s: float = 5.0
    method: Method = "auto"
    exact_max_candidates: int = 40
    distance_scale_km: float = 300.0
    distance_weight: float = 0.5
    newcomer_years: int = 2

    def __post_init__(self) -> None:
        s = object.__setattr__
        if self.themes is not None:
            s(self, "themes", tuple(self.themes))
        s(
            self,
            "locked",
            types.MappingProxyType({str(k): tuple(v) for k, v in dict(self.locked).items()}),
        )
        s(self, "excluded", frozenset(self.excluded))
        if self.kind not in ("thematic", "geographic"):
            raise ClusterInputError(f"kind must be 'thematic' or 'geographic', not {self.kind!r}")
        if self.method not in ("auto", "exact", "heuristic"):
            raise ClusterInputError(
                f"method must be 'auto', 'exact' or 'heuristic', not {self.method!r}"
            )
        if self.min_size < 2:
            raise ClusterInputError(
                f"min_size is {self.min_size}: a cluster needs at least 2 cities"
            )
        if self.max_size < self.min_size:
            raise ClusterInputError(
                f"max_size {self.max_size} is below min_size {self.min_size}: raise max_size to {self.min_size} or more"
            )
        if self.max_per_city is not None and self.max_per_city < 0:
            raise ClusterInputError(
                "max_per_city must be 0 or more (or None to use each city's capacity)"
            )
        if self.n_clusters is not None and self.n_clusters < 1:
            raise ClusterInputError(
                "n_clusters must be at least 1 (or None to choose automatically)"
            )
        if self.max_themes < 1:
            raise ClusterInputError("max_themes must be at least 1")
        if not 0 <= self.lead_min_strength <= 100:
            raise ClusterInputError("lead_min_strength must be between 0 and 100")
        if self.time_limit_s <= 0:
            raise ClusterInputError("time_limit_s must be positive")
        if self.distance_scale_km <= 0 or not 0 <= self.distance_weight <= 1:
            raise ClusterInputError(
                "distance_scale_km must be positive and distance_weight within [0, 1]"
            )
        for slot, ids in self.locked.items():
            if len(ids) == 0:
                raise ClusterInputError(f"locked slot {slot!r} lists no city")


# --------------------------------------------------------------------------- output


@dataclass(frozen=True, slots=True)
class Cluster:
    """One proposed cluster. ``score`` is its cohesion: the mean affinity of member pairs."""

    id: str
    kind: Kind
    theme_ids: tuple[str, ...]
    members: tuple[str, ...]
    lead_city: str
    working_languages: tuple[str, ...]
    score: float
    reasons: tuple[Reason, ...]
    components: Mapping[str, float]
    locked_slot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "theme_ids": list(self.theme_ids),
            "members": list(self.members),
            "lead_city": self.lead_city,
            "working_languages": list(self.working_languages),
            "score": round(self.score, 6),
            "reasons": [{"kind": r.kind, "text": r.text, "weight": r.weight} for r in self.reasons],
            "components": {k: round(v, 6) for k, v in self.components.items()},
            "locked_slot": self.locked_slot,
        }


@dataclass(frozen=True, slots=True)
class UnassignedCity:
    """A city in no cluster, and why."""

    city_id: str
    name: str
    reason: str
    kind: str  # "excluded", "capacity", "no_theme", "language", "full", "too_few", "rules"

    def to_dict(self) -> dict[str, str]:
        return {
            "city_id": self.city_id,
            "name": self.name,
            "reason": self.reason,
            "kind": self.kind,
        }


@dataclass(frozen=True, slots=True)
class ConstraintStatus:
    """One hard constraint over the whole proposal: ``satisfied`` / ``violated`` / ``relaxed``.

    ``satisfied`` and ``violated`` count the items checked (clusters, cities or locks);
    ``relaxed`` means the request or the pool waived it for some items (``relaxed`` counts
    them); ``detail`` says which and why.
    """

    name: str
    status: Literal["satisfied", "violated", "relaxed"]
    satisfied: int
    violated: int
    relaxed: int = 0
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "satisfied": self.satisfied,
            "violated": self.violated,
            "relaxed": self.relaxed,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ClusterProposal:
    """A proposal: clusters, cities left out, objective, constraint statuses, method, seed."""

    kind: Kind
    clusters: tuple[Cluster, ...]
    unassigned: tuple[UnassignedCity, ...]
    objective: float
    constraints: tuple[ConstraintStatus, ...]
    method: str
    seed: int
    metrics: Mapping[str, float | int | str]

    @property
    def hard_constraints_ok(self) -> bool:
        return all(c.violated == 0 for c in self.constraints)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "clusters": [c.to_dict() for c in self.clusters],
            "unassigned": [u.to_dict() for u in self.unassigned],
            "objective": round(self.objective, 6),
            "constraints": [c.to_dict() for c in self.constraints],
            "method": self.method,
            "seed": self.seed,
            "metrics": dict(self.metrics),
        }


# --------------------------------------------------------------------------- internals


@dataclass(frozen=True, eq=False)
class _Problem:
    inp: ClusterInput
    params: ClusterParams
    pools: tuple[PoolData, ...]
    pool_strength: tuple[FloatArray, ...]  # the lead score of each candidate, per pool
    pool_lead_theme: tuple[IntArray, ...]  # the theme that score is on, per pool
    explicit: tuple[bool, ...]
    rules: Rules
    cap: IntArray
    eligible: BoolArray
    skipped: Mapping[str, str]  # theme id -> why no pool was built
    mixed_waived: Mapping[int, str]  # pool -> why mixing is not required there


@lru_cache(maxsize=256)
def _language_name(code: str) -> str:
    try:
        import pycountry

        lang = pycountry.languages.get(alpha_2=code)
        return str(lang.name) if lang is not None else code
    except Exception:  # pragma: no cover - pycountry missing or odd code
        return code


def _join(words: Sequence[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _effective_capacity(inp: ClusterInput, params: ClusterParams) -> IntArray:
    if params.max_per_city is not None:
        return np.full(inp.n, params.max_per_city, dtype=np.int64)
    return np.asarray(inp.capacity, dtype=np.int64).copy()


def _lead_ok(inp: ClusterInput, params: ClusterParams) -> BoolArray:
    """``n x T``: the city can lead a cluster on the theme.

    Strong means an Index score of at least ``lead_min_strength``, or -- for themes the
    Index does not score, and for cities it has not scored -- a published good practice on
    a theme the city prioritises at 3/5 or more.
    """
    strong = np.nan_to_num(inp.strength, nan=-1.0) >= params.lead_min_strength
    if inp.practices is not None:
        strong = strong | ((inp.priority >= 3) & inp.practices)
    return np.asarray(strong)


def _sub(A: Matrix, idx: IntArray) -> Matrix:
    if isinstance(A, np.ndarray):
        W = np.array(A[np.ix_(idx, idx)], dtype=np.float64)
        np.fill_diagonal(W, 0.0)
        return W
    S = sp.csr_matrix(A)[idx][:, idx].tocsr()
    if len(idx) <= _DENSE_MAX:
        W = S.toarray()
        np.fill_diagonal(W, 0.0)
        return W
    S.setdiag(0.0)
    S.eliminate_zeros()
    return S


def _haversine_km(
    lat: FloatArray, lon: FloatArray, lat2: FloatArray, lon2: FloatArray
) -> FloatArray:
    p1, p2 = np.radians(lat)[:, None], np.radians(lat2)[None, :]
    dl = np.radians(lon2)[None, :] - np.radians(lon)[:, None]
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: FloatArray = 2 * _EARTH_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return out


def _geo_affinity(inp: ClusterInput, params: ClusterParams, idx: IntArray) -> Matrix:
    A = _sub(inp.affinity, idx)
    top = float(A.max()) if A.shape[0] > 1 else 0.0
    scale = top if top > 0 else 1.0
    w = params.distance_weight
    lat, lon = inp.lat[idx], inp.lon[idx]
    if len(idx) <= _DENSE_MAX:
        prox = np.exp(-_haversine_km(lat, lon, lat, lon) / params.distance_scale_km)
        A_d = A if isinstance(A, np.ndarray) else A.toarray()
        W = (1 - w) * A_d / scale + w * prox
        np.fill_diagonal(W, 0.0)
        return np.asarray(W)
    from scipy.spatial import cKDTree

    # nearest neighbours by chord length on the unit sphere (same order as great-circle)
    la, lo = np.radians(lat), np.radians(lon)
    xyz = np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
    k = min(len(idx), 31)
    chord, nb = cKDTree(xyz).query(xyz, k=k)
    dist = 2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))  # radians
    rows = np.repeat(np.arange(len(idx)), k)
    vals = np.exp(-(dist.ravel() * _EARTH_KM) / params.distance_scale_km)
    P = sp.csr_matrix((vals, (rows, nb.ravel())), shape=(len(idx), len(idx)))
    P = P.maximum(P.T)
    W = ((1 - w) / scale) * sp.csr_matrix(A) + w * P
    W.setdiag(0.0)
    W.eliminate_zeros()
    return sp.csr_matrix(W)


def _parse_slot(params: ClusterParams, inp: ClusterInput, slot: str) -> int:
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


def _build(inp: ClusterInput, params: ClusterParams, strict: bool = True) -> _Problem:
    """The pools, rules and capacities of a request.

    ``strict`` refuses a request no proposal can satisfy (locks that break a rule, a pool
    that cannot host a valid cluster). :func:`evaluate_clusters` builds with
    ``strict=False``: it checks groups the planner already chose, so a broken rule is a
    finding to report there, not a reason to refuse.
    """
    n, T = inp.n, len(inp.theme_ids)
    pos = {c: i for i, c in enumerate(inp.city_ids)}
    unknown = sorted(set(params.excluded) - set(pos))
    if unknown:
        raise ClusterInputError(f"excluded city {unknown[0]!r} is not in the network")
    cap = _effective_capacity(inp, params)
    excluded = np.zeros(n, dtype=bool)
    excluded[[pos[c] for c in params.excluded]] = True
    eligible = ~excluded & (cap > 0)
    lead_ok = _lead_ok(inp, params)

    # locks: slot -> (theme, global members)
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
        locks[slot] = (_parse_slot(params, inp, slot), members)
    if strict:
        _check_locks(inp, params, cap, locks)

    # which pools
    explicit: list[bool] = []
    themes: list[int] = []
    skipped: dict[str, str] = {}
    if params.kind == "geographic":
        themes = [-1]
        explicit = [True]
    else:
        if params.themes is not None:
            bad = [t for t in params.themes if t not in inp.theme_ids]
            if bad:
                raise ClusterInputError(
                    f"theme {bad[0]!r} is not in the network; known themes: {_join(list(inp.theme_ids[:8]))}"
                )
            themes = [inp.theme_ids.index(t) for t in dict.fromkeys(params.themes)]
            explicit = [True] * len(themes)
        else:
            demand = (inp.priority * eligible[:, None]).sum(axis=0)
            count = ((inp.priority > 0) & eligible[:, None]).sum(axis=0)
            order = sorted(range(T), key=lambda t: (-int(demand[t]), t))
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

    countries = {c: k for k, c in enumerate(sorted(set(inp.countries)))}
    country_code = np.asarray([countries[c] for c in inp.countries], dtype=np.int64)
    net_ids = sorted({g for row in inp.networks for g in row})
    net_all = np.zeros((n, len(net_ids)), dtype=bool)
    for i, row in enumerate(inp.networks):
        for g in row:
            net_all[i, net_ids.index(g)] = True
    intl = np.asarray([m == "international" for m in inp.membership])

    pools: list[PoolData] = []
    strengths: list[FloatArray] = []
    lead_theme: list[IntArray] = []
    explicit_out: list[bool] = []
    mixed_waived: dict[int, str] = {}
    for t, is_explicit in zip(themes, explicit, strict=True):
        key = GEO_KEY if t < 0 else inp.theme_ids[t]
        mask = eligible.copy() if t < 0 else eligible & (inp.priority[:, t] > 0)
        my_locks = [(slot, m) for slot, (tt, m) in locks.items() if tt == t]
        for _, m in my_locks:
            mask[m] = True
        idx = np.flatnonzero(mask).astype(np.int64)
        local = {int(g): a for a, g in enumerate(idx)}
        if t < 0:
            W = _geo_affinity(inp, params, idx)
            cov = np.ones(len(idx))
            st_all = np.nan_to_num(inp.strength[idx], nan=-1.0)
            lt = np.argmax(st_all, axis=1) if T else np.zeros(len(idx), dtype=np.int64)
            st = st_all[np.arange(len(idx)), lt] if T else np.full(len(idx), -1.0)
            lok = np.asarray(lead_ok[idx].any(axis=1)) if T else np.zeros(len(idx), dtype=bool)
        else:
            W = _sub(inp.affinity, idx)
            cov = np.maximum(inp.priority[idx, t], 1) / 5.0
            st = np.nan_to_num(inp.strength[idx, t], nan=-1.0)
            lt = np.full(len(idx), t, dtype=np.int64)
            lok = lead_ok[idx, t]
        problem_msg = _precheck(inp, params, key, idx, lok, st, net_all[idx]) if strict else None
        if problem_msg is not None:
            if is_explicit:
                raise problem_msg
            skipped[key] = problem_msg.detail
            continue
        n_int, n_nat = int(intl[idx].sum()), int((~intl[idx]).sum())
        if params.mixed_membership and n_int and n_nat:
            allowance = min(n_int, n_nat)
        else:
            allowance = -1
            if params.mixed_membership:
                kind_missing = "national-network" if n_int else "international"
                mixed_waived[len(pools)] = f"the {key} pool has no {kind_missing} city"
        gamma = tune_gamma(W, params.min_size, params.max_size)
        pools.append(
            PoolData(
                key=key,
                theme=t,
                idx=idx,
                W=W,
                gamma=float(gamma),
                cov=np.asarray(cov, dtype=np.float64),
                lead_ok=np.asarray(lok, dtype=bool),
                langs=np.asarray(inp.languages[idx], dtype=bool),
                intl=intl[idx],
                national=~intl[idx],
                country=country_code[idx],
                net=net_all[idx],
                locks=tuple(Lock(slot, tuple(local[g] for g in m)) for slot, m in my_locks),
                n_clusters=params.n_clusters,
                mix_allowance=allowance,
            )
        )
        strengths.append(np.asarray(st, dtype=np.float64))
        lead_theme.append(np.asarray(lt, dtype=np.int64))
        explicit_out.append(is_explicit)

    spread = 0.0
    for p in pools:
        top = float(p.W.max()) if p.k > 1 else 0.0
        spread = max(spread, top - p.gamma, p.gamma)
    rules = Rules(
        min_size=params.min_size,
        max_size=params.max_size,
        require_language=params.require_common_language,
        single_country_ok=params.allow_single_country,
        single_network_ok=params.allow_single_network,
        coverage_weight=5.0 * params.max_size * max(spread, 1e-6),
    )
    return _Problem(
        inp=inp,
        params=params,
        pools=tuple(pools),
        pool_strength=tuple(strengths),
        pool_lead_theme=tuple(lead_theme),
        explicit=tuple(explicit_out),
        rules=rules,
        cap=cap,
        eligible=eligible,
        skipped=types.MappingProxyType(skipped),
        mixed_waived=types.MappingProxyType(mixed_waived),
    )


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
        if params.require_common_language and not inp.languages[members].all(axis=0).any():
            raise ClusterInfeasible(
                f"the cities locked in slot {slot!r} ({_join([inp.names[i] for i in members])}) share no "
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
        return ClusterInfeasible(
            f"{what} has {k} candidate cities (prioritising it, not excluded, with capacity) but min_size is "
            f"{lo}: lower min_size to {max(k, 2)} or add cities that prioritise it",
            constraint="min_size",
            theme=key,
            suggestion=max(k, 2),
        )
    if params.n_clusters is not None and params.n_clusters * lo > k:
        return ClusterInfeasible(
            f"n_clusters {params.n_clusters} for {what} needs {params.n_clusters * lo} cities but {k} are "
            f"candidates: lower n_clusters to {k // lo} or min_size to {max(2, k // params.n_clusters)}",
            constraint="n_clusters",
            theme=key,
            suggestion=k // lo,
        )
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
    if params.require_common_language:
        langs = inp.languages[idx]
        speakers = langs.sum(axis=0)
        big = speakers >= lo
        if not big.any():
            most = int(speakers.max()) if speakers.size else 0
            return ClusterInfeasible(
                f"min_size {lo} needs {lo} cities sharing a language for {what} but at most {most} do: "
                f"lower min_size to {max(most, 2)} or drop require_common_language",
                constraint="min_size",
                theme=key,
                suggestion=max(most, 2),
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
        groups = [langs[:, b] for b in led]
    else:
        groups = [np.ones(k, dtype=bool)]
    if not params.allow_single_country:
        cc = np.asarray([inp.countries[g] for g in idx])
        if not any(len(set(cc[m])) > 1 for m in groups):
            only = sorted(set(cc))
            return ClusterInfeasible(
                f"every group of candidates for {what} that could form a cluster is in one country "
                f"({_join(only)}): set allow_single_country=True",
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


# --------------------------------------------------------------------------- solving


def propose_clusters(inp: ClusterInput, params: ClusterParams = ClusterParams()) -> ClusterProposal:
    """Propose clusters for ``inp`` under ``params`` (see the module doc for the rules).

    Raises :class:`ClusterInfeasible` when no proposal can satisfy the request (the message
    names what to relax) and :class:`ClusterInputError` for malformed parameters.
    """
    from matching import clusters_exact

    problem = _build(inp, params)
    pools = problem.pools
    heuristic = solve_large(pools, problem.rules, problem.cap, problem.pool_strength, params.seed)
    raw: tuple[RawCluster, ...] = heuristic.clusters
    method = "leiden+repair"
    total = sum(p.k for p in pools)
    use_exact = params.method == "exact" or (
        params.method == "auto" and 0 < total <= params.exact_max_candidates
    )
    if use_exact and pools:
        if total > clusters_exact.EXACT_HARD_LIMIT:
            raise ClusterInputError(
                f"method='exact' handles at most {clusters_exact.EXACT_HARD_LIMIT} candidate memberships but "
                f"this request has {total}: use method='auto' or narrow the themes"
            )
        result = clusters_exact.solve_exact(
            pools,
            problem.rules,
            problem.cap,
            heuristic.clusters,
            params.time_limit_s,
            params.seed,
            nonempty=problem.explicit,
        )
        if result.status == "infeasible":
            raise _diagnose(problem, clusters_exact)
        if result.clusters is not None:
            ex = _objective(problem, result.clusters)
            hx = _objective(problem, heuristic.clusters)
            if ex >= hx - 1e-9 or _violations_total(problem, heuristic.clusters) > 0:
                raw = result.clusters
                method = f"exact CP-SAT ({result.status})"
            else:
                method = "leiden+repair (better than CP-SAT's incumbent)"
        else:
            method = "leiden+repair (CP-SAT found no proposal within the time limit)"
    for p in range(len(pools)):
        if problem.explicit[p] and not any(c.pool == p for c in raw):
            raise _explain_empty(problem, p, heuristic.dissolved)
    return _report(problem, raw, method)


def evaluate_clusters(
    inp: ClusterInput, params: ClusterParams, groups: Mapping[str, Sequence[str]]
) -> ClusterProposal:
    """Describe and check a planner's own clusters exactly as they stand.

    ``groups`` maps a slot (named as in ``ClusterParams.locked``: ``"education#2"`` for a
    thematic cluster) to its member ids. Nothing is solved and nobody moves: each group is
    one cluster, described (lead, languages, cohesion, reasons) and checked against every
    hard rule of ``params``. A broken rule comes back as a violated constraint instead of
    :class:`ClusterInfeasible`, because a planner in the middle of an edit needs to see
    what the edit broke, not a refusal. Malformed groups (an unknown city or theme) still
    raise :class:`ClusterInputError`.
    """
    if not any(groups.values()):
        raise ClusterInputError("there is no cluster with members to check")
    placed = {c for ids in groups.values() for c in ids}
    check = _replace(
        params,
        themes=() if params.kind == "thematic" else params.themes,
        locked={slot: tuple(ids) for slot, ids in groups.items() if ids},
        excluded=frozenset(c for c in inp.city_ids if c not in placed),
        n_clusters=None,
    )
    problem = _build(inp, check, strict=False)
    raw = [
        RawCluster(p, tuple(sorted(lock.members)), lock.slot)
        for p, pool in enumerate(problem.pools)
        for lock in pool.locks
    ]
    return _report(problem, raw, "evaluated as edited")


def _objective(problem: _Problem, raw: Sequence[RawCluster]) -> float:
    cov, coh = objective_terms(problem.pools, problem.rules, raw)
    return problem.rules.coverage_weight * cov + coh


def _violations_total(problem: _Problem, raw: Sequence[RawCluster]) -> int:
    return sum(s.violated for s in _statuses(problem, raw)[0])


def _diagnose(problem: _Problem, exact: Any) -> ClusterInfeasible:
    """Find one relaxation that makes the exact model feasible, and say so."""
    params = problem.params
    probes: list[tuple[str, ClusterParams, str]] = []
    if params.mixed_membership:
        probes.append(
            (
                "mixed_membership",
                _replace(params, mixed_membership=False),
                "set mixed_membership=False",
            )
        )
    if not params.allow_single_country:
        probes.append(
            (
                "allow_single_country",
                _replace(params, allow_single_country=True),
                "set allow_single_country=True",
            )
        )
    if not params.allow_single_network:
        probes.append(
            (
                "allow_single_network",
                _replace(params, allow_single_network=True),
                "set allow_single_network=True",
            )
        )
    if params.require_common_language:
        probes.append(
            (
                "require_common_language",
                _replace(params, require_common_language=False),
                "drop require_common_language",
            )
        )
    for m in range(params.min_size - 1, 1, -1):
        probes.append(("min_size", _replace(params, min_size=m), f"lower min_size to {m}"))
    if params.n_clusters is not None:
        for k in range(params.n_clusters - 1, 0, -1):
            probes.append(
                ("n_clusters", _replace(params, n_clusters=k), f"lower n_clusters to {k}")
            )
    found: dict[str, str] = {}
    for name, relaxed, text in probes:
        if name in found:
            continue
        try:
            p2 = _build(problem.inp, relaxed)
        except ClusterInfeasible:
            continue
        if exact.is_feasible(
            p2.pools,
            p2.rules,
            p2.cap,
            min(2.0, params.time_limit_s),
            params.seed,
            nonempty=p2.explicit,
        ):
            found[name] = text
    if found:
        first = next(iter(found))
        return ClusterInfeasible(
            "no proposal satisfies every constraint together (locks, n_clusters and the rules): "
            + " or ".join(found.values()),
            constraint=first,
        )
    return ClusterInfeasible(
        "no proposal satisfies every constraint together and no single relaxation fixes it: "
        "unlock some cities or lower n_clusters",
        constraint="locked",
    )


def _replace(params: ClusterParams, **changes: Any) -> ClusterParams:
    import dataclasses

    return dataclasses.replace(params, **changes)


def _explain_empty(
    problem: _Problem, p: int, dissolved: Sequence[tuple[int, str, int]]
) -> ClusterInfeasible:
    pool = problem.pools[p]
    params = problem.params
    what = f"theme {pool.key!r}" if pool.theme >= 0 else "geographic clusters"
    why = Counter(v for q, v, _ in dissolved if q == p)
    hint = {
        "lead": f"lower lead_min_strength below {params.lead_min_strength:g}",
        "mixed": "set mixed_membership=False",
        "country": "set allow_single_country=True",
        "network": "set allow_single_network=True",
        "language": "drop require_common_language",
        "size": f"lower min_size below {params.min_size}",
    }
    if why:
        v = why.most_common(1)[0][0]
        return ClusterInfeasible(
            f"no valid cluster could be formed for {what}: the candidate groups broke the {v} rule; {hint[v]}",
            constraint={
                "lead": "lead_min_strength",
                "mixed": "mixed_membership",
                "country": "allow_single_country",
                "network": "allow_single_network",
                "language": "require_common_language",
                "size": "min_size",
            }[v],
            theme=pool.key,
        )
    return ClusterInfeasible(
        f"no valid cluster could be formed for {what} with the capacity its candidates have left: "
        "raise max_per_city or request fewer themes",
        constraint="max_per_city",
        theme=pool.key,
    )


# --------------------------------------------------------------------------- report


def _statuses(
    problem: _Problem, raw: Sequence[RawCluster]
) -> tuple[list[ConstraintStatus], list[set[str]]]:
    inp, params, rules = problem.inp, problem.params, problem.rules
    checkers = {p: violation_checker(pool, rules) for p, pool in enumerate(problem.pools)}
    per: list[set[str]] = [checkers[c.pool](c.members) for c in raw]
    statuses: list[ConstraintStatus] = []
    n_c = len(raw)

    def simple(name: str, tag: str, relaxed_by: str | None = None) -> None:
        bad = sum(tag in v for v in per)
        if relaxed_by is not None:
            statuses.append(ConstraintStatus(name, "relaxed", n_c - bad, 0, bad, relaxed_by))
        else:
            statuses.append(
                ConstraintStatus(
                    name,
                    "violated" if bad else "satisfied",
                    n_c - bad,
                    bad,
                    0,
                    f"{bad} cluster(s) break it" if bad else "",
                )
            )

    simple("size_bounds", "size")
    # capacity: memberships per city, and one cluster per theme
    count = np.zeros(inp.n, dtype=np.int64)
    per_pool: Counter[tuple[int, int]] = Counter()
    for c in raw:
        g = problem.pools[c.pool].idx[list(c.members)]
        count[g] += 1
        per_pool.update((c.pool, int(x)) for x in g)
    members_any = count > 0
    over = int((count > problem.cap).sum()) + sum(1 for v in per_pool.values() if v > 1)
    statuses.append(
        ConstraintStatus(
            "capacity",
            "violated" if over else "satisfied",
            int(members_any.sum()) - over,
            over,
            0,
            f"{over} cit(ies) over capacity" if over else "",
        )
    )
    simple("lead", "lead")
    simple(
        "common_language",
        "language",
        None if params.require_common_language else "require_common_language is off",
    )
    # mixed membership with the pools' allowance
    unmixed_total, excess_total, relaxed_notes = 0, 0, []
    for p, pool in enumerate(problem.pools):
        mine = [k for k, c in enumerate(raw) if c.pool == p]
        unmixed = sum("mixed" in per[k] for k in mine)
        if not params.mixed_membership:
            continue
        if pool.mix_allowance < 0:
            unmixed_here = sum(
                not (
                    pool.intl[list(raw[k].members)].any()
                    and pool.national[list(raw[k].members)].any()
                )
                for k in mine
            )
            if unmixed_here:
                unmixed_total += unmixed_here
                relaxed_notes.append(problem.mixed_waived.get(p, f"the {pool.key} pool cannot mix"))
            continue
        allowed = unmixed_allowed(pool, len(mine))
        excess = max(0, unmixed - allowed)
        excess_total += excess
        if unmixed - excess:
            unmixed_total += unmixed - excess
            scarce = (
                "national-network" if pool.national.sum() <= pool.intl.sum() else "international"
            )
            relaxed_notes.append(
                f"the {pool.key} pool has only {pool.mix_allowance} {scarce} cities"
            )
    if not params.mixed_membership:
        bad = sum(
            not (
                problem.pools[c.pool].intl[list(c.members)].any()
                and problem.pools[c.pool].national[list(c.members)].any()
            )
            for c in raw
        )
        statuses.append(
            ConstraintStatus(
                "mixed_membership", "relaxed", n_c - bad, 0, bad, "mixed_membership is off"
            )
        )
    elif excess_total:
        statuses.append(
            ConstraintStatus(
                "mixed_membership",
                "violated",
                n_c - excess_total - unmixed_total,
                excess_total,
                unmixed_total,
                f"{excess_total} cluster(s) unmixed although the pool could mix them",
            )
        )
    elif unmixed_total:
        statuses.append(
            ConstraintStatus(
                "mixed_membership",
                "relaxed",
                n_c - unmixed_total,
                0,
                unmixed_total,
                "; ".join(sorted(set(relaxed_notes))),
            )
        )
    else:
        statuses.append(ConstraintStatus("mixed_membership", "satisfied", n_c, 0))
    simple(
        "multi_country",
        "country",
        "allow_single_country is on" if params.allow_single_country else None,
    )
    simple(
        "multi_network",
        "network",
        "allow_single_network is on" if params.allow_single_network else None,
    )
    # locks: together, in a cluster of their slot
    ok_locks, bad_locks = 0, 0
    for p, pool in enumerate(problem.pools):
        for lock in pool.locks:
            hit = [c for c in raw if c.pool == p and set(lock.members) <= set(c.members)]
            if hit:
                ok_locks += 1
            else:
                bad_locks += 1
    if ok_locks or bad_locks:
        statuses.append(
            ConstraintStatus(
                "locked",
                "violated" if bad_locks else "satisfied",
                ok_locks,
                bad_locks,
                0,
                f"{bad_locks} locked group(s) split" if bad_locks else "",
            )
        )
    # excluded
    excluded = {inp.city_ids.index(c) for c in params.excluded}
    inside = sum(1 for i in excluded if count[i] > 0)
    statuses.append(
        ConstraintStatus(
            "excluded", "violated" if inside else "satisfied", len(excluded) - inside, inside
        )
    )
    if params.n_clusters is not None:
        wrong = sum(
            1
            for p in range(len(problem.pools))
            if sum(c.pool == p for c in raw) != params.n_clusters
        )
        statuses.append(
            ConstraintStatus(
                "n_clusters",
                "violated" if wrong else "satisfied",
                len(problem.pools) - wrong,
                wrong,
                0,
                f"{wrong} pool(s) without exactly {params.n_clusters} clusters" if wrong else "",
            )
        )
    return statuses, per


def _report(problem: _Problem, raw: Sequence[RawCluster], method: str) -> ClusterProposal:
    inp, params = problem.inp, problem.params
    statuses, _per = _statuses(problem, raw)
    cov, coh = objective_terms(problem.pools, problem.rules, raw)
    ordered = sorted(
        raw, key=lambda c: (c.pool, c.slot is None, problem.pools[c.pool].idx[c.members[0]])
    )
    clusters: list[Cluster] = []
    counters: Counter[int] = Counter()
    latest = int(inp.joined.max()) if inp.joined is not None and inp.joined.size else 0
    for c in ordered:
        counters[c.pool] += 1
        clusters.append(_describe(problem, c, counters[c.pool], latest))
    unassigned = _unassigned(problem, raw)
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
        "objective_coverage": round(cov, 6),
        "objective_cohesion": round(coh, 6),
        "coverage_weight": round(problem.rules.coverage_weight, 6),
        "hard_constraints_satisfied_pct": round(100.0 * (checks - violated) / checks, 3)
        if checks
        else 100.0,
    }
    for pool in problem.pools:
        metrics[f"gamma.{pool.key}"] = round(pool.gamma, 6)
    for key, why in problem.skipped.items():
        metrics[f"skipped.{key}"] = why
    return ClusterProposal(
        kind=params.kind,
        clusters=tuple(clusters),
        unassigned=tuple(unassigned),
        objective=float(problem.rules.coverage_weight * cov + coh),
        constraints=tuple(statuses),
        method=method,
        seed=params.seed,
        metrics=types.MappingProxyType(metrics),
    )


def _describe(problem: _Problem, c: RawCluster, number: int, latest: int) -> Cluster:
    inp, params = problem.inp, problem.params
    pool = problem.pools[c.pool]
    local = list(c.members)
    g = pool.idx[local]
    names = [inp.names[i] for i in g]
    size = len(g)
    # lead: the strongest member that can lead
    st = problem.pool_strength[c.pool][local]
    can = pool.lead_ok[local]
    order = sorted(range(size), key=lambda a: (not can[a], -st[a], int(g[a])))
    lead_a = order[0]
    lead_g = int(g[lead_a])
    lead_theme = int(problem.pool_lead_theme[c.pool][local][lead_a])
    # languages all members share
    shared = inp.languages[g].all(axis=0)
    wl = tuple(inp.language_codes[b] for b in np.flatnonzero(shared))
    raw_pairs = pair_sum(inp.affinity, g.tolist())
    pairs = size * (size - 1) / 2
    cohesion = raw_pairs / pairs if pairs else 0.0
    weighted = pair_sum(pool.W, local)
    baseline = _mean_offdiag(pool.W)
    reasons: list[Reason] = []
    theme_ids: tuple[str, ...]
    if pool.theme >= 0:
        t = pool.theme
        pr = inp.priority[g, t]
        theme_ids = (inp.theme_ids[t],)
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
    else:
        d = _haversine_km(inp.lat[g], inp.lon[g], inp.lat[g], inp.lon[g])
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
        theme_ids = tuple(inp.theme_ids[t] for t in top)
        if top:
            reasons.append(
                Reason("shared_theme", f"Most shared priority: {inp.theme_names[top[0]]}")
            )
    if can[lead_a]:
        lead_score = (
            float(inp.strength[lead_g, lead_theme])
            if lead_theme < inp.strength.shape[1]
            else float("nan")
        )
        if not math.isnan(lead_score) and lead_score >= params.lead_min_strength:
            text = f"{inp.names[lead_g]} leads: it scores {lead_score:.0f} on {inp.theme_names[lead_theme]}"
        else:
            text = (
                f"{inp.names[lead_g]} leads: it prioritises {inp.theme_names[lead_theme]} at 5 "
                "and has a good practice on it"
            )
    else:
        lead_score = float("nan")
        text = f"No member can lead ({inp.names[lead_g]} is the strongest, below {params.lead_min_strength:g})"
    reasons.append(Reason("lead", text))
    if wl:
        lang_names = [_language_name(x) for x in wl]
        reasons.append(Reason("language", f"All {size} speak {_join(lang_names)}"))
    else:
        reasons.append(Reason("language", f"The {size} members share no language"))
    n_countries = len({inp.countries[i] for i in g})
    nets = {x for i in g for x in inp.networks[i]}
    n_int = int(sum(inp.membership[i] == "international" for i in g))
    reasons.append(
        Reason(
            "mix",
            f"{_plural(n_countries, 'country', 'countries')}, {_plural(len(nets), 'national network')} "
            f"and {_plural(n_int, 'international member')}",
        )
    )
    existing, new = 0, int(pairs)
    if inp.ties is not None:
        ties = inp.ties
        if isinstance(ties, np.ndarray):
            existing = int(np.count_nonzero(ties[np.ix_(g, g)])) // 2
        else:
            existing = int(sp.csr_matrix(ties)[g][:, g].count_nonzero()) // 2
        new = int(pairs) - existing
        reasons.append(
            Reason(
                "ties",
                f"Members already share {_plural(existing, 'tie')}; "
                f"{_plural(new, 'new tie')} would form",
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
    if inp.joined is not None and latest:
        joined = inp.joined[g]
        newcomers = [
            a for a in range(size) if joined[a] and joined[a] >= latest - params.newcomer_years + 1
        ]
        veterans = [
            a for a in range(size) if joined[a] and joined[a] < latest - params.newcomer_years + 1
        ]
        if newcomers and veterans:
            for nc in newcomers[:2]:
                buddy = max(
                    veterans, key=lambda b: (_aff(inp.affinity, int(g[nc]), int(g[b])), -int(g[b]))
                )
                reasons.append(
                    Reason(
                        "buddy",
                        f"Newcomer {names[nc]} (joined {joined[nc]}) can pair with {names[buddy]} (member since {joined[buddy]})",
                    )
                )
        elif newcomers:
            reasons.append(
                Reason("buddy", "All members are newcomers: no experienced buddy in this cluster")
            )
    if c.slot is not None:
        reasons.append(Reason("locked", f"Kept together as asked (slot {c.slot!r})"))
    key = pool.key if pool.theme >= 0 else "geo"
    components = {
        "size": float(size),
        "cohesion": cohesion,
        "pool_baseline": baseline,
        "gamma": pool.gamma,
        "objective_cohesion": weighted - pool.gamma * pairs,
        "objective_coverage": float(pool.cov[local].sum()),
        "countries": float(n_countries),
        "national_networks": float(len(nets)),
        "international_members": float(n_int),
        "national_members": float(size - n_int),
        "existing_ties": float(existing),
        "new_ties": float(new),
    }
    if not math.isnan(lead_score):
        components["lead_strength"] = lead_score  # absent when the lead qualifies by practice
    return Cluster(
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
    )


def _plural(k: int, word: str, plural: str | None = None) -> str:
    return f"{k} {word if k == 1 else (plural or word + 's')}"


def _aff(A: Matrix, i: int, j: int) -> float:
    return float(A[i, j])


def _mean_offdiag(W: Matrix) -> float:
    k = W.shape[0]
    if k < 2:
        return 0.0
    total = float(W.sum()) - (
        float(W.diagonal().sum()) if not isinstance(W, np.ndarray) else float(np.trace(W))
    )
    return float(total / (k * (k - 1)))


def _second_theme(inp: ClusterInput, g: IntArray, t: int) -> int | None:
    need = math.ceil(2 * len(g) / 3)
    counts = (inp.priority[g] >= 3).sum(axis=0)
    counts[t] = -1
    best = int(np.argmax(counts)) if counts.size else -1
    return best if best >= 0 and counts[best] >= need else None


def _top_themes(inp: ClusterInput, g: IntArray) -> list[int]:
    if not inp.theme_ids:
        return []
    total = inp.priority[g].sum(axis=0)
    order = sorted(range(len(total)), key=lambda t: (-int(total[t]), t))
    return [t for t in order[:2] if total[t] > 0]


def _unassigned(problem: _Problem, raw: Sequence[RawCluster]) -> list[UnassignedCity]:
    inp, params = problem.inp, problem.params
    placed: set[int] = set()
    by_pool: dict[int, list[RawCluster]] = {}
    for c in raw:
        by_pool.setdefault(c.pool, []).append(c)
        placed.update(int(problem.pools[c.pool].idx[i]) for i in c.members)
    cap = problem.cap
    excluded = {inp.city_ids.index(c) for c in params.excluded}
    pool_of: dict[int, list[tuple[int, int]]] = {}
    for p, pool in enumerate(problem.pools):
        for a, gi in enumerate(pool.idx.tolist()):
            pool_of.setdefault(gi, []).append((p, a))
    chosen = [inp.theme_names[p.theme] for p in problem.pools if p.theme >= 0]
    out: list[UnassignedCity] = []
    for i in range(inp.n):
        if i in placed:
            continue
        cid, name = inp.city_ids[i], inp.names[i]
        if i in excluded:
            out.append(UnassignedCity(cid, name, "excluded by the planner", "excluded"))
            continue
        if cap[i] <= 0:
            out.append(
                UnassignedCity(
                    cid, name, "capacity 0: no coordinator time for clusters", "capacity"
                )
            )
            continue
        mine = pool_of.get(i, [])
        if not mine:
            if params.kind == "thematic":
                wanted = [inp.theme_ids[t] for t in np.flatnonzero(inp.priority[i] > 0)]
                skipped = [t for t in wanted if t in problem.skipped]
                if skipped:
                    out.append(
                        UnassignedCity(
                            cid,
                            name,
                            f"its theme {skipped[0]!r} has no pool: {problem.skipped[skipped[0]]}",
                            "too_few",
                        )
                    )
                else:
                    out.append(
                        UnassignedCity(
                            cid,
                            name,
                            f"prioritises none of the selected themes ({_join(chosen) or 'none'})",
                            "no_theme",
                        )
                    )
            else:
                out.append(UnassignedCity(cid, name, "not eligible", "rules"))
            continue
        reasons: list[tuple[str, str]] = []
        for p, a in mine:
            pool = problem.pools[p]
            label = inp.theme_names[pool.theme] if pool.theme >= 0 else "geographic"
            clusters = by_pool.get(p, [])
            if not clusters:
                reasons.append(("too_few", f"no valid {label} cluster could be formed"))
                continue
            speak = [
                c
                for c in clusters
                if not params.require_common_language
                or (pool.langs[list(c.members)].all(axis=0) & pool.langs[a]).any()
            ]
            if not speak:
                langs = sorted(
                    {
                        inp.language_codes[b]
                        for c in clusters
                        for b in np.flatnonzero(pool.langs[list(c.members)].all(axis=0))
                    }
                )
                reasons.append(
                    (
                        "language",
                        f"shares no language with any {label} cluster "
                        f"(they work in {_join([_language_name(x) for x in langs]) or 'no common language'})",
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
            if k2 in ("language", "full"):
                kind, text = k2, t2
                break
        out.append(UnassignedCity(cid, name, text, kind))
    return out


# --------------------------------------------------------------------------- baselines


def check_groups(
    inp: ClusterInput, params: ClusterParams, groups: Sequence[Sequence[int]]
) -> tuple[ConstraintStatus, ...]:
    """Judge any grouping (e.g. a community detection's) by this module's hard constraints.

    ``groups`` are lists of city indices. Each group's theme is the one its members
    prioritise most (thematic requests; among ``params.themes`` when given); the pool for
    the mixed-membership allowance is that theme's candidates.
    """
    themes = (
        [inp.theme_ids.index(t) for t in params.themes]
        if params.themes is not None
        else list(range(len(inp.theme_ids)))
    )
    relaxed = _replace(params, themes=tuple(inp.theme_ids[t] for t in themes), method="heuristic")
    cap = _effective_capacity(inp, relaxed)
    lead_ok = _lead_ok(inp, relaxed)
    intl = np.asarray([m == "international" for m in inp.membership])
    countries = {c: k for k, c in enumerate(sorted(set(inp.countries)))}
    cc = np.asarray([countries[c] for c in inp.countries], dtype=np.int64)
    net_ids = sorted({g for row in inp.networks for g in row})
    net = np.zeros((inp.n, len(net_ids)), dtype=bool)
    for i, row in enumerate(inp.networks):
        for g in row:
            net[i, net_ids.index(g)] = True
    key_pool: dict[int, int] = {}
    pools: list[PoolData] = []
    raw: list[RawCluster] = []
    everyone = np.arange(inp.n, dtype=np.int64)
    for group in groups:
        gl = sorted(int(x) for x in group)
        if params.kind == "thematic" and themes:
            t = max(themes, key=lambda t: (int(inp.priority[gl, t].sum()), -t))
        else:
            t = -1
        if t not in key_pool:
            if t >= 0:
                cand = everyone[(inp.priority[:, t] > 0) | np.isin(everyone, gl)]
                lok = lead_ok[:, t]
            else:
                cand = everyone
                lok = (
                    np.asarray(lead_ok.any(axis=1)) if lead_ok.size else np.zeros(inp.n, dtype=bool)
                )
            n_i, n_n = int(intl[cand].sum()), int((~intl[cand]).sum())
            key_pool[t] = len(pools)
            pools.append(
                PoolData(
                    key=GEO_KEY if t < 0 else inp.theme_ids[t],
                    theme=t,
                    idx=everyone,
                    W=np.zeros((0, 0)),
                    gamma=0.0,
                    cov=np.ones(inp.n),
                    lead_ok=np.asarray(lok, dtype=bool),
                    langs=np.asarray(inp.languages, dtype=bool),
                    intl=intl,
                    national=~intl,
                    country=cc,
                    net=net,
                    locks=(),
                    n_clusters=None,
                    mix_allowance=min(n_i, n_n)
                    if (params.mixed_membership and n_i and n_n)
                    else -1,
                )
            )
        raw.append(RawCluster(key_pool[t], tuple(gl)))
    rules = Rules(
        params.min_size,
        params.max_size,
        params.require_common_language,
        params.allow_single_country,
        params.allow_single_network,
        1.0,
    )
    fake = _Problem(
        inp=inp,
        params=relaxed,
        pools=tuple(pools),
        pool_strength=(),
        pool_lead_theme=(),
        explicit=(),
        rules=rules,
        cap=cap,
        eligible=np.ones(inp.n, dtype=bool),
        skipped=types.MappingProxyType({}),
        mixed_waived=types.MappingProxyType({}),
    )
    statuses, _ = _statuses(fake, raw)
    return tuple(statuses)
