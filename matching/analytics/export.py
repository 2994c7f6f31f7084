"""The network as nodes and edges: for a view (JSON), and as GraphML, GEXF and CSV files.

``network_view(snapshot, ...)`` builds a ``GraphView`` (plain frozen data): one node per
city (name, country, lat, lon, membership, national networks, community, degree),
optionally one per theme and per national network, and one edge per tied city pair
(partnership kinds, earliest year, weight), plus city->theme (priority) and
city->network edges when those nodes are included. Node ids carry their kind
(``city:pt-lisbon``, ``theme:roma``, ``network:reci``) so that a theme and a city can
never collide; ``ref`` holds the plain row id.

The writers come from networkx and the csv module: nothing is escaped by hand. Output is
deterministic: nodes and edges are sorted, GraphML and GEXF are written with the standard
library's ElementTree whether or not lxml is installed, and the GEXF ``lastmodifieddate``
(today's date, in networkx) is left out unless a date is passed. The only change made to
text is for XML: characters XML 1.0 cannot carry at all (control characters other than
tab, newline and carriage return) become U+FFFD, since no escaping could represent them.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import networkx as nx
from networkx.readwrite.gexf import GEXFWriter

from graph.csv_format import cell_text, csv_writer
from graph.model import LIST_SEPARATOR
from graph.snapshot import NetworkSnapshot
from matching.kernel.ties import tie_graph

NODE_COLUMNS = (
    "id",
    "kind",
    "ref",
    "label",
    "country",
    "lat",
    "lon",
    "membership",
    "networks",
    "joined",
    "community",
    "degree",
)
EDGE_COLUMNS = ("source", "target", "rel", "kind", "since", "weight", "priority")

_KIND_ORDER = {"city": 0, "network": 1, "theme": 2}
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class ViewNode:
    id: str  # "<kind>:<ref>"
    kind: str  # "city" | "network" | "theme"
    ref: str  # the row id
    label: str
    country: str | None = None
    lat: float | None = None
    lon: float | None = None
    membership: str | None = None
    networks: tuple[str, ...] = ()
    joined: int | None = None
    community: int | None = None
    degree: int | None = None  # partner cities (city nodes only)


@dataclass(frozen=True, slots=True)
class ViewEdge:
    source: str
    target: str
    rel: str  # "PARTNER_OF" | "PRIORITISES" | "IN_NETWORK"
    kind: str | None = None  # partnership kinds, ";"-joined when a pair has several
    since: int | None = None  # earliest known year of the pair's partnerships
    weight: float = 1.0
    priority: int | None = None  # PRIORITISES edges


@dataclass(frozen=True, slots=True)
class GraphView:
    revision: int
    nodes: tuple[ViewNode, ...]  # sorted: cities, networks, themes; each by ref
    edges: tuple[ViewEdge, ...]  # sorted by (rel, source, target)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def network_view(
    snapshot: NetworkSnapshot,
    *,
    community_of: Mapping[str, int] | None = None,
    themes: bool = False,
    networks: bool = False,
    min_priority: int = 1,
    kind_weights: Mapping[str, float] | None = None,
) -> GraphView:
    """The network as nodes and edges.

    ``community_of``: city id -> community id (e.g. ``stats.communities.community_of()``).
    ``themes`` / ``networks``: add theme nodes with city->theme edges for priorities of at
    least ``min_priority``, and national-network nodes with city->network edges.
    """
    g = tie_graph(snapshot, kind_weights)
    communities = community_of or {}
    nodes = [
        ViewNode(
            id=f"city:{c.id}",
            kind="city",
            ref=c.id,
            label=c.name,
            country=c.country,
            lat=float(c.lat),
            lon=float(c.lon),
            membership=c.membership,
            networks=tuple(c.networks),
            joined=c.joined,
            community=communities.get(c.id),
            degree=int(g.degree[i]),
        )
        for i, c in enumerate(snapshot.cities)
    ]
    edges = [
        ViewEdge(
            source=f"city:{g.city_ids[a]}",
            target=f"city:{g.city_ids[b]}",
            rel="PARTNER_OF",
            kind=LIST_SEPARATOR.join(g.kinds[k]),
            since=g.since[k],
            weight=float(g.weights[k]),
        )
        for k, (a, b) in enumerate(g.edges.tolist())
    ]
    if networks:
        nodes += [
            ViewNode(
                id=f"network:{n.id}", kind="network", ref=n.id, label=n.name, country=n.country
            )
            for n in snapshot.networks
        ]
        edges += [
            ViewEdge(source=f"city:{c.id}", target=f"network:{nid}", rel="IN_NETWORK")
            for c in snapshot.cities
            for nid in c.networks
        ]
    if themes:
        nodes += [
            ViewNode(id=f"theme:{t.id}", kind="theme", ref=t.id, label=t.name)
            for t in snapshot.themes
        ]
        edges += [
            ViewEdge(
                source=f"city:{ct.city_id}",
                target=f"theme:{ct.theme_id}",
                rel="PRIORITISES",
                priority=ct.priority,
            )
            for ct in snapshot.city_themes
            if ct.priority >= min_priority
        ]
    nodes.sort(key=lambda n: (_KIND_ORDER[n.kind], n.ref))
    edges.sort(key=lambda e: (e.rel, e.source, e.target))
    return GraphView(snapshot.revision, tuple(nodes), tuple(edges))


# --- networkx, GraphML, GEXF ------------------------------------------------------------------


def _attrs(obj: ViewNode | ViewEdge, skip: tuple[str, ...], xml: bool) -> dict[str, Any]:
    """Non-empty attributes, lists joined with ";" (GraphML and GEXF take scalars only)."""
    out: dict[str, Any] = {}
    for key, value in asdict(obj).items():
        if key in skip or value is None or value == ():
            continue
        if isinstance(value, tuple):
            value = LIST_SEPARATOR.join(value)
        if xml and isinstance(value, str):
            value = _xml_text(value)
        out[key] = value
    return out


def to_networkx(view: GraphView, *, xml_safe: bool = False) -> nx.Graph:
    """An undirected ``nx.Graph``: node keys are the view's node ids, attributes the
    non-empty fields (lists joined with ";"); ``xml_safe`` replaces characters XML 1.0
    cannot carry with U+FFFD."""
    graph = nx.Graph(revision=view.revision)
    for node in view.nodes:
        graph.add_node(
            _xml_text(node.id) if xml_safe else node.id, **_attrs(node, ("id",), xml_safe)
        )
    for edge in view.edges:
        source, target = edge.source, edge.target
        if xml_safe:
            source, target = _xml_text(source), _xml_text(target)
        graph.add_edge(source, target, **_attrs(edge, ("source", "target"), xml_safe))
    return graph


def _xml_text(value: str) -> str:
    return _XML_ILLEGAL.sub("\ufffd", value)


def graphml_bytes(view: GraphView) -> bytes:
    """GraphML (UTF-8), written by networkx with ElementTree: the same bytes for the same view."""
    buf = io.BytesIO()
    nx.write_graphml_xml(to_networkx(view, xml_safe=True), buf, encoding="utf-8")
    return buf.getvalue()


def gexf_bytes(view: GraphView, *, modified: dt.date | None = None) -> bytes:
    """GEXF 1.2 (UTF-8) by networkx's writer; ``lastmodifieddate`` only when ``modified`` is given."""
    writer = GEXFWriter(encoding="utf-8", prettyprint=True, version="1.2draft")
    meta = writer.xml.find("meta")
    if meta is not None:
        if modified is None:
            meta.attrib.pop("lastmodifieddate", None)
        else:
            meta.set("lastmodifieddate", modified.isoformat())
    writer.add_graph(to_networkx(view, xml_safe=True))
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def write_graphml(view: GraphView, path: Path) -> Path:
    path.write_bytes(graphml_bytes(view))
    return path


def write_gexf(view: GraphView, path: Path, *, modified: dt.date | None = None) -> Path:
    path.write_bytes(gexf_bytes(view, modified=modified))
    return path


# --- CSV --------------------------------------------------------------------------------------


def _table(columns: tuple[str, ...], rows: tuple[ViewNode, ...] | tuple[ViewEdge, ...]) -> str:
    buf = io.StringIO()
    out = csv_writer(buf)
    out.writerow(columns)
    for row in rows:
        out.writerow([cell_text(getattr(row, c)) for c in columns])
    return buf.getvalue()


def csv_texts(view: GraphView) -> dict[str, str]:
    """``{"nodes.csv": ..., "edges.csv": ...}``, written by the csv module (lists joined with ";")."""
    return {
        "nodes.csv": _table(NODE_COLUMNS, view.nodes),
        "edges.csv": _table(EDGE_COLUMNS, view.edges),
    }


def write_csv(view: GraphView, folder: Path) -> dict[str, int]:
    """Write nodes.csv and edges.csv into ``folder``; return the rows written per file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in csv_texts(view).items():
        (folder / name).write_text(text, encoding="utf-8", newline="")
    return {"nodes.csv": len(view.nodes), "edges.csv": len(view.edges)}
