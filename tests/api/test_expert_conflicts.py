"""Expert conflicts kept in the network: every assignment applies them (API, CLI), the
answer names expert and city with the stored reason and counts each source; written and
listed through the resource routes, deleted by pair, managed with ``iccmatch conflicts``.

A small network (tiny's five cities, two experts, two accepted clusters written as rows)
on both stores, so that removal of a relationship row is checked on Neo4j too.
"""

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
from tests.helpers import tiny, write_csvs

runner = CliRunner()
SOUTH = "Anti-rumours South"  # Amadora, Messina, Getxo
NORTH = "Education North"  # Klaksvík, Ioannina


def _network() -> dict[str, list[dict[str, Any]]]:
    data = tiny()
    data["experts"].append(
        {
            "id": "exp-2",
            "name": "Bruno Inventado",
            "languages": "en;it;pt",
            "country": "IT",
            "max_assignments": 2,
            "bio": "Trains school staff in intercultural education.",
        }
    )
    data["expert_themes"].append({"expert_id": "exp-2", "theme_id": "education", "level": 4})
    data["clusters"] = [
        {
            "id": "cl-south",
            "name": SOUTH,
            "kind": "thematic",
            "members": "pt-amadora;it-messina;es-getxo",
            "theme_ids": "anti-rumours",
            "lead_city": "pt-amadora",
            "working_languages": "en",
        },
        {
            "id": "cl-north",
            "name": NORTH,
            "kind": "thematic",
            "members": "fo-klaksvik;gr-ioannina",
            "theme_ids": "education",
            "lead_city": "gr-ioannina",
            "working_languages": "en",
        },
    ]
    return data


@dataclass
class Net:
    client: TestClient
    keys: dict[str, str]
    url: str

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def assign(self, **body: Any) -> dict[str, Any]:
        r = self.client.post("/v1/experts/assignments", json=body, headers=self.as_("admin"))
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def store_conflict(self, expert_id: str, city_id: str, reason: str) -> None:
        row = {"expert_id": expert_id, "city_id": city_id, "reason": reason}
        r = self.client.post(
            "/v1/expert-conflicts", json={"rows": [row]}, headers=self.as_("admin")
        )
        assert r.status_code == 200, r.text


@pytest.fixture
def net(store_url: str, tmp_path: Path) -> Iterator[Net]:
    store = open_store(store_url)
    try:
        assert ingest_path(write_csvs(tmp_path / "ds", _network()), store).ok
        keys = {
            role: create_key(store, role, city_id="it-messina" if role == "coordinator" else None)[
                0
            ]
            for role in ("admin", "coordinator", "analyst")
        }
    finally:
        store.close()
    with TestClient(create_app(Settings(store=store_url)), raise_server_exceptions=False) as c:
        yield Net(c, keys, store_url)


def _pairs(out: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["expert_id"], p["cluster_id"]) for p in out["pairs"]}


