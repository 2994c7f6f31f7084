"""The pages and their files: served from this process only, vendor files by allow-list, strict CSP."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from api.routes.pages import PAGES
from scripts.vendor_web import FILES as VENDORED
from tests.web.conftest import Server, Tab

pytestmark = pytest.mark.web


@pytest.mark.parametrize("path", sorted(PAGES))
def test_every_page_is_served_with_a_strict_policy(server: Server, path: str) -> None:
    r = httpx.get(server.url + path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert (
        "default-src 'self'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    )
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<!--#header-->" not in r.text and 'id="signin-form"' in r.text
    assert "http://" not in r.text.replace(server.url, "") and "https://" not in r.text


@pytest.mark.parametrize("name", sorted(VENDORED))
def test_vendored_files_are_served(server: Server, name: str) -> None:
    r = httpx.get(f"{server.url}/static/vendor/{name}")
    assert r.status_code == 200 and len(r.content) > 1000


@pytest.mark.parametrize(
    "path",
    [
        "/static/vendor/",
        "/static/vendor/cytoscape.js",
        "/static/vendor/../package.json",
        "/static/vendor/%2e%2e/package.json",
        "/static/../routes/pages.py",
        "/static/js/",
        "/static/node_modules/cytoscape/package.json",
        "/static/vendor/d3-geo/package.json",
    ],
)
def test_nothing_else_is_served(server: Server, path: str) -> None:
    r = httpx.get(server.url + path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


def test_home_explains_the_pages_and_the_key(tab: Tab, server: Server) -> None:
    page = tab.open("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    for name in ("Partner finder", "Cluster planner", "Experts", "Network explorer"):
        expect(page.get_by_role("heading", name=name)).to_be_visible()
    page.get_by_label("API key").fill(server.keys["analyst"])
    page.keyboard.press("Enter")
    expect(page.locator("#who-text")).to_have_text("Signed in as an analyst (read-only)")
    expect(page.locator("#role-note")).to_contain_text("you can read everything")
    # the key stays for the tab: another page opens signed in, and sign out forgets it
    page.get_by_role("link", name="Network explorer").first.click()
    expect(page.locator("#who-text")).to_have_text("Signed in as an analyst (read-only)")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('iccmatch.key')") is None
    tab.screenshots("home")
    tab.watch.check()
