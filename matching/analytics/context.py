"""What every analytics section reads: the tie graph and the cities' attributes, by index.

``EncodedNetwork`` is built once per ``network_stats`` call, so the sections (structure,
communities, gaps) share one encoding of ids <-> indices and never re-read the snapshot's
cities; it also holds the few words they all use to name a group of cities.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from graph.snapshot import NetworkSnapshot
from matching.kernel.ties import TieGraph, tie_graph
from matching.kernel.wording import country_name, name_list

INTERNATIONAL_ONLY = "(international only)"
"""The group of a city that belongs to no national network (used in ``networks_reached``)."""


@dataclass(frozen=True, slots=True)
class EncodedNetwork:
    """The encoded tie graph and per-city plain attributes, all indexed like ``g.city_ids``."""

    g: TieGraph
    names: tuple[str, ...]
    countries: tuple[str, ...]
    networks: tuple[tuple[str, ...], ...]
    joined: tuple[int | None, ...]
    network_names: Mapping[str, str]

    @classmethod
    def of(
        cls, snapshot: NetworkSnapshot, kind_weights: Mapping[str, float] | None
    ) -> EncodedNetwork:
        return cls(
            g=tie_graph(snapshot, kind_weights),
            names=tuple(c.name for c in snapshot.cities),
            countries=tuple(c.country for c in snapshot.cities),
            networks=tuple(tuple(c.networks) for c in snapshot.cities),
            joined=tuple(c.joined for c in snapshot.cities),
            network_names={nw.id: nw.name for nw in snapshot.networks},
        )

    def net_name(self, nid: str) -> str:
        if nid == INTERNATIONAL_ONLY:
            return "international-only cities"
        return self.network_names.get(nid, nid)

    def groups(self, i: int) -> tuple[str, ...]:
        return self.networks[i] or (INTERNATIONAL_ONLY,)

    def describe(self, members: Sequence[int]) -> str:
        """'Messina, Palermo and Catania; all in Città del Dialogo' for a small set of cities."""
        k = len(members)
        names = name_list(sorted(self.names[i] for i in members))
        nets = Counter(nw for i in members for nw in self.networks[i])
        if nets:
            nid, c = min(nets.items(), key=lambda kv: (-kv[1], kv[0]))
            where = self.net_name(nid)
        else:
            cc, c = min(
                Counter(self.countries[i] for i in members).items(),
                key=lambda kv: (-kv[1], kv[0]),
            )
            where = country_name(cc)
        if k == 1:
            share = "in"
        elif c == k:
            share = "all in"
        else:
            share = f"{c} of them in"
        return f"{names}; {share} {where}"
