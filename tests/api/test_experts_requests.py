"""Expert assignment as a planner asks for it, through the API and the CLI, on the sample:
the same-country rule per request, declared conflicts, fixed pairs, names, saving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from api.keys import create_key
from api.settings import Settings
from graph.open import open_store
from ingest.load import ingest_path
from tests.conftest import SAMPLE

runner = CliRunner()


@dataclass
class Net:
    client: TestClient
    admin: dict[str, str]
    url: str
    clusters: list[dict[str, Any]]  # accepted
    experts: dict[str, dict[str, Any]]
    cities: dict[str, dict[str, Any]]

    def assign(self, **body: Any) -> dict[str, Any]:
        r = self.client.post("/v1/experts/assignments", json=body, headers=self.admin)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def all(self, path: str) -> list[dict[str, Any]]:
        r = self.client.get(path, params={"limit": 500}, headers=self.admin)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    url = f"sqlite:///{tmp_path_factory.mktemp('experts') / 'x.db'}"
    store = open_store(url)
    try:
        assert ingest_path(SAMPLE, store).ok
        admin = {"Authorization": f"Bearer {create_key(store, 'admin')[0]}"}
    finally:
        store.close()
    # the server's default keeps the same-country rule off: requests turn it on
    with TestClient(create_app(Settings(store=url)), raise_server_exceptions=False) as c:
        p = c.post("/v1/clusters/proposals", json={"themes": ["education"]}, headers=admin)
        assert p.status_code == 201, p.text
        a = c.post(f"/v1/clusters/proposals/{p.json()['id']}/accept", json={}, headers=admin)
        assert a.status_code == 200, a.text
        net = Net(c, admin, url, a.json()["accepted"], {}, {})
        net.experts = {e["id"]: e for e in net.all("/v1/experts")}
        net.cities = {x["id"]: x for x in net.all("/v1/cities")}
        yield net


def test_every_answer_names_experts_and_clusters(net: Net) -> None:
    out = net.assign()
    names = {c["id"]: c["name"] for c in net.clusters}
    assert out["pairs"] and out["conflict_same_country"] is False
    for pair in out["pairs"]:
        assert pair["expert_name"] == net.experts[pair["expert_id"]]["name"]
        assert pair["cluster_name"] == names[pair["cluster_id"]]
        travel = [r["text"] for r in pair["reasons"] if r["kind"] == "distance"]
        assert travel and "member cit" in travel[0] and "centre" not in travel[0]
    assert all(load["name"] == net.experts[load["expert_id"]]["name"] for load in out["loads"])


def test_the_same_country_rule_is_chosen_per_request(net: Net) -> None:
    on = net.assign(conflict_same_country=True)
    assert on["conflict_same_country"] is True
    countries = {c["id"]: {net.cities[m]["country"] for m in c["members"]} for c in net.clusters}
    for pair in on["pairs"]:
        assert net.experts[pair["expert_id"]]["country"] not in countries[pair["cluster_id"]]
    off = net.assign(conflict_same_country=False)
    assert any(
        net.experts[p["expert_id"]]["country"] in countries[p["cluster_id"]] for p in off["pairs"]
    ), "the sample should have a same-country pair for the rule to rule out"


def test_a_declared_conflict_moves_the_expert_and_says_why(net: Net) -> None:
    pair = net.assign()["pairs"][0]
    cluster = next(c for c in net.clusters if c["id"] == pair["cluster_id"])
    city = cluster["members"][0]
    out = net.assign(
        conflicts=[
            {"expert_id": pair["expert_id"], "city_id": city, "reason": "advised it last cycle"}
        ]
    )
    assert (pair["expert_id"], pair["cluster_id"]) not in {
        (p["expert_id"], p["cluster_id"]) for p in out["pairs"]
    }
    assert {
        "expert_id": pair["expert_id"],
        "expert_name": pair["expert_name"],
        "cluster_id": cluster["id"],
        "cluster_name": cluster["name"],
        "reason": f"{pair['expert_name']} is not assigned to cluster {cluster['name']}: "
        f"conflict with {net.cities[city]['name']} (advised it last cycle)",
        "source": "request",
    } in out["excluded"]

    bad = net.client.post(
        "/v1/experts/assignments",
        json={"conflicts": [{"expert_id": "nobody", "city_id": city}]},
        headers=net.admin,
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert "conflicts name no expert with id 'nobody'" in bad.json()["detail"]
    assert "csv" not in bad.json()["detail"].lower()


def test_fixed_pairs_are_kept_or_refused_with_a_reason(net: Net) -> None:
    plain = net.assign()
    cluster = net.clusters[0]
    chosen = {p["expert_id"] for p in plain["pairs"] if p["cluster_id"] == cluster["id"]}
    lang = cluster["working_languages"][0]
    other = next(
        e for e in net.experts.values() if e["id"] not in chosen and lang in e["languages"]
    )
    out = net.assign(
        fixed=[
            {"expert_id": other["id"], "cluster_id": cluster["id"]},
            {"expert_id": "nobody", "cluster_id": cluster["id"]},
        ]
    )
    kept, refused = out["fixed"]
    assert (
        kept["honoured"] and kept["reason"] == f"{other['name']} serves {cluster['name']}, as fixed"
    )
    assert not refused["honoured"] and "there is no expert with id 'nobody'" in refused["reason"]
    (pair,) = [p for p in out["pairs"] if p["cluster_id"] == cluster["id"]]
    assert pair["expert_id"] == other["id"] and pair["fixed"] is True
    assert pair["reasons"][0]["text"] == "fixed by the planner"
    assert out["objective"] <= plain["objective"] + 1e-9  # a constraint never improves the optimum


def test_the_cli_takes_the_same_options_and_saves(net: Net, tmp_path: Path) -> None:
    cluster = net.clusters[0]
    pair = next(p for p in net.assign()["pairs"] if p["cluster_id"] == cluster["id"])
    city = cluster["members"][-1]
    result = runner.invoke(
        cli,
        [
            "experts",
            "assign",
            "--clusters",
            cluster["id"],
            "--no-same-country",
            "--conflict",
            f"{pair['expert_id']}:{city}:advised it last cycle",
            "--store",
            net.url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "same-country rule off" in result.stdout
    assert cluster["name"] in result.stdout
    assert (
        f"{pair['expert_name']} is not assigned to cluster {cluster['name']}: conflict with "
        f"{net.cities[city]['name']} (advised it last cycle)"
    ) in " ".join(result.stdout.split())

    conflicts = tmp_path / "conflicts.csv"
    conflicts.write_text(f"expert_id,city_id,reason\n{pair['expert_id']},{city},family\n")
    saved = runner.invoke(
        cli,
        [
            "experts",
            "assign",
            "--clusters",
            cluster["id"],
            "--same-country",
            "--conflicts",
            str(conflicts),
            "--fix",
            f"nobody:{cluster['id']}",
            "--save",
            "--json",
            "--store",
            net.url,
        ],
    )
    assert saved.exit_code == 0, saved.output
    doc = json.loads(saved.stdout)
    assert doc["conflict_same_country"] is True and doc["saved"] == len(doc["pairs"]) >= 1
    assert doc["excluded"][0]["reason"].endswith("(family)")
    assert not doc["fixed"][0]["honoured"]
    assert all(p["expert_name"] and p["cluster_name"] == cluster["name"] for p in doc["pairs"])
    stored = {
        (a["expert_id"], a["cluster_id"])
        for a in net.all("/v1/assignments")
        if a["cluster_id"] == cluster["id"]
    }
    assert stored == {(p["expert_id"], p["cluster_id"]) for p in doc["pairs"]}

    wrong = runner.invoke(cli, ["experts", "assign", "--fix", "no-colon", "--store", net.url])
    assert wrong.exit_code == 2 and "--fix takes EXPERT:CLUSTER" in wrong.stderr


def test_saving_through_the_api_shows_in_the_list(net: Net) -> None:
    cluster = net.clusters[-1]
    out = net.assign(cluster_ids=[cluster["id"]], save=True)
    assert out["saved"] == len(out["pairs"]) >= 1
    stored = {
        (a["expert_id"], a["cluster_id"])
        for a in net.all("/v1/assignments")
        if a["cluster_id"] == cluster["id"]
    }
    assert stored == {(p["expert_id"], p["cluster_id"]) for p in out["pairs"]}
