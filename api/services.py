"""Services: load the snapshot, run the matchers, keep their results beside the network.

The HTTP API and the CLI are thin shells over one ``NetworkService``. It holds the
current snapshot, its arrays and its profile embeddings, and rebuilds them only when the
store's revision moves (a write through another worker or the CLI is seen on the next
call). Embedding goes through the store's vector cache, so the model is only loaded when
some profile text changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from graph.errors import InvalidInput, NotFound
from graph.snapshot import NetworkSnapshot
from graph.store import GraphStore
from matching.analytics import NetworkStats, network_stats
from matching.embeddings import Encoder, embed
from matching.encoder import NetworkArrays, encode
from matching.partners import (
    PartnerFilters,
    PartnerResult,
    PartnerWeights,
    UnknownCity,
    suggest_partners,
)
from matching.texts import city_profiles

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


class NetworkService:
    def __init__(
        self,
        store: GraphStore,
        encoder: Encoder,
        *,
        weights: PartnerWeights = PartnerWeights(),
    ) -> None:
        self.store = store
        self.encoder = encoder
        self.weights = weights
        self._snapshot: NetworkSnapshot | None = None
        self._prepared: Prepared | None = None
        self._lock = threading.Lock()

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
            self._prepared = Prepared(snapshot, arrays, profiles)
            return self._prepared

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
        if not 1 <= k <= 100:
            raise InvalidInput(f"k must be between 1 and 100, not {k}")
        p = self.prepared()
        try:
            return [
                suggest_partners(
                    p.arrays, p.profiles, c, k=k, filters=filters, weights=self.weights
                )
                for c in city_ids
            ]
        except UnknownCity as e:
            raise NotFound(str(e)) from e
        except ValueError as e:
            raise InvalidInput(str(e)) from e

    def stats(self, *, seed: int = 0) -> NetworkStats:
        """Network analytics; needs no embeddings, so it never loads the model."""
        return network_stats(self.snapshot(), seed=seed)
