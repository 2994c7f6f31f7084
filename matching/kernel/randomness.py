"""Seeded randomness for igraph, whose random generator is one per process.

Leiden (communities in analytics, pools in the cluster solver) draws from igraph's
process-wide generator. Two threads seeding it at once would reset each other's seed,
so the same request could give different results under load: every seeded igraph call
goes through :func:`seeded_igraph`, which holds the one lock for that generator.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import igraph as ig

_IGRAPH_RNG_LOCK = threading.Lock()


@contextmanager
def seeded_igraph(seed: int) -> Iterator[None]:
    """Run the ``with`` body with igraph's generator seeded by ``seed``, alone in the process;
    the default generator is restored afterwards."""
    with _IGRAPH_RNG_LOCK:
        ig.set_random_number_generator(random.Random(seed))
        try:
            yield
        finally:
            ig.set_random_number_generator(random)
