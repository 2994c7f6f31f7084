"""Cluster planner: saved proposals listed, reopened, compared and discarded; a keep-apart
control that the proposal honours."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, Tab

pytestmark = pytest.mark.web


def test_saved_proposals_reopen_compare_discard_and_keep_apart(tab: Tab, server: Server) -> None:
    api = server.api()
    first = api.post("/v1/clusters/proposals", json={"kind": "geographic", "seed": 0}).json()
    a, b = first["clusters"][0]["members"][:2]
    page = tab.open("/clusters", server.keys["admin"])
    row = page.locator(f'#proposals li[data-id="{first["id"]}"]')
    expect(row).to_contain_text("proposed")
    row.get_by_role("button", name=f"Open {first['id']}", exact=True).click()
    expect(page.locator("#proposal-id")).to_have_value(first["id"])
    expect(page.locator("#columns .column").first).to_be_visible()

    page.get_by_label("Geographic: cities near each other").check()
    page.get_by_label("Keep apart").fill(f"{a}, {b}")
    with page.expect_response(
        lambda r: r.url.endswith("/v1/clusters/proposals") and r.request.method == "POST"
    ) as info:
        page.get_by_role("button", name="Propose clusters").click()
    assert info.value.status == 201, info.value.text()
    assert info.value.request.post_data_json["keep_apart"] == [[a, b]]
    second: dict[str, Any] = info.value.json()
    assert not any(a in c["members"] and b in c["members"] for c in second["clusters"])
    expect(page.locator('#constraints li[data-name="keep_apart"]')).to_have_attribute(
        "data-status", "satisfied"
    )
    # the new proposal is listed first; compare the open one with the first
    expect(page.locator("#proposals li").first).to_have_attribute("data-id", second["id"])
    page.locator(f'#proposals li[data-id="{first["id"]}"]').get_by_role(
        "button", name=f"Compare with {first['id']}", exact=True
    ).click()
    cmp = api.get(f"/v1/clusters/proposals/{second['id']}/compare/{first['id']}").json()
    expect(page.locator("#comparison")).to_contain_text(cmp["reasons"][0])

    page.locator(f'#proposals li[data-id="{first["id"]}"]').get_by_role(
        "button", name=f"Discard {first['id']}", exact=True
    ).click()
    expect(page.locator(f'#proposals li[data-id="{first["id"]}"]')).to_have_attribute(
        "data-status", "discarded"
    )
    assert api.get(f"/v1/clusters/proposals/{first['id']}").json()["status"] == "discarded"
