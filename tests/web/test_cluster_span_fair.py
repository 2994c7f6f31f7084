"""Cluster planner: the rules form shows the geographic span's default and the fair option,
and a fair proposal made with them shows its span and the price of fairness."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, Tab

pytestmark = pytest.mark.web


def test_span_default_and_fair_option_and_the_price_of_fairness(tab: Tab, server: Server) -> None:
    page = tab.open("/clusters", server.keys["admin"])
    default = server.api().get("/v1/clusters/proposals/defaults").json()["max_span_km"]
    span = page.get_by_label("Widest distance in a cluster (km)")
    expect(page.locator("#max-span-default")).to_have_text(f"{default['geographic']:,.0f}")
    expect(span).to_have_value("")  # thematic by default: no limit
    page.get_by_label("Geographic: cities near each other").check()
    expect(span).to_have_value(f"{default['geographic']:g}")
    fair = page.get_by_label("Fair: help the worst-off city first")
    expect(fair).not_to_be_checked()
    span.fill("1200")
    fair.check()
    with page.expect_response(
        lambda r: r.url.endswith("/v1/clusters/proposals") and r.request.method == "POST"
    ) as info:
        page.get_by_role("button", name="Propose clusters").click()
    assert info.value.status == 201, info.value.text()
    sent: dict[str, Any] = info.value.request.post_data_json
    assert sent["max_span_km"] == 1200 and sent["fair"] is True
    proposal: dict[str, Any] = info.value.json()
    m = proposal["metrics"]
    assert proposal["fair"] and m["max_span_km"] == 1200
    expect(page.locator("#plan-summary")).to_contain_text("no cluster wider than 1,200 km")
    box = page.locator("#fairness")
    expect(box).to_be_visible()
    expect(box).to_contain_text("the worst-off city was raised first")
    shown = f"{m['plain_worst_benefit']:.3f}".rstrip("0").rstrip(".")  # as num(x, 3) writes it
    expect(box).to_contain_text(f"({shown} without fair)")
    expect(box).to_contain_text("price of fairness")
    expect(page.locator('#constraints li[data-name="max_span"]')).to_have_attribute(
        "data-status", "satisfied"
    )
    # a city too far from everyone is left out, with the reason on its card
    card = page.locator('#columns .column[data-cluster="__out__"] .member[data-city="nz-auckland"]')
    expect(card).to_contain_text("no other candidate within 1,200 km")
    # a plain proposal hides the price
    fair.uncheck()
    page.get_by_role("button", name="Propose clusters").click()
    expect(box).to_be_hidden()
