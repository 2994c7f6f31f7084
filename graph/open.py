"""Open the store a URL names, whichever backend that is.

This lives apart from ``graph/store.py`` (the contract every backend implements) because
it must know both backends, and both import the contract: here, nothing imports back.
"""

from __future__ import annotations

from graph.errors import InvalidInput
from graph.store import GraphStore

NEO4J_SCHEMES = frozenset({"neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc"})


def open_store(
    url: str,
    *,
    user: str = "neo4j",
    password: str = "",
    connect_timeout_s: float = 3.0,
    retry_s: float = 5.0,
) -> GraphStore:
    """Open the store a URL names: ``sqlite:///path`` or ``neo4j://``, ``neo4j+s://``, ``bolt://``.

    Each backend is imported only when asked for (the Neo4j driver is not loaded for SQLite).
    """
    if url.startswith("sqlite://"):
        from graph.sqlite_store import SqliteStore

        return SqliteStore(url)
    if url.split("://", 1)[0] in NEO4J_SCHEMES:
        from graph.neo4j_store import Neo4jStore

        return Neo4jStore(
            url,
            user=user,
            password=password,
            connection_timeout=connect_timeout_s,
            max_transaction_retry_time=retry_s,
        )
    raise InvalidInput(
        f"unknown store URL {url!r}: use sqlite:///path/to/file.db or neo4j://host:7687"
    )
