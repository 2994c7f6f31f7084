"""The network as a service: the snapshot, its arrays and embeddings, kept per revision.

The HTTP API and the CLI are thin shells over one ``NetworkService`` (and, for cluster
proposals, the ``ClusterService`` in ``api/services/clusters.py`` built on it). It holds the
current snapshot with everything the matchers read (arrays, profile and expert vectors,
the partner index and the fitted partner model: a ``Prepared``), built once per store
revision. A server (``background=True``) builds the first one at start-up, before it says
it is ready, and each later one in a thread while it keeps answering from the last: no
request pays for embedding, indexing or fitting. Embedding goes through the store's vector
cache, which ``ingest`` fills right after writing, so the model is only loaded when some
text changed."""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import TypeAdapter

from api.schemas import jsonable
from api.services import MAX_K
from api.services.expert_conflicts import ConflictSources, merged_conflicts
from api.services.rows import first_problems, write_rows
from graph.errors import Conflict, InvalidInput, NotFound
from graph.model import Cluster as ClusterRow
from graph.model import Kind, Outcome
from graph.snapshot import NetworkSnapshot
from graph.store import GraphStore
from ingest.load import IngestReport
from matching.kernel.arrays import NetworkArrays, encode
from matching.kernel.embeddings import Encoder, embed
from matching.kernel.texts import city_profiles, expert_texts
from matching.kernel.wording import Reason
from matching.partners import (
    PartnerFilters,
    PartnerIndex,
    PartnerResult,
    PartnerWeights,
    partner_index,
    suggest_partners,
)
from matching.partners.interests import MutualMatch, mutual_matches, outcome_labels
from matching.partners.learned import PartnerModel, fit_partner_model
from matching.partners.memory import Again, mark, remembered, suggested_before
from matching.partners.model import SuggestedBefore

if TYPE_CHECKING:  # the solvers behind these load when a command uses them (CLI start-up)
    from matching.analytics import NetworkStats
    from matching.experts import ExpertAssignment

Progress = Callable[[int, int], None]
log = logging.getLogger("iccmatch")


@dataclass(frozen=True, eq=False)
class Prepared:
    """Everything the matchers need, at one store revision."""

    snapshot: NetworkSnapshot
    arrays: NetworkArrays
    profiles: NDArray[np.float32]  # one unit vector per city, in arrays order
    partner_index: PartnerIndex  # the arrays partner queries read, laid out once
    expert_vectors: NDArray[np.float32]  # one unit vector per expert, in snapshot order
    partner_model: PartnerModel | None = None  # fitted from this revision's ties and answers
    ranker_note: str = "default weights"  # what every partner list says about its ranking
    not_for_us: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """City id -> the cities its coordinator marked "not for us" (never suggested again)."""
    cluster_mates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """City id -> each city it shares an accepted cluster with -> that cluster's name
    (with its period), said next to a suggestion of a city already worked with."""
    suggested: Mapping[str, Mapping[str, SuggestedBefore]] = field(default_factory=dict)
    """City id -> each partner suggested to it before -> when, at which rank, its answer."""

    @property
    def revision(self) -> int:
        return self.snapshot.revision


PartnerKey = tuple[int, str, int, PartnerFilters, PartnerWeights, Again]
_PARTNERS_JSON = TypeAdapter(PartnerResult)


CATCH_UP_S = 10.0
"""The longest a write's answer waits for another preparation to finish before its own
revision is prepared (``catch_up``): past it the write answers anyway (it is stored; the
next preparation serves it), so no writer is held by a slow one (a first model load on a
busy machine, a large network)."""

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


def _left_out_anyway(arrays: NetworkArrays, city_id: str, filters: PartnerFilters) -> set[str]:
    """The cities a partner list for ``city_id`` leaves out whatever was suggested before:
    those forbidden, and its current partners unless asked for."""
    out = set(filters.forbidden)
    i = arrays.index.get(city_id)
    if i is not None and filters.exclude_current:
        ties = arrays.ties
        out |= {arrays.city_ids[j] for j in ties.indices[ties.indptr[i] : ties.indptr[i + 1]]}
    return out


