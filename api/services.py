"""Services: load the snapshot, run the matchers, keep their results beside the network.

The HTTP API and the CLI are thin shells over one ``NetworkService``. It holds the
current snapshot, its arrays and its profile embeddings, and rebuilds them only when the
store's revision moves (a write through another worker or the CLI is seen on the next
call). Embedding goes through the store's vector cache, so the model is only loaded when
some profile text changed.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pycountry
from numpy.typing import NDArray
from pydantic import TypeAdapter

from graph.errors import InvalidInput, NotFound
from graph.model import Cluster as ClusterRow
from graph.model import Kind
from graph.snapshot import NetworkSnapshot
from graph.store import GraphStore
from ingest.load import ingest_rows
from ingest.read import RawRow
from matching.analytics import NetworkStats, network_stats
from matching.embeddings import Encoder, embed
from matching.encoder import NetworkArrays, encode
from matching.experts import (
    ExpertAssignment,
    ExpertClusterData,
    assign_experts,
    cosine_similarity,
    distance_matrix_km,
    place_conflicts,
    spherical_centroids,
)
from matching.partners import (
    PartnerFilters,
    PartnerIndex,
    PartnerResult,
    PartnerWeights,
    UnknownCity,
    partner_index,
    suggest_partners,
)
from matching.texts import city_profiles, expert_texts

Progress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class Prepared:
    """Everything the matchers need, at one store revision."""

    snapshot: NetworkSnapshot
    arrays: NetworkArrays
    profiles: NDArray[np.float32]  # one unit vector per city, in arrays order

    @property
    def revision(self) -> int:
        return self.snapshot.revision

    @cached_property
    def partner_index(self) -> PartnerIndex:
        """The arrays partner queries read, laid out once for this revision."""
        return partner_index(self.arrays, self.profiles)


PartnerKey = tuple[int, str, int, PartnerFilters, PartnerWeights]
_PARTNERS_JSON = TypeAdapter(PartnerResult)


FULL_GC_EVERY_S = 60.0
"""How often a rebuild may afford a full collection (``_settle_heap``)."""


def _settle_heap(full: bool) -> None:
    """Move every object alive now out of the cyclic collector's sight (``gc.freeze``).

    A snapshot with its arrays and index, the loaded model and the libraries are about
    half a million objects that live until the next revision or for good. Left tracked,
    each full collection walks them all while the worker holds the interpreter lock:
    103 ms at 10,000 cities (23 ms frozen), every request of the worker waiting, which is
    where the API's p95 went. Reference counting still frees a replaced revision; what a
    freeze can hold on to is cyclic garbage not yet collected. So ``full`` (at most every
    ``FULL_GC_EVERY_S``) unfreezes and collects everything first, 240 ms on the sample with
    the model loaded, too much for every write; in between, the young generations only.
    """
    if full:
        gc.unfreeze()
        gc.collect()
    else:
        gc.collect(1)
    gc.freeze()


def _check_k(k: int) -> None:
    if not 1 <= k <= 100:
        raise InvalidInput(f"k must be between 1 and 100, not {k}")


@dataclass(eq=False)
class _Kept:
    """A partner list in the service's cache, with its JSON once someone asked for it."""

    result: PartnerResult
    json: bytes | None = None


