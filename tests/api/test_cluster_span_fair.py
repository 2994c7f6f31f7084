"""The span of geographic clusters and the fair objective, through the API and the CLI, on
the real sample network (a SQLite store; the profiles are embedded once per module).

Spans are measured from the sample's own coordinates, not read from the proposal.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from api.keys import create_key
from api.settings import Settings, get_settings
from graph.open import open_store
from ingest.load import ingest_path
from matching.kernel.geometry import distance_matrix_km
from tests.conftest import SAMPLE

PLACES = {
    row["id"]: (float(row["lat"]), float(row["lon"]))
    for row in csv.DictReader((SAMPLE / "cities.csv").open(encoding="utf-8"))
}


def widest_km(proposal: dict[str, Any]) -> float:
    """The largest distance between two members of any cluster of the proposal."""
    widest = 0.0
    for c in proposal["clusters"]:
        lat = [PLACES[m][0] for m in c["members"]]
        lon = [PLACES[m][1] for m in c["members"]]
        widest = max(widest, float(distance_matrix_km(lat, lon, lat, lon).max()))
    return widest


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('span') / 'span.db'}"
    store = open_store(url)
    try:
        assert ingest_path(SAMPLE, store).ok
    finally:
        store.close()
    return url


@pytest.fixture(scope="module")
def admin(url: str) -> dict[str, str]:
    store = open_store(url)
    try:
        return {"Authorization": f"Bearer {create_key(store, 'admin')[0]}"}
    finally:
        store.close()


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store=url)), raise_server_exceptions=False) as c:
        yield c


def propose(c: TestClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    r = c.post("/v1/clusters/proposals", json=body, headers=admin)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_geographic_clusters_are_regions_by_default_and_far_cities_say_why(
    client: TestClient, admin: dict[str, str]
) -> None:
    p = propose(client, admin, kind="geographic")
    assert p["params"]["max_span_km"] == 1500.0 and p["metrics"]["max_span_km"] == 1500.0
    assert p["clusters"] and widest_km(p) <= 1500.0 + 1e-3
    status = {s["name"]: s for s in p["constraints"]}
    assert status["max_span"]["status"] == "satisfied"
    left = {u["city_id"]: u for u in p["unassigned"]}
    auckland = left["nz-auckland"]
    assert auckland["kind"] == "span"
    assert auckland["reason"] == "no other candidate within 1,500 km (max_span_km)"
    # the planner can lift the limit (0) and then far cities are clustered again, as before
    loose = propose(client, admin, kind="geographic", max_span_km=0)
    assert loose["params"]["max_span_km"] is None and "max_span_km" not in loose["metrics"]
    assert widest_km(loose) > 10_000
    assert "max_span" not in {s["name"] for s in loose["constraints"]}
    # or ask for another span
    tight = propose(client, admin, kind="geographic", max_span_km=800)
    assert tight["clusters"] and widest_km(tight) <= 800.0 + 1e-3
    assert len(tight["unassigned"]) >= len(p["unassigned"])


def test_thematic_clusters_have_no_span_unless_asked(
    client: TestClient, admin: dict[str, str]
) -> None:
    themes = ["education", "anti-rumours"]
    p = propose(client, admin, themes=themes)
    assert p["params"]["max_span_km"] is None and "max_span" not in {
        s["name"] for s in p["constraints"]
    }
    asked = propose(client, admin, themes=themes, max_span_km=2000)
    assert asked["metrics"]["max_span_km"] == 2000.0 and widest_km(asked) <= 2000.0 + 1e-3
    assert widest_km(p) > 2000.0  # so the span changed something


def test_the_default_span_is_a_setting_the_page_can_read(
    url: str, admin: dict[str, str], client: TestClient
) -> None:
    with TestClient(create_app(Settings(store=url, cluster_max_span_km=1000))) as c:
        d = c.get("/v1/clusters/proposals/defaults", headers=admin)
        assert d.status_code == 200
        assert d.json() == {"max_span_km": {"geographic": 1000.0, "thematic": None}}
        p = propose(c, admin, kind="geographic")
        assert p["metrics"]["max_span_km"] == 1000.0 and widest_km(p) <= 1000.0 + 1e-3
    r = client.post(
        "/v1/clusters/proposals", json={"kind": "geographic", "max_span_km": -5}, headers=admin
    )
    assert r.status_code == 422


@pytest.mark.parametrize("kind", ["geographic", "thematic"])
def test_fair_raises_the_worst_off_and_reports_its_price(
    client: TestClient, admin: dict[str, str], kind: str
) -> None:
    plain = propose(client, admin, kind=kind, seed=2)
    fair = propose(client, admin, kind=kind, seed=2, fair=True)
    assert fair["fair"] is True and plain["fair"] is False and fair["params"]["fair"] is True
    m = fair["metrics"]
    assert m["plain_objective"] == pytest.approx(plain["objective"], abs=1e-5)
    assert m["plain_worst_benefit"] == pytest.approx(plain["metrics"]["worst_benefit"], abs=1e-5)
    assert m["worst_benefit"] >= m["plain_worst_benefit"]
    assert m["worst_benefit"] > m["plain_worst_benefit"]  # on the sample it does lift someone
    assert m["price_of_fairness"] == pytest.approx(
        m["plain_objective"] - fair["objective"], abs=1e-5
    )
    assert all(s["status"] != "violated" for s in fair["constraints"])
    assert "fair" in fair["method"]


def test_the_cli_passes_the_span_and_fair(url: str) -> None:
    runner = CliRunner()
    args = ["clusters", "propose", "--kind", "geographic", "--store", url]
    result = runner.invoke(cli, [*args, "--max-span-km", "1200", "--fair", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["fair"] is True and doc["metrics"]["max_span_km"] == 1200.0
    assert widest_km(doc) <= 1200.0 + 1e-3
    assert doc["metrics"]["worst_benefit"] >= doc["metrics"]["plain_worst_benefit"]
    human = runner.invoke(cli, args)
    assert human.exit_code == 0, human.output
    default = get_settings().cluster_max_span_km
    assert f"no cluster spans more than {default:,.0f} km" in human.stdout
    assert "price of fairness" not in human.stdout
    fair = runner.invoke(cli, [*args, "--fair", "--max-span-km", "0"])
    assert fair.exit_code == 0, fair.output
    assert "price of fairness" in fair.stdout and "no cluster spans" not in fair.stdout
