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


class Conflict(PixelWandError):
    """A write that would change what is already final."""

    code = "CONFLICT"
    status = 409


class RateLimited(PixelWandError):
    """Over the plan's requests/second for this key."""

    code = "RATE_LIMITED"
    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(PixelWandError):
    """A request body or GraphQL document past a server-wide limit (refused while streaming)."""

    code = "PAYLOAD_TOO_LARGE"
    status = 413


class RequestTimeout(PixelWandError):
    """The client stopped sending the request body it announced."""

    code = "REQUEST_TIMEOUT"
    status = 408


class QueryTooComplex(BadRequest):
    """A GraphQL request whose cost (objects in the answer, renders) is over the limit."""

    code = "QUERY_TOO_COMPLEX"
    status = 400


# --- server-side conditions -------------------------------------------------------------


class StorageUnavailable(PixelWandError):
    """The object store is down, timing out, read-only or full."""

    code = "STORAGE_UNAVAILABLE"
    status = 503

    def __init__(self, message: str = "storage unavailable") -> None:
        super().__init__(message)
        _count_outage("storage")


class RenderQueueFull(PixelWandError):
    """Every render's memory is in use and the queue of waiting renders is full or timed out."""

    code = "RENDER_QUEUE_FULL"
    status = 503

    def __init__(self, message: str = "too many images rendering; retry shortly") -> None:
        super().__init__(message)


class DatabaseUnavailable(PixelWandError):
    """The database is down, locked, read-only or timing out."""

    code = "DATABASE_UNAVAILABLE"
    status = 503

    def __init__(self, message: str = "database unavailable") -> None:
        super().__init__(message)
        _count_outage("database")


def _count_outage(backend: str) -> None:
    # Imported here: prometheus-client chooses its multi-process mode when first imported,
    # which must happen after `pixelwand serve` has set it up (errors is imported earlier).
    from pixelwand import metrics

    metrics.backend_errors.labels(backend).inc()


ERRORS_BY_CODE: dict[str, type[PixelWandError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthenticated,
        PaymentRequired,
        Forbidden,
        NotFound,
        Conflict,
        RateLimited,
        PayloadTooLarge,
        RequestTimeout,
        Conflict,
        QueryTooComplex,
        StorageUnavailable,
        RenderQueueFull,
        DatabaseUnavailable,
    )
}

STATUS_BY_CODE: dict[str, int] = {code: cls.status for code, cls in ERRORS_BY_CODE.items()}


# --- lower-level failures → the hierarchy, in one place -----------------------------------
#
# Drivers and libraries report outages in their own types. They are translated here and
# nowhere else, by `map_exceptions()` at the boundaries: the storage backends around their
# own I/O, and the HTTP edge (web/middleware.py) and GraphQL's error formatter
# (schema/errors.py) for what a request met in the database. Anything not recognised here is
# a bug and stays a 500.

# OSErrors that mean "could not reach the server", as opposed to a local file problem.
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

# OSErrors of a local disk that the operator must fix (full, read-only, failing, not
# ours to write): the store is unavailable, not the request wrong.
_DISK_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.EIO,
        errno.EMFILE,
        errno.ENFILE,
        errno.ESTALE,
    }
)

