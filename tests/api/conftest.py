"""An API client over a real store (both backends) with one key per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import create_key
from api.settings import Settings
from graph.open import open_store
from ingest.load import ingest_path
from tests.helpers import tiny, write_csvs


@dataclass
class Api:
    client: TestClient
    keys: dict[str, str]

    def as_(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"} if role else {}


@pytest.fixture
def api(store_url: str, tmp_path: Path) -> Iterator[Api]:
    store = open_store(store_url)
    try:
        assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).ok
        keys = {
            "admin": create_key(store, "admin")[0],
            "coordinator": create_key(store, "coordinator", city_id="it-messina")[0],
            "analyst": create_key(store, "analyst")[0],
        }
    finally:
        store.close()
    app = create_app(Settings(store=store_url, max_body_mb=1))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, keys)
