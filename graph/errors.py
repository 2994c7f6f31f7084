"""One root exception for everything iccmatch raises on purpose.

Each subclass carries the HTTP status the API maps it to, so routes never raise
HTTP errors themselves and the CLI can print the same message.
"""

from __future__ import annotations


class IccmatchError(Exception):
    """Root of iccmatch's own errors; ``status`` is the HTTP status it maps to."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        """Per-field problems ({"field", "message"}), for invalid data."""


class InvalidInput(IccmatchError):
    status = 422
    title = "Invalid input"


class NotFound(IccmatchError):
    status = 404
    title = "Not found"


class Conflict(IccmatchError):
    """The request is valid but contradicts what is stored (e.g. deleting a referenced city)."""

    status = 409
    title = "Conflict"


class Infeasible(IccmatchError):
    status = 409
    title = "Infeasible request"


class StoreUnavailable(IccmatchError):
    """The store cannot be reached; retrying later may succeed."""

    status = 503
    title = "Store unavailable"