def test_a_stored_conflict_rules_a_pair_out_and_merges_with_the_request(net: Net) -> None:
    plain = net.assign()
    assert ("exp-1", "cl-south") in _pairs(plain), "Ana fits the anti-rumours cluster best"
    assert plain["excluded"] == [] and plain["conflict_counts"] == {"stored": 0, "request": 0}

    net.store_conflict("exp-1", "it-messina", "advised it last cycle")
    out = net.assign()
    assert ("exp-1", "cl-south") not in _pairs(out)
    assert out["conflict_counts"] == {"stored": 1, "request": 0}
    assert out["excluded"] == [
        {
            "expert_id": "exp-1",
            "expert_name": "Ana Exemplo",
            "cluster_id": "cl-south",
            "cluster_name": SOUTH,
            "reason": f"Ana Exemplo is not assigned to cluster {SOUTH}: "
            "conflict with Messina (advised it last cycle)",
            "source": "stored",
        }
    ]

    # the request's own conflicts are added to the stored ones, each said with its source
    both = net.assign(
        conflicts=[
            {"expert_id": "exp-2", "city_id": "gr-ioannina", "reason": "family"},
            {"expert_id": "exp-1", "city_id": "pt-amadora", "reason": "lives there"},
        ]
    )
    assert both["conflict_counts"] == {"stored": 1, "request": 2}
    by_pair = {(x["expert_id"], x["cluster_id"]): x for x in both["excluded"]}
    assert by_pair.keys() == {("exp-1", "cl-south"), ("exp-2", "cl-north")}
    assert by_pair[("exp-1", "cl-south")]["source"] == "stored and request"
    assert by_pair[("exp-1", "cl-south")]["reason"].endswith(
        "conflict with Messina (advised it last cycle); conflict with Amadora (lives there)"
    )
    assert by_pair[("exp-2", "cl-north")] == {
        "expert_id": "exp-2",
        "expert_name": "Bruno Inventado",
        "cluster_id": "cl-north",
        "cluster_name": NORTH,
        "reason": f"Bruno Inventado is not assigned to cluster {NORTH}: "
        "conflict with Ιωάννινα (family)",
        "source": "request",
    }
    assert not _pairs(both) & {("exp-1", "cl-south"), ("exp-2", "cl-north")}

    # a fixed pair against a stored conflict is refused with the stored reason
    fixed = net.assign(fixed=[{"expert_id": "exp-1", "cluster_id": "cl-south"}])
    (pin,) = fixed["fixed"]
    assert not pin["honoured"]
    assert pin["reason"] == (
        f"Ana Exemplo is not fixed to {SOUTH}: conflict with Messina (advised it last cycle)"
    )


def test_the_resource_routes_and_the_delete_by_pair_with_roles(net: Net) -> None:
    row = {"expert_id": "exp-2", "city_id": "es-getxo", "reason": "asked not to"}
    for role in ("coordinator", "analyst"):
        r = net.client.post("/v1/expert-conflicts", json={"rows": [row]}, headers=net.as_(role))
        assert r.status_code == 403, r.text
    assert net.client.post("/v1/expert-conflicts", json={"rows": [row]}).status_code == 401
    assert net.client.get("/v1/expert-conflicts", headers=net.as_("admin")).json()["total"] == 0

    r = net.client.post("/v1/expert-conflicts", json={"rows": [row]}, headers=net.as_("admin"))
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    listed = net.client.get("/v1/expert-conflicts", headers=net.as_("admin"))
    assert listed.status_code == 200 and listed.json()["items"] == [row]
    # read like every other resource by any key; written and deleted only by the secretariat
    for role in ("coordinator", "analyst"):
        got = net.client.get("/v1/expert-conflicts", headers=net.as_(role))
        assert got.status_code == 200 and got.json()["items"] == [row]
        gone = net.client.delete("/v1/expert-conflicts/exp-2/es-getxo", headers=net.as_(role))
        assert gone.status_code == 403, gone.text

    bad = net.client.post(
        "/v1/expert-conflicts",
        json={"rows": [{"expert_id": "nobody", "city_id": "es-getxo", "reason": "x"}]},
        headers=net.as_("admin"),
    )
    assert bad.status_code == 422 and "nobody" in bad.text
    no_reason = net.client.post(
        "/v1/expert-conflicts",
        json={"rows": [{"expert_id": "exp-1", "city_id": "es-getxo"}]},
        headers=net.as_("admin"),
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.text

    unknown = net.client.delete("/v1/expert-conflicts/nobody/es-getxo", headers=net.as_("admin"))
    assert unknown.status_code == 404 and "no expert with id 'nobody'" in unknown.json()["detail"]
    deleted = net.client.delete("/v1/expert-conflicts/exp-2/es-getxo", headers=net.as_("admin"))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"] == {
        "expert_id": "exp-2",
        "expert_name": "Bruno Inventado",
        "city_id": "es-getxo",
        "city_name": "Getxo",
    }
    assert net.client.get("/v1/expert-conflicts", headers=net.as_("admin")).json()["total"] == 0
    again = net.client.delete("/v1/expert-conflicts/exp-2/es-getxo", headers=net.as_("admin"))
    assert again.status_code == 404
    assert again.json()["detail"] == (
        "Bruno Inventado (exp-2) has no stored conflict with Getxo (es-getxo)"
    )
    assert net.assign()["conflict_counts"]["stored"] == 0, "deleted means no longer applied"


