"""The whole network as plain, immutable data: what the matchers and exports read."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from graph.model import (
    SPECS,
    Assignment,
    City,
    CityTheme,
    Cluster,
    Coordinator,
    Expert,
    ExpertConflict,
    ExpertTheme,
    IndexScore,
    Kind,
    MatchStatus,
    Network,
    Outcome,
    PartnerInterest,
    Partnership,
    Practice,
    Stakeholder,
    Suggestion,
    Theme,
    to_props,
)


@dataclass(frozen=True, slots=True)
class NetworkSnapshot:
    """Every row of every kind, each tuple sorted by the kind's key, at one store revision.

    Attribute names are the ``Kind`` values, so generic code can use ``rows(kind)``.
    """

    revision: int
    networks: tuple[Network, ...] = ()
    themes: tuple[Theme, ...] = ()
    cities: tuple[City, ...] = ()
    experts: tuple[Expert, ...] = ()
    coordinators: tuple[Coordinator, ...] = ()
    stakeholders: tuple[Stakeholder, ...] = ()
    practices: tuple[Practice, ...] = ()
    clusters: tuple[Cluster, ...] = ()
    city_themes: tuple[CityTheme, ...] = ()
    index_scores: tuple[IndexScore, ...] = ()
    expert_themes: tuple[ExpertTheme, ...] = ()
    partnerships: tuple[Partnership, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    partner_interests: tuple[PartnerInterest, ...] = ()
    match_statuses: tuple[MatchStatus, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    expert_conflicts: tuple[ExpertConflict, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()

    def rows(self, kind: Kind) -> tuple[Any, ...]:
        rows: tuple[Any, ...] = getattr(self, kind.value)
        return rows

    def counts(self) -> dict[str, int]:
        return {kind.value: len(self.rows(kind)) for kind in Kind}

    def export_rows(self, kind: Kind) -> list[dict[str, Any]]:
        """Rows of ``kind`` as plain dicts with every column, in key order (deterministic)."""
        return [to_props(row) for row in self.rows(kind)]


def build_snapshot(revision: int, rows: dict[Kind, list[Any]]) -> NetworkSnapshot:
    """Sort each kind by its key so that snapshots (and exports) never depend on store order.

    Key fields are strings in every row object, so ``attrgetter`` (C code) orders them
    exactly as ``KindSpec.key_of`` would, without a Python call per row.
    """
    return NetworkSnapshot(
        revision=revision,
        **{
            kind.value: tuple(sorted(rows.get(kind, ()), key=attrgetter(*SPECS[kind].key)))
            for kind in Kind
        },
    )


def build_rows(
    kind: Kind,
    records: Iterable[Sequence[Any]],
    parse_list: Callable[[Any], Iterable[Any]] | None = None,
) -> list[Any]:
    """Row objects of ``kind`` from stored columns, in the model's field order.

    List columns become tuples (an absent list the empty tuple), through ``parse_list``
    where the store keeps them encoded (SQLite: JSON text). Rows are trusted (they were
    validated on the way in), so they are built positionally, without validation.
    """
    spec = SPECS[kind]
    model, lists = spec.model, spec.list_columns
    if not lists:
        return [model(*record) for record in records]
    out = []
    for record in records:
        values = list(record)
        for i in lists:
            value = values[i]
            if value is None:
                values[i] = ()
            else:
                values[i] = tuple(parse_list(value) if parse_list else value)
        out.append(model(*values))
    return out


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a snapshot's millions of rows are built.

    Each new object counts towards the next collection, and every full collection walks
    all live objects again: for a 100,000-city snapshot that is most of the build time.
    The rows hold no reference cycles, so nothing is left for the collector to find.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
