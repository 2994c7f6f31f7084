"""Network explorer: graph, profile, map, analytics tables and exports, as an analyst uses them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import Server, Tab

pytestmark = pytest.mark.web


def _click_node(page: Page, city_id: str, *, scroll: bool = True) -> None:
    """Click a city's dot on the graph canvas where a person would see it."""
    if scroll:
        page.locator("#graph").evaluate("(g) => g.scrollIntoView({block: 'center'})")
    pos = page.evaluate(
        """(id) => {
            const cy = document.getElementById("graph")._cyreg.cy;
            const node = cy.getElementById(id);
            cy.center(node);
            return node.renderedPosition();
        }""",
        city_id,
    )
    box = page.locator("#graph").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])


def test_analyst_explores_the_network(tab: Tab, server: Server) -> None:
    page = tab.open("/network", server.keys["analyst"])
    expect(page.locator("#graph[data-ready]")).to_be_visible()
    expect(page.locator("#summary")).to_contain_text("159cities")

    # colour by community, size by betweenness: the legend follows
    page.get_by_label("Colour by").select_option(label="Community")
    expect(page.locator("#legend")).to_contain_text("Community")
    page.get_by_label("Size by").select_option(label="Betweenness (sits between others)")
    page.get_by_label("Colour by").select_option(label="Priority given to a theme")
    page.get_by_label("Theme", exact=True).select_option(label="Education")
    expect(page.locator("#legend")).to_contain_text("Priority 5/5")
    page.get_by_label("Colour by").select_option(label="National network")
    expect(page.locator("#legend")).to_contain_text("RPCI")

    # click Turin on the graph: its profile opens
    _click_node(page, "it-turin")
    profile = page.locator("#profile")
    expect(profile.locator("h2")).to_have_text("Turin")
    expect(profile).to_contain_text("Partners (22)")
    expect(profile).to_contain_text("Città del Dialogo")
    expect(profile.locator(".description")).to_contain_text("Turin is a city in Italy")

    # from the profile to a partner, with the keyboard
    partner = profile.get_by_role("button", name="Show Dublin")
    partner.focus()
    page.keyboard.press("Enter")
    expect(profile.locator("h2")).to_have_text("Dublin")

    # the analytics tables
    expect(page.locator("#t-without-expert")).to_contain_text("Roma inclusion")
    expect(page.locator("#t-bridges tbody tr")).to_have_count(20)
    isolated = page.locator("#t-isolated")
    expect(isolated).to_contain_text("Ballarat")
    isolated.get_by_role("button", name="Ballarat").click()
    expect(profile.locator("h2")).to_have_text("Ballarat")
    expect(profile).to_contain_text("No partnership yet.")
    expect(profile).to_contain_text("has no partnership with any other city")
    expect(page.locator("#t-buddy")).to_contain_text("Tower Hamlets")
    expect(page.locator("#t-coverage tbody tr")).to_have_count(24)

    # the map view: every city, and ties as lines
    page.get_by_role("tab", name="Map").click()
    expect(page.locator("#map circle.pt")).to_have_count(159)
    assert page.locator("#map path.link").count() == 247
    expect(page.locator("#map circle.pt.hot")).to_have_count(1)  # Ballarat, still chosen

    # the map shows the cities without ties only when asked
    page.get_by_label("Show cities without ties").uncheck()
    expect(page.locator("#map circle.pt")).to_have_count(159 - 76)
    page.get_by_label("Show cities without ties").check()
    page.get_by_role("tab", name="Graph").click()
    page.get_by_label("City", exact=True).select_option("it-turin")
    expect(profile.locator("h2")).to_have_text("Turin")

    tab.screenshots("network")
    tab.watch.check()


def test_a_click_lands_on_the_city_after_the_page_above_the_graph_moved(
    tab: Tab, server: Server
) -> None:
    """The graph library caches where its canvas is and forgets it only on scroll or resize.

    A message appearing above the graph moves the canvas without either; clicks then landed
    on the background (seen in CI: "City profile" instead of Turin).
    """
    page = tab.open("/network", server.keys["analyst"])
    expect(page.locator("#graph[data-ready]")).to_be_visible()
    _click_node(page, "it-turin")  # the library now holds the canvas's place
    profile = page.locator("#profile")
    expect(profile.locator("h2")).to_have_text("Turin")
    # at the top of the page (tall enough to show the graph) the browser does not scroll to
    # keep the graph in place
    page.set_viewport_size({"width": 1280, "height": 1600})
    page.evaluate(
        "() => new Promise((r) => { window.scrollTo(0, 0); requestAnimationFrame(() => requestAnimationFrame(r)); })"
    )
    page.mouse.move(1, 1)  # the library reads the canvas's place again, with the page at the top
    page.locator("#status").evaluate(
        "(s) => { s.textContent = 'A long message above the graph.'; s.style.minHeight = '140px'; }"
    )
    _click_node(page, "ie-dublin", scroll=False)
    expect(profile.locator("h2")).to_have_text("Dublin")
    tab.watch.check()


@pytest.mark.parametrize(
    ("button", "filename", "check"),
    [
        ("Cities (CSV)", "iccmatch-nodes.csv", lambda t: t.splitlines()[0].startswith("id,")),
        ("Ties (CSV)", "iccmatch-edges.csv", lambda t: "source" in t.splitlines()[0]),
        ("JSON", "iccmatch-network.json", lambda t: len(json.loads(t)["nodes"]) > 159),
        ("GraphML", "iccmatch-network.graphml", lambda t: "<graphml" in t and "Turin" in t),
        ("GEXF", "iccmatch-network.gexf", lambda t: "<gexf" in t and "Turin" in t),
    ],
)
def test_exports_download_with_the_key(
    tab: Tab, server: Server, button: str, filename: str, check: Callable[[str], bool]
) -> None:
    page = tab.open("/network", server.keys["analyst"])
    expect(page.locator("#graph[data-ready]")).to_be_visible()
    page.get_by_label("Include themes").check()
    with page.expect_download() as info:
        page.get_by_role("button", name=button, exact=True).click()
    download = info.value
    assert download.suggested_filename == filename
    text = Path(download.path()).read_text(encoding="utf-8")
    assert check(text), text[:300]
    expect(page.locator("#export-status")).to_have_text(f"Downloaded {filename}.")
    tab.watch.check()


def test_analyst_measures_how_good_suggestions_are(tab: Tab, server: Server) -> None:
    page = tab.open("/network", server.keys["analyst"])
    expect(page.locator("#graph[data-ready]")).to_be_visible()
    page.get_by_role("button", name="Measure suggestions").click()
    status = page.locator("#quality-status")
    expect(status).to_contain_text("hidden ties over 5 splits", timeout=120_000)
    expect(status).to_contain_text("ranked by default weights")
    for title in ("All hidden ties", "With a partner in common", "Without a partner in common"):
        expect(page.get_by_role("heading", name=title)).to_be_visible()
    rows = page.locator("#q-overall tbody tr")
    expect(rows).to_have_count(6)  # default weights, four baselines, learned
    expect(page.locator("#q-overall")).to_contain_text("learned")
    expect(page.locator("#q-overall")).to_contain_text("±")
    tab.watch.check()
