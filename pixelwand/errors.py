"""The project's error hierarchy: one root, stable codes, messages safe to show users.

Transport layers (GraphQL `extensions.code`, REST status) map `code` through one table
each; nothing else about an error is transport-specific.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)


class PixelWandError(Exception):
    """Root of every error the API may show a client."""

    code = "INTERNAL"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- client errors ----------------------------------------------------------------------


class BadRequest(PixelWandError):
    """Malformed or invalid input."""

    code = "BAD_REQUEST"
    status = 400


class Unauthenticated(PixelWandError):
    """Missing, malformed, unknown or revoked API key."""

    code = "UNAUTHENTICATED"
    status = 401


class PaymentRequired(PixelWandError):
    """Free plan calling the API, or storage quota exceeded."""

    code = "PAYMENT_REQUIRED"
    status = 402


class Forbidden(PixelWandError):
    """Scope missing, or the resource belongs to another organization."""

    code = "FORBIDDEN"
    status = 403


class NotFound(PixelWandError):
    """No such resource in this workspace."""

    code = "NOT_FOUND"
    status = 404


class RateLimited(PixelWandError):
    """Over the plan's requests/second for this key."""

    code = "RATE_LIMITED"
    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- server-side conditions -------------------------------------------------------------


class StorageUnavailable(PixelWandError):
    """The object store did not answer in time, or refused the connection."""

    code = "STORAGE_UNAVAILABLE"
    status = 503

    def __init__(self, message: str = "storage unavailable") -> None:
        super().__init__(message)


class DatabaseUnavailable(PixelWandError):
    """The database did not answer in time, or refused the connection."""

    code = "DATABASE_UNAVAILABLE"
    status = 503

    def __init__(self, message: str = "database unavailable") -> None:
        super().__init__(message)


ERRORS_BY_CODE: dict[str, type[PixelWandError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthenticated,
        PaymentRequired,
        Forbidden,
        NotFound,
        RateLimited,
        StorageUnavailable,
        DatabaseUnavailable,
    )
}

STATUS_BY_CODE: dict[str, int] = {code: cls.status for code, cls in ERRORS_BY_CODE.items()}


def is_database_outage(exc: BaseException) -> bool:
    """True for errors that mean the database is unreachable rather than a bad query."""
    from tortoise.exceptions import DBConnectionError

    if isinstance(exc, DBConnectionError | ConnectionError | OSError | TimeoutError):
        return True
    name = type(exc).__name__
    return name in {
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "InterfaceError",
        "ConnectionFailureError",
        "TooManyConnectionsError",
    }


@contextlib.contextmanager
def map_database_errors() -> Iterator[None]:
    """Turn connection-level database failures into DatabaseUnavailable."""
    try:
        yield
    except PixelWandError:
        raise
    except Exception as exc:
        if is_database_outage(exc):
            log.warning("database unavailable: %s", exc)
            raise DatabaseUnavailable() from exc
        raise
