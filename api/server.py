"""Serve the app with uvicorn, its settings passed as a value, in one process or several.

With several workers, uvicorn pickles the app factory into each worker process; a worker
unpickles it before it answers the supervisor's health check (5 s). So this module stays
light and imports ``api.app`` (4-5 s on two cores) only when the factory is called, by
which time the worker answers: importing it earlier got slow starters killed as hung.
"""

from __future__ import annotations

import functools
from contextlib import suppress
from typing import Any

from api.settings import Settings


def run(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    """Serve until interrupted. uvicorn.run would want an import string for several
    workers, which leaves the settings to the environment; a factory carries them."""
    import uvicorn

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "info",
        "proxy_headers": False,
        "server_header": False,
    }
    if workers <= 1:
        uvicorn.run(build_app(settings), **options)
        return
    from uvicorn.supervisors import Multiprocess

    factory = functools.partial(build_app, settings)
    config = uvicorn.Config(factory, factory=True, workers=workers, **options)
    with suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[config.bind_socket()]).run()


def build_app(settings: Settings) -> Any:
    """The app for these settings (``api.app.create_app``), imported on first call."""
    from api.app import create_app

    return create_app(settings)