class NetworkService:
    def __init__(
        self,
        store: GraphStore,
        encoder: Encoder,
        *,
        weights: PartnerWeights = PartnerWeights(),
        partner_cache_size: int = 2048,
        gc_freeze: bool = False,
    ) -> None:
        """``gc_freeze``: after each rebuild, hide the long-lived objects from the cyclic
        garbage collector (see ``_settle_heap``); for servers, where its pauses stall
        requests. A one-shot command has nothing to gain."""
        self.store = store
        self.encoder = encoder
        self.weights = weights
        self._snapshot: NetworkSnapshot | None = None
        self._prepared: Prepared | None = None
        self._stats: tuple[tuple[int, int], NetworkStats] | None = None
        self._lock = threading.Lock()
        # Partner lists by (revision, city, k, filters, weights): a snapshot never changes
        # under a revision, so an entry is right until the revision moves; bounded LRU
        # (about 15 KB a list: 2,048 lists hold about 30 MB).
        self._partner_cache: OrderedDict[PartnerKey, _Kept] = OrderedDict()
        self._partner_cache_size = partner_cache_size
        self._partner_cache_lock = threading.Lock()
        self._gc_freeze = gc_freeze
        self._full_gc_at = -math.inf

    def snapshot(self) -> NetworkSnapshot:
        """The current snapshot, re-read only when the store's revision moved."""
        revision = self.store.revision()
        current = self._snapshot
        if current is not None and current.revision == revision:
            return current
        with self._lock:
            if self._snapshot is None or self._snapshot.revision != revision:
                self._snapshot = self.store.snapshot()
            return self._snapshot

    def prepared(self, progress: Progress | None = None) -> Prepared:
        """The snapshot with its arrays and profile embeddings; rebuilt when the revision moved."""
        snapshot = self.snapshot()
        current = self._prepared
        if current is not None and current.snapshot is snapshot:
            return current
        with self._lock:
            current = self._prepared
            if current is not None and current.snapshot is snapshot:
                return current
            arrays = encode(snapshot)
            if snapshot.cities:
                profiles = embed(city_profiles(snapshot), self.encoder, self.store, progress)
            else:
                profiles = np.zeros((0, 0), dtype=np.float32)
            prepared = Prepared(snapshot, arrays, profiles)
            prepared.partner_index  # noqa: B018  (built now, under the lock, not by a request)
            self._prepared = prepared
            if self._gc_freeze:
                full = time.monotonic() - self._full_gc_at >= FULL_GC_EVERY_S
                if full:
                    self._full_gc_at = time.monotonic()
                _settle_heap(full)
            return prepared

    def model_available(self) -> bool:
        path = getattr(self.encoder, "path", None)
        return path is None or Path(path).is_dir()

    def partners(
        self,
        city_ids: Sequence[str],
        *,
        k: int = 10,
        filters: PartnerFilters = PartnerFilters(),
    ) -> list[PartnerResult]:
        if not city_ids:
            raise InvalidInput("name at least one city")
        _check_k(k)
        p = self.prepared()
        return [self._kept(p, c, k, filters).result for c in city_ids]

    def partners_json(
        self, city_id: str, *, k: int = 10, filters: PartnerFilters = PartnerFilters()
    ) -> bytes:
        """One city's partner list as JSON, written once and kept with the list (the API's
        busiest answer: a list asked for again costs a lookup, not a serialisation)."""
        _check_k(k)
        kept = self._kept(self.prepared(), city_id, k, filters)
        if kept.json is None:  # two threads may both write it: the same bytes
            kept.json = _PARTNERS_JSON.dump_json(kept.result)
        return kept.json

    def _kept(self, p: Prepared, city_id: str, k: int, filters: PartnerFilters) -> _Kept:
        key = (p.revision, city_id, k, filters, self.weights)
        with self._partner_cache_lock:
            hit = self._partner_cache.get(key)
            if hit is not None:
                self._partner_cache.move_to_end(key)
                return hit
        try:
            result = suggest_partners(
                p.arrays,
                p.profiles,
                city_id,
                k=k,
                filters=filters,
                weights=self.weights,
                index=p.partner_index,
            )
        except UnknownCity as e:
            raise NotFound(str(e)) from e
        except ValueError as e:
            raise InvalidInput(str(e)) from e
        kept = _Kept(result)
        if self._partner_cache_size > 0:
            with self._partner_cache_lock:
                if self._partner_cache and next(iter(self._partner_cache))[0] != p.revision:
                    self._partner_cache.clear()  # a new revision: the old lists are stale
                self._partner_cache[key] = kept
                while len(self._partner_cache) > self._partner_cache_size:
                    self._partner_cache.popitem(last=False)
        return kept

    def assign_experts(
        self,
        cluster_ids: Sequence[str] | None = None,
        *,
        per_cluster: int = 1,
        fair: bool = False,
        conflict_same_country: bool = False,
    ) -> tuple[ExpertAssignment, list[ClusterRow]]:
        """The best assignment of experts to accepted clusters (all of them by default)."""
        if not 1 <= per_cluster <= 10:
            raise InvalidInput(f"per_cluster must be between 1 and 10, not {per_cluster}")
        p = self.prepared()
        accepted = {c.id: c for c in p.snapshot.clusters}
        if cluster_ids is None:
            clusters = list(accepted.values())
        else:
            missing = [c for c in cluster_ids if c not in accepted]
            if missing:
                raise NotFound(f"no accepted cluster with id {', '.join(map(repr, missing))}")
            clusters = [accepted[c] for c in dict.fromkeys(cluster_ids)]
        if not clusters:
            raise InvalidInput("there are no accepted clusters yet: accept a proposal first")
        experts = p.snapshot.experts
        vectors = (
            embed(expert_texts(p.snapshot), self.encoder, self.store)
            if experts
            else np.zeros((0, 1), np.float32)
        )
        data = expert_inputs(p, vectors, clusters, conflict_same_country=conflict_same_country)
        capacity = np.array(
            [2 if e.max_assignments is None else e.max_assignments for e in experts]
        )
        demand = np.full(len(clusters), per_cluster)
        result = assign_experts(
            [e.id for e in experts], [c.id for c in clusters], data, capacity, demand, fair=fair
        )
        return result, clusters

    def save_assignment(self, result: ExpertAssignment, clusters: Sequence[ClusterRow]) -> int:
        """Record the assignment in the graph (ASSIGNED_TO), replacing earlier ones of these clusters."""
        chosen = {c.id for c in clusters}
        for old in self.snapshot().assignments:
            if old.cluster_id in chosen:
                self.store.delete(Kind.ASSIGNMENTS, (old.expert_id, old.cluster_id))
        rows = [
            RawRow(
                Kind.ASSIGNMENTS,
                "assignment",
                n,
                {
                    "expert_id": pair.expert_id,
                    "cluster_id": pair.cluster_id,
                    "score": round(pair.score, 6),
                    "reasons": "; ".join(r.text for r in pair.reasons),
                },
            )
            for n, pair in enumerate(result.pairs, 1)
        ]
        report = ingest_rows(rows, [], self.store)
        if report.errors:
            raise InvalidInput(
                "the assignment could not be saved: " + "; ".join(str(e) for e in report.errors[:3])
            )
        return report.upsert.created + report.upsert.updated

    def stats(self, *, seed: int = 0) -> NetworkStats:
        """Network analytics (kept per revision and seed); needs no embeddings, never loads the model."""
        snapshot = self.snapshot()
        key = (snapshot.revision, seed)
        cached = self._stats
        if cached is not None and cached[0] == key:
            return cached[1]
        stats = network_stats(snapshot, seed=seed)
        self._stats = (key, stats)
        return stats