def test_the_conflicts_command_adds_lists_removes_and_experts_assign_honours_it(
    net: Net,
) -> None:
    def run(*args: str) -> Any:
        return runner.invoke(cli, [*args, "--store", net.url])

    added = run("conflicts", "add", "exp-1", "it-messina", "--reason", "advised it last cycle")
    assert added.exit_code == 0, added.output
    assert "stored: Ana Exemplo (exp-1) serves no cluster with Messina (it-messina)" in added.stdout
    reworded = run("conflicts", "add", "exp-1", "it-messina", "--reason", "works for the city")
    assert reworded.exit_code == 0 and reworded.stdout.startswith("updated:"), reworded.output
    assert run("conflicts", "add", "exp-2", "gr-ioannina", "--reason", "family").exit_code == 0

    listed = run("conflicts", "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.strip().splitlines()
    assert lines == [
        "Ana Exemplo (exp-1) serves no cluster with Messina (it-messina): works for the city",
        "Bruno Inventado (exp-2) serves no cluster with Ιωάννινα (gr-ioannina): family",
    ]
    one = run("conflicts", "list", "--city", "gr-ioannina", "--json")
    assert json.loads(one.stdout) == [
        {
            "expert_id": "exp-2",
            "expert_name": "Bruno Inventado",
            "city_id": "gr-ioannina",
            "city_name": "Ιωάννινα",
            "reason": "family",
        }
    ]

    assigned = run("experts", "assign", "--json")
    assert assigned.exit_code == 0, assigned.output
    doc = json.loads(assigned.stdout)
    assert doc["conflict_counts"] == {"stored": 2, "request": 0}
    assert not _pairs(doc) & {("exp-1", "cl-south"), ("exp-2", "cl-north")}
    assert {x["reason"] for x in doc["excluded"]} == {
        f"Ana Exemplo is not assigned to cluster {SOUTH}: conflict with Messina (works for the city)",
        f"Bruno Inventado is not assigned to cluster {NORTH}: conflict with Ιωάννινα (family)",
    }
    text = run("experts", "assign", "--conflict", "exp-2:pt-amadora:asked not to")
    assert text.exit_code == 0, text.output
    assert "conflicts: 2 stored, 1 from this run" in text.stdout
    assert "conflict with Messina (works for the city) [stored]" in " ".join(text.stdout.split())

    removed = run("conflicts", "remove", "exp-1", "it-messina")
    assert removed.exit_code == 0, removed.output
    assert "Ana Exemplo (exp-1) may serve clusters with Messina (it-messina) again" in " ".join(
        removed.stdout.split()
    )
    after = json.loads(run("experts", "assign", "--json").stdout)
    assert after["conflict_counts"] == {"stored": 1, "request": 0}
    assert ("exp-1", "cl-south") in _pairs(after)

    # unknown ids and a pair with nothing stored: an error naming them, a non-zero exit
    for args, words in (
        (
            ("conflicts", "add", "nobody", "it-messina", "--reason", "x"),
            "no expert with id 'nobody'",
        ),
        (
            ("conflicts", "add", "exp-1", "xx-nowhere", "--reason", "x"),
            "no city with id 'xx-nowhere'",
        ),
        (("conflicts", "list", "--expert", "nobody"), "no expert with id 'nobody'"),
        (
            ("conflicts", "remove", "exp-1", "it-messina"),
            "Ana Exemplo (exp-1) has no stored conflict with Messina (it-messina)",
        ),
    ):
        failed = run(*args)
        assert failed.exit_code == 2, (args, failed.output)
        assert words in " ".join(failed.stderr.split()), failed.stderr
    missing = run("conflicts", "add", "exp-1", "es-getxo")
    assert missing.exit_code == 2 and "--reason" in missing.stderr
