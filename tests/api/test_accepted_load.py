"""The next cycle's proposal counts the clusters a city already runs: accepted clusters of
the running period take their place in each member's allowance (API and CLI)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from api.keys import create_key
from api.settings import Settings
from graph.open import open_store
from ingest.load import ingest_path
from tests.helpers import wait_ready

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_accepted_clusters_count_toward_the_next_proposal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cycle.db"
    store = open_store(url)
    try:
        assert ingest_path(SAMPLE, store).ok
        admin = {"Authorization": f"Bearer {create_key(store, 'admin')[0]}"}
    finally:
        store.close()
    body = {"themes": ["education"], "max_per_city": 1}
    with TestClient(create_app(Settings(store=url)), raise_server_exceptions=False) as client:
        wait_ready(client)
        first = client.post("/v1/clusters/proposals", json=body, headers=admin).json()
        assert first["clusters"] and not first.get("limited")
        year = __import__("datetime").date.today().year
        accepted = client.post(
            f"/v1/clusters/proposals/{first['id']}/accept",
            json={"period": f"{year}-{year + 2}"},
            headers=admin,
        )
        assert accepted.status_code == 200, accepted.text
        placed = {m for c in first["clusters"] for m in c["members"]}

        # with two, each placed city has one more, and the proposal says so
        answer = client.post(
            "/v1/clusters/proposals", json={**body, "max_per_city": 2}, headers=admin
        )
        assert answer.status_code == 201, answer.text
        limited = answer.json()["limited"]
        assert set(limited) == placed
        some = sorted(placed)[0]
        assert limited[some].startswith("already in 1 accepted cluster (")
        assert limited[some].endswith("at most 1 more")

    out = CliRunner().invoke(
        cli,
        [
            "clusters",
            "propose",
            "--kind",
            "thematic",
            "--themes",
            "education",
            "--max-per-city",
            "2",
            "--store",
            url,
        ],
    )
    assert out.exit_code == 0, out.output
    assert f"{some}: already in 1 accepted cluster" in out.stdout
