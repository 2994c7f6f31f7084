"""The work behind the API and the CLI, apart from HTTP and the terminal.

- ``network.py``: ``NetworkService``, the network at the store's current revision
  (snapshot, arrays, profile embeddings) with partners, expert assignment and analytics;
- ``clusters.py``: ``ClusterService``, cluster proposals kept, re-checked and accepted;
- ``rows.py``: ``write_rows``, the one way rows written through the API reach the store.
"""

MAX_K = 50
"""The longest partner list anyone may ask for: the HTTP route, ``NetworkService`` and the
CLI all check this one number. It lives here, not in ``network.py``, so that the CLI can
read it without importing the matchers (seconds that every command would wait)."""
