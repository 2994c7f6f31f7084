"""Experts: the secretariat assigns experts to accepted clusters and reads why, loads and shortfalls."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, Tab

pytestmark = pytest.mark.web


@pytest.fixture(scope="module")
def accepted(server: Server) -> list[dict[str, Any]]:
    """Accepted clusters to staff: those the planner test accepted by clicking when it ran
    first (they fill their members' load for the running period, so a second proposal of
    the same themes may have no room), else accepted here through the API."""
    with server.api("admin") as api:
        existing: list[dict[str, Any]] = api.get("/v1/clusters").raise_for_status().json()["items"]
        if existing:
            return existing
        proposal = api.post(
            "/v1/clusters/proposals", json={"themes": ["anti-rumours", "education"]}
        )
        proposal.raise_for_status()
        answer = api.post(
            f"/v1/clusters/proposals/{proposal.json()['id']}/accept", json={"period": "2026-2028"}
        )
        answer.raise_for_status()
    rows: list[dict[str, Any]] = answer.json()["accepted"]
    assert rows
    return rows


def test_secretariat_assigns_experts_to_accepted_clusters(
    tab: Tab, server: Server, accepted: list[dict[str, Any]]
) -> None:
    page = tab.open("/experts", server.keys["admin"])
    expect(page.get_by_label(accepted[0]["name"], exact=False).first).to_be_visible()
    page.get_by_role("button", name="Untick all").click()
    chosen = accepted[:3]
    for c in chosen:
        page.locator(f'#cluster-list input[value="{c["id"]}"]').check()
    page.get_by_label("Experts per cluster").fill("2")
    with page.expect_response(lambda r: r.url.endswith("/v1/experts/assignments")) as info:
        page.get_by_role("button", name="Assign experts").click()
    assert info.value.ok, info.value.text()
    sent = info.value.request.post_data_json
    assert sorted(sent["cluster_ids"]) == sorted(c["id"] for c in chosen)
    assert sent["per_cluster"] == 2 and sent["fair"] is False
    result = info.value.json()

    # every pair on the page, with its reasons in words
    rows = page.locator("#pairs tbody tr")
    expect(rows).to_have_count(len(result["pairs"]))
    assert len(result["pairs"]) + sum(u["missing"] for u in result["unserved"]) == 2 * len(chosen)
    for pair in result["pairs"]:
        row = page.locator(
            f'#pairs tbody tr[data-cluster="{pair["cluster_id"]}"][data-expert="{pair["expert_id"]}"]'
        )
        expect(row).to_have_count(1)
        expect(row.locator(".expert-name")).to_have_text(pair["expert_name"])
        expect(row.locator(".reasons li").first).to_have_text(
            re.compile(re.escape(pair["reasons"][0]["text"]))
        )
    # loads: what each expert carries, within what they can take
    for load in result["loads"]:
        row = page.locator(f'#loads tbody tr[data-expert="{load["expert_id"]}"]')
        expect(row).to_contain_text(load["name"])
        assert load["assigned"] <= load["capacity"]
    # shortfalls, or a line saying there are none
    if result["unserved"]:
        expect(page.locator("#unserved li.unserved")).to_have_count(len(result["unserved"]))
    else:
        expect(page.locator("#unserved")).to_contain_text(
            "Every cluster got the experts it asked for."
        )
    expect(page.locator("#result-summary")).to_contain_text(f"{len(result['pairs'])} pairs")

    # the fair variant
    page.get_by_label("Fair: help the worst-served cluster first").check()
    with page.expect_response(lambda r: r.url.endswith("/v1/experts/assignments")) as info:
        page.get_by_role("button", name="Assign experts").click()
    assert info.value.request.post_data_json["fair"] is True
    expect(page.locator("#result-summary")).to_contain_text(
        "fair: the worst-served cluster was raised first"
    )

    tab.screenshots("experts")
    tab.watch.check()


def test_asking_too_much_says_what_to_change(copy_tab: Tab, copy_server: Server) -> None:
    # on a copy of the network where every expert takes one cluster at most
    with copy_server.api("admin") as api:
        experts = api.get("/v1/experts", params={"limit": 500}).raise_for_status().json()["items"]
        api.post(
            "/v1/experts", json={"rows": [{**e, "max_assignments": 1} for e in experts]}
        ).raise_for_status()
        proposal = (
            api.post("/v1/clusters/proposals", json={"themes": ["education"]})
            .raise_for_status()
            .json()
        )
        api.post(
            f"/v1/clusters/proposals/{proposal['id']}/accept", json={"period": "2026-2028"}
        ).raise_for_status()
        clusters = api.get("/v1/clusters", params={"limit": 500}).raise_for_status().json()["items"]
        body = {"cluster_ids": None, "per_cluster": 10, "fair": False, "save": False}
        answer = api.post("/v1/experts/assignments", json=body)
    assert 10 * len(clusters) > len(experts), "more seats asked than the experts can fill"
    copy_tab.watch.allow(409, "/v1/experts/assignments")
    page = copy_tab.open("/experts", copy_server.keys["admin"])
    page.get_by_label("Experts per cluster").fill("10")
    page.get_by_role("button", name="Assign experts").click()
    if answer.status_code == 409:
        expect(page.locator("#error")).to_contain_text(answer.json()["detail"])
    else:
        unserved = answer.json()["unserved"]
        assert unserved
        items = page.locator("#unserved li.unserved")
        expect(items).to_have_count(len(unserved))
        expect(items.first).to_contain_text(unserved[0]["message"])
    copy_tab.screenshots("experts-shortfall")
    copy_tab.watch.check()


def test_only_the_secretariat_runs_the_assignment(tab: Tab, server: Server) -> None:
    page = tab.open("/experts", server.keys["coordinator"])
    expect(page.locator("#readonly")).to_be_visible()
    expect(page.get_by_role("button", name="Assign experts")).to_have_count(0)
    tab.watch.check()
