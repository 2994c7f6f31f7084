"""Network analytics and graph export: invariants, known small graphs, the real sample."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import networkx as nx  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graph.errors import InvalidInput
from graph.model import (
    City,
    CityTheme,
    Cluster,
    Expert,
    ExpertTheme,
    Kind,
    Network,
    Partnership,
    Practice,
    Theme,
    from_props,
)
from graph.snapshot import NetworkSnapshot, build_snapshot
from matching.analytics import (
    INTERNATIONAL_ONLY,
    ClusterSpec,
    NetworkStats,
    network_stats,
)
from matching.analytics.export import (
    EDGE_COLUMNS,
    NODE_COLUMNS,
    csv_texts,
    gexf_bytes,
    graphml_bytes,
    network_view,
    write_csv,
    write_gexf,
    write_graphml,
)
from matching.kernel.ties import tie_graph
from tests.helpers import HOSTILE, batch_of, tiny, write_csvs

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

# --- building snapshots -----------------------------------------------------------------------


def city(
    cid: str,
    *,
    name: str | None = None,
    country: str = "IT",
    networks: Sequence[str] = (),
    joined: int | None = None,
) -> City:
    return City(
        id=cid,
        name=name or cid.upper(),
        country=country,
        lat=40.0,
        lon=10.0,
        membership="national" if networks else "international",
        networks=tuple(networks),
        joined=joined,
    )


def tie(a: str, b: str, kind: str = "project", since: int | None = None) -> Partnership:
    a, b = sorted((a, b))
    return Partnership(a, b, kind, since)  # type: ignore[arg-type]


def snapshot(
    cities: Iterable[City],
    ties: Iterable[tuple[str, str]] | Iterable[Partnership] = (),
    **rows: Iterable[object],
) -> NetworkSnapshot:
    parts = [t if isinstance(t, Partnership) else tie(*t) for t in ties]
    by_kind: dict[Kind, list[Any]] = {Kind.CITIES: list(cities), Kind.PARTNERSHIPS: parts}
    by_kind |= {Kind(k): list(v) for k, v in rows.items()}
    return build_snapshot(1, by_kind)


def graph_snapshot(n: int, edges: Iterable[tuple[int, int]]) -> NetworkSnapshot:
    return snapshot(
        [city(f"c{i:02d}") for i in range(n)], [(f"c{a:02d}", f"c{b:02d}") for a, b in edges]
    )


def path(n: int) -> NetworkSnapshot:
    return graph_snapshot(n, [(i, i + 1) for i in range(n - 1)])


def all_reasons_present(stats: NetworkStats) -> bool:
    flagged: list[Any] = [
        *stats.bridges,
        *stats.articulation_points,
        *stats.network_bridgers,
        *stats.isolated,
        *stats.peripheral,
        *stats.needs_buddy,
        *stats.themes.without_expert,
        *stats.themes.without_cluster,
        *stats.themes.without_practice,
        *stats.communities.communities,
        *(c for c in stats.clusters if c.closed),
    ]
    return all(item.reasons and all(r.text for r in item.reasons) for item in flagged)


@pytest.fixture(scope="module")
def sample() -> NetworkSnapshot:
    batch = batch_of(SAMPLE)
    return build_snapshot(
        1, {kind: [from_props(kind, props) for props in rows] for kind, rows in batch.rows.items()}
    )


@pytest.fixture(scope="module")
def sample_stats(sample: NetworkSnapshot) -> NetworkStats:
    return network_stats(sample, seed=7)


# --- cuts: bridges and articulation points ----------------------------------------------------


def test_a_path_has_every_tie_as_a_bridge_and_every_inner_city_as_articulation_point() -> None:
    stats = network_stats(path(4))
    assert {(b.city_a, b.city_b) for b in stats.bridges} == {
        ("c00", "c01"),
        ("c01", "c02"),
        ("c02", "c03"),
    }
    sides = {(b.city_a, b.city_b): (b.side_a, b.side_b) for b in stats.bridges}
    assert sides[("c00", "c01")] == (1, 3)
    assert sides[("c01", "c02")] == (2, 2)
    assert stats.bridges[0].city_a == "c01"  # the one cutting off the most comes first
    assert {p.city_id for p in stats.articulation_points} == {"c01", "c02"}
    assert all(p.pieces == (2, 1) and p.cut_off == 1 for p in stats.articulation_points)


def test_a_cycle_has_no_bridge_and_no_articulation_point() -> None:
    stats = network_stats(graph_snapshot(5, [(i, (i + 1) % 5) for i in range(5)]))
    assert stats.bridges == () and stats.articulation_points == ()
    assert stats.components.count == 1


def test_an_articulation_point_says_which_cities_hang_on_it() -> None:
    cities = [
        city("it-messina", name="Messina", networks=["cdd"]),
        *(city(f"it-{x}", name=x.title(), networks=["cdd"]) for x in ("palermo", "catania")),
        *(city(f"pt-{x}", name=x.title(), country="PT") for x in ("lisbon", "porto", "braga")),
    ]
    ties = [
        ("it-messina", "it-palermo"),
        ("it-messina", "it-catania"),
        ("it-palermo", "it-catania"),
        ("it-messina", "pt-lisbon"),
        ("pt-lisbon", "pt-porto"),
        ("pt-porto", "pt-braga"),
        ("pt-braga", "pt-lisbon"),
        ("pt-porto", "pt-lisbon"),
    ]
    nets = [Network("cdd", "Città del Dialogo", "IT")]
    stats = network_stats(snapshot(cities, ties, networks=nets))
    points = {p.city_id: p for p in stats.articulation_points}
    assert set(points) == {"it-messina", "pt-lisbon"}
    text = points["it-messina"].reasons[0].text
    assert "Messina is the only link between 2 cities" in text
    assert "Catania and Palermo; all in Città del Dialogo" in text
    assert [(b.city_a, b.city_b) for b in stats.bridges] == [("it-messina", "pt-lisbon")]
    assert "3 cities" in stats.bridges[0].reasons[0].text


edge_lists = st.integers(min_value=1, max_value=11).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda e: e[0] != e[1]),
            max_size=2 * n,
        ),
    )
)


@settings(max_examples=150, deadline=None)
@given(edge_lists)
def test_cuts_agree_with_networkx_and_cut_off_what_removal_cuts_off(
    case: tuple[int, list[tuple[int, int]]],
) -> None:
    n, edges = case
    snap = graph_snapshot(n, edges)
    stats = network_stats(snap, seed=1)
    g = nx.Graph()
    g.add_nodes_from(c.id for c in snap.cities)
    g.add_edges_from((p.city_a, p.city_b) for p in snap.partnerships)

    assert {(b.city_a, b.city_b) for b in stats.bridges} == {
        tuple(sorted(e)) for e in nx.bridges(g)
    }
    assert {p.city_id for p in stats.articulation_points} == set(nx.articulation_points(g))
    for b in stats.bridges:
        h = g.copy()
        h.remove_edge(b.city_a, b.city_b)
        assert b.side_a == len(nx.node_connected_component(h, b.city_a))
        assert b.side_b == len(nx.node_connected_component(h, b.city_b))
    for p in stats.articulation_points:
        h = g.copy()
        reach = nx.node_connected_component(g, p.city_id)
        h.remove_node(p.city_id)
        pieces = sorted(
            (len(c) for c in nx.connected_components(h.subgraph(reach - {p.city_id}))),
            reverse=True,
        )
        assert p.pieces == tuple(pieces)
        assert p.cut_off == sum(pieces[1:])

    # components, isolated cities and the community partition
    assert stats.components.count == nx.number_connected_components(g)
    assert sum(stats.components.sizes) == n
    assert {f.city_id for f in stats.isolated} == {c for c in g if g.degree(c) == 0}
    members = [cid for c in stats.communities.communities for cid in c.city_ids]
    assert len(members) == len(set(members))  # no city in two communities
    assert len(members) + stats.communities.singletons == n
    for c in stats.communities.communities:
        assert c.size == len(c.city_ids) >= 2
        assert nx.is_connected(g.subgraph(c.city_ids))  # Leiden communities are connected
    assert all_reasons_present(stats)


# --- components, isolation, periphery, newcomers ---------------------------------------------


def test_components_count_and_the_largest_one() -> None:
    # two triangles and an isolated city; equal sizes: the one with the smaller id is "largest"
    stats = network_stats(graph_snapshot(7, [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3)]))
    assert stats.components.count == 3
    assert stats.components.sizes == (3, 3, 1)
    assert stats.components.largest_city_ids == ("c00", "c01", "c02")
    assert [f.city_id for f in stats.isolated] == ["c06"]
    assert stats.isolated[0].reasons[0].kind == "isolated"
    # the other triangle is a separate group: peripheral, with a reason saying so
    separate = {f.city_id for f in stats.peripheral if f.reasons[0].kind == "separate_group"}
    assert separate == {"c03", "c04", "c05"}


def test_a_long_tail_is_peripheral_far_from_the_core() -> None:
    clique = [(a, b) for a in range(5) for b in range(a + 1, 5)]
    tail = [(4, 5), (5, 6), (6, 7), (7, 8)]
    stats = network_stats(graph_snapshot(9, clique + tail), far_hops=3)
    flags = {f.city_id: f for f in stats.peripheral}
    assert set(flags) == {"c07", "c08"}
    assert flags["c08"].core_distance == 4
    kinds = {r.kind for r in flags["c08"].reasons}
    assert kinds == {"single_tie", "far_from_core"}
    assert "4 ties away from the core" in " ".join(r.text for r in flags["c08"].reasons)


def test_newcomers_without_ties_need_a_buddy_and_get_candidates() -> None:
    cities = [
        city("a", networks=["reci"], joined=2010, country="ES"),
        city("b", networks=["reci"], joined=2012, country="ES"),
        city("c", networks=["reci"], joined=2023, country="ES"),  # newcomer, no tie
        city("d", joined=2024, country="ES"),  # newcomer, one tie
        city("e", joined=2015),  # old and isolated: not a newcomer
    ]
    snap = snapshot(cities, [("a", "b"), ("a", "d")])
    stats = network_stats(snap)
    assert stats.newcomer_since == 2022  # latest joined year 2024, last 3 years
    assert [f.city_id for f in stats.needs_buddy] == ["c"]
    assert stats.needs_buddy[0].suggested_buddies[0] == "a"  # same network, most ties
    assert "needs a buddy" in stats.needs_buddy[0].reasons[0].text
    looser = network_stats(snap, buddy_max_ties=1, as_of_year=2024, newcomer_years=1)
    assert [f.city_id for f in looser.needs_buddy] == ["d"]


def test_cities_tied_across_national_networks_are_bridgers() -> None:
    cities = [
        city("es-a", networks=["reci"]),
        city("es-b", networks=["reci"]),
        city("it-a", networks=["cdd"]),
        city("xx-intl"),
    ]
    stats = network_stats(
        snapshot(cities, [("es-a", "es-b"), ("es-a", "it-a"), ("it-a", "xx-intl")])
    )
    bridgers = {b.city_id: b for b in stats.network_bridgers}
    assert set(bridgers) == {"es-a", "it-a", "xx-intl"}  # es-b only ties into its own network
    assert set(bridgers["it-a"].networks_reached) == {"reci", INTERNATIONAL_ONLY}
    assert stats.network_bridgers[0].city_id == "it-a"  # reaches two groups besides its own
    assert bridgers["es-a"].cross_ties == 1


# --- centrality ---------------------------------------------------------------------------


def test_the_centre_of_a_star_tops_degree_and_betweenness() -> None:
    stats = network_stats(graph_snapshot(6, [(0, i) for i in range(1, 6)]), top=3)
    assert stats.top_degree[0].city_id == "c00" and stats.top_degree[0].value == 5
    assert stats.betweenness_method.startswith("exact")
    assert [c.city_id for c in stats.top_betweenness] == ["c00"]  # leaves lie on no path
    assert stats.top_betweenness[0].value == pytest.approx(1.0)
    assert len(stats.top_degree) == 3


def test_sampled_betweenness_is_seeded_and_close_to_exact() -> None:
    snap = graph_snapshot(40, [(i, i + 1) for i in range(39)] + [(0, 20)])
    exact = network_stats(snap, top=5)
    one = network_stats(snap, top=5, exact_betweenness_max=10, betweenness_samples=20, seed=3)
    two = network_stats(snap, top=5, exact_betweenness_max=10, betweenness_samples=20, seed=3)
    assert one.betweenness_method.startswith("estimated from 20 source cities")
    assert one.top_betweenness == two.top_betweenness
    assert exact.top_betweenness[0].city_id in {c.city_id for c in one.top_betweenness}


# --- communities --------------------------------------------------------------------------


def two_cliques(seed_networks: bool = True) -> NetworkSnapshot:
    left = [
        city(f"es-{i}", networks=["reci"] if seed_networks else (), country="ES") for i in range(5)
    ]
    right = [city(f"it-{i}", networks=["cdd"] if seed_networks else ()) for i in range(5)]
    ties = [
        (f"{p}-{a}", f"{p}-{b}") for p in ("es", "it") for a in range(5) for b in range(a + 1, 5)
    ]
    return snapshot([*left, *right, city("zz-alone")], [*ties, ("es-0", "it-0")])


def test_two_cliques_make_two_communities_that_match_their_networks() -> None:
    stats = network_stats(two_cliques(), seed=11).communities
    assert sorted(c.city_ids for c in stats.communities) == [
        tuple(f"es-{i}" for i in range(5)),
        tuple(f"it-{i}" for i in range(5)),
    ]
    assert stats.singletons == 1
    assert stats.ari_vs_networks == pytest.approx(1.0)
    assert stats.nmi_vs_networks == pytest.approx(1.0)
    assert stats.compared_with_networks == 10
    assert {c.dominant_network for c in stats.communities} == {"reci", "cdd"}
    assert all(c.network_share == 1.0 for c in stats.communities)
    assert stats.modularity > 0.3
    assert "zz-alone" not in stats.community_of()


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_communities_are_reproducible_with_the_same_seed(
    sample: NetworkSnapshot, seed: int
) -> None:
    one = network_stats(sample, seed=seed).communities
    two = network_stats(sample, seed=seed).communities
    assert one == two


def test_community_comparisons_are_within_their_ranges(sample_stats: NetworkStats) -> None:
    c = sample_stats.communities
    for value in (c.ari_vs_networks, c.ari_vs_countries):
        assert value is not None and -1.0 <= value <= 1.0
    for value in (c.nmi_vs_networks, c.nmi_vs_countries):
        assert value is not None and 0.0 <= value <= 1.0
    assert c.compared_with_networks <= c.compared_with_countries


# --- themes -------------------------------------------------------------------------------


def theme_snapshot() -> NetworkSnapshot:
    cities = [city(f"c{i}") for i in range(4)]
    themes = [
        Theme("roma", "Roma inclusion"),
        Theme("education", "Education"),
        Theme("sport", "Sport"),
    ]
    city_themes = [
        *(CityTheme(f"c{i}", "roma", 5) for i in range(3)),
        CityTheme("c3", "roma", 2),
        *(CityTheme(f"c{i}", "education", 4) for i in range(2)),
        CityTheme("c0", "sport", 3),
    ]
    experts = [Expert("e1", "Ana"), Expert("e2", "Ben")]
    expert_themes = [ExpertTheme("e1", "education", 4), ExpertTheme("e2", "roma", 2)]
    practices = [Practice("p1", "c0", "Schools together", ("education",))]
    return snapshot(
        cities,
        themes=themes,
        city_themes=city_themes,
        experts=experts,
        expert_themes=expert_themes,
        practices=practices,
    )


def test_themes_in_demand_without_an_expert_are_found_and_ranked_by_demand() -> None:
    stats = network_stats(theme_snapshot()).themes
    assert [t.theme_id for t in stats.without_expert] == ["roma", "sport"]
    roma = stats.without_expert[0]
    assert (roma.demand, roma.experts, roma.experts_any_level) == (3, 0, 1)
    assert "3 cities give it priority 4 or more" in roma.reasons[0].text
    assert "1 expert lists it at a lower level" in roma.reasons[0].text
    assert [t.theme_id for t in stats.without_practice] == ["roma", "sport"]
    assert stats.without_cluster == ()  # no cluster names a theme: nothing to compare with
    assert [t.theme_id for t in stats.coverage] == ["roma", "education", "sport"]


def test_themes_without_a_cluster_once_clusters_name_themes() -> None:
    snap = theme_snapshot()
    stats = network_stats(snap, [("k1", ["c0", "c1"], "education")]).themes
    assert [t.theme_id for t in stats.without_cluster] == ["roma"]  # sport has no demand
    assert network_stats(snap, [("k1", ["c0"], ["roma", "education"])]).themes.without_cluster == ()


# --- clusters at risk of being closed ---------------------------------------------------------


def cluster_snapshot() -> NetworkSnapshot:
    inside = [(a, b) for a in "abcd" for b in "abcd" if a < b]  # 6 ties inside
    return snapshot([city(x) for x in "abcdefg"], [*inside, ("a", "e"), ("f", "g"), ("e", "f")])


def test_a_cluster_with_few_outside_ties_is_flagged_closed() -> None:
    stats = network_stats(
        cluster_snapshot(),
        [("closed", ["a", "b", "c", "d"]), ("open", ["e", "f"], "sport"), ("ghost", ["zz"])],
    )
    closed, open_, ghost = stats.clusters
    assert (closed.inside_ties, closed.outside_ties, closed.outside_partners) == (6, 1, 1)
    assert closed.outside_share == pytest.approx(1 / 7)
    assert closed.closed
    assert closed.members_without_outside_ties == ("b", "c", "d")
    assert "1 of its members' 7 ties (14%) go outside" in closed.reasons[0].text
    assert {r.kind for r in closed.reasons} == {"closed_cluster", "members_without_outside_ties"}
    assert (open_.inside_ties, open_.outside_ties, open_.closed) == (1, 2, False)
    assert open_.theme_ids == ("sport",)
    assert ghost.size == 0 and ghost.unknown_members == ("zz",) and not ghost.closed


def test_clusters_come_as_tuples_mappings_specs_or_the_snapshots_accepted_clusters() -> None:
    members = ["a", "b", "c", "d"]
    forms = [
        ("k", members),
        {"id": "k", "members": members},
        {"cluster_id": "k", "city_ids": members},
        ClusterSpec("k", tuple(members)),
    ]
    results = {network_stats(cluster_snapshot(), [form]).clusters[0].outside_ties for form in forms}
    assert results == {1}
    stored = Cluster("k", "Four", "thematic", tuple(members), ("sport",))
    snap = snapshot(
        [city(x) for x in "abcdefg"],
        cluster_snapshot().partnerships,
        clusters=[stored],
        themes=[Theme("sport", "Sport")],
    )
    (found,) = network_stats(snap).clusters  # default: the snapshot's accepted clusters
    assert (found.cluster_id, found.theme_ids, found.closed) == ("k", ("sport",), True)
    assert network_stats(snap, ()).clusters == ()
    with pytest.raises(InvalidInput):
        network_stats(snap, [("k",)])


# --- contract: inputs, errors, JSON -----------------------------------------------------------


def test_inputs_are_not_mutated_and_results_are_plain_json(sample: NetworkSnapshot) -> None:
    clusters = [("k1", ["it-turin", "it-genoa", "pt-lisbon"])]
    before = (sample, json.dumps(clusters))
    stats = network_stats(sample, clusters, seed=5)
    assert (sample, json.dumps(clusters)) == before
    text = json.dumps(stats.to_dict(), allow_nan=False)
    assert json.loads(text)["cities"] == len(sample.cities)


def test_a_tie_to_an_unknown_city_is_an_error_that_says_what_to_do() -> None:
    snap = NetworkSnapshot(revision=1, cities=(city("a"),), partnerships=(tie("a", "b"),))
    with pytest.raises(InvalidInput, match="add the city or drop the partnership"):
        network_stats(snap)


def test_an_empty_network_gives_empty_stats() -> None:
    stats = network_stats(NetworkSnapshot(revision=0))
    assert (stats.cities, stats.ties, stats.components.count) == (0, 0, 0)
    assert stats.communities.communities == ()


def test_parallel_partnerships_make_one_weighted_tie() -> None:
    snap = snapshot(
        [city("a"), city("b")], [tie("a", "b", "project", 2019), tie("a", "b", "twinning", 2001)]
    )
    g = tie_graph(snap, {"twinning": 2.0, "project": 1.0})
    assert g.edges.tolist() == [[0, 1]]
    assert (g.kinds[0], g.since[0], float(g.weights[0])) == (("project", "twinning"), 2001, 3.0)


# --- the real sample --------------------------------------------------------------------------


def test_sample_network_stats_are_sensible(
    sample: NetworkSnapshot, sample_stats: NetworkStats
) -> None:
    s = sample_stats
    assert s.cities == len(sample.cities) > 100
    assert s.components.count >= 1
    assert s.components.largest_size == s.components.sizes[0] > 10
    assert s.isolated or s.peripheral
    assert s.bridges and s.articulation_points and s.network_bridgers
    assert s.top_degree and s.top_betweenness and s.communities.communities
    assert {"roma", "security-and-safety"} <= {t.theme_id for t in s.themes.without_expert}
    assert all_reasons_present(s)


# --- export -----------------------------------------------------------------------------------


HOSTILE_NAMES = [*HOSTILE, 'Quote " and & ampersand', "Bell\x07 rings"]


def hostile_snapshot(tmp_path: Path) -> NetworkSnapshot:
    """tiny() plus one city per hostile name, all tied to Amadora; hostile theme name too."""
    data = tiny()
    for i, name in enumerate(HOSTILE_NAMES):
        cid = f"fr-hostile-{i}"
        data["cities"].append(
            {"id": cid, "name": name, "country": "FR", "lat": 48.0, "lon": 2.0 + i}
        )
        data["partnerships"].append({"city_a": cid, "city_b": "pt-amadora", "kind": "visit"})
    data["themes"][0]["name"] = "<b>Anti</b> & 'rumours'"
    batch = batch_of(write_csvs(tmp_path / "in", data))
    snap = build_snapshot(
        3, {kind: [from_props(kind, props) for props in rows] for kind, rows in batch.rows.items()}
    )
    assert set(HOSTILE_NAMES) <= {c.name for c in snap.cities}
    return snap


def test_graphml_round_trip_keeps_hostile_names(tmp_path: Path) -> None:
    snap = hostile_snapshot(tmp_path)
    stats = network_stats(snap)
    view = network_view(
        snap, community_of=stats.communities.community_of(), themes=True, networks=True
    )
    back = nx.read_graphml(io.BytesIO(graphml_bytes(view)))
    assert set(back.nodes) == {n.id for n in view.nodes}
    assert back.number_of_edges() == len(view.edges)
    for c in snap.cities:
        attrs = back.nodes[f"city:{c.id}"]
        expected = c.name.replace("\x07", "\ufffd")  # XML 1.0 cannot carry a BEL at all
        assert attrs["label"] == expected
        assert (attrs["country"], attrs["lat"], attrs["degree"]) == (
            c.country,
            c.lat,
            view.nodes[[n.id for n in view.nodes].index(f"city:{c.id}")].degree,
        )
    assert back.nodes["theme:anti-rumours"]["label"] == "<b>Anti</b> & 'rumours'"
    edge = back.edges["city:it-messina", "city:pt-amadora"]
    assert (edge["rel"], edge["kind"], edge["since"]) == ("PARTNER_OF", "project", 2016)
    again = network_view(
        snap, community_of=stats.communities.community_of(), themes=True, networks=True
    )
    path = write_graphml(again, tmp_path / "net.graphml")
    assert path.read_bytes() == graphml_bytes(view)  # same data, same bytes


def test_gexf_round_trip_keeps_hostile_names_and_is_deterministic(tmp_path: Path) -> None:
    snap = hostile_snapshot(tmp_path)
    view = network_view(snap, themes=True)
    data = gexf_bytes(view)
    assert data == gexf_bytes(network_view(snap, themes=True))
    assert b"lastmodifieddate" not in data
    back = nx.read_gexf(io.BytesIO(data))
    assert {back.nodes[f"city:{c.id}"]["label"] for c in snap.cities} == {
        c.name.replace("\x07", "\ufffd") for c in snap.cities
    }
    assert back.number_of_edges() == len(view.edges)
    path = write_gexf(view, tmp_path / "net.gexf")
    assert path.read_bytes() == data


def test_csv_export_round_trips_through_the_csv_module(tmp_path: Path) -> None:
    snap = hostile_snapshot(tmp_path)
    view = network_view(snap, networks=True)
    texts = csv_texts(view)
    nodes = list(csv.DictReader(io.StringIO(texts["nodes.csv"])))
    edges = list(csv.DictReader(io.StringIO(texts["edges.csv"])))
    assert tuple(nodes[0]) == NODE_COLUMNS and tuple(edges[0]) == EDGE_COLUMNS
    assert [r["label"] for r in nodes] == [n.label for n in view.nodes]
    assert [r["id"] for r in nodes] == [n.id for n in view.nodes]
    assert {r["rel"] for r in edges} == {"PARTNER_OF", "IN_NETWORK"}
    assert write_csv(view, tmp_path / "out") == {"nodes.csv": len(nodes), "edges.csv": len(edges)}
    assert (tmp_path / "out" / "nodes.csv").read_text(encoding="utf-8") == texts["nodes.csv"]


def test_view_nodes_are_sorted_typed_and_theme_ids_never_collide_with_city_ids() -> None:
    snap = snapshot(
        [city("roma", name="Rome"), city("b")],
        [("roma", "b")],
        themes=[Theme("roma", "Roma inclusion")],
        city_themes=[CityTheme("b", "roma", 5), CityTheme("roma", "roma", 2)],
    )
    view = network_view(snap, themes=True, min_priority=3)
    assert [n.id for n in view.nodes] == ["city:b", "city:roma", "theme:roma"]
    assert [(e.source, e.target, e.rel) for e in view.edges] == [
        ("city:b", "city:roma", "PARTNER_OF"),
        ("city:b", "theme:roma", "PRIORITISES"),
    ]
    assert network_view(snap).nodes == view.nodes[:2]
    assert json.loads(json.dumps(view.to_dict()))["revision"] == 1
