"""Prometheus metrics, served at /metrics (pixelwand/web/metrics_endpoint.py).

Under `pixelwand serve` every worker process writes its samples to files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multi-process mode; `serve` sets and empties
that directory before the workers start), and /metrics, whichever worker answers it, adds
up all of them. Without that variable (tests, an embedded app) the process's own registry
is used. The request histogram follows OpenTelemetry's HTTP server conventions.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# OpenTelemetry's advisory buckets for http.server.request.duration.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

request_duration = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests.",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=_DURATION_BUCKETS,
)
rate_limited = Counter(
    "pixelwand_rate_limited_requests", "Requests refused with 429, by plan.", ["plan"]
)
renders = Counter("pixelwand_renders", "Images rendered, by output format.", ["format"])
render_seconds = Histogram(
    "pixelwand_render_duration_seconds",
    "Time to render one image (decode, resize, encode), by output format.",
    ["format"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
bytes_stored = Counter(
    "pixelwand_stored_bytes", "Bytes of originals finalized into assets (uploads accepted)."
)
bytes_served = Counter(
    "pixelwand_served_bytes",
    "Bytes the app itself sent: local-storage downloads and ZIP exports, by kind.",
    ["kind"],
)
sweeper_removed = Counter(
    "pixelwand_sweeper_removed", "What the sweeper removed, by kind.", ["kind"]
)
webhook_deliveries = Counter(
    "pixelwand_webhook_deliveries",
    "Webhook delivery attempts, by outcome (succeeded, retried, failed, skipped).",
    ["outcome"],
)
backend_errors = Counter(
    "pixelwand_backend_errors",
    "Requests answered 503 because the database or the object store was unavailable.",
    ["backend"],
)


def exposition() -> tuple[bytes, str]:
    """The current samples in Prometheus' text format, and its content type."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
