"""/metrics (Prometheus text, behind PIXELWAND_METRICS_TOKEN) and JSON log lines."""

from __future__ import annotations

import dataclasses
import errno
import logging
import re

import orjson

from pixelwand.logs import JsonFormatter, key_var, org_id_var, request_id_var
from tests.conftest import METRICS_TOKEN
from tests.helpers import make_image, upload

AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def _sample(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


async def _scrape(http) -> str:
    r = await http.get("/metrics", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


async def test_metrics_need_the_token(http, app):
    r = await http.get("/metrics")
    assert r.status_code == 401
    r = await http.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    runtime = app.state.runtime
    runtime.settings, saved = (
        dataclasses.replace(runtime.settings, metrics_token=None),
        runtime.settings,
    )
    try:
        r = await http.get("/metrics", headers=AUTH)
    finally:
        runtime.settings = saved
    assert (r.status_code, r.json()) == (404, {"error": "not found"})


async def test_request_durations_by_route_template_and_status(http, tenant):
    before = await _scrape(http)
    for _ in range(3):
        assert (await tenant.get("/api/v1/assets/cnotthereatall000000000000")).status_code == 404
    await http.get("/api/v1/assets")  # 401 at the gate, before routing
    after = await _scrape(http)
    labels = {"http_request_method": "GET", "http_route": "/api/v1/assets/{id}"}
    name = "http_server_request_duration_seconds_count"
    grew = _sample(after, name, **labels, http_response_status_code="404") - _sample(
        before, name, **labels, http_response_status_code="404"
    )
    assert grew == 3
    unauth = {"http_route": "/api/v1/assets", "http_response_status_code": "401"}
    assert _sample(after, name, **unauth) - _sample(before, name, **unauth) == 1
    assert "cnotthereatall" not in after  # raw paths never become labels


async def test_unknown_methods_share_one_label(http):
    """A method is a label value only when HTTP defines it; any other is `_OTHER`
    (OpenTelemetry's rule), so random methods cannot grow the series either."""
    before = await _scrape(http)
    for method in ("FROB", "X1234", "PURGEALL"):
        await http.request(method, "/api/v1/assets")
    after = await _scrape(http)
    name = "http_server_request_duration_seconds_count"
    other = _sample(after, name, http_request_method="_OTHER") - _sample(
        before, name, http_request_method="_OTHER"
    )
    assert other == 3
    assert not any(m in after for m in ("FROB", "X1234", "PURGEALL"))


async def test_rate_limits_renders_and_bytes(http, make_tenant):
    team = await make_tenant(plan="TEAM")
    asset = await upload(team, make_image(), "m.jpg", "image/jpeg")
    before = await _scrape(http)
    r = await team.get(f"/api/v1/assets/{asset['id']}/export-url?format=WEBP&maxWidth=16")
    assert r.status_code == 200, r.text
    statuses = [(await team.get("/api/v1/assets")).status_code for _ in range(8)]
    assert 429 in statuses
    after = await _scrape(http)
    limited = "pixelwand_rate_limited_requests_total"
    assert _sample(after, limited, plan="TEAM") - _sample(before, limited, plan="TEAM") == (
        statuses.count(429)
    )
    renders = "pixelwand_renders_total"
    assert _sample(after, renders, format="WEBP") - _sample(before, renders, format="WEBP") == 1
    assert _sample(after, "pixelwand_stored_bytes_total") > 0


def test_json_log_lines_carry_the_request():
    tokens = [request_id_var.set("r-123"), org_id_var.set("corg"), key_var.set("ak_live_abcd")]
    try:
        record = logging.LogRecord("pixelwand", logging.ERROR, __file__, 1, "boom %s", ("x",), None)
        from pixelwand.logs import ContextFilter

        ContextFilter().filter(record)
        line = JsonFormatter().format(record)
    finally:
        for var, token in zip((request_id_var, org_id_var, key_var), tokens, strict=True):
            var.reset(token)
    data = orjson.loads(line)
    assert data["message"] == "boom x" and data["level"] == "ERROR"
    assert (data["request_id"], data["org_id"], data["key"]) == ("r-123", "corg", "ak_live_abcd")
    assert {"time", "route", "status", "duration_ms"} <= set(data)
    assert data["time"].endswith("Z")


async def test_an_error_line_names_its_requests_id_and_route(tenant, monkeypatch, caplog):
    """A failure inside a request is logged (JSON) with the request id the client saw and
    the route, method and path of that request, as its access line has them."""
    from pixelwand.errors import StorageUnavailable, map_exceptions
    from pixelwand.logs import ContextFilter
    from pixelwand.services import multipart

    async def broken(*args, **kwargs):
        with map_exceptions(StorageUnavailable):  # logs the failure, answers 503
            raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(multipart, "start_upload", broken)
    caplog.handler.addFilter(ContextFilter())
    body = {"mode": "multipart-start", "originalName": "a.mp4", "mimeType": "video/mp4", "size": 9}
    r = await tenant.post("/api/v1/assets", json=body, headers={"X-Request-Id": "err-route-1"})
    assert r.status_code == 503 and r.headers["x-request-id"] == "err-route-1"
    errors = [
        orjson.loads(JsonFormatter().format(rec))
        for rec in caplog.records
        if rec.levelno >= logging.WARNING
    ]
    assert errors, caplog.records
    for line in errors:
        assert line["request_id"] == "err-route-1" and line["org_id"] == tenant.org_id
        assert (line["route"], line["method"], line["path"]) == (
            "/api/v1/assets",
            "POST",
            "/api/v1/assets",
        )


def test_a_text_log_line_cannot_be_split_by_what_a_client_sent():
    """A request path may hold any character once decoded (%0A, %0D): the plain-text
    format keeps one record on one line, so no client can forge a line of its own."""
    from pixelwand.logs import ContextFilter, TextFormatter

    forged = "/x\n2026-12-03 INFO pixelwand.access [admin] GET /api/v1/keys 200\r"
    record = logging.LogRecord(
        "pixelwand.access", logging.INFO, __file__, 1, "GET %s 404", (forged,), None
    )
    ContextFilter().filter(record)
    line = TextFormatter().format(record)
    assert "\n" not in line and "\r" not in line
    assert "GET /x\\n2026-12-03 INFO pixelwand.access" in line
