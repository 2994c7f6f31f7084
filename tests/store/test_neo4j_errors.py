"""How Neo4jStore maps driver failures onto iccmatch errors (no server needed)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest
from neo4j.exceptions import DatabaseUnavailable, Neo4jError

from graph.errors import StoreUnavailable
from graph.neo4j_store import Neo4jStore


def _failing_session(error: Exception) -> Any:
    class Session:
        def execute_read(self, fn: Any) -> Any:
            raise error

        execute_write = execute_read

    @contextmanager
    def session(write: bool = True) -> Any:
        yield Session()

    return session


@pytest.mark.parametrize("write", [False, True])
def test_a_database_still_unavailable_after_the_retries_is_store_unavailable(
    monkeypatch: pytest.MonkeyPatch, write: bool
) -> None:
    """While a server stops or starts it answers DatabaseUnavailable (a transient error):
    once the driver's retries are spent, that is a 503 for the API, not a 500."""
    error = Neo4jError._hydrate_neo4j(
        code="Neo.TransientError.General.DatabaseUnavailable",
        message="The database is not currently available to serve your request",
    )
    assert isinstance(error, DatabaseUnavailable)
    store = Neo4jStore("bolt://127.0.0.1:9")  # never connected to
    try:
        store._schema_ready = True
        monkeypatch.setattr(store, "_session", _failing_session(error))
        with pytest.raises(StoreUnavailable, match="unavailable for now"):
            store._run(lambda tx: None, write=write)
    finally:
        store.close()