# --- experts ---------------------------------------------------------------------------


def expert_inputs(
    prepared: Prepared,
    expert_vectors: NDArray[np.float32],
    clusters: Sequence[ClusterRow],
    *,
    conflict_same_country: bool = False,
) -> ExpertClusterData:
    """Arrays for the expert solver: experts (rows) against clusters (columns).

    A cluster's text vector is the normalised mean of its members' profile vectors; its
    themes weigh 1; its required language is its first working language; its place is
    the spherical centre of its members.
    """
    snap, arr = prepared.snapshot, prepared.arrays
    experts = snap.experts
    theme_index = arr.theme_index
    members = [[arr.index[m] for m in c.members if m in arr.index] for c in clusters]
    dim = prepared.profiles.shape[1] if prepared.profiles.size else expert_vectors.shape[1]
    cluster_vectors = np.zeros((len(clusters), dim), dtype=np.float32)
    for k, idx in enumerate(members):
        if idx and prepared.profiles.size:
            v = prepared.profiles[idx].mean(axis=0)
            cluster_vectors[k] = v / max(float(np.linalg.norm(v)), 1e-9)
    levels = np.zeros((len(experts), len(arr.theme_ids)))
    expert_row = {e.id: i for i, e in enumerate(experts)}
    for et in snap.expert_themes:
        if et.expert_id in expert_row and et.theme_id in theme_index:
            levels[expert_row[et.expert_id], theme_index[et.theme_id]] = et.level
    cluster_themes = np.zeros((len(clusters), len(arr.theme_ids)))
    for k, c in enumerate(clusters):
        for t in c.theme_ids:
            if t in theme_index:
                cluster_themes[k, theme_index[t]] = 1.0
    codes = sorted(
        {lang for e in experts for lang in e.languages}
        | {lang for c in clusters for lang in c.working_languages}
    )
    lang_index = {code: i for i, code in enumerate(codes)}
    speaks = np.zeros((len(experts), len(codes)), dtype=bool)
    for i, e in enumerate(experts):
        for lang in e.languages:
            speaks[i, lang_index[lang]] = True
    required = np.array(
        [lang_index[c.working_languages[0]] if c.working_languages else -1 for c in clusters]
    )
    c_lat, c_lon = spherical_centroids(arr.lat, arr.lon, members)
    e_lat = np.array([np.nan if e.lat is None else e.lat for e in experts], dtype=float)
    e_lon = np.array([np.nan if e.lon is None else e.lon for e in experts], dtype=float)
    countries = [{arr.countries[i] for i in idx} for idx in members]
    return ExpertClusterData(
        similarity=cosine_similarity(expert_vectors, cluster_vectors)
        if len(experts) and len(clusters)
        else np.zeros((len(experts), len(clusters))),
        expert_levels=levels,
        cluster_themes=cluster_themes,
        theme_names=list(arr.theme_names),
        expert_languages=speaks,
        cluster_language=required,
        language_names=[_language_name(c) for c in codes],
        distance_km=distance_matrix_km(e_lat, e_lon, c_lat, c_lon),
        conflict=place_conflicts(
            [e.country for e in experts], countries, same_country=conflict_same_country
        )
        if conflict_same_country
        else None,
    )


def _language_name(code: str) -> str:
    lang = pycountry.languages.get(alpha_2=code)
    return str(lang.name) if lang else code
