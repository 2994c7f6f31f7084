"""The whole network as plain, immutable data: what the matchers and exports read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graph.model import (
    SPECS,
    Assignment,
    City,
    CityTheme,
    Cluster,
    Coordinator,
    Expert,
    ExpertTheme,
    IndexScore,
    Kind,
    Network,
    PartnerInterest,
    Partnership,
    Practice,
    Stakeholder,
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

    def rows(self, kind: Kind) -> tuple[Any, ...]:
        rows: tuple[Any, ...] = getattr(self, kind.value)
        return rows

    def counts(self) -> dict[str, int]:
        return {kind.value: len(self.rows(kind)) for kind in Kind}

    def export_rows(self, kind: Kind) -> list[dict[str, Any]]:
        """Rows of ``kind`` as plain dicts with every column, in key order (deterministic)."""
        return [to_props(row) for row in self.rows(kind)]


def build_snapshot(revision: int, rows: dict[Kind, list[Any]]) -> NetworkSnapshot:
    """Sort each kind by its key so that snapshots (and exports) never depend on store order."""
    return NetworkSnapshot(
        revision=revision,
        **{kind.value: tuple(sorted(rows.get(kind, ()), key=SPECS[kind].key_of)) for kind in Kind},
    )
