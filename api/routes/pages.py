"""The web pages: five HTML pages at ``/`` and their static files, all served by this process.

Nothing is fetched from another address at run time. Our own files and the few vendored
browser libraries (``api/web/static/vendor``, copied from npm with their licences by
``scripts/vendor_web.py``) ship inside the package, so a plain ``pip install .`` serves
working pages. There is no directory listing and no path is ever joined from the request:
a request names a key of a dictionary built at import time, or gets a 404.

The pages call the same ``/v1`` API as everyone else, with the API key the user pastes.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

WEB = Path(__file__).resolve().parents[1] / "web"
PAGES_DIR = WEB / "pages"
STATIC_DIR = WEB / "static"

PAGES: dict[str, str] = {
    "/": "index.html",
    "/partners": "partners.html",
    "/clusters": "clusters.html",
    "/experts": "experts.html",
    "/network": "network.html",
}
"""URL -> page file in api/web/pages."""

MEDIA = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

# Same origin only, no inline script, no plugins, not framed: a data string that slipped
# into markup could still not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

router = APIRouter(include_in_schema=False, tags=["pages"])


@cache
def _layout() -> tuple[str, str]:
    return (
        (PAGES_DIR / "_header.html").read_text(encoding="utf-8"),
        (PAGES_DIR / "_footer.html").read_text(encoding="utf-8"),
    )


@cache
def _page(url: str) -> str:
    """A page with the shared header and footer put in, and its nav link marked current."""
    header, footer = _layout()
    header = header.replace(f'href="{url}"', f'href="{url}" aria-current="page"', 1)
    html = (PAGES_DIR / PAGES[url]).read_text(encoding="utf-8")
    return html.replace("<!--#header-->", header, 1).replace("<!--#footer-->", footer, 1)


def _static_files() -> dict[str, Path]:
    return {
        p.relative_to(STATIC_DIR).as_posix(): p
        for p in STATIC_DIR.rglob("*")
        if p.is_file() and p.suffix in MEDIA
    }


STATIC: dict[str, Path] = _static_files()


def _serve_page(url: str) -> HTMLResponse:
    return HTMLResponse(_page(url), headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


def _page_route(url: str) -> None:
    def page() -> HTMLResponse:
        return _serve_page(url)

    router.add_api_route(url, page, methods=["GET"], name=f"page_{url.strip('/') or 'home'}")


for _url in PAGES:
    _page_route(_url)


@router.get("/index.html")
def index_html() -> RedirectResponse:
    return RedirectResponse("/", status_code=308)


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    return FileResponse(STATIC_DIR / "favicon.svg", media_type=MEDIA[".svg"])


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"])
def static(path: Annotated[str, PathParam(max_length=200)]) -> FileResponse:
    file = STATIC.get(path)
    if file is None:
        raise HTTPException(404, f"no static file {path!r}")
    return FileResponse(
        file,
        media_type=MEDIA[file.suffix],
        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
    )
