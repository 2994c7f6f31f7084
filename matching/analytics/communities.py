"""Communities of the tie graph compared with the national networks, and the cities between them.

Leiden (igraph, modularity, weighted by partnership kinds) finds the communities; the
adjusted Rand index and NMI then say how closely they follow the national networks and the
countries: a low score means cities work across those lines. A *network bridger* is a
city whose own ties reach national networks (or international-only cities) beyond its own.

Randomness only through ``seed``: Leiden draws from igraph's process-wide generator, so
the call runs inside ``seeded_igraph(seed)`` (one lock for the whole process).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import igraph as ig
import numpy as np

from matching.analytics.context import INTERNATIONAL_ONLY, EncodedNetwork
from matching.kernel.arrays import FloatArray
from matching.kernel.randomness import seeded_igraph
from matching.kernel.wording import Reason, and_join, country_name, is_are, percent, plural

_LIST_LIMIT = 3  # best-connected cities named in a community's reasons


@dataclass(frozen=True, slots=True)
class Community:
    id: int  # 0 = largest; ids follow (size desc, smallest member id)
    size: int
    city_ids: tuple[str, ...]  # sorted
    dominant_network: str | None  # network id, or None when no member is in one
    network_share: float  # members in the dominant network / size
    dominant_country: str
    country_share: float
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class CommunityStats:
    method: str
    seed: int
    modularity: float
    communities: tuple[Community, ...]  # two or more members; largest first
    singletons: int  # cities alone in their community (isolated cities)
    ari_vs_networks: float | None  # adjusted Rand index, cities with a national network
    nmi_vs_networks: float | None
    compared_with_networks: int  # cities in that comparison
    ari_vs_countries: float | None  # every city in a community of two or more
    nmi_vs_countries: float | None
    compared_with_countries: int

    def community_of(self) -> dict[str, int]:
        """City id -> community id (cities alone in their community are absent)."""
        return {cid: c.id for c in self.communities for cid in c.city_ids}


@dataclass(frozen=True, slots=True)
class NetworkBridger:
    """A city whose ties reach national networks (or international-only cities) beyond its own."""

    city_id: str
    name: str
    own_networks: tuple[str, ...]  # its national networks, or (INTERNATIONAL_ONLY,)
    networks_reached: tuple[str, ...]  # groups of its partners, most ties first
    cross_ties: int  # ties to partners in a group it is not in
    reasons: tuple[Reason, ...]


# --- communities -------------------------------------------------------------------------------


def _leiden_membership(
    graph: ig.Graph, weights: FloatArray, seed: int, resolution: float, iterations: int
) -> tuple[list[int], float]:
    with seeded_igraph(seed):
        part = graph.community_leiden(
            objective_function="modularity",
            weights=weights.tolist() if len(weights) else None,
            resolution=resolution,
            n_iterations=iterations,
        )
    membership = list(part.membership)
    modularity = graph.modularity(
        membership, weights=weights.tolist() if len(weights) else None, resolution=resolution
    )
    return membership, float(modularity)


def _compare(a: Sequence[str], b: Sequence[int]) -> tuple[float | None, float | None]:
    """ARI and NMI between two labelings of the same cities (igraph's compare_communities)."""
    if len(a) < 2:
        return None, None
    codes: dict[str, int] = {}
    la = [codes.setdefault(x, len(codes)) for x in a]
    codes2: dict[int, int] = {}
    lb = [codes2.setdefault(x, len(codes2)) for x in b]
    if len(codes) == 1 and len(codes2) == 1:
        return 1.0, 1.0  # both put everyone together: identical partitions
    ari = float(ig.compare_communities(la, lb, method="adjusted_rand"))
    nmi = float(ig.compare_communities(la, lb, method="nmi"))
    return (None if np.isnan(ari) else ari), (None if np.isnan(nmi) else nmi)


def community_stats(
    net: EncodedNetwork, graph: ig.Graph, seed: int, resolution: float, iterations: int
) -> CommunityStats:
    """Leiden communities of two or more cities, each with its dominant network and country;
    ARI and NMI compare them with the national networks and with the countries."""
    g = net.g
    method = (
        f"Leiden, modularity (igraph community_leiden, resolution {resolution:g}, "
        f"{'until stable' if iterations < 0 else plural(iterations, 'iteration')}, seed {seed})"
    )
    if g.n == 0:
        return CommunityStats(method, seed, 0.0, (), 0, None, None, 0, None, None, 0)
    if len(g.edges) == 0:
        membership, modularity = list(range(g.n)), 0.0
    else:
        membership, modularity = _leiden_membership(graph, g.weights, seed, resolution, iterations)
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(membership):
        groups.setdefault(c, []).append(i)
    real = [m for m in groups.values() if len(m) >= 2]
    real.sort(key=lambda m: (-len(m), min(g.city_ids[i] for i in m)))
    communities = []
    label = [-1] * g.n
    for cid, members in enumerate(real):
        for i in members:
            label[i] = cid
        k = len(members)
        nets = Counter(nw for i in members for nw in net.networks[i])
        countries = Counter(net.countries[i] for i in members)
        cc, cc_n = min(countries.items(), key=lambda kv: (-kv[1], kv[0]))
        reasons = []
        if nets:
            nid, net_n = min(nets.items(), key=lambda kv: (-kv[1], kv[0]))
            reasons.append(
                Reason(
                    "community_network",
                    f"{net_n} of its {k} cities ({percent(net_n / k)}) {is_are(net_n)} in "
                    f"{net.net_name(nid)}",
                )
            )
        else:
            nid, net_n = None, 0
            reasons.append(
                Reason("community_network", f"none of its {k} cities is in a national network")
            )
        reasons.append(
            Reason(
                "community_country",
                f"{cc_n} of its {k} cities ({percent(cc_n / k)}) {is_are(cc_n)} in {country_name(cc)}",
            )
        )
        hubs = sorted(members, key=lambda i: (-int(g.degree[i]), g.city_ids[i]))[:_LIST_LIMIT]
        reasons.append(
            Reason("community_hubs", f"best connected: {and_join([net.names[i] for i in hubs])}")
        )
        communities.append(
            Community(
                id=cid,
                size=k,
                city_ids=tuple(sorted(g.city_ids[i] for i in members)),
                dominant_network=nid,
                network_share=net_n / k,
                dominant_country=cc,
                country_share=cc_n / k,
                reasons=tuple(reasons),
            )
        )
    in_comm = [i for i in range(g.n) if label[i] >= 0]
    with_net = [i for i in in_comm if net.networks[i]]
    ari_n, nmi_n = _compare([net.networks[i][0] for i in with_net], [label[i] for i in with_net])
    ari_c, nmi_c = _compare([net.countries[i] for i in in_comm], [label[i] for i in in_comm])
    return CommunityStats(
        method=method,
        seed=seed,
        modularity=modularity,
        communities=tuple(communities),
        singletons=g.n - len(in_comm),
        ari_vs_networks=ari_n,
        nmi_vs_networks=nmi_n,
        compared_with_networks=len(with_net),
        ari_vs_countries=ari_c,
        nmi_vs_countries=nmi_c,
        compared_with_countries=len(in_comm),
    )


# --- cities tied across national networks ----------------------------------------------------


def network_bridgers(net: EncodedNetwork) -> tuple[NetworkBridger, ...]:
    """Cities with ties into national networks (or to international-only cities) not their own."""
    g = net.g
    groups = [net.groups(i) for i in range(g.n)]
    group_sets = [frozenset(x) for x in groups]
    indptr, indices = g.indptr.tolist(), g.indices.tolist()
    found: list[tuple[int, int, NetworkBridger]] = []
    for i in range(g.n):
        own = group_sets[i]
        reached: Counter[str] = Counter()
        cross = 0
        for j in indices[indptr[i] : indptr[i + 1]]:
            reached.update(groups[j])
            if not group_sets[j] <= own:
                cross += 1
        if cross == 0:
            continue
        ranked = sorted(reached.items(), key=lambda kv: (-kv[1], kv[0]))
        parts = [
            f"{plural(c, 'partner')} "
            + ("among " if nid == INTERNATIONAL_ONLY else "in ")
            + net.net_name(nid)
            for nid, c in ranked[:4]
        ]
        if len(ranked) > 4:
            parts.append(f"partners in {plural(len(ranked) - 4, 'more group')}")
        foreign = [nid for nid in reached if nid not in own]
        nets = sum(1 for nid in foreign if nid != INTERNATIONAL_ONLY)
        if INTERNATIONAL_ONLY in own:
            own_words, reach = "no national network", plural(nets, "national network")
        else:
            own_words = and_join([net.net_name(x) for x in groups[i]])
            reach = f"{plural(nets, 'national network')} besides its own"
            if INTERNATIONAL_ONLY in foreign:
                reach += " and international-only cities"
        text = f"{net.names[i]} ({own_words}) has {and_join(parts)}: its ties reach {reach}"
        bridger = NetworkBridger(
            g.city_ids[i],
            net.names[i],
            groups[i],
            tuple(nid for nid, _ in ranked),
            cross,
            (Reason("network_bridge", text),),
        )
        found.append((len(foreign), cross, bridger))
    found.sort(key=lambda t: (-t[0], -t[1], t[2].city_id))
    return tuple(b for _, _, b in found)
