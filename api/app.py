"""The HTTP app: ``api.app:app`` for uvicorn, built by ``create_app``.

Settings are read once, by ``create_app``; the store and the service are opened once, in
the lifespan (one driver per process). Every error leaves as problem+json; bodies are
bounded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import problems
from api.routes import admin, health, matching, resources
from api.services import NetworkService
from api.settings import Settings, get_settings
from graph.store import open_store
from matching.embeddings import default_encoder


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings are read here, once (tests pass their own)."""
    s = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(s.store, user=s.neo4j_user, password=s.neo4j_password.get_secret_value())
        app.state.service = NetworkService(
            store, default_encoder(s.embedding_model, s.embedding_bf16)
        )
        try:
            yield
        finally:
            store.close()

    app = FastAPI(
        title="iccmatch",
        version="1.0",
        summary="Partners, clusters and expert assignments for a network of cities, with reasons.",
        description=(
            "Every `/v1` endpoint needs an API key sent as `Authorization: Bearer <key>`. "
            "Roles: **admin** (the secretariat: everything), **coordinator** (bound to one city: reads, "
            "partners for its own city, records its city's interest), **analyst** (reads everything). "
            "Errors are `application/problem+json`. Lists take `limit` (1-500) and `cursor`. "
            f"Request bodies are limited to {s.max_body_mb} MB (413 beyond)."
        ),
        lifespan=lifespan,
        max_body_size=s.max_body_mb * 1024 * 1024,  # 413 beyond, declared length or not
    )
    problems.install(app)
    for router in (health.router, resources.router, matching.router, admin.router):
        app.include_router(router)
    return app


app = create_app()
