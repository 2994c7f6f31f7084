"""Network analytics: the shape of the city-city tie graph, and what the secretariat should look at.

inputs: ``context`` (the tie graph and the cities' attributes, encoded once);
solve: ``structure`` (components, degree and betweenness, bridges and articulation
points), ``communities`` (Leiden vs national networks, network bridgers) and ``gaps``
(isolated and peripheral cities, newcomers needing a buddy, theme coverage, closed
clusters); report: ``stats`` (``network_stats`` and the frozen ``NetworkStats``, every
flagged item with its reasons) and ``export`` (the network as a view, GraphML, GEXF, CSV).

``export`` is not imported here: it loads networkx, which the rest does not need, so
``import matching.analytics`` (and the CLI's start) stays light; use
``from matching.analytics import export`` or ``from matching.analytics.export import ...``.
"""

from matching.analytics.communities import Community, CommunityStats, NetworkBridger
from matching.analytics.context import INTERNATIONAL_ONLY
from matching.analytics.gaps import (
    CityFlag,
    ClusterOpenness,
    ClusterSpec,
    ThemeCoverage,
    ThemeStats,
)
from matching.analytics.stats import NetworkStats, network_stats
from matching.analytics.structure import ArticulationPoint, Bridge, CityScore, ComponentStats

__all__ = [
    "INTERNATIONAL_ONLY",
    "ArticulationPoint",
    "Bridge",
    "CityFlag",
    "CityScore",
    "ClusterOpenness",
    "ClusterSpec",
    "Community",
    "CommunityStats",
    "ComponentStats",
    "NetworkBridger",
    "NetworkStats",
    "ThemeCoverage",
    "ThemeStats",
    "network_stats",
]
