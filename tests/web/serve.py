"""The API with the web pages, as the browser tests run it.

``python -m tests.web.serve --store sqlite:////tmp/x.db --port 8800``

It is the real app: the pages router and ``GET /v1/me`` are part of ``api.app``.
"""

import argparse

from fastapi import FastAPI

from api.app import create_app
from api.settings import Settings


def build_app(store: str) -> FastAPI:
    return create_app(Settings(store=store))


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build_app(args.store), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
