"""What goes into a cluster request and what comes out, with the two errors it can raise.

Everything here is plain data a caller can build and read without knowing how clusters
are solved: :class:`ClusterInput` (the network as arrays, validated and frozen once so no
solver has to re-check it), :class:`ClusterParams` (what the planner asks for), the
proposal (:class:`ClusterProposal` of :class:`ProposedCluster`, :class:`UnassignedCity`
and :class:`ConstraintStatus`), and the errors the API maps to HTTP 422 and 409.
"""

from __future__ import annotations

import math
import types
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from graph.errors import Infeasible, InvalidInput
from matching.kernel.arrays import BoolArray, FloatArray, IntArray, Matrix
from matching.kernel.wording import Reason

Kind = Literal["thematic", "geographic"]
Method = Literal["auto", "exact", "heuristic"]
GEO_KEY = "geographic"
"""The key of the one pool of a geographic request (a thematic pool's key is its theme id)."""


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
    """The network as plain arrays (``inputs.cluster_input`` builds it from a snapshot's arrays).

    ``n`` cities, ``L`` languages, ``T`` themes. ``affinity`` is ``n x n``, symmetric,
    non-negative (dense, or ``scipy.sparse`` for large ``n``; the diagonal is ignored).
    ``priority`` is 0-5 (0: not a priority), ``strength`` the Index score 0-100 (NaN:
    unknown), ``capacity`` the most clusters each city can be in. Optional:
    ``practices`` (``n x T`` bool: has a good practice on the theme), ``ties`` (``n x n``:
    existing partnerships), ``joined`` (year each city joined, 0 if unknown),
    ``accepted`` (per city, the names of the accepted clusters of the running period it
    is already in: each takes one of its clusters, ``inputs.accepted_load`` builds it).
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
    accepted: tuple[tuple[str, ...], ...] | None = None

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
        if self.accepted is not None:
            s(self, "accepted", tuple(tuple(str(x) for x in row) for row in self.accepted))
            if len(self.accepted) != n:
                raise ClusterInputError(
                    f"accepted has {len(self.accepted)} entries but there are {n} cities"
                )
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
    """What the planner asks for. Defaults follow the issue; ``matching.clusters`` (the
    package doc) says what each rule means.

    ``locked`` maps a slot name to city ids that must be in one cluster together (one
    cluster per slot); for a thematic request the slot is ``"<theme_id>"`` or
    ``"<theme_id>#<label>"``. ``max_per_city`` replaces every city's ``capacity`` when
    given. ``n_clusters`` is per theme (thematic) or in total (geographic). ``time_limit_s``
    bounds the exact solver (as CP-SAT deterministic time, so results do not depend on the
    machine's load).

    ``keep_apart``: pairs of city ids that must never share a cluster (any theme); a pair
    also locked together, or put together by a planner's edit, is refused
    (:class:`ClusterInfeasible`, naming the pair).

    ``max_span_km``: no two members of a cluster farther apart than this (None: no limit).
    The matcher has no default of its own: the API and the CLI give geographic requests the
    setting ``cluster_max_span_km`` and thematic ones none, unless the planner says
    otherwise. ``fair``: keep the plain proposal's coverage, raise the worst-off city's
    benefit first, then the total (``rules`` defines the benefit); the proposal reports
    the price (objective and worst-off benefit with and without).
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
    max_span_km: float | None = None
    fair: bool = False
    keep_apart: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        s = object.__setattr__
        if self.themes is not None:
            s(self, "themes", tuple(self.themes))
        pairs = []
        for pair in self.keep_apart:
            ids = tuple(str(c) for c in pair)
            if len(ids) != 2 or ids[0] == ids[1]:
                raise ClusterInputError(
                    f"keep_apart takes pairs of two different city ids, not {list(ids)!r}"
                )
            pairs.append((min(ids), max(ids)))
        s(self, "keep_apart", tuple(sorted(set(pairs))))
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
        if self.max_span_km is not None and not (
            math.isfinite(self.max_span_km) and self.max_span_km > 0
        ):
            raise ClusterInputError(
                f"max_span_km is {self.max_span_km}: give a positive number of km, or None for no limit"
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
class LeadRequest:
    """The planner's choice of lead for one cluster, and what became of it.

    ``honoured``: the city leads. Otherwise ``reason`` says why it cannot (not a member,
    not strong in the theme, shares no language with some members) and ``could_lead``
    lists the members that could, strongest first, so the planner can pick again.
    """

    city_id: str
    honoured: bool
    reason: str
    could_lead: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "city_id": self.city_id,
            "honoured": self.honoured,
            "reason": self.reason,
            "could_lead": list(self.could_lead),
        }


@dataclass(frozen=True, slots=True)
class ProposedCluster:
    """One cluster of a proposal (not yet a stored ``graph.model.Cluster`` row).

    ``score`` is its cohesion: the mean affinity of member pairs.
    """

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
    lead_request: LeadRequest | None = None

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
            "lead_request": self.lead_request.to_dict() if self.lead_request else None,
        }


@dataclass(frozen=True, slots=True)
class UnassignedCity:
    """A city in no cluster, and why."""

    city_id: str
    name: str
    reason: str
    kind: str  # "excluded", "capacity", "no_theme", "language", "full", "too_few", "span", "rules"

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
    """A proposal: clusters, cities left out, objective, constraint statuses, method, seed.

    ``fair``: made with the fair objective; then ``metrics`` also carries the price of
    fairness: ``plain_objective`` and ``plain_worst_benefit`` (the plain proposal's, on the
    same input) beside ``objective`` and ``worst_benefit`` (this one's).
    """

    kind: Kind
    clusters: tuple[ProposedCluster, ...]
    unassigned: tuple[UnassignedCity, ...]
    objective: float
    constraints: tuple[ConstraintStatus, ...]
    method: str
    seed: int
    metrics: Mapping[str, float | int | str]
    fair: bool = False
    limited: Mapping[str, str] = field(default_factory=dict)
    """City id -> why it may join fewer clusters than its capacity: the accepted clusters
    of the running period it is already in ("already in 2 accepted clusters (Education 1,
    Housing 3): at most 1 more")."""

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
            "fair": self.fair,
            "limited": dict(self.limited),
        }
