"""Expert conflicts kept in the network: ``(Expert)-[:CONFLICTS_WITH {reason}]->(City)``.

A stored conflict says an expert may serve no cluster with that city among its members,
and why ("works for the city", "advised it last cycle"). Every expert assignment applies
all of them, together with the conflicts a request declares for itself
(``merged_conflicts``); the matcher stays pure and never reads the store. The helpers here
list, add and remove stored conflicts with names beside the ids, and refuse unknown ids
with a message naming them; the CLI (``iccmatch conflicts``) and the API's delete route
use them, the generic resource routes list and write the rows themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from api.services.rows import write_rows
from graph.errors import NotFound
from graph.model import ExpertConflict, Kind
from graph.snapshot import NetworkSnapshot
from graph.store import GraphStore

Triple = tuple[str, str, str]
Source = Literal["stored", "request", "stored and request"]


@dataclass(frozen=True, slots=True)
class ConflictSources:
    """Where an assignment's conflicts came from: how many stored rows and how many the
    request declared, and the (expert id, city id) pairs of each, to say which source
    ruled a pair out."""

    stored: int
    request: int
    stored_pairs: frozenset[tuple[str, str]] = frozenset()
    request_pairs: frozenset[tuple[str, str]] = frozenset()

    def source_of(self, expert_id: str, members: Iterable[str]) -> Source | None:
        """Which conflicts keep ``expert_id`` from a cluster of these ``members``."""
        cities = set(members)
        stored = any(e == expert_id and c in cities for e, c in self.stored_pairs)
        request = any(e == expert_id and c in cities for e, c in self.request_pairs)
        if stored and request:
            return "stored and request"
        return "stored" if stored else "request" if request else None

    def counts(self) -> dict[str, int]:
        return {"stored": self.stored, "request": self.request}


def merged_conflicts(
    snapshot: NetworkSnapshot, declared: Sequence[Triple]
) -> tuple[list[Triple], ConflictSources]:
    """Every stored conflict, then the request's own: what the matcher is given."""
    stored = [(c.expert_id, c.city_id, c.reason) for c in snapshot.expert_conflicts]
    request = [(e, c, r) for e, c, r in declared]
    return [*stored, *request], ConflictSources(
        stored=len(stored),
        request=len(request),
        stored_pairs=frozenset((e, c) for e, c, _ in stored),
        request_pairs=frozenset((e, c) for e, c, _ in request),
    )


def _names(snapshot: NetworkSnapshot) -> tuple[dict[str, str], dict[str, str]]:
    return {e.id: e.name for e in snapshot.experts}, {c.id: c.name for c in snapshot.cities}


def _check(
    experts: dict[str, str], cities: dict[str, str], expert_id: str | None, city_id: str | None
) -> None:
    if expert_id is not None and expert_id not in experts:
        raise NotFound(f"no expert with id {expert_id!r}")
    if city_id is not None and city_id not in cities:
        raise NotFound(f"no city with id {city_id!r}")


def _named(row: ExpertConflict, experts: dict[str, str], cities: dict[str, str]) -> dict[str, Any]:
    return {
        "expert_id": row.expert_id,
        "expert_name": experts.get(row.expert_id, row.expert_id),
        "city_id": row.city_id,
        "city_name": cities.get(row.city_id, row.city_id),
        "reason": row.reason,
    }


def named_conflicts(
    snapshot: NetworkSnapshot, expert_id: str | None = None, city_id: str | None = None
) -> list[dict[str, Any]]:
    """The stored conflicts (of one expert, of one city), each with both names, by expert
    name then city name. An unknown id is an error naming it, not an empty list."""
    experts, cities = _names(snapshot)
    _check(experts, cities, expert_id, city_id)
    rows = [
        _named(c, experts, cities)
        for c in snapshot.expert_conflicts
        if expert_id in (None, c.expert_id) and city_id in (None, c.city_id)
    ]
    return sorted(rows, key=lambda r: (r["expert_name"], r["city_name"], r["expert_id"]))


def add_conflict(
    store: GraphStore, snapshot: NetworkSnapshot, expert_id: str, city_id: str, reason: str
) -> dict[str, Any]:
    """Store (or, for a pair stored already, re-word) one conflict; the answer names both
    and says whether it was ``created``. The row gets ingest's checks (a reason is required)."""
    experts, cities = _names(snapshot)
    _check(experts, cities, expert_id, city_id)
    report = write_rows(
        store,
        Kind.EXPERT_CONFLICTS,
        [{"expert_id": expert_id, "city_id": city_id, "reason": reason}],
        refusal=lambda errors: "; ".join(e.message for e in errors),
    )
    row = ExpertConflict(expert_id, city_id, reason.strip())
    return _named(row, experts, cities) | {
        "created": report.upsert.created > 0,
        "revision": report.upsert.revision,
    }


def remove_conflict(
    store: GraphStore, snapshot: NetworkSnapshot, expert_id: str, city_id: str
) -> dict[str, Any]:
    """Delete one stored conflict; unknown ids, or a pair with no stored conflict, are
    ``NotFound`` naming them."""
    experts, cities = _names(snapshot)
    _check(experts, cities, expert_id, city_id)
    if not store.delete(Kind.EXPERT_CONFLICTS, (expert_id, city_id)):
        raise NotFound(
            f"{experts[expert_id]} ({expert_id}) has no stored conflict with "
            f"{cities[city_id]} ({city_id})"
        )
    return {
        "deleted": {
            "expert_id": expert_id,
            "expert_name": experts[expert_id],
            "city_id": city_id,
            "city_name": cities[city_id],
        },
        "revision": store.revision(),
    }
