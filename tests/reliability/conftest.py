"""An API over a real store (both backends, via ``store_url``) with a key per role, and a revoked one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import create_key, revoke_key
from api.settings import Settings
from graph.open import open_store
from ingest.load import ingest_path
from tests.helpers import tiny, write_csvs

OWN_CITY = "it-messina"  # the coordinator key's city


@dataclass
class Served:
    client: TestClient
    url: str
    keys: dict[str, str]

    def auth(self, who: str | None) -> dict[str, str]:
        """Headers for a role, ``"revoked"`` (a revoked admin key), ``"wrong"`` or None."""
        if who is None:
            return {}
        key = "icc_this-key-was-never-issued" if who == "wrong" else self.keys[who]
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def served(store_url: str, tmp_path: Path) -> Iterator[Served]:
    store = open_store(store_url)
    try:
        assert ingest_path(write_csvs(tmp_path / "tiny", tiny()), store).ok
        keys = {
            "admin": create_key(store, "admin")[0],
            "coordinator": create_key(store, "coordinator", city_id=OWN_CITY)[0],
            "analyst": create_key(store, "analyst")[0],
            "revoked": create_key(store, "admin")[0],
        }
        revoke_key(store, keys["revoked"])
    finally:
        store.close()
    app = create_app(Settings(store=store_url, max_body_mb=4))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Served(client, store_url, keys)
