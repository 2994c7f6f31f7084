"""Outcomes at the end of a cluster's period, through the API and the CLI: who may rate
what, what is refused and why, and what the partner ranker learns from a cycle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from api.keys import create_key
from api.settings import Settings
from graph.open import open_store
from ingest.export import export_csv
from ingest.load import ingest_path
from matching.partners.interests import outcome_labels
from tests.helpers import tiny, wait_ready, write_csvs

runner = CliRunner()
Served = tuple[TestClient, dict[str, dict[str, str]], str, Path]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("outcomes")
    data = tiny()
    data["clusters"] = [
        {
            "id": "cl-1",
            "name": "Anti-rumours South",
            "kind": "thematic",
            "members": "pt-amadora;it-messina;es-getxo",
            "period": "2023-2025",
        }
    ]
    data["assignments"] = [{"expert_id": "exp-1", "cluster_id": "cl-1", "score": 0.8}]
    url = f"sqlite:///{tmp}/net.db"
    store = open_store(url)
    try:
        assert ingest_path(write_csvs(tmp / "ds", data), store).ok
        keys = {
            "admin": create_key(store, "admin")[0],
            "analyst": create_key(store, "analyst")[0],
            "messina": create_key(store, "coordinator", city_id="it-messina")[0],
            "klaksvik": create_key(store, "coordinator", city_id="fo-klaksvik")[0],
        }
    finally:
        store.close()
    auth = {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}
    with TestClient(create_app(Settings(store=url)), raise_server_exceptions=False) as client:
        wait_ready(client)
        yield client, auth, url, tmp


def test_the_secretariat_and_member_cities_rate_a_cluster_and_its_expert(served: Served) -> None:
    client, auth, url, tmp = served
    post = "/v1/clusters/cl-1/outcomes"
    r = client.post(
        post,
        json={"rating": 4, "on": "2025-12-15", "note": "two joint projects"},
        headers=auth["admin"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "cl-1:-:secretariat" and r.json()["city_id"] is None
    # a coordinator rates as its city, its expert's visit too
    r = client.post(post, json={"rating": 2, "expert_id": "exp-1"}, headers=auth["messina"])
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "cl-1:exp-1:it-messina"
    # rating again replaces the rating
    r = client.post(
        post,
        json={"rating": 5, "on": "2025-12-20", "note": "two joint projects, a third planned"},
        headers=auth["admin"],
    )
    assert r.json()["rating"] == 5 and r.json()["note"] == "two joint projects, a third planned"
    ratings = client.get("/v1/outcomes", headers=auth["analyst"]).json()["items"]
    assert sorted((o["id"], o["rating"]) for o in ratings) == [
        ("cl-1:-:secretariat", 5),
        ("cl-1:exp-1:it-messina", 2),
    ]

    # refused, each with its reason
    r = client.post(post, json={"rating": 3}, headers=auth["klaksvik"])
    assert r.status_code == 403 and "not a member" in r.json()["detail"]
    r = client.post(post, json={"rating": 3, "city_id": "fo-klaksvik"}, headers=auth["admin"])
    assert r.status_code == 409 and "not a member" in r.json()["detail"]
    r = client.post(post, json={"rating": 3, "city_id": "es-getxo"}, headers=auth["messina"])
    assert r.status_code == 403
    r = client.post(post, json={"rating": 3}, headers=auth["analyst"])
    assert r.status_code == 403
    r = client.post(post, json={"rating": 3, "expert_id": "exp-2"}, headers=auth["admin"])
    assert r.status_code == 409 and "was not assigned" in r.json()["detail"]
    r = client.post("/v1/clusters/cl-9/outcomes", json={"rating": 3}, headers=auth["admin"])
    assert r.status_code == 404
    r = client.post(post, json={"rating": 6}, headers=auth["admin"])
    assert r.status_code == 422

    # the CLI records and lists them; an export carries them (a backup keeps the cycle)
    out = runner.invoke(
        cli,
        [
            "outcomes",
            "record",
            "cl-1",
            "--rating",
            "4",
            "--city",
            "pt-amadora",
            "--on",
            "2025-12-01",
            "--store",
            url,
        ],
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["outcomes", "list", "--cluster", "cl-1", "--store", url])
    assert (
        "Anti-rumours South: 5/5 from the secretariat on 2025-12-20 (two joint projects, a third planned)"
        in out.stdout
    )
    assert "Anti-rumours South: 4/5 from Amadora on 2025-12-01" in out.stdout
    bad = runner.invoke(
        cli, ["outcomes", "record", "cl-1", "--rating", "4", "--on", "2025-13-01", "--store", url]
    )
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    store = open_store(url)
    try:
        export_csv(store.snapshot(), tmp / "backup")
    finally:
        store.close()
    exported = (tmp / "backup" / "outcomes.csv").read_text(encoding="utf-8")
    assert "cl-1:exp-1:it-messina" in exported and "two joint projects" in exported
    listed = runner.invoke(cli, ["outcomes", "list", "--json", "--store", url])
    assert len(json.loads(listed.stdout)) == 3


def test_what_a_cycle_teaches_the_partner_ranker() -> None:
    steps = [
        ("a", "b", "introduced", "2025-01-10", None),
        ("a", "b", "partnership_signed", "2025-09-01", None),
        ("c", "d", "introduced", "2025-01-10", None),
        ("c", "d", "no_further_contact", "2025-08-01", None),
        ("e", "f", "introduced", "2025-02-01", None),  # still open: says nothing yet
    ]
    rated = [(("a", "c", "e"), 5), (("b", "d"), 1), (("e", "f"), 3)]
    assert sorted(outcome_labels(steps, rated)) == [
        ("a", "b", True),
        ("a", "c", True),
        ("a", "e", True),
        ("b", "d", False),
        ("c", "d", False),
        ("c", "e", True),
    ]
