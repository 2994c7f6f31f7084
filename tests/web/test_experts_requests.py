"""Experts page: names in every table, and the same-country rule chosen per request."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, Tab

pytestmark = pytest.mark.web


@pytest.fixture(scope="module")
def network(server: Server) -> dict[str, Any]:
    """Accepted clusters (one proposal accepted if none is yet), experts and cities by id."""
    with server.api("admin") as api:
        clusters = api.get("/v1/clusters", params={"limit": 500}).raise_for_status().json()
        if not clusters["items"]:
            proposal = api.post("/v1/clusters/proposals", json={"themes": ["education"]})
            proposal.raise_for_status()
            api.post(
                f"/v1/clusters/proposals/{proposal.json()['id']}/accept", json={}
            ).raise_for_status()
            clusters = api.get("/v1/clusters", params={"limit": 500}).raise_for_status().json()
        experts = api.get("/v1/experts", params={"limit": 500}).raise_for_status().json()
        cities = api.get("/v1/cities", params={"limit": 500}).raise_for_status().json()
    return {
        "clusters": {c["id"]: c for c in clusters["items"]},
        "experts": {e["id"]: e for e in experts["items"]},
        "cities": {c["id"]: c for c in cities["items"]},
    }


def test_names_everywhere_and_the_same_country_rule(
    tab: Tab, server: Server, network: dict[str, Any]
) -> None:
    page = tab.open("/experts", server.keys["admin"])
    rule = page.get_by_label("No expert from a member city's country")
    expect(rule).to_be_visible()
    assert rule.evaluate("b => b.indeterminate"), "untouched: the server's setting applies"

    # untouched: nothing sent, the server's setting (off) applies and the box then says so
    with page.expect_response(lambda r: r.url.endswith("/v1/experts/assignments")) as info:
        page.get_by_role("button", name="Assign experts").click()
    assert info.value.ok, info.value.text()
    assert "conflict_same_country" not in info.value.request.post_data_json
    result = info.value.json()
    assert result["conflict_same_country"] is False
    expect(rule).not_to_be_checked()
    assert not rule.evaluate("b => b.indeterminate")
    expect(page.locator("#result-summary")).to_contain_text(
        "experts from a member city's country allowed"
    )
    for pair in result["pairs"]:
        row = page.locator(
            f'#pairs tbody tr[data-cluster="{pair["cluster_id"]}"][data-expert="{pair["expert_id"]}"]'
        )
        expect(row.locator(".expert-name")).to_have_text(
            network["experts"][pair["expert_id"]]["name"]
        )
        expect(row.locator(".cluster-name")).to_have_text(
            network["clusters"][pair["cluster_id"]]["name"]
        )
    for load in result["loads"]:
        expect(page.locator(f'#loads tbody tr[data-expert="{load["expert_id"]}"] th')).to_have_text(
            network["experts"][load["expert_id"]]["name"]
        )

    # ticked: sent, and no pair keeps an expert in a member city's country
    rule.check()
    with page.expect_response(lambda r: r.url.endswith("/v1/experts/assignments")) as info:
        page.get_by_role("button", name="Assign experts").click()
    assert info.value.ok, info.value.text()
    assert info.value.request.post_data_json["conflict_same_country"] is True
    ruled = info.value.json()
    assert ruled["conflict_same_country"] is True
    expect(page.locator("#result-summary")).to_contain_text(
        "no expert from a member city's country"
    )
    for pair in ruled["pairs"]:
        members = network["clusters"][pair["cluster_id"]]["members"]
        countries = {network["cities"][m]["country"] for m in members}
        assert network["experts"][pair["expert_id"]]["country"] not in countries
    expect(page.locator("#pairs tbody tr")).to_have_count(len(ruled["pairs"]))

    # unticked again: sent as false
    rule.uncheck()
    with page.expect_response(lambda r: r.url.endswith("/v1/experts/assignments")) as info:
        page.get_by_role("button", name="Assign experts").click()
    assert info.value.request.post_data_json["conflict_same_country"] is False
    tab.watch.check()


# ---------------------------------------------------------------- planner inputs, stored conflicts


def _assignment(server: Server) -> dict[str, Any]:
    with server.api("admin") as api:
        out: dict[str, Any] = api.post("/v1/experts/assignments", json={}).raise_for_status().json()
    return out


def _stored(server: Server) -> list[dict[str, Any]]:
    with server.api("admin") as api:
        rows: list[dict[str, Any]] = (
            api.get("/v1/expert-conflicts", params={"limit": 500}).raise_for_status().json()
        )["items"]
    return rows


def test_the_stored_conflicts_are_listed_by_name(
    tab: Tab, server: Server, network: dict[str, Any]
) -> None:
    rows = _stored(server)
    assert len(rows) >= 2, "the sample stores invented conflicts (data/sample/expert_conflicts.csv)"
    page = tab.open("/experts", server.keys["admin"])
    items = page.locator("#stored-conflicts li.stored-conflict")
    expect(items).to_have_count(len(rows))
    for row in rows:
        item = page.locator(
            f'#stored-conflicts li[data-expert="{row["expert_id"]}"][data-city="{row["city_id"]}"]'
        )
        expect(item.locator(".expert-name")).to_have_text(
            network["experts"][row["expert_id"]]["name"]
        )
        expect(item.locator(".city-name")).to_have_text(network["cities"][row["city_id"]]["name"])
        expect(item).to_contain_text(row["reason"])
        expect(item).not_to_contain_text(row["expert_id"])  # names, not ids


def test_a_fixed_expert_chosen_on_the_page_is_sent_and_honoured(
    tab: Tab, server: Server, network: dict[str, Any]
) -> None:
    plain = _assignment(server)
    stored = {(r["expert_id"], r["city_id"]) for r in _stored(server)}
    cluster = next(iter(network["clusters"].values()))
    chosen = {p["expert_id"] for p in plain["pairs"] if p["cluster_id"] == cluster["id"]}
    lang = cluster["working_languages"][0]
    expert = next(
        e
        for e in sorted(network["experts"].values(), key=lambda e: e["id"])
        if e["id"] not in chosen
        and lang in e["languages"]
        and (e.get("max_assignments") or 2) >= 1
        and not any((e["id"], m) in stored for m in cluster["members"])
    )
    page = tab.open("/experts", server.keys["admin"])
    expect(page.locator(f'#fixed-cluster option[value="{cluster["id"]}"]')).to_have_text(
        cluster["name"]
    )
    page.locator("#fixed-cluster").select_option(cluster["id"])
    page.locator("#fixed-expert").select_option(expert["id"])
    expect(page.locator("#fixed-expert option:checked")).to_contain_text(expert["name"])
    page.get_by_role("button", name="Fix this expert").click()
    expect(page.locator("#fixed-list li")).to_have_count(1)
    expect(page.locator("#fixed-list li")).to_contain_text(f"{cluster['name']}: {expert['name']}")

    with page.expect_response(lambda r: r.url.endswith("/v1/experts/assignments")) as info:
        page.get_by_role("button", name="Assign experts").click()
    assert info.value.ok, info.value.text()
    assert info.value.request.post_data_json["fixed"] == [
        {"expert_id": expert["id"], "cluster_id": cluster["id"]}
    ]
    (pin,) = info.value.json()["fixed"]
    assert pin["honoured"], pin
    expect(page.locator("#planner-notes li.fixed")).to_have_text(
        f"{expert['name']} serves {cluster['name']}, as fixed"
    )
    row = page.locator(
        f'#pairs tbody tr[data-cluster="{cluster["id"]}"][data-expert="{expert["id"]}"]'
    )
    expect(row.locator(".expert-name")).to_have_text(expert["name"])

    # removed from the list: no longer sent
    page.get_by_role(
        "button", name=f"Remove the fixed expert {cluster['name']}: {expert['name']}"
    ).click()
    expect(page.locator("#fixed-list li")).to_have_count(0)
    with page.expect_response(lambda r: r.url.endswith("/v1/experts/assignments")) as info:
        page.get_by_role("button", name="Assign experts").click()
    assert "fixed" not in info.value.request.post_data_json


def test_a_conflict_for_this_run_is_sent_and_rules_the_pair_out_by_name(
    tab: Tab, server: Server, network: dict[str, Any]
) -> None:
    plain = _assignment(server)
    stored = _stored(server)
    pair = plain["pairs"][0]
    cluster = network["clusters"][pair["cluster_id"]]
    expert = network["experts"][pair["expert_id"]]
    city = network["cities"][cluster["members"][0]]
    page = tab.open("/experts", server.keys["admin"])
    page.locator("#conflict-expert").select_option(expert["id"])
    page.locator("#conflict-city").select_option(city["id"])
    page.get_by_label("Reason (optional)").fill("advised it last cycle")
    page.get_by_role("button", name="Add conflict").click()
    expect(page.locator("#conflict-list li")).to_contain_text(
        f"{expert['name']}: not for {city['name']} (advised it last cycle)"
    )

    with page.expect_response(lambda r: r.url.endswith("/v1/experts/assignments")) as info:
        page.get_by_role("button", name="Assign experts").click()
    assert info.value.ok, info.value.text()
    assert info.value.request.post_data_json["conflicts"] == [
        {"expert_id": expert["id"], "city_id": city["id"], "reason": "advised it last cycle"}
    ]
    result = info.value.json()
    assert result["conflict_counts"] == {"stored": len(stored), "request": 1}
    assert (expert["id"], cluster["id"]) not in {
        (p["expert_id"], p["cluster_id"]) for p in result["pairs"]
    }
    note = page.locator(
        f'#planner-notes li.excluded[data-expert="{expert["id"]}"][data-cluster="{cluster["id"]}"]'
    )
    expect(note).to_contain_text(
        f"{expert['name']} is not assigned to cluster {cluster['name']}: conflict with "
        f"{city['name']} (advised it last cycle)"
    )
    expect(note).to_contain_text("conflict for this run")
    expect(page.locator("#result-summary")).to_contain_text(
        f"{len(stored)} stored conflicts and 1 conflict for this run applied"
    )
    expect(
        page.locator(
            f'#pairs tbody tr[data-cluster="{cluster["id"]}"][data-expert="{expert["id"]}"]'
        )
    ).to_have_count(0)
    tab.screenshots("experts-conflicts")
