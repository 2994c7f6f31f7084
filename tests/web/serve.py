"""The API with the web pages, as the browser tests run it.

``python -m tests.web.serve --store sqlite:////tmp/x.db --port 8800``

Until ``api/app.py`` includes ``api.routes.pages.router`` itself, this adds it; and until the
API has ``GET /v1/me`` (what the caller's key may do), this adds a stand-in with the same
answer. Each is added only when the app lacks it, so the tests run the real thing as soon
as it exists.
"""

import argparse
from typing import Any

from fastapi import FastAPI

from api.app import create_app
from api.deps import Caller
from api.routes import pages
from api.settings import Settings


def _me(caller: Caller) -> dict[str, Any]:
    """Stand-in for GET /v1/me: the role, city and label of the caller's key."""
    return {"role": caller.role, "city_id": caller.city_id, "label": caller.label}


def build_app(store: str) -> FastAPI:
    app = create_app(Settings(store=store))
    paths = {getattr(route, "path", None) for route in app.routes}
    if "/" not in paths:
        app.include_router(pages.router)
    if "/v1/me" not in paths:
        app.add_api_route("/v1/me", _me, methods=["GET"], tags=["keys"])
    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build_app(args.store), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
