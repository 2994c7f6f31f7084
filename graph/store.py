"""The store contract shared by every backend, and the logic they share.

A store holds the network and offers: an atomic upsert of a whole batch with a report,
delete by key, a snapshot of everything as plain data, ids per kind (for referential
checks at ingest), and a revision number that grows on every change so that
long-lived readers (API workers) know when their snapshot is stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from graph.errors import InvalidInput
from graph.model import SPECS, Kind, canonical_props
from graph.snapshot import NetworkSnapshot

Key = tuple[str, ...]
Props = dict[str, Any]
Progress = Callable[[int, int], None]
"""Called as ``progress(rows_done, rows_total)`` while a long write runs."""

T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``itertools.batched`` arrives in 3.12; this is the 3.11 stand-in."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class GraphBatch:
    """Validated rows to write, per kind, each row holding only the fields its input provided.

    Keeping only provided fields is what lets a file that leaves out an optional column
    update the other columns without erasing the stored ones.
    """

    rows: dict[Kind, list[Props]] = field(default_factory=dict)

    def add(self, kind: Kind, props: Props) -> None:
        self.rows.setdefault(kind, []).append(props)

    def __len__(self) -> int:
        return sum(len(r) for r in self.rows.values())


@dataclass(slots=True)
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(slots=True)
class UpsertReport:
    """What an upsert did (or, for a dry run, would do), in total and per kind."""

    by_kind: dict[Kind, Counts] = field(default_factory=dict)
    revision: int = 0
    dry_run: bool = False

    def _sum(self, attr: str) -> int:
        return sum(getattr(c, attr) for c in self.by_kind.values())

    @property
    def created(self) -> int:
        return self._sum("created")

    @property
    def updated(self) -> int:
        return self._sum("updated")

    @property
    def unchanged(self) -> int:
        return self._sum("unchanged")

    @property
    def changed(self) -> int:
        return self.created + self.updated


class GraphStore(Protocol):
    """What every backend offers. All writes are atomic: all of a batch or none of it."""

    url: str

    def upsert(
        self, batch: GraphBatch, *, dry_run: bool = False, progress: Progress | None = None
    ) -> UpsertReport: ...

    def delete(self, kind: Kind, key: str | Key) -> bool:
        """Remove one row; its relationship rows go with it. Refuses if others refer to it."""
        ...

    def ids(self, kind: Kind) -> set[str]:
        """Ids of the stored rows of a node kind."""
        ...

    def snapshot(self) -> NetworkSnapshot: ...

    def revision(self) -> int: ...

    def cached_vectors(self, model: str, hashes: list[str]) -> dict[str, bytes]:
        """Embedding vectors already computed for these content hashes (float32 bytes)."""
        ...

    def cache_vectors(self, model: str, vectors: dict[str, bytes]) -> None: ...

    def put_document(self, collection: str, id: str, body: dict[str, Any]) -> None:
        """Keep a JSON document (e.g. a saved proposal) beside the network."""
        ...

    def get_document(self, collection: str, id: str) -> dict[str, Any] | None: ...

    def list_documents(self, collection: str) -> list[dict[str, Any]]: ...

    def ping(self) -> None:
        """Raise ``StoreUnavailable`` when the store cannot be reached."""
        ...

    def close(self) -> None: ...


# --- logic shared by the backends ------------------------------------------------------


def normalise_key(kind: Kind, key: str | Key) -> Key:
    spec = SPECS[kind]
    k = (key,) if isinstance(key, str) else tuple(key)
    if len(k) != len(spec.key):
        raise InvalidInput(f"a {kind.value} key has {len(spec.key)} parts: {', '.join(spec.key)}")
    if kind == Kind.PARTNERSHIPS and k[0] > k[1]:
        k = (k[1], k[0], *k[2:])
    return k


@dataclass(slots=True)
class PlannedWrite:
    key: Key
    props: Props  # the full canonical row to store
    created: bool


def plan(
    kind: Kind, rows: Iterable[Props], existing: dict[Key, Props], counts: Counts
) -> list[PlannedWrite]:
    """Decide, row by row, what to create, update or leave alone.

    A row's provided fields are laid over what is stored; a row equal to the stored one
    is counted as unchanged and not written, which makes re-ingest a no-op.
    """
    spec = SPECS[kind]
    writes: list[PlannedWrite] = []
    for row in rows:
        key = spec.key_of(row)
        old = existing.get(key)
        if old is None:
            new = canonical_props(kind, row)
            counts.created += 1
            writes.append(PlannedWrite(key, new, created=True))
            existing[key] = new  # a later duplicate in the same batch is then an update
            continue
        old_c = canonical_props(kind, old)
        new = {**old_c, **row}
        if new == old_c:
            counts.unchanged += 1
        else:
            counts.updated += 1
            writes.append(PlannedWrite(key, new, created=False))
            existing[key] = new
    return writes
