"""The HTTP app, built by ``create_app(settings)``; importing this module builds nothing.

``uvicorn api.app:app`` still works: ``app`` is built on first use, from the environment's
settings (``uvicorn --factory api.app:create_app`` does the same). ``iccmatch serve`` and
the tests call ``create_app`` with their own settings. The store and the service are
opened once, in the lifespan (one driver per process). Every error leaves as
problem+json; bodies are bounded.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from threadpoolctl import threadpool_limits

from api import problems
from api.routes import admin, clusters, health, matching, outcomes, pages, resources
from api.services.clusters import ClusterService
from api.services.network import NetworkService
from api.settings import Settings, get_settings, open_configured_store
from matching.kernel.embeddings import default_encoder


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with a 413 problem, declared length or not.

    (FastAPI's own ``max_body_size`` answers a declared oversize in plain text, before our
    problem handlers can see it; this keeps every error in one format.)
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        mb = self.limit // (1024 * 1024)
        response = problems.problem(413, "Request too large", f"bodies are limited to {mb} MB")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class FreshAfterWrite:
    """A write's answer leaves once the revision it made is prepared.

    Readers never wait for a new revision (``NetworkService`` answers from the last one
    while the next is prepared in the background), but whoever wrote must see what they
    wrote: a coordinator's "not for us" gone from the list, an accepted cluster ready for
    experts. So after a successful ``/v1`` write this middleware waits, before it sends the
    response, until a revision holding the write is prepared (``NetworkService.catch_up``:
    one preparation serves a burst of writers, and a failed one is not retried per writer). ``/v1/ingest`` is the exception: a whole dataset is
    prepared in the background and its answer says so.
    """

    WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] not in self.WRITES
            or not path.startswith("/v1/")
            or path == "/v1/ingest"
        ):
            await self.app(scope, receive, send)
            return

        async def send_when_prepared(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                service = scope["app"].state.service
                await run_in_threadpool(service.catch_up)
            await send(message)

        await self.app(scope, receive, send_when_prepared)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings are read here, once (tests pass their own)."""
    s = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # process-wide, for this worker's lifetime (see Settings.blas_threads)
        threadpool_limits(limits=s.blas_threads, user_api="blas")
        store = open_configured_store(s)
        app.state.settings = s
        service = NetworkService(
            store,
            default_encoder(s.embedding_model),
            gc_freeze=True,
            partner_ranker=s.partner_ranker,
            background=True,
        )
        app.state.service = service
        app.state.clusters = ClusterService(service)
        # Warm before ready: the first revision is prepared now (``/health/ready`` says 503
        # until it is), and every later one as soon as the store's revision moves.
        stop = threading.Event()
        watcher = threading.Thread(
            target=service.keep_prepared,
            args=(stop, s.revision_poll_s),
            name="iccmatch-watch",
            daemon=True,
        )
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join(timeout=60)  # a preparation under way finishes first
            service.wait_for_background(60)
            gc.unfreeze()  # what the service froze is the collector's again (a clean exit)
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
        docs_url=None,  # served below from our own files: no CDN
        redoc_url=None,
    )
    problems.install(app)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI from the vendored files (``api/web/static/vendor``), so the API's
        documentation renders on a machine without internet."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="iccmatch API",
            swagger_js_url="/static/vendor/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )

    for router in (
        health.router,
        clusters.router,  # before resources: /v1/clusters/proposals is not an accepted cluster id
        resources.router,
        matching.router,
        outcomes.router,
        admin.router,
        pages.router,
    ):
        app.include_router(router)
    app.add_middleware(FreshAfterWrite)
    app.add_middleware(BodyLimit, limit=s.max_body_mb * 1024 * 1024)
    app.openapi = lambda: _openapi_with_problems(app)  # type: ignore[method-assign]
    return app


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    """The generated contract, with every error documented as what it really is: problem+json.

    FastAPI documents 422 as its own JSON shape and knows nothing of the errors our
    handlers and middleware answer (401, 403, 413, 503); this states them once, for all.
    """
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = problems.Problem.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    components.update(components["Problem"].pop("$defs", {}))
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    described = {
        401: "No key, or an unknown or revoked key",
        403: "The key's role may not do this",
        404: "Not found",
        409: "Conflict or infeasible request",
        413: "Request body too large",
        422: "Invalid request: the detail says what to change",
        503: "The store is unreachable; retry later",
    }
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            responses = op.setdefault("responses", {})
            codes = {422, 503}
            if path.startswith("/v1"):
                codes |= {401, 403, 404}  # any id in a path, query or body may name nothing
                if method != "get":
                    codes.add(409)
            if method in ("post", "put", "patch"):
                codes.add(413)
            codes |= {int(c) for c in responses if str(c).isdigit() and int(c) >= 400}
            for code in codes:
                entry = responses.setdefault(
                    str(code), {"description": described.get(code, "Error")}
                )
                entry["content"] = problem
            if path == "/health/ready":
                responses["503"]["content"] = {"application/json": {"schema": {"type": "object"}}}
    app.openapi_schema = schema
    return schema


def __getattr__(name: str) -> Any:
    """``api.app:app``, built on first use (``uvicorn api.app:app``), then kept."""
    if name == "app":
        built = globals()["app"] = create_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
