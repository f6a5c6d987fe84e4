"""Log records carry the request they belong to; plain text for a terminal, or JSON lines.

The request id, organization and key (display prefix) of the request being served live in
context variables (set by the Edge middleware and the gate), so every log line of a
request — the access line and any error — names the same request id as its
`X-Request-Id` response header. `PIXELWAND_LOG_FORMAT=json` writes one JSON object per
line with the keys DESIGN.md lists (`time`, `level`, `message`, `request_id`, `org_id`,
`key`, `route`, `status`, `duration_ms`) plus `logger` and, for errors, `exception`.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
from collections.abc import Callable

import orjson

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
org_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("org_id", default=None)
key_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("key", default=None)
# The request being served: (method, path, its route template once routed). The template
# is looked up when a line is written, since routing happens after the request begins.
request_var: contextvars.ContextVar[tuple[str, str, Callable[[], str]] | None] = (
    contextvars.ContextVar("request", default=None)
)

# Extra attributes a record may carry (the access log passes them with `extra=`).
_REQUEST_FIELDS = ("route", "status", "duration_ms", "method", "path")


class ContextFilter(logging.Filter):
    """Put the current request's id, organization and key on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.org_id = org_id_var.get()
        record.key = key_var.get()
        request = request_var.get()
        if request is not None:  # an error line names its request's route, as access lines do
            method, path, route = request
            for name, value in (("method", method), ("path", path)):
                if not hasattr(record, name):
                    setattr(record, name, value)
            if not hasattr(record, "route"):
                record.route = route()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        created = dt.datetime.fromtimestamp(record.created, dt.UTC)
        out: dict[str, object] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "org_id": getattr(record, "org_id", None),
            "key": getattr(record, "key", None),
        }
        for name in _REQUEST_FIELDS:
            out[name] = getattr(record, name, None)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class TextFormatter(logging.Formatter):
    """The plain-text line, its line breaks escaped: a decoded request path may hold any
    character (%0A), and must not split a record into lines that read as records of their
    own. A traceback, appended after, keeps its lines."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).replace("\r", "\\r").replace("\n", "\\n")


# libvips reports every step of every render at INFO through pyvips ("VIPS: thumbnailing
# source", ~7,000 lines in 40 minutes of a test server): only its warnings and errors are kept.
QUIETER = {"pyvips": "WARNING"}


def configure(level: str, fmt: str = "text") -> None:
    """One handler on the root logger, in the chosen format; uvicorn's loggers propagate."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    for name, floor in QUIETER.items():
        logging.getLogger(name).setLevel(floor)


def uvicorn_log_config(level: str, fmt: str) -> dict[str, object]:
    """uvicorn's `log_config` for worker processes: the same handler and format."""
    name = "JsonFormatter" if fmt == "json" else "TextFormatter"
    formatter: dict[str, object] = {"()": f"pixelwand.logs.{name}"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "pixelwand.logs.ContextFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["context"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
            **{name: {"level": floor} for name, floor in QUIETER.items()},
        },
    }
