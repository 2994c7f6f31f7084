"""The kernel every matcher stands on: arrays (ids <-> indices), the tie graph, geometry,
wording, the pair features and score model, texts and embeddings, seeded randomness.

Nothing here knows about partners, clusters or experts; they import from here, never
from each other.
"""
