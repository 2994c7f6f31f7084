"""The first load through Neo4j's bulk importer, against the real engine.

``iccmatch neo4j-import DATA --out FOLDER --home HOME`` checks DATA as ``ingest`` does,
writes the importer's CSV files (``graph.neo4j_bulk``) and runs ``neo4j-admin database
import full`` through ``scripts/neo4j-local import``. The imported graph must be the one
``Neo4jStore.upsert`` writes for the same data: the same snapshot as an ingest, the same
nodes, relationships, properties and property types, and a store that later upserts
work on.

The data is ``data/sample`` plus rows of every kind the sample lacks (clusters,
assignments, interests, match steps, outcomes, suggestions), a theme with a city's id,
and text with quotes, commas, CR/LF line breaks, tabs, backslashes and non-ASCII
characters. One server serves the module: the tests run in file order, and the last
one wipes the imported graph to load the same data with ``upsert``.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import app
from graph.csv_format import csv_writer
from graph.errors import InvalidInput
from graph.model import Kind
from graph.neo4j_bulk import column_type, write_import
from graph.neo4j_store import Neo4jStore
from graph.sqlite_store import SqliteStore
from graph.store import GraphBatch
from ingest.load import ingest_path
from tests.conftest import NEO4J_LOCAL, SAMPLE, LocalNeo4j, _free_port, _started, need_neo4j_local

runner = CliRunner()

_WIPE = "MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"

NASTY = 'A "quoted" word, a comma;\r\nCRLF, a lone\rCR, a tab\t, a \\ and \\" — ünïcødé 🎉  '
EXTRA: dict[str, list[list[str]]] = {
    "themes.csv": [["au-ballarat", "A theme with a city's id", NASTY]],
    "cities.csv": [
        ["zz-bare", 'Bare "City", Ltd', "PT", "1e-07", "-179.99999999999997"]
        + [""] * 6
        + ["line one\nline two"]
    ],
    "clusters.csv": [
        [
            *("id", "name", "kind", "members", "theme_ids", "lead_city", "working_languages"),
            *("period", "revision", "seed", "params", "accepted_on"),
        ],
        [
            *("cl-1", "Rumours, cluster", "thematic", "au-ballarat;au-melton", "anti-rumours"),
            *("au-ballarat", "en", "2026", "3", "7", '{"min": 2, "note": "a, \\"b\\""}'),
            "2026-03-01",
        ],
        ["cl-2", "Bare", "geographic", "au-logan", "", "", "", "", "", "", "", ""],
    ],
    "assignments.csv": [
        ["expert_id", "cluster_id", "score", "reasons"],
        ["exp-001", "cl-1", "0.875", 'speaks "en",\nknows the theme'],
        ["exp-002", "cl-1", "1e300", ""],
    ],
    "partner_interests.csv": [
        ["city_id", "partner_id", "status", "note"],
        ["au-ballarat", "au-logan", "interested", "note with\r\nCRLF"],
        ["au-logan", "au-ballarat", "not_for_us", ""],
    ],
    "match_statuses.csv": [
        ["city_a", "city_b", "status", "on", "note"],
        ["au-ballarat", "au-logan", "introduced", "2026-01-02", ""],
        ["au-ballarat", "au-logan", "meeting_held", "2026-02-03", "met\rCR only"],
    ],
    "outcomes.csv": [
        ["id", "cluster_id", "rating", "on", "expert_id", "city_id", "note"],
        ["cl-1:-:secretariat", "cl-1", "4", "2026-06-01", "", "", NASTY],
        ["cl-1:exp-001:au-ballarat", "cl-1", "5", "2026-06-02", "exp-001", "au-ballarat", ""],
    ],
    "suggestions.csv": [
        ["city_id", "partner_id", "on", "rank"],
        ["au-ballarat", "au-logan", "2026-01-01", "1"],
        ["au-ballarat", "au-logan", "2026-02-01", "2"],
        ["au-logan", "au-melton", "2026-01-01", "3"],
    ],
}


def _dataset(folder: Path) -> Path:
    """``data/sample`` plus ``EXTRA``: rows appended to its files, new files for the rest."""
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("*.md"))
    for name, rows in EXTRA.items():
        path = folder / name
        appending = path.exists()
        with path.open("a" if appending else "w", encoding="utf-8", newline="") as fh:
            csv_writer(fh).writerows(rows)
    return folder


Tagged = tuple[Any, ...]


def _tag(value: Any) -> Any:
    """A property value with its type, so that 1 and 1.0 are told apart."""
    if isinstance(value, list):
        return ("list", tuple(_tag(v) for v in value))
    return (type(value).__name__, value)


def _props(props: dict[str, Any]) -> Tagged:
    # an empty list: upsert stores [], the importer cannot (graph/neo4j_bulk.py says why);
    # every reader takes a missing list for an empty one
    return tuple(sorted((k, _tag(v)) for k, v in props.items() if v != []))


def _graph(url: str) -> Counter[Tagged]:
    """Every node (labels, typed properties) and relationship (type, ends, typed
    properties) of the database, as a multiset."""
    store = Neo4jStore(url)
    try:
        with store._driver.session() as session:  # test-only statements
            nodes = [
                ("node", tuple(sorted(r["labels"])), _props(r["props"]))
                for r in session.run("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props")
            ]
            rels = [
                (
                    "rel",
                    r["type"],
                    (tuple(r["al"]), r["a"]),
                    (tuple(r["bl"]), r["b"]),
                    _props(r["props"]),
                )
                for r in session.run(
                    "MATCH (a)-[r]->(b) RETURN type(r) AS type, labels(a) AS al, "
                    "coalesce(a.id, a.name) AS a, labels(b) AS bl, coalesce(b.id, b.name) AS b, "
                    "properties(r) AS props"
                )
            ]
    finally:
        store.close()
    return Counter(nodes + rels)


def _constraints(url: str) -> list[str]:
    store = Neo4jStore(url)
    try:
        with store._driver.session() as session:
            return sorted(r["name"] for r in session.run("SHOW CONSTRAINTS YIELD name"))
    finally:
        store.close()


def test_column_types_follow_the_model() -> None:
    assert column_type(int) == "long" and column_type(float) == "double"
    assert column_type(tuple[str, ...]) == "string[]"
    with pytest.raises(TypeError):
        column_type(dict[str, int])


def test_text_cells_are_quoted_and_numbers_typed(tmp_path: Path) -> None:
    city = {"id": "a", "name": 'Say "hi", then\nleave', "country": "PT", "lat": 1, "lon": 2.5}
    files = write_import(GraphBatch({Kind.CITIES: [city]}), tmp_path / "out")
    assert files.multiline and "--multiline-fields=true" in files.arguments()
    text = (tmp_path / "out" / "nodes-City.csv").read_text(encoding="utf-8")
    assert '\n"a","Say ""hi"", then\nleave","PT",1.0,2.5,,,,,,,,City\n' in text
    with (tmp_path / "out" / "nodes-City.csv").open(encoding="utf-8", newline="") as fh:
        header, row = list(csv.reader(fh))
    assert header[:5] == [
        "id:ID(City)",
        "name:string",
        "country:string",
        "lat:double",
        "lon:double",
    ]
    assert row[:5] == ["a", 'Say "hi", then\nleave', "PT", "1.0", "2.5"]
    assert header[-1] == ":LABEL" and row[-1] == "City"


def test_a_batch_that_did_not_validate_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    city = {"id": "lisbon", "name": "Lisbon", "country": "PT", "lat": 38.7, "lon": -9.1}
    cases = {
        "names no row of themes in this batch": GraphBatch(
            {
                Kind.CITIES: [city],
                Kind.CITY_THEMES: [{"city_id": "lisbon", "theme_id": "t", "priority": 1}],
            }
        ),
        "is not a 64-bit integer": GraphBatch({Kind.CITIES: [{**city, "population": "many"}]}),
        "is not a finite number": GraphBatch({Kind.CITIES: [{**city, "lat": float("nan")}]}),
        "an id appears twice": GraphBatch({Kind.CITIES: [city, city]}),
        "is required": GraphBatch({Kind.CITIES: [{"id": "x", "name": "X"}]}),
        "the list separator": GraphBatch({Kind.CITIES: [{**city, "languages": ["en;pt"]}]}),
    }
    for message, batch in cases.items():
        with pytest.raises(InvalidInput, match=message):
            write_import(batch, tmp_path / "out")
        assert not (tmp_path / "out").exists()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.csv").write_text("x\n")
    with pytest.raises(InvalidInput, match="not an empty folder"):
        write_import(GraphBatch({Kind.CITIES: [city]}), tmp_path / "used")


def test_bad_data_is_reported_like_ingest_and_nothing_is_written(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("*.md"))
    lines = (data / "cities.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[2].startswith("au-logan,Logan,AU,")
    lines[2] = lines[2].replace(",AU,", ",XX,", 1)
    (data / "cities.csv").write_text("".join(lines), encoding="utf-8")
    with (data / "city_themes.csv").open("a", encoding="utf-8") as fh:
        fh.write("au-melton,no-such-theme,3\n")
    out, home = tmp_path / "import", tmp_path / "home"
    result = runner.invoke(app, ["neo4j-import", str(data), "--out", str(out), "--home", str(home)])
    assert result.exit_code == 1
    assert (
        "cities.csv:3 [country]: 'XX' is not an ISO 3166-1 alpha-2 country code (e.g. PT, IT, UA)"
        in result.stderr
    )
    assert "city_themes.csv:516 [theme_id]: 'no-such-theme' names no row of themes" in result.stderr
    assert "nothing was written" in result.stderr
    assert not out.exists() and not (home / "data").exists()


@dataclass
class Imported:
    server: LocalNeo4j
    data: Path
    out: Path
    cli_output: str
    graph: Counter[Tagged]  # the database as the import left it


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imported]:
    """DATA imported with ``iccmatch neo4j-import --home`` into a new home, then served."""
    need_neo4j_local()  # the import runs the same jars as the server
    root = tmp_path_factory.mktemp("bulk")
    data = _dataset(root / "data")
    home, out = root / "home", root / "import"
    result = runner.invoke(app, ["neo4j-import", str(data), "--out", str(out), "--home", str(home)])
    assert result.exit_code == 0, result.output
    server = _started(LocalNeo4j(home, _free_port()))
    try:
        yield Imported(server, data, out, result.stdout + result.stderr, _graph(server.url))
    finally:
        server.stop()


@pytest.mark.neo4j
@pytest.mark.slow
def test_the_import_gives_the_snapshot_an_ingest_gives(imported: Imported, tmp_path: Path) -> None:
    sqlite = SqliteStore(f"sqlite:///{tmp_path / 'ingested.db'}")
    neo4j = Neo4jStore(imported.server.url)
    try:
        report = ingest_path(imported.data, sqlite)
        assert report.ok and report.written, report.errors
        expected, got = sqlite.snapshot(), neo4j.snapshot()
    finally:
        sqlite.close()
        neo4j.close()
    assert got == expected  # every row of every kind, and the revision (1)
    assert got.revision == 1
    assert all(got.counts()[kind.value] for kind in Kind)  # the data has every kind
    assert any(t.id == "au-ballarat" for t in got.themes)  # an id shared by two labels
    assert "--multiline-fields=true" in imported.cli_output


@pytest.mark.neo4j
@pytest.mark.slow
def test_after_the_import_upserts_update_rows_and_move_the_revision(imported: Imported) -> None:
    url = imported.server.url
    assert _constraints(url) == []  # the importer makes none: the first write does
    store = Neo4jStore(url)
    try:
        assert store.cached_vectors("all-MiniLM-L6-v2", ["a-hash"]) == {}  # starts empty
        changed = GraphBatch(
            {
                Kind.CITIES: [{"id": "au-logan", "name": "Logan City"}],
                Kind.CITY_THEMES: [
                    {"city_id": "au-ballarat", "theme_id": "gender-equality", "priority": 5}
                ],
            }
        )
        report = store.upsert(changed)
        assert (report.created, report.updated, report.unchanged) == (0, 2, 0)
        assert report.revision == 2 and store.revision() == 2
        snap = store.snapshot()
        logan = next(c for c in snap.cities if c.id == "au-logan")
        assert logan.name == "Logan City" and logan.country == "AU"  # other columns kept
        link = next(
            t
            for t in snap.city_themes
            if (t.city_id, t.theme_id) == ("au-ballarat", "gender-equality")
        )
        assert link.priority == 5
        # the same data again: the imported rows (empty lists left out included) read as
        # equal to what the files say; only the two changed rows go back
        again = ingest_path(imported.data, store)
        assert (again.upsert.created, again.upsert.updated) == (0, 2), again.errors
        assert again.upsert.revision == 3
        store.cache_vectors("all-MiniLM-L6-v2", {"a-hash": b"\x00" * 8})
        assert store.cached_vectors("all-MiniLM-L6-v2", ["a-hash"]) == {"a-hash": b"\x00" * 8}
    finally:
        store.close()
    assert {"city_id", "theme_id", "meta_name", "embedding_key"} <= set(_constraints(url))


@pytest.mark.neo4j
@pytest.mark.slow
def test_an_import_into_a_home_whose_server_runs_is_refused(
    imported: Imported, tmp_path: Path
) -> None:
    home, out = imported.server.data, tmp_path / "import"
    result = runner.invoke(
        app, ["neo4j-import", str(imported.data), "--out", str(out), "--home", str(home)]
    )
    assert result.exit_code == 2
    assert f"the Neo4j server for {home} is running" in result.stderr
    assert "nothing was written" in result.stderr and not out.exists()
    direct = subprocess.run(
        [str(NEO4J_LOCAL), "import", "--data", str(home), "--", f"--nodes={out}/x.csv", "neo4j"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert direct.returncode == 1
    assert "is running" in direct.stderr and "needs it stopped" in direct.stderr


@pytest.mark.neo4j
@pytest.mark.slow
def test_the_imported_graph_is_the_one_upsert_writes(imported: Imported) -> None:
    """Last in the file: it replaces the imported graph with an upsert of the same data."""
    url = imported.server.url
    store = Neo4jStore(url)
    try:
        with store._driver.session() as session:
            session.run(_WIPE).consume()
        report = ingest_path(imported.data, store)
        assert report.ok and report.upsert.revision == 1
    finally:
        store.close()
    upserted = _graph(url)
    assert imported.graph == upserted
    labels = Counter(key[1] for key in imported.graph.elements() if key[0] == "node")
    assert labels[("IccmatchMeta",)] == 1
