"""Webhooks: endpoints (REST and GraphQL, admin scope), signed events from the outbox,
retries, deliveries shown to the organization, and URLs the service refuses to call."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import socket
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pixelwand.services import webhook_urls
from pixelwand.services.webhook_delivery import (
    CONCURRENCY,
    MAX_ATTEMPTS,
    PER_ENDPOINT,
    DeliveryWorker,
    backoff_seconds,
    sign,
)
from tests.helpers import make_image, upload, without_facts
from tests.support.receiver import Receiver, running_receiver

ALL_EVENTS = [
    "asset.finalized",
    "asset.updated",
    "asset.deleted",
    "collection.created",
    "export.completed",
]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


_path_counter = iter(range(1_000_000))


def _path() -> str:
    return f"/hook/{next(_path_counter)}-{time.monotonic_ns()}"


async def _register(tenant, receiver: Receiver, events=None, **extra) -> tuple[dict, str]:
    path = _path()
    r = await tenant.post(
        "/api/v1/webhooks",
        json={"url": receiver.url(path), "events": events or ALL_EVENTS, **extra},
    )
    assert r.status_code == 201, r.text
    return r.json(), path


def _verify(secret: str, received) -> dict[str, Any]:
    """The documented recipe: HMAC-SHA256 of "<t>.<body>" keyed by the secret."""
    header = received.headers["pixelwand-signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(
        secret.encode(), f"{parts['t']}.".encode() + received.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected), header
    assert abs(int(parts["t"]) - time.time()) < 60
    return received.json()


# --- managing endpoints -------------------------------------------------------------------


async def test_register_list_update_delete(tenant, receiver):
    created, _ = await _register(tenant, receiver, events=["asset.finalized"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert created["events"] == ["asset.finalized"] and created["enabled"] is True
    assert set(created) == {"id", "url", "events", "enabled", "createdAt", "updatedAt", "secret"}

    listed = (await tenant.get("/api/v1/webhooks")).json()["webhooks"]
    assert [w["id"] for w in listed] == [created["id"]]
    assert "secret" not in listed[0]  # shown once

    r = await tenant.patch(
        f"/api/v1/webhooks/{created['id']}",
        json={"enabled": False, "events": ["asset.deleted", "asset.deleted"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["enabled"] is False and r.json()["events"] == ["asset.deleted"]

    r = await tenant.delete(f"/api/v1/webhooks/{created['id']}")
    assert r.json() == {"id": created["id"], "deleted": True}
    assert (await tenant.get("/api/v1/webhooks")).json() == {"webhooks": []}
    r = await tenant.delete(f"/api/v1/webhooks/{created['id']}")
    assert r.status_code == 404


async def test_graphql_surface(tenant, receiver):
    data = await tenant.gql(
        """mutation($u: String!) { createWebhook(input: {url: $u, events: ["asset.deleted"]})
           { secret webhook { id url events enabled } } }""",
        {"u": receiver.url(_path())},
    )
    hook = data["data"]["createWebhook"]["webhook"]
    assert data["data"]["createWebhook"]["secret"].startswith("whsec_")
    data = await tenant.gql("{ webhooks { id events } }")
    assert data["data"]["webhooks"] == [{"id": hook["id"], "events": ["asset.deleted"]}]
    data = await tenant.gql(
        "mutation($id: ID!) { updateWebhook(id: $id, input: {enabled: false}) { enabled } }",
        {"id": hook["id"]},
    )
    assert data["data"]["updateWebhook"] == {"enabled": False}
    data = await tenant.gql(
        "mutation($id: ID!) { deleteWebhook(id: $id) { id deleted } }", {"id": hook["id"]}
    )
    assert data["data"]["deleteWebhook"] == {"id": hook["id"], "deleted": True}


@pytest.mark.parametrize("scopes", ["read", "read,write"])
async def test_admin_scope_is_required(tenant, receiver, scopes):
    other = await tenant.add_key(scopes)
    r = await other.get("/api/v1/webhooks")
    assert (r.status_code, r.json()) == (403, {"error": "this API key lacks the admin scope"})
    r = await other.post("/api/v1/webhooks", json={"url": "not even checked"})
    assert r.status_code == 403  # scope before input
    data = await other.gql("{ webhooks { id } }")
    assert data["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_another_organizations_webhook_is_not_found(make_tenant, receiver):
    a, b = await make_tenant(), await make_tenant()
    hook, _ = await _register(a, receiver)
    for method, url in [
        ("patch", f"/api/v1/webhooks/{hook['id']}"),
        ("delete", f"/api/v1/webhooks/{hook['id']}"),
        ("post", f"/api/v1/webhooks/{hook['id']}/test"),
        ("get", f"/api/v1/webhooks/{hook['id']}/deliveries"),
    ]:
        kwargs = {"json": {"enabled": False}} if method == "patch" else {}
        r = await getattr(b, method)(url, **kwargs)
        assert r.status_code == 404, (method, url, r.text)
    assert (await a.get("/api/v1/webhooks")).json()["webhooks"][0]["enabled"] is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"events": ["asset.finalized"]}, "url is required"),
        ({"url": "http://example.com/x"}, "events is required"),
        ({"url": "ftp://example.com/x", "events": ["asset.deleted"]}, "url must start with"),
        ({"url": "http:///x", "events": ["asset.deleted"]}, "url has no host"),
        ({"url": "http://a b/", "events": ["asset.deleted"]}, "url must not contain spaces"),
        ({"url": "http://u:p@example.com/", "events": ["asset.deleted"]}, "credentials"),
        ({"url": "http://x/" + "a" * 2100, "events": ["asset.deleted"]}, "at most 2048"),
        ({"url": "http://example.com/", "events": []}, "events must be a non-empty list"),
        ({"url": "http://example.com/", "events": "asset.deleted"}, "events must be a list"),
        ({"url": "http://example.com/", "events": ["asset.exploded"]}, "unknown event type"),
        ({"url": "http://example.com/", "events": ["asset.deleted"], "x": 1}, "unknown field"),
        ({"url": 5, "events": ["asset.deleted"]}, "url"),
    ],
)
async def test_bad_registrations_are_400(tenant, body, message):
    r = await tenant.post("/api/v1/webhooks", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.10",
        "172.16.5.5",
        "169.254.169.254",
        "[::1]",
        "0.0.0.0",
        "100.64.0.1",
        "[::ffff:127.0.0.1]",
        "224.0.0.1",
        # IPv6 forms that carry an IPv4 address, reaching it through a gateway on the way:
        # NAT64 (well-known and local-use prefixes), 6to4, IPv4-compatible.
        "[64:ff9b::7f00:1]",
        "[64:ff9b::a9fe:a9fe]",
        "[64:ff9b:1::a00:1]",
        "[2002:7f00:1::]",
        "[2002:a00:1::1]",
        "[::127.0.0.1]",
        "192.0.0.8",  # IETF protocol assignments: Python 3.11 calls it global
        "[::ffff:192.0.0.170]",
    ],
)
async def test_private_destinations_are_refused_unless_allowed(tenant, app, address):
    runtime = app.state.runtime
    strict = dataclasses.replace(runtime.settings, webhook_allow_private=False)
    runtime.settings, saved = strict, runtime.settings
    try:
        r = await tenant.post(
            "/api/v1/webhooks", json={"url": f"http://{address}:8080/", "events": ["asset.deleted"]}
        )
    finally:
        runtime.settings = saved
    assert r.status_code == 400, r.text
    assert "private" in r.json()["error"]
    assert webhook_urls.is_public("93.184.216.34")
    assert webhook_urls.is_public("64:ff9b::5db8:d822")  # NAT64 of 93.184.216.34
    assert webhook_urls.is_public("2002:5db8:d822::1")  # 6to4 of 93.184.216.34
    assert webhook_urls.is_public("2606:2800:220:1:248:1893:25c8:1946")


async def test_at_most_25_endpoints(tenant, receiver):
    for _ in range(25):
        await _register(tenant, receiver, events=["asset.deleted"])
    r = await tenant.post(
        "/api/v1/webhooks", json={"url": receiver.url(), "events": ["asset.deleted"]}
    )
    assert (r.status_code, r.json()["error"]) == (
        400,
        "an organization may have at most 25 webhooks",
    )


async def test_concurrent_registrations_never_pass_25(tenant, receiver):
    """The count and the insert are one step per organization: 40 registrations at once
    (a key each, so none is rate-limited) make exactly 25 (before: 38-40)."""
    keys = [await tenant.add_key("read,write,admin") for _ in range(40)]
    answers = await asyncio.gather(
        *(
            key.post(
                "/api/v1/webhooks", json={"url": receiver.url(_path()), "events": ["asset.deleted"]}
            )
            for key in keys
        )
    )
    assert sorted(r.status_code for r in answers) == [201] * 25 + [400] * 15
    refused = {r.json()["error"] for r in answers if r.status_code == 400}
    assert refused == {"an organization may have at most 25 webhooks"}
    assert len((await tenant.get("/api/v1/webhooks")).json()["webhooks"]) == 25


# --- events -------------------------------------------------------------------------------


async def _event(receiver: Receiver, path: str, secret: str, match) -> dict[str, Any]:
    """The first verified event at `path` that `match` accepts (waiting for it)."""
    for _ in range(400):
        for got in receiver.on(path):
            event = _verify(secret, got)
            if match(event):
                assert got.headers["pixelwand-event-id"] == event["id"]
                return event
        await asyncio.sleep(0.05)
    raise AssertionError(f"no such event at {path}: {[g.json() for g in receiver.on(path)]}")


async def _newest_delivery(tenant, hook_id: str, status: str) -> dict[str, Any]:
    """The endpoint's newest delivery once it has `status` (the worker records an attempt's
    outcome just after the receiver has answered it)."""
    for _ in range(200):
        r = await tenant.get(f"/api/v1/webhooks/{hook_id}/deliveries")
        newest = r.json()["deliveries"][0]
        if newest["status"] == status:
            return newest
        await asyncio.sleep(0.05)
    raise AssertionError(f"delivery never {status}: {newest}")


async def test_asset_events_are_signed_and_carry_the_api_shape(tenant, receiver):
    hook, path = await _register(tenant, receiver)
    secret = hook["secret"]
    asset = await upload(tenant, make_image(), "hero.jpg", "image/jpeg", tags=["a"])
    event = await _event(receiver, path, secret, lambda e: e["type"] == "asset.finalized")
    assert event["id"].startswith("evt_") and event["createdAt"].endswith("Z")
    assert event["data"] == asset  # the snapshot of the finalize, in the API's shape
    read = (await tenant.get(f"/api/v1/assets/{asset['id']}")).json()
    assert set(read) == set(event["data"])
    assert without_facts(read) == without_facts(event["data"])

    r = await tenant.patch(f"/api/v1/assets/{asset['id']}", json={"name": "renamed"})
    updated = r.json()
    event = await _event(
        receiver,
        path,
        secret,
        lambda e: e["type"] == "asset.updated" and e["data"]["name"] == "renamed",
    )
    assert without_facts(event["data"]) == without_facts(updated)

    await tenant.delete(f"/api/v1/assets/{asset['id']}")
    event = await _event(receiver, path, secret, lambda e: e["type"] == "asset.deleted")
    assert event["data"] == {"id": asset["id"]}
    got = receiver.on(path)
    assert len({g.headers["pixelwand-event-id"] for g in got}) == len(got)  # none sent twice


async def test_facts_arriving_send_asset_updated_with_them(tenant, receiver):
    """The facts worker fills contentHash, placeholders and the focal point after finalize;
    subscribers hear of it as an asset.updated carrying the filled asset."""
    hook, path = await _register(tenant, receiver, events=["asset.updated"])
    data = make_image(120, 80)
    asset = await upload(tenant, data, "facts.jpg", "image/jpeg")
    assert asset["contentHash"] is None or asset["contentHash"].startswith("sha256:")
    event = await _event(
        receiver,
        path,
        hook["secret"],
        lambda e: e["data"]["id"] == asset["id"] and e["data"]["blurhash"] is not None,
    )
    assert event["type"] == "asset.updated"
    assert event["data"]["contentHash"] == "sha256:" + hashlib.sha256(data).hexdigest()
    read = (await tenant.get(f"/api/v1/assets/{asset['id']}")).json()
    assert event["data"] == read  # the filled asset, in the API's shape


async def test_collection_and_export_events(tenant, receiver):
    hook, path = await _register(
        tenant, receiver, events=["collection.created", "export.completed"]
    )
    r = await tenant.post("/api/v1/collections", json={"name": "Brand", "color": "#112233"})
    collection = r.json()
    [got] = await receiver.wait_for(path, 1)
    event = _verify(hook["secret"], got)
    assert (event["type"], event["data"]) == ("collection.created", collection)
    # the existing name answers 200 and is no new event
    assert (await tenant.post("/api/v1/collections", json={"name": "Brand"})).status_code == 200

    asset = await upload(tenant, make_image(), "a.jpg", "image/jpeg")  # not subscribed
    r = await tenant.post("/api/v1/exports", json={"assetIds": [asset["id"]]})
    assert r.status_code == 200
    got = await receiver.wait_for(path, 2)
    event = _verify(hook["secret"], got[1])
    assert event["type"] == "export.completed"
    assert event["data"]["assetIds"] == [asset["id"]] and event["data"]["bytes"] == len(r.content)
    await asyncio.sleep(0.5)
    assert len(receiver.on(path)) == 2  # nothing for the finalize, nothing for the 200


async def test_unsubscribed_disabled_and_other_org_endpoints_get_nothing(make_tenant, receiver):
    a, b = await make_tenant(), await make_tenant()
    _, only_deletes = await _register(a, receiver, events=["asset.deleted"])
    disabled, disabled_path = await _register(a, receiver)
    await a.patch(f"/api/v1/webhooks/{disabled['id']}", json={"enabled": False})
    _, b_path = await _register(b, receiver)
    asset = await upload(a, make_image(), "x.jpg", "image/jpeg")
    await a.delete(f"/api/v1/assets/{asset['id']}")
    [got] = await receiver.wait_for(only_deletes, 1)
    assert got.json()["type"] == "asset.deleted"
    await asyncio.sleep(0.5)
    assert receiver.on(disabled_path) == [] and receiver.on(b_path) == []


async def test_failures_are_retried_with_the_same_event_and_shown(tenant, receiver):
    hook, path = await _register(tenant, receiver, events=["collection.created"])
    receiver.scripts[path] = [500, 503, 302]
    await tenant.post("/api/v1/collections", json={"name": "Retry me"})
    got = await receiver.wait_for(path, 4)
    ids = {g.headers["pixelwand-event-id"] for g in got}
    assert len(ids) == 1
    assert [g.headers["pixelwand-delivery-attempt"] for g in got] == ["1", "2", "3", "4"]
    assert all(g.body == got[0].body for g in got)  # byte-identical, re-signed
    assert len({g.headers["pixelwand-signature"] for g in got}) >= 1
    delivery = await _newest_delivery(tenant, hook["id"], "succeeded")
    assert delivery["attempts"] == 4
    assert delivery["responseStatus"] == 200 and delivery["latencyMs"] >= 0
    assert delivery["eventId"] in ids and delivery["eventType"] == "collection.created"
    assert delivery["deliveredAt"] is not None and delivery["nextAttemptAt"] is None


async def test_redirects_are_not_followed(tenant, receiver):
    hook, path = await _register(tenant, receiver, events=["collection.created"])
    receiver.scripts[path] = [307, 200]
    await tenant.post("/api/v1/collections", json={"name": "Redirected"})
    got = await receiver.wait_for(path, 2)
    assert len(got) == 2  # the second attempt is a retry to the same URL, not the Location
    delivery = await _newest_delivery(tenant, hook["id"], "succeeded")
    assert delivery["attempts"] == 2


async def test_test_event(tenant, receiver):
    hook, path = await _register(tenant, receiver, events=["asset.deleted"])
    r = await tenant.post(f"/api/v1/webhooks/{hook['id']}/test")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["webhookId"] == hook["id"] and body["type"] == "webhook.test"
    [got] = await receiver.wait_for(path, 1)
    event = _verify(hook["secret"], got)
    assert event["id"] == body["eventId"] and event["data"] == {"webhookId": hook["id"]}


async def test_a_hanging_endpoint_never_holds_up_the_api(tenant, receiver):
    """The receiver holds every answer until released: the API's requests complete while
    deliveries to it are still hanging."""
    _, path = await _register(tenant, receiver, events=["collection.created"])
    receiver.release.clear()
    receiver.hold.set()
    try:
        for i in range(5):
            r = await tenant.post("/api/v1/collections", json={"name": f"held {i}"})
            assert r.status_code == 201
        held = await receiver.wait_for(path, 1)
        assert all(g.finished == 0.0 for g in held)  # none answered yet
        assert (await tenant.get("/api/v1/assets")).status_code == 200
    finally:
        receiver.hold.clear()
        receiver.release.set()
    await receiver.wait_for(path, 5)


async def test_a_hanging_endpoint_never_holds_up_other_endpoints(make_tenant, receiver):
    """One organization's endpoint hangs with a backlog bigger than the worker's slots;
    another's event goes out while every attempt to the first is still hanging (before
    any of them has timed out), not after the backlog has drained."""
    a, b = await make_tenant(), await make_tenant()
    hung, hung_path = await _register(a, receiver, events=["collection.created"])
    _, fine_path = await _register(b, receiver, events=["collection.created"])
    receiver.release.clear()
    receiver.hold_paths.add(hung_path)
    try:
        for i in range(CONCURRENCY + PER_ENDPOINT):
            r = await a.post("/api/v1/collections", json={"name": f"backlog {i}"})
            assert r.status_code == 201
        await receiver.wait_for(hung_path, PER_ENDPOINT)
        r = await b.post("/api/v1/collections", json={"name": "elsewhere"})
        assert r.status_code == 201
        [got] = await receiver.wait_for(fine_path, 1)
        assert got.json()["data"]["name"] == "elsewhere"
        held = (await a.get(f"/api/v1/webhooks/{hung['id']}/deliveries")).json()["deliveries"]
        assert all(d["attempts"] == 0 for d in held), held  # none has timed out yet
        assert len(receiver.on(hung_path)) == PER_ENDPOINT  # one process: at most 4 at once
    finally:
        receiver.hold_paths.discard(hung_path)
        receiver.release.set()


def test_backoff_doubles_with_jitter_and_spans_about_a_day():
    import random

    rng = random.Random(1)
    waits = [backoff_seconds(n, 30.0, rng) for n in range(1, MAX_ATTEMPTS)]
    assert 24 <= waits[0] <= 36 and 48 <= waits[1] <= 72
    assert max(waits) <= 6 * 3600 * 1.2
    assert 20 * 3600 <= sum(waits) <= 34 * 3600


def test_signature_recipe():
    header = sign("whsec_abc", 1700000000, b'{"a":1}')
    expected = hmac.new(b"whsec_abc", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


async def test_destination_is_checked_again_at_delivery(tenant, receiver, app):
    """Allowed when registered, refused when sent: the worker resolves the host each time."""
    hook, path = await _register(tenant, receiver, events=["collection.created"])
    worker = app.state.runtime.webhook_worker
    saved = worker.settings
    worker.settings = dataclasses.replace(saved, webhook_allow_private=False)
    try:
        await tenant.post("/api/v1/collections", json={"name": "never sent"})
        for _ in range(200):
            r = await tenant.get(f"/api/v1/webhooks/{hook['id']}/deliveries")
            deliveries = r.json()["deliveries"]
            if deliveries and deliveries[0]["attempts"] >= 1:
                break
            await asyncio.sleep(0.05)
    finally:
        worker.settings = saved
    assert "private" in deliveries[0]["error"] and deliveries[0]["responseStatus"] is None
    assert receiver.on(path) == []
    await receiver.wait_for(path, 1)  # allowed again: the retry goes out


def _resolver(*answers: list[str]):
    """A getaddrinfo that answers each call with the next list of addresses (the last repeats)."""
    calls: list[str] = []

    async def getaddrinfo(host, port, **kw):
        calls.append(host)
        addresses = answers[min(len(calls), len(answers)) - 1]
        family = lambda a: socket.AF_INET6 if ":" in a else socket.AF_INET  # noqa: E731
        return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return getaddrinfo, calls


@pytest.mark.parametrize(
    ("url", "address", "host", "sent_to"),
    [
        (
            "https://hooks.example:8443/in?x=1",
            "93.184.216.34",
            "hooks.example:8443",
            "https://93.184.216.34:8443/in?x=1",
        ),
        (
            "http://hooks.example/in",
            "2606:2800:220:1::1",
            "hooks.example",
            "http://[2606:2800:220:1::1]/in",
        ),
    ],
)
async def test_a_delivery_connects_to_the_address_it_vetted(
    app, monkeypatch, url, address, host, sent_to
):
    """DNS rebinding: the name answers a public address to the check and loopback after it.
    The request must go to the vetted address, with the name kept for Host and TLS."""
    getaddrinfo, calls = _resolver([address], ["127.0.0.1"])
    monkeypatch.setattr(webhook_urls, "_getaddrinfo", getaddrinfo)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204, stream=httpx.ByteStream(b""))

    settings = dataclasses.replace(app.state.runtime.settings, webhook_allow_private=False)
    worker = DeliveryWorker(settings, transport=httpx.MockTransport(handler))
    row = types.SimpleNamespace(
        body='{"a":1}', event_id="evt_1", event_type="asset.deleted", attempts=0
    )
    endpoint = types.SimpleNamespace(url=url, secret="whsec_x")
    try:
        succeeded, status, _, error = await worker._attempt(row, endpoint)  # type: ignore[arg-type]
    finally:
        await worker.client.aclose()
    assert (succeeded, status, error) == (True, 204, None)
    assert calls == ["hooks.example"]  # resolved once, by the check
    (request,) = seen
    assert str(request.url) == sent_to
    assert request.headers["host"] == host
    assert request.extensions["sni_hostname"] == "hooks.example"


async def test_a_name_with_any_private_address_is_refused(app, monkeypatch):
    getaddrinfo, _ = _resolver(["93.184.216.34", "10.0.0.7"])
    monkeypatch.setattr(webhook_urls, "_getaddrinfo", getaddrinfo)
    with pytest.raises(webhook_urls.BadRequest, match="private"):
        await webhook_urls.check_destination("https://hooks.example/", allow_private=False)


async def test_a_name_that_never_resolves_is_refused_in_bounded_time(tenant, app, monkeypatch):
    """Registration does not wait on a DNS server that never answers: 400 naming the host."""
    hanging = threading.Event()

    def getaddrinfo(host, *args, **kw):
        hanging.wait(60)
        raise OSError("gave up")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(webhook_urls, "LOOKUP_SECONDS", 0.3)
    runtime = app.state.runtime
    runtime.settings, saved = (
        dataclasses.replace(runtime.settings, webhook_allow_private=False),
        runtime.settings,
    )
    try:
        r = await asyncio.wait_for(
            tenant.post(
                "/api/v1/webhooks",
                json={"url": "https://slow-dns.example/", "events": ["asset.deleted"]},
            ),
            20,
        )
    finally:
        runtime.settings = saved
        hanging.set()
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "url host 'slow-dns.example' did not resolve within 0.3 s"


@pytest.mark.parametrize(
    "url",
    [
        "http://\u2603.net/",  # a name IDNA 2008 refuses (the HTTP client would never send)
        "http://ex\u00admple.com/",  # a soft hyphen
        "http://[v1.x]/",  # an IP literal that is not an address
        "http://hooks.example:0/",  # no port to connect to
    ],
)
async def test_urls_the_client_cannot_send_to_are_400(tenant, receiver, app, monkeypatch, url):
    """Refused when registered, whether private addresses are allowed (nothing resolved)
    or not (the name answers a public address)."""
    getaddrinfo, _ = _resolver(["93.184.216.34"])
    monkeypatch.setattr(webhook_urls, "_getaddrinfo", getaddrinfo)
    runtime = app.state.runtime
    for allow_private in (True, False):
        saved = runtime.settings
        runtime.settings = dataclasses.replace(saved, webhook_allow_private=allow_private)
        try:
            body = {"url": url, "events": ["asset.deleted"]}
            r = await tenant.post("/api/v1/webhooks", json=body)
        finally:
            runtime.settings = saved
        assert r.status_code == 400, (allow_private, r.text)
        assert "url" in r.json()["error"]
    hook, _ = await _register(tenant, receiver, events=["asset.deleted"])
    r = await tenant.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": url})
    assert r.status_code == 400, r.text
    assert (await tenant.get("/api/v1/webhooks")).json()["webhooks"][0]["url"] == hook["url"]


async def test_an_attempt_that_cannot_be_sent_is_a_failed_attempt(app):
    """An endpoint stored before its URL was refusable: the attempt fails with a reason
    (and is retried, then failed), instead of escaping and leaving the delivery leased."""
    worker = DeliveryWorker(app.state.runtime.settings)
    row = types.SimpleNamespace(
        body='{"a":1}', event_id="evt_1", event_type="asset.deleted", attempts=0
    )
    endpoint = types.SimpleNamespace(url="http://\u2603.net/", secret="whsec_x")
    try:
        succeeded, status, _, error = await worker._attempt(row, endpoint)  # type: ignore[arg-type]
    finally:
        await worker.client.aclose()
    assert (succeeded, status) == (False, None)
    assert error and "url" in error.lower()


async def test_a_slow_name_lookup_holds_no_thread_the_api_needs(app, monkeypatch):
    """Lookups of webhook hosts whose DNS never answers (up to the worker's 16 deliveries
    at once) leave the event loop's default executor free: the API's file and image work
    (asyncio.to_thread) goes on."""
    hanging = threading.Event()
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kw):
        if host == "slow-dns.example":
            hanging.wait(60)
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    settings = dataclasses.replace(app.state.runtime.settings, webhook_allow_private=False)
    worker = DeliveryWorker(settings)
    row = types.SimpleNamespace(
        body='{"a":1}', event_id="evt_1", event_type="asset.deleted", attempts=0
    )
    endpoint = types.SimpleNamespace(url="http://slow-dns.example/", secret="whsec_x")
    attempts = [asyncio.create_task(worker._attempt(row, endpoint)) for _ in range(CONCURRENCY)]
    try:
        await asyncio.sleep(0.2)  # the lookups are under way
        other_work = asyncio.to_thread(lambda: "done")
        assert await asyncio.wait_for(other_work, 30) == "done"
    finally:
        hanging.set()
        await asyncio.gather(*attempts)
        await worker.client.aclose()