def _suggested(
    snapshot: NetworkSnapshot, city_id: str | None = None
) -> dict[str, dict[str, SuggestedBefore]]:
    """The snapshot's ``suggestions`` rows read as history (``memory.suggested_before``),
    every city's or only ``city_id``'s."""
    return suggested_before(
        (
            (s.city_id, s.partner_id, s.on, s.rank)
            for s in snapshot.suggestions
            if city_id is None or s.city_id == city_id
        ),
        ((a.city_id, a.partner_id, a.status) for a in snapshot.partner_interests),
    )


def _cluster_mates(snapshot: NetworkSnapshot) -> dict[str, dict[str, str]]:
    mates: dict[str, dict[str, str]] = {}
    for c in snapshot.clusters:
        label = f"{c.name} ({c.period})" if c.period else c.name
        for a in c.members:
            for b in c.members:
                if a != b:
                    mates.setdefault(a, {}).setdefault(b, label)
    return mates


def _with_cluster_mates(result: PartnerResult, mates: Mapping[str, str]) -> PartnerResult:
    """The list, each suggestion already in an accepted cluster with the city saying so
    first: the pair works together already, whatever the ranking thinks of it."""
    suggestions = tuple(
        replace(
            s,
            reasons=(
                Reason(
                    "cluster_mate", f"Already with you in the accepted cluster {mates[s.city_id]}"
                ),
                *s.reasons,
            ),
        )
        if s.city_id in mates
        else s
        for s in result.suggestions
    )
    return replace(result, suggestions=suggestions)


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
        background: bool = False,
    ) -> None:
        """``gc_freeze``: after each rebuild, hide the long-lived objects from the cyclic
        garbage collector (see ``_settle_heap``); for servers, where its pauses stall
        requests. A one-shot command has nothing to gain. ``partner_ranker``: rank partners
        with the model learned from the network's own ties (when it has enough) or always
        with the default weights. ``background``: once a revision is prepared, prepare the
        next in a thread and answer from the last one meanwhile (see ``prepared``)."""
        self.store = store
        self.partner_ranker = partner_ranker
        self.ranker_seed = ranker_seed
        self.encoder = encoder
        self.weights = weights
        self._snapshot: NetworkSnapshot | None = None
        self._prepared: Prepared | None = None
        self._stats: tuple[tuple[int, int], NetworkStats] | None = None
        self._evaluation: tuple[tuple[int, float, int, int, int], dict[str, Any]] | None = None
        self._lock = threading.Lock()  # the snapshot read
        self._build_lock = threading.Lock()  # one preparation at a time
        self._background = background
        self._refresher: threading.Thread | None = None
        self._status_lock = threading.Lock()
        self._stage: dict[str, Any] | None = None
        self._last_error: str | None = None
        self._tries = 0  # preparations tried (done or failed): see catch_up
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
        """The snapshot with its arrays, embeddings and partner model, at the store's revision.

        In the background mode (a server), once one revision is prepared a moved revision
        is prepared by a background thread while this keeps answering from the last one:
        no request pays for embedding, indexing or fitting. Otherwise (the CLI, or a
        server's very first revision) it is built here and now.
        """
        current = self._prepared
        if current is not None:
            if current.revision == self.store.revision():
                return current
            if self._background:
                self.refresh_in_background()
                return current
        return self._build(progress)

    def refresh(self, progress: Progress | None = None) -> Prepared:
        """Prepare the store's current revision now (if it moved), then switch to it."""
        return self._build(progress)

    def refresh_in_background(self) -> None:
        """Start preparing the store's current revision in a thread, unless one is at it."""
        with self._status_lock:
            if self._refresher is not None and self._refresher.is_alive():
                return
            self._refresher = threading.Thread(
                target=self.refresh_quietly, name="iccmatch-prepare", daemon=True
            )
            self._refresher.start()

    def wait_for_background(self, timeout_s: float) -> None:
        """Let a background preparation under way finish (a server shutting down, before
        its store closes)."""
        with self._status_lock:
            refresher = self._refresher
        if refresher is not None:
            refresher.join(timeout_s)

    def keep_prepared(self, stop: threading.Event, every_s: float = 2.0) -> None:
        """A server's warm-up and watch: prepare the current revision, then look for a new
        one (written by another worker or the CLI) every ``every_s`` until ``stop`` is set."""
        while not stop.is_set():
            self.refresh_quietly()
            stop.wait(every_s)

    def refresh_quietly(self) -> None:
        """``refresh``, its failure kept for readiness and logged instead of raised (a
        watcher that tries again)."""
        with self._build_lock:
            self._build_quietly()

    def catch_up(self) -> None:
        """Return once the revision the store holds now is prepared: a write's answer, so
        the writer sees what it wrote.

        Writers queued behind one preparation do not each prepare again: whoever gets the
        turn after a preparation that covers their revision returns at once, and so does
        whoever waited through a failed try (the store went away; the watcher tries again).
        A burst of writes during an outage thus cannot hold the server's threads in a queue
        of failing tries while readers wait for a thread; and none waits more than
        ``CATCH_UP_S`` for a preparation already under way.
        """
        try:
            revision = self.store.revision()
        except Exception as e:  # the write stands; readiness and the watcher see the store
            log.warning("after a write, the store's revision could not be read: %s", e)
            return
        with self._status_lock:
            tries = self._tries
        if not self._build_lock.acquire(timeout=CATCH_UP_S):
            log.warning(
                "a write answered before revision %d was prepared: a preparation has held "
                "for over %.0f s (the watcher prepares it next)",
                revision,
                CATCH_UP_S,
            )
            return
        try:
            current = self._prepared
            if current is not None and current.revision >= revision:
                return
            with self._status_lock:
                failed_meanwhile = self._tries != tries and self._last_error is not None
            if not failed_meanwhile:
                self._build_quietly()
        finally:
            self._build_lock.release()

    def _build_quietly(self) -> None:
        try:
            self._build_locked()
        except Exception as e:  # kept for readiness; the next try may succeed
            with self._status_lock:
                self._last_error = f"{type(e).__name__}: {e}"
                self._stage = None
            log.warning("preparing the network failed: %s", self._last_error)

    @property
    def ready(self) -> bool:
        """A revision is prepared: requests are answered without building anything."""
        return self._prepared is not None

    def preparation(self) -> dict[str, Any]:
        """What readiness reports: the revision served, the work under way (which
        revision, which stage, how far) and the last failure, if the last try failed."""
        with self._status_lock:
            status: dict[str, Any] = {
                "serving_revision": None if self._prepared is None else self._prepared.revision,
                "preparing": self._stage,
            }
            if self._last_error:
                status["last_error"] = self._last_error
        return status

    def _build(self, progress: Progress | None = None) -> Prepared:
        with self._build_lock:
            return self._build_locked(progress)

    def _build_locked(self, progress: Progress | None = None) -> Prepared:
        """Prepare the store's current revision (the build lock held), counted as a try."""
        try:
            snapshot = self.snapshot()
            current = self._prepared
            if current is not None and current.snapshot is snapshot:
                with self._status_lock:
                    self._last_error = None  # the store answered
                return current
            started = time.monotonic()
            prepared = self._prepare(snapshot, progress)
            with self._status_lock:
                self._prepared = prepared
                self._stage = None
                self._last_error = None
            log.info(
                "revision %d prepared in %.2f s (%d cities)",
                snapshot.revision,
                time.monotonic() - started,
                len(snapshot.cities),
            )
            if self._gc_freeze:
                full = time.monotonic() - self._full_gc_at >= FULL_GC_EVERY_S
                if full:
                    self._full_gc_at = time.monotonic()
                _settle_heap(full)
            return prepared
        finally:
            with self._status_lock:
                self._tries += 1

    def _prepare(self, snapshot: NetworkSnapshot, progress: Progress | None) -> Prepared:
        def stage(name: str, done: int = 0, total: int = 0) -> None:
            with self._status_lock:
                self._stage = {
                    "revision": snapshot.revision,
                    "stage": name,
                    "done": done,
                    "total": total,
                }

        def embedding(done: int, total: int) -> None:
            stage("embedding", done, total)
            if progress:
                progress(done, total)

        stage("embedding")
        profiles, expert_vectors = self.embeddings(snapshot, embedding)
        stage("indexing")
        arrays = encode(snapshot)
        index = partner_index(arrays, profiles)  # the learned model reuses it
        stage("fitting the partner model")
        ranking = self._ranking(snapshot, arrays, profiles, index)
        return Prepared(
            snapshot,
            arrays,
            profiles,
            index,
            expert_vectors,
            *ranking,
            _cluster_mates(snapshot),
            _suggested(snapshot),
        )

    def embeddings(
        self, snapshot: NetworkSnapshot | None = None, progress: Progress | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Every city profile's and expert's vector, through the store's cache: what
        ``ingest`` computes right after writing, so that no query ever embeds."""
        snap = snapshot or self.snapshot()
        if snap.cities:
            profiles = embed(city_profiles(snap), self.encoder, self.store, progress)
        else:
            profiles = np.zeros((0, 0), dtype=np.float32)
        if snap.experts:
            experts = embed(expert_texts(snap), self.encoder, self.store)
        else:
            experts = np.zeros((0, 1), dtype=np.float32)
        return profiles, experts

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
        steps = [(m.city_a, m.city_b, m.status, m.on, m.note) for m in snapshot.match_statuses]
        members = {c.id: c.members for c in snapshot.clusters}
        rated = [
            (members.get(o.cluster_id, ()), o.rating)
            for o in snapshot.outcomes
            if o.expert_id is None and o.city_id is None  # the secretariat's, of the cluster
        ]
        for city_a, city_b, good in outcome_labels(steps, rated):
            i, j = arrays.index.get(city_a), arrays.index.get(city_b)
            if i is not None and j is not None:
                answers += [(i, j, good), (j, i, good)]
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
        again: Again = "mark",
    ) -> list[PartnerResult]:
        """Each city's partner list; ``again``: a partner suggested to the city before is
        listed marked, or hidden (``matching.partners.memory``)."""
        if not city_ids:
            raise InvalidInput("name at least one city")
        _check_k(k)
        p = self.prepared()
        return [self._kept(p, c, k, filters, again).result for c in city_ids]

    def partners_json(
        self,
        city_id: str,
        *,
        k: int = 10,
        filters: PartnerFilters = PartnerFilters(),
        again: Again = "mark",
    ) -> bytes:
        """One city's partner list as JSON, written once and kept with the list (the API's
        busiest answer: a list asked for again costs a lookup, not a serialisation)."""
        _check_k(k)
        kept = self._kept(self.prepared(), city_id, k, filters, again)
        if kept.json is None:  # two threads may both write it: the same bytes
            kept.json = _PARTNERS_JSON.dump_json(kept.result)
        return kept.json

    def _kept(
        self, p: Prepared, city_id: str, k: int, filters: PartnerFilters, again: Again
    ) -> _Kept:
        # a coordinator's "not for us" is not suggested to that city again, unless forced;
        # nor, with again="hide", any partner suggested to it before
        before = p.suggested.get(city_id, {})
        forced = set(filters.forced)
        not_for_us = set(p.not_for_us.get(city_id, ())) - forced
        hidden_before = set(before) - forced if again == "hide" else set()
        # what the list says it left out for having been suggested: not what the asker's
        # other rules leave out anyway
        said_hidden = hidden_before - not_for_us - _left_out_anyway(p.arrays, city_id, filters)
        hidden = not_for_us | hidden_before
        if hidden:
            filters = replace(filters, forbidden=tuple(sorted({*filters.forbidden, *hidden})))
        key = (p.revision, city_id, k, filters, self.weights, again)
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
        result = mark(result, before)
        if said_hidden:
            result = replace(result, hidden_as_suggested=len(said_hidden))
        mates = p.cluster_mates.get(city_id)
        if mates:
            result = _with_cluster_mates(result, mates)
        kept = _Kept(result)
        if self._partner_cache_size > 0:
            with self._partner_cache_lock:
                if self._partner_cache and next(iter(self._partner_cache))[0] != p.revision:
                    self._partner_cache.clear()  # a new revision: the old lists are stale
                self._partner_cache[key] = kept
                while len(self._partner_cache) > self._partner_cache_size:
                    self._partner_cache.popitem(last=False)
        return kept

    def record_answer(
        self, city_id: str, partner_id: str, status: str, note: str | None = None
    ) -> IngestReport:
        """A coordinator's answer to a suggested partner: interested, or not for us (never
        suggested to that city again); a second answer replaces the first (its note too,
        when it brings one)."""
        row = {"city_id": city_id, "partner_id": partner_id, "status": status}
        if note is not None:  # no note given: an earlier note stays
            row["note"] = note
        return write_rows(
            self.store,
            Kind.PARTNER_INTERESTS,
            [row],
            refusal=lambda errors: "; ".join(e.message for e in errors),
        )

    def remember_suggestions(
        self, city_id: str, partner_ids: Sequence[str], on: str | None = None
    ) -> dict[str, Any]:
        """Remember a list as shown to ``city_id`` (dated today unless ``on``), each partner
        at its place in the list: the next lists mark or hide them (``again``)."""
        if not partner_ids:
            raise InvalidInput("name at least one partner: the list that was shown")
        day = on or date.today().isoformat()
        try:
            rows = remembered(partner_ids, city_id, day)
        except ValueError as e:
            raise InvalidInput(str(e)) from None
        write_rows(
            self.store,
            Kind.SUGGESTIONS,
            rows,
            refusal=lambda errors: "; ".join(e.message for e in errors),
            name="partner_ids",
        )
        return {"city_id": city_id, "on": day, "remembered": len(rows)}

    def mutual_matches(self, city_id: str | None = None) -> tuple[MutualMatch, ...]:
        """Pairs of cities that each answered "interested" (those of ``city_id`` when given)."""
        snapshot = self.snapshot()
        names = {c.id: c.name for c in snapshot.cities}
        answers = [(a.city_id, a.partner_id, a.status, a.note) for a in snapshot.partner_interests]
        steps = [(m.city_a, m.city_b, m.status, m.on, m.note) for m in snapshot.match_statuses]
        return mutual_matches(answers, names, city_id, steps)

    def record_match_status(
        self, city_a: str, city_b: str, status: str, on: str | None = None, note: str | None = None
    ) -> MutualMatch:
        """Record the next step of a mutual match (dated today unless ``on``); a signed
        partnership also becomes the pair's ``agreement`` partnership, in the same write."""
        a, b = sorted((city_a, city_b))
        match = next((m for m in self.mutual_matches(a) if m.city_b == b), None)
        if match is None:
            names = {c.id: c.name for c in self.snapshot().cities}
            for city in (a, b):
                if city not in names:
                    raise NotFound(f"no city with id {city!r}")
            raise Conflict(
                f"{names[a]} and {names[b]} are not a mutual match: each must answer "
                '"interested" in the other first'
            )
        day = on or date.today().isoformat()
        row = {"city_a": a, "city_b": b, "status": status, "on": day, "note": note}
        along: dict[Kind, list[dict[str, Any]]] = {}
        if status == "partnership_signed":
            along[Kind.PARTNERSHIPS] = [
                {"city_a": a, "city_b": b, "kind": "agreement", "since": day[:4]}
            ]
        write_rows(
            self.store,
            Kind.MATCH_STATUSES,
            [row],
            refusal=lambda errors: "; ".join(e.message for e in errors),
            along=along,
        )
        return next(m for m in self.mutual_matches(a) if m.city_b == b)

    def city_interests(self, city_id: str) -> dict[str, Any]:
        """What one city's coordinator sees: its answers, the answers about it, its matches."""
        snapshot = self.snapshot()
        names = {c.id: c.name for c in snapshot.cities}
        if city_id not in names:
            raise NotFound(f"no city with id {city_id!r}")
        answers = snapshot.partner_interests
        shown = _suggested(snapshot, city_id).get(city_id, {})
        return {
            "city_id": city_id,
            "given": [jsonable(a) for a in answers if a.city_id == city_id],
            "received": [jsonable(a) for a in answers if a.partner_id == city_id],
            "mutual": [jsonable(m) for m in self.mutual_matches(city_id)],
            "suggested": [
                {"partner_id": partner, "name": names.get(partner, partner)} | jsonable(before)
                for partner, before in sorted(
                    shown.items(), key=lambda item: (item[1].last_on, -item[1].rank), reverse=True
                )
            ],
        }

    def record_outcome(
        self,
        cluster_id: str,
        rating: int,
        *,
        on: str | None = None,
        expert_id: str | None = None,
        city_id: str | None = None,
        note: str | None = None,
    ) -> Outcome:
        """How an accepted cluster (or ``expert_id``'s visit to it) went, rated by the
        secretariat or by ``city_id``, one of its members; a second rating by the same
        rater of the same thing replaces the first."""
        snapshot = self.snapshot()
        cluster = next((c for c in snapshot.clusters if c.id == cluster_id), None)
        if cluster is None:
            raise NotFound(f"no accepted cluster with id {cluster_id!r}")
        if city_id is not None and city_id not in cluster.members:
            raise Conflict(f"{city_id!r} is not a member of {cluster.name} ({cluster_id})")
        visits = {a.expert_id for a in snapshot.assignments if a.cluster_id == cluster_id}
        if expert_id is not None and expert_id not in visits:
            raise Conflict(
                f"{expert_id!r} was not assigned to {cluster.name} ({cluster_id}): "
                f"its experts are {', '.join(sorted(visits)) or 'none yet'}"
            )
        row = {
            "id": f"{cluster_id}:{expert_id or '-'}:{city_id or 'secretariat'}",
            "cluster_id": cluster_id,
            "rating": rating,
            "on": on or date.today().isoformat(),
            "expert_id": expert_id,
            "city_id": city_id,
            "note": note,
        }
        write_rows(
            self.store,
            Kind.OUTCOMES,
            [row],
            refusal=lambda errors: "; ".join(e.message for e in errors),
        )
        return next(o for o in self.snapshot().outcomes if o.id == row["id"])

    def assign_experts(
        self,
        cluster_ids: Sequence[str] | None = None,
        *,
        per_cluster: int = 1,
        fair: bool = False,
        conflict_same_country: bool = False,
        conflicts: Sequence[tuple[str, str, str]] = (),
        fixed: Sequence[tuple[str, str]] = (),
    ) -> tuple[ExpertAssignment, list[ClusterRow], ConflictSources]:
        """The best assignment of experts to accepted clusters (all of them by default).

        ``conflicts``: (expert id, city id, reason) for this request: the expert serves no
        cluster with that city. Every conflict stored in the network (``expert_conflicts``)
        applies too; the third value counts each source's conflicts and says which ruled a
        pair out. ``fixed``: (expert id, cluster id) pairs to keep, each honoured or refused
        with a reason (``ExpertAssignment.fixed``).
        """
        from matching.experts import assign_experts, expert_inputs

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
        vectors = p.expert_vectors
        merged, sources = merged_conflicts(p.snapshot, conflicts)
        data = expert_inputs(
            experts,
            p.snapshot.expert_themes,
            p.arrays,
            p.profiles,
            vectors,
            clusters,
            conflict_same_country=conflict_same_country,
            conflicts=merged,
        )
        capacity = np.array(
            [2 if e.max_assignments is None else e.max_assignments for e in experts]
        )
        demand = np.full(len(clusters), per_cluster)
        result = assign_experts(
            [e.id for e in experts],
            [c.id for c in clusters],
            data,
            capacity,
            demand,
            fair=fair,
            fixed=fixed,
            expert_names=[e.name for e in experts],
            cluster_names=[c.name for c in clusters],
        )
        return result, clusters, sources

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
        from matching.partners.evaluate import evaluate_partners, standard_methods

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
        from matching.analytics import network_stats

        snapshot = self.snapshot()
        key = (snapshot.revision, seed)
        cached = self._stats
        if cached is not None and cached[0] == key:
            return cached[1]
        stats = network_stats(snapshot, seed=seed)
        self._stats = (key, stats)
        return stats