# asyncpg exceptions (by class name: the domain does not import the driver) that mean the
# connection is gone or cannot be made. InternalClientError ("cannot switch to state N;
# another operation is in progress") is what asyncpg raises when a query is sent on a
# connection the server has just closed (a restart, pg_terminate_backend) before the close
# itself has been read: measured in about a third of the queries sent in that window.
_ASYNCPG_OUTAGES = frozenset(
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

# PostgreSQL SQLSTATEs of a server that cannot do the work now, whatever the statement:
# class 08 (connection), 53 (insufficient resources: disk full, out of memory, too many
# connections), 57P01-57P03 (shutting down, crashed, starting up), 57014 (statement
# timeout / cancelled), 55P03 (lock not available), 25006 (read-only transaction: a
# standby, or default_transaction_read_only), 40001/40P01 (serialization failure,
# deadlock: retryable by definition), 58030 (I/O error).
_SQLSTATE_CLASSES = ("08", "53")
_SQLSTATES = frozenset(
    {"57P01", "57P02", "57P03", "57014", "55P03", "25006", "40001", "40P01", "58030"}
)

# SQLite result codes (sqlite3 exceptions carry `sqlite_errorcode`; the low byte is the
# primary code): BUSY and LOCKED (another process holds the lock past the busy timeout),
# READONLY, IOERR, FULL, CANTOPEN, PROTOCOL (a WAL lock race).
_SQLITE_CODES = frozenset({5, 6, 8, 10, 13, 14, 15})
_SQLITE_MESSAGES = (
    "database is locked",
    "database table is locked",
    "readonly database",
    "disk i/o error",
    "database or disk is full",
    "unable to open database",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: explicit causes (`raise ... from exc`) and an exception
    passed as the first argument (Tortoise's `OperationalError(driver_error)`). Not the
    implicit context: a bug raised while handling a timeout is still a bug."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 8:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if current.__cause__ is not None:
            todo.append(current.__cause__)
        if current.args and isinstance(current.args[0], BaseException):
            todo.append(current.args[0])


def _database_fault(exc: BaseException) -> bool:
    from tortoise.exceptions import DBConnectionError

    if isinstance(exc, DBConnectionError | ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(exc, OSError):
        # asyncpg reports every failed address of a host at once as a plain OSError
        # ("Multiple exceptions: ...") without an errno.
        return exc.errno is None or exc.errno in _NETWORK_ERRNOS
    if type(exc).__name__ in _ASYNCPG_OUTAGES:
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(_SQLSTATE_CLASSES) or sqlstate in _SQLSTATES
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_CODES
    if type(exc).__module__ == "sqlite3" or type(exc).__name__ == "OperationalError":
        text = str(exc).lower()
        return any(m in text for m in _SQLITE_MESSAGES)
    return False


def _storage_fault(exc: BaseException) -> bool:
    """What a storage backend's own I/O raised that means "the store cannot do it now"."""
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(exc, OSError):
        return exc.errno is None or exc.errno in _NETWORK_ERRNOS | _DISK_ERRNOS
    return False


def translate(exc: BaseException) -> PixelWandError | None:
    """The project error a lower-level exception stands for; None for a bug.

    Only database faults are recognised here: storage backends translate their own
    failures (a refused connection means the store there, the database anywhere else).
    """
    if isinstance(exc, PixelWandError):
        return exc
    if any(_database_fault(e) for e in _chain(exc)):
        return DatabaseUnavailable()
    return None


def is_database_outage(exc: BaseException) -> bool:
    return isinstance(translate(exc), DatabaseUnavailable)


@contextlib.contextmanager
def map_exceptions(
    fault: type[StorageUnavailable] | type[DatabaseUnavailable] = DatabaseUnavailable,
    also: tuple[type[BaseException], ...] = (),
) -> Iterator[None]:
    """Turn the lower-level failures of one dependency into its project error (httpx's
    `map_exceptions` pattern); project errors and bugs pass unchanged.

    `with map_exceptions(StorageUnavailable, also=(botocore...,)):` wraps a storage
    backend's I/O (`also`: the client library's own connection errors);
    `with map_exceptions():` a block whose database failures become DatabaseUnavailable.
    Logged here, once, as a warning (the request id is on the record).
    """
    try:
        yield
    except PixelWandError:
        raise
    except Exception as exc:
        if fault is StorageUnavailable:
            if not any(isinstance(e, also) or _storage_fault(e) for e in _chain(exc)):
                raise
            mapped: PixelWandError = StorageUnavailable()
        else:
            found = translate(exc)
            if found is None:
                raise
            mapped = found
        log.warning("%s: %r", mapped.message, exc)
        raise mapped from exc


def boundary_error(exc: BaseException, where: str) -> PixelWandError:
    """What a request answers for an exception that reached a boundary (the HTTP edge, a
    GraphQL field), logged there once: a translated fault as a warning, a bug with its
    traceback as the 500 "internal error". The request id is on every record."""
    error = translate(exc)
    if error is None:
        log.error("internal error in %s", where, exc_info=exc)
        return PixelWandError("internal error")
    if error is not exc:  # translated just now; errors raised as such were logged, if at all
        log.warning("%s in %s: %r", error.message, where, exc)
    return error
