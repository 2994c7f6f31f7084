"""``network_stats``: the whole analysis of a network in one call, and its result.

It reads a ``NetworkSnapshot`` (plain data), encodes the tie graph once
(``EncodedNetwork``: ids <-> indices, deduplicated undirected edges, CSR adjacency, an
igraph graph built straight from the index arrays) and hands that one encoding to every
section: ``structure`` (components, centrality, cuts), ``communities`` (Leiden vs the
national networks, network bridgers) and ``gaps`` (isolated and peripheral cities,
newcomers, theme coverage, closed clusters). Every flagged item carries ``reasons`` in
words, with the numbers behind them; the result is frozen and ``to_dict`` is plain JSON.
Nothing is all-pairs, so it stays fast at 10,000+ cities; randomness only through ``seed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from graph.errors import InvalidInput
from graph.snapshot import NetworkSnapshot
from matching.analytics.communities import (
    CommunityStats,
    NetworkBridger,
    community_stats,
    network_bridgers,
)
from matching.analytics.context import EncodedNetwork
from matching.analytics.gaps import (
    CityFlag,
    ClusterOpenness,
    ThemeStats,
    buddy_finder,
    cluster_openness,
    isolated_and_peripheral,
    newcomers_needing_buddy,
    parse_clusters,
    theme_coverage,
)
from matching.analytics.structure import (
    ArticulationPoint,
    Bridge,
    CityScore,
    ComponentStats,
    bridges_and_articulation_points,
    component_labels,
    component_stats,
    top_betweenness,
    top_degree,
)


@dataclass(frozen=True, slots=True)
class NetworkStats:
    """Everything ``network_stats`` finds; ``to_dict`` is plain JSON."""

    revision: int
    seed: int
    cities: int
    ties: int  # distinct city pairs with at least one partnership
    partnerships: int  # partnership rows (a pair may have one per kind)
    components: ComponentStats
    top_degree: tuple[CityScore, ...]
    top_betweenness: tuple[CityScore, ...]
    betweenness_method: str
    bridges: tuple[Bridge, ...]  # most cities cut off first
    articulation_points: tuple[ArticulationPoint, ...]  # most cities cut off first
    communities: CommunityStats
    network_bridgers: tuple[NetworkBridger, ...]  # most groups reached first
    isolated: tuple[CityFlag, ...]
    peripheral: tuple[CityFlag, ...]
    needs_buddy: tuple[CityFlag, ...]  # newcomers with (almost) no ties
    newcomer_since: int | None  # joined in or after this year counts as a newcomer
    themes: ThemeStats
    clusters: tuple[ClusterOpenness, ...]  # in the order given (stored ones: by id)

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, str, int, float, bool and None: ready for ``json.dumps``."""
        return asdict(self)


def network_stats(
    snapshot: NetworkSnapshot,
    clusters: Iterable[Any] | None = None,
    *,
    seed: int = 0,
    top: int = 10,
    kind_weights: Mapping[str, float] | None = None,
    resolution: float = 1.0,
    leiden_iterations: int = 2,
    exact_betweenness_max: int = 3000,
    betweenness_samples: int = 256,
    far_hops: int = 3,
    newcomer_years: int = 3,
    as_of_year: int | None = None,
    buddy_max_ties: int = 0,
    demand_priority: int = 4,
    expert_level: int = 3,
    min_outside_share: float = 0.25,
) -> NetworkStats:
    """Analyse the tie graph of ``snapshot``; see the module docstring.

    ``clusters``: ``None`` (default) reads the snapshot's accepted clusters; otherwise each
    is a ``ClusterSpec``, a tuple ``(cluster_id, member_city_ids[, theme_ids])``, or a
    mapping / object with ``cluster_id`` (or ``id``), ``city_ids`` (or ``members``) and
    optionally ``theme_ids`` (or ``theme_id``). Pass ``()`` for none.
    ``as_of_year``: "now" for newcomers; default the latest ``joined`` year in the data (so
    the result never depends on the clock). A newcomer joined in the last ``newcomer_years``
    years; it needs a buddy when it has at most ``buddy_max_ties`` ties.
    A cluster is flagged closed when less than ``min_outside_share`` of its members' ties
    leave it (or none does).
    """
    if top < 0 or far_hops < 1 or newcomer_years < 1 or betweenness_samples < 1:
        raise InvalidInput(
            "top must be >= 0; far_hops, newcomer_years and betweenness_samples >= 1"
        )
    if not 0.0 <= min_outside_share <= 1.0:
        raise InvalidInput("min_outside_share is a share of ties: give a number from 0 to 1")
    specs = parse_clusters(snapshot.clusters if clusters is None else clusters)
    net = EncodedNetwork.of(snapshot, kind_weights)
    g = net.g
    graph = g.igraph()
    comp, comp_sizes, big = component_labels(net, graph)

    components = component_stats(net, comp, comp_sizes, big)
    degree_ranking = top_degree(net, top)
    betweenness_ranking, method = top_betweenness(
        net, graph, top, seed, exact_betweenness_max, betweenness_samples
    )
    bridges, cuts = bridges_and_articulation_points(net, comp, comp_sizes)
    communities = community_stats(net, graph, seed, resolution, leiden_iterations)
    bridgers = network_bridgers(net)
    buddies = buddy_finder(net)
    isolated, peripheral = isolated_and_peripheral(
        net, graph, comp, comp_sizes, big, far_hops, buddies
    )
    needs_buddy, newcomer_since = newcomers_needing_buddy(
        net, newcomer_years, as_of_year, buddy_max_ties, buddies
    )
    themes = theme_coverage(snapshot, specs, demand_priority, expert_level)
    openness = tuple(cluster_openness(net, spec, min_outside_share) for spec in specs)
    return NetworkStats(
        revision=snapshot.revision,
        seed=seed,
        cities=g.n,
        ties=len(g.edges),
        partnerships=len(snapshot.partnerships),
        components=components,
        top_degree=degree_ranking,
        top_betweenness=betweenness_ranking,
        betweenness_method=method,
        bridges=bridges,
        articulation_points=cuts,
        communities=communities,
        network_bridgers=bridgers,
        isolated=isolated,
        peripheral=peripheral,
        needs_buddy=needs_buddy,
        newcomer_since=newcomer_since,
        themes=themes,
        clusters=openness,
    )
