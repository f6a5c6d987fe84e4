"""The project's error hierarchy: one root, stable codes, messages safe to show users.

Transport layers (GraphQL `extensions.code`, REST status) map `code` through one table
each; nothing else about an error is transport-specific.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
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


class QueryTooComplex(BadRequest):
    """A GraphQL request whose cost (objects in the answer, renders) is over the limit."""

    code = "QUERY_TOO_COMPLEX"
    status = 400


# --- server-side conditions -------------------------------------------------------------


class StorageUnavailable(PixelWandError):
    """The object store did not answer in time, or refused the connection."""

    code = "STORAGE_UNAVAILABLE"
    status = 503

    def __init__(self, message: str = "storage unavailable") -> None:
        super().__init__(message)


class RenderQueueFull(PixelWandError):
    """Every render's memory is in use and the queue of waiting renders is full or timed out."""

    code = "RENDER_QUEUE_FULL"
    status = 503

    def __init__(self, message: str = "too many images rendering; retry shortly") -> None:
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
        QueryTooComplex,
        StorageUnavailable,
        RenderQueueFull,
        DatabaseUnavailable,
    )
}

STATUS_BY_CODE: dict[str, int] = {code: cls.status for code, cls in ERRORS_BY_CODE.items()}


# OSErrors that mean "could not reach the server", as opposed to a local file problem
# (a full disk or a missing file under local storage is not a database outage).
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EADDRNOTAVAIL,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
    }
)

# asyncpg exceptions (by name: the domain does not import the driver) that mean the
# connection is gone or cannot be made. InternalClientError ("cannot switch to state N;
# another operation is in progress") is what asyncpg raises when a query is sent on a
# connection the server has just closed (a restart, pg_terminate_backend) before the close
# itself has been read: measured in about a third of the queries sent in that window.
_OUTAGE_NAMES = frozenset(
    {
        "InternalClientError",
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "InterfaceError",
        "ConnectionFailureError",
        "TooManyConnectionsError",
        "AdminShutdownError",
        "CrashShutdownError",
        "ClientCannotConnectError",
        "PostgresConnectionError",
    }
)


def _is_outage_itself(exc: BaseException) -> bool:
    from tortoise.exceptions import DBConnectionError

    if isinstance(exc, DBConnectionError | ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(exc, OSError):
        # asyncpg reports every failed address of a host at once as a plain OSError
        # ("Multiple exceptions: ...") without an errno.
        return exc.errno is None or exc.errno in _NETWORK_ERRNOS
    if type(exc).__name__ in _OUTAGE_NAMES:
        return True
    # PostgreSQL's own codes: class 08 (connection exception), the server shutting down,
    # crashed or starting up (57P01-57P03), too many connections (53300).
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and (
        sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03", "53300"}
    )


def is_database_outage(exc: BaseException) -> bool:
    """True for errors that mean the database is unreachable rather than a bad query.

    Follows the explicit cause chain (`raise ... from exc`), as ORMs wrap driver errors.
    """
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if _is_outage_itself(current):
            return True
        current = current.__cause__
        seen += 1
    return False


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
