"""The network as a service: the snapshot, its arrays and embeddings, kept per revision.

The HTTP API and the CLI are thin shells over one ``NetworkService`` (and, for cluster
proposals, the ``ClusterService`` in ``api/services/clusters.py`` built on it). It holds the
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import TypeAdapter

from api.services import MAX_K
from api.services.rows import first_problems, write_rows
from graph.errors import InvalidInput, NotFound
from graph.model import Cluster as ClusterRow
from graph.model import Kind
from graph.snapshot import NetworkSnapshot
from graph.store import GraphStore
from matching.analytics import NetworkStats, network_stats
from matching.experts import ExpertAssignment, assign_experts, expert_inputs
from matching.kernel.arrays import NetworkArrays, encode
from matching.kernel.embeddings import Encoder, embed
from matching.kernel.texts import city_profiles, expert_texts
from matching.partners import (
    PartnerFilters,
    PartnerIndex,
    PartnerResult,
    PartnerWeights,
    partner_index,
    suggest_partners,
)
from matching.partners.evaluate import evaluate_partners, standard_methods
from matching.partners.learned import PartnerModel, fit_partner_model

Progress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class Prepared:
    """Everything the matchers need, at one store revision."""

    snapshot: NetworkSnapshot
    arrays: NetworkArrays
    profiles: NDArray[np.float32]  # one unit vector per city, in arrays order
    partner_index: PartnerIndex  # the arrays partner queries read, laid out once
    partner_model: PartnerModel | None = None  # fitted from this revision's ties and answers
    ranker_note: str = "default weights"  # what every partner list says about its ranking
    not_for_us: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """City id -> the cities its coordinator marked "not for us" (never suggested again)."""

    @property
    def revision(self) -> int:
        return self.snapshot.revision


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
    if not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be between 1 and {MAX_K}, not {k}")


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
        partner_ranker: Literal["learned", "default"] = "learned",
        ranker_seed: int = 0,
    ) -> None:
        """``gc_freeze``: after each rebuild, hide the long-lived objects from the cyclic
        garbage collector (see ``_settle_heap``); for servers, where its pauses stall
        requests. A one-shot command has nothing to gain. ``partner_ranker``: rank partners
        with the model learned from the network's own ties (when it has enough) or always
        with the default weights."""
        self.store = store
        self.partner_ranker = partner_ranker
        self.ranker_seed = ranker_seed
        self.encoder = encoder
        self.weights = weights
        self._snapshot: NetworkSnapshot | None = None
        self._prepared: Prepared | None = None
        self._stats: tuple[tuple[int, int], NetworkStats] | None = None
        self._evaluation: tuple[tuple[int, float, int, int, int], dict[str, Any]] | None = None
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
            # built now, under the lock, not by a request; the learned model reuses the index
            index = partner_index(arrays, profiles)
            prepared = Prepared(
                snapshot, arrays, profiles, index, *self._ranking(snapshot, arrays, profiles, index)
            )
            self._prepared = prepared
            if self._gc_freeze:
                full = time.monotonic() - self._full_gc_at >= FULL_GC_EVERY_S
                if full:
                    self._full_gc_at = time.monotonic()
                _settle_heap(full)
            return prepared

    def _ranking(
        self,
        snapshot: NetworkSnapshot,
        arrays: NetworkArrays,
        profiles: NDArray[np.float32],
        index: PartnerIndex,
    ) -> tuple[PartnerModel | None, str, dict[str, tuple[str, ...]]]:
        """The revision's partner model (fitted now, so no request pays for it), the note
        partner lists carry about it, and each city's "not for us" answers."""
        answers: list[tuple[int, int, bool]] = []
        not_for_us: dict[str, list[str]] = {}
        for a in snapshot.partner_interests:
            i, j = arrays.index.get(a.city_id), arrays.index.get(a.partner_id)
            if i is None or j is None:
                continue
            answers.append((i, j, a.status == "interested"))
            if a.status == "not_for_us":
                not_for_us.setdefault(a.city_id, []).append(a.partner_id)
        hidden = {c: tuple(sorted(ps)) for c, ps in not_for_us.items()}
        if self.partner_ranker == "default":
            return None, "default weights (set by ICCMATCH_PARTNER_RANKER)", hidden
        model, note = fit_partner_model(
            arrays, profiles, tuple(answers), seed=self.ranker_seed, index=index
        )
        return model, note, hidden

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
        hidden = p.not_for_us.get(city_id, ())
        if hidden:  # a coordinator's "not for us" is not suggested to that city again
            filters = replace(filters, forbidden=tuple(sorted({*filters.forbidden, *hidden})))
        key = (p.revision, city_id, k, filters, self.weights)
        with self._partner_cache_lock:
            hit = self._partner_cache.get(key)
            if hit is not None:
                self._partner_cache.move_to_end(key)
                return hit
        result = suggest_partners(
            p.arrays,
            p.profiles,
            city_id,
            k=k,
            filters=filters,
            weights=self.weights,
            index=p.partner_index,
            model=p.partner_model,
            default_note=p.ranker_note,
        )
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
        data = expert_inputs(
            experts,
            p.snapshot.expert_themes,
            p.arrays,
            p.profiles,
            vectors,
            clusters,
            conflict_same_country=conflict_same_country,
        )
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
            {
                "expert_id": pair.expert_id,
                "cluster_id": pair.cluster_id,
                "score": round(pair.score, 6),
                "reasons": "; ".join(r.text for r in pair.reasons),
            }
            for pair in result.pairs
        ]
        report = write_rows(
            self.store,
            Kind.ASSIGNMENTS,
            rows,
            name="assignments",
            source="assignment",
            refusal=lambda errors: "the assignment could not be saved: " + first_problems(errors),
        )
        return report.upsert.created + report.upsert.updated

    def evaluate_partners(
        self, *, holdout: float = 0.1, splits: int = 5, k: int = 10, seed: int = 0
    ) -> dict[str, Any]:
        """How good suggestions are on this network: ties hidden at random, asked back from
        the learned ranker, the default weights and the baselines (kept per revision and
        parameters), and the ranker the live lists use with what it learned; JSON-ready
        through ``jsonable``."""
        _check_k(k)
        if not 1 <= splits <= 20:
            raise InvalidInput(f"splits must be between 1 and 20, not {splits}")
        p = self.prepared()
        key = (p.revision, holdout, splits, k, seed)
        cached = self._evaluation
        if cached is not None and cached[0] == key:
            return cached[1]
        result = evaluate_partners(
            p.arrays,
            p.profiles,
            standard_methods(seed),
            holdout=holdout,
            splits=splits,
            k=k,
            seed=seed,
        )
        model = p.partner_model
        doc = {
            "evaluation": result,
            "live_ranker": {
                "description": p.ranker_note,
                "learned": model is not None,
                "weights": model.ranker.weights() if model else None,
                "ties_learned_from": model.ranker.ties_learned_from if model else 0,
                "answers_learned_from": model.ranker.answers_learned_from if model else 0,
                "fit_seconds": model.ranker.fit_seconds if model else None,
            },
        }
        self._evaluation = (key, doc)
        return doc

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
