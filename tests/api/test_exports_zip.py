"""Batch exports: REST `POST /api/v1/exports` (a streamed ZIP) and GraphQL `createExport`
(a signed link whose GET streams the ZIP).

Black-box: every archive is opened with zipfile and every image entry decoded with pyvips.
Streaming is observed from the client side through a small ASGI transport that hands the body
over chunk by chunk, as a real server would (httpx's own ASGITransport collects the whole body
before it returns the response).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import re
import sys
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import pyvips
from starlette.requests import ClientDisconnect

from tests.helpers import bomb_png as _bomb_png
from tests.helpers import decode as _decode
from tests.helpers import loader as _loader
from tests.helpers import make_image, make_mp4_head, upload
from tests.helpers import truncated_jpeg as _truncated_jpeg
from tests.support.openapi_check import OPENAPI_HOOKS

BASE_URL = "http://testserver"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
_LOADER = {"jpg": "jpegload", "png": "pngload", "webp": "webpload", "avif": "heifload"}

_CREATE_EXPORT = """
mutation X($input: CreateExportInput!) {
  createExport(input: $input) { id url expiresAt assetCount }
}"""


# --- a streaming in-process transport ---------------------------------------------------


class _QueueStream(httpx.AsyncByteStream):
    def __init__(self, chunks: asyncio.Queue, task: asyncio.Task, disconnected: asyncio.Event):
        self._chunks = chunks
        self._task = task
        self._disconnected = disconnected

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self._chunks.get()) is not None:
            yield chunk
        await self._task  # an app failure after the headers surfaces here

    async def aclose(self) -> None:
        self._disconnected.set()
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Runs the ASGI app in a task and passes each body message on as it is sent."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([part async for part in request.stream])
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "server": (url.host, url.port or 80),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
        }
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        started: asyncio.Future = asyncio.get_running_loop().create_future()
        disconnected = asyncio.Event()
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result((message["status"], message.get("headers", [])))
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    chunks.put_nowait(message["body"])
                if not message.get("more_body", False):
                    chunks.put_nowait(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                raise
            finally:
                chunks.put_nowait(None)

        task = asyncio.create_task(run())
        status, headers = await started
        return httpx.Response(
            status, headers=headers, stream=_QueueStream(chunks, task, disconnected)
        )


@pytest.fixture
async def streaming(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=StreamingASGITransport(app),
        base_url=BASE_URL,
        timeout=60,
        event_hooks=OPENAPI_HOOKS,
    ) as client:
        yield client


# --- image makers -----------------------------------------------------------------------


# --- helpers ----------------------------------------------------------------------------


def _open_zip(data: bytes) -> zipfile.ZipFile:
    assert data[:4] == b"PK\x03\x04", data[:16]
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return archive


def _entries(archive: zipfile.ZipFile) -> dict[str, bytes]:
    return {info.filename: archive.read(info) for info in archive.infolist()}


def _assert_safe_name(name: str) -> None:
    assert name and name not in (".", "..")
    for bad in ("/", "\\", ":", "\x00"):
        assert bad not in name, name
    assert not any(ord(c) < 32 for c in name), name


async def _export(tenant, body: Any) -> httpx.Response:
    return await tenant.post("/api/v1/exports", json=body)


async def _export_zip(tenant, asset_ids: list[str], config: dict | None = None):
    body: dict[str, Any] = {"assetIds": asset_ids}
    if config is not None:
        body["config"] = config
    r = await _export(tenant, body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == "application/zip"
    assert r.headers["content-disposition"].lower().startswith("attachment")
    return r, _open_zip(r.content)


def _error(r: httpx.Response, status: int, *needles: str) -> str:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    assert not r.content.startswith(b"PK")
    message = r.json()["error"]
    assert isinstance(message, str) and message
    for needle in needles:
        assert needle.lower() in message.lower(), message
    return message


def _gql_error(body: dict[str, Any], code: str) -> str:
    assert body.get("errors"), body
    codes = [e.get("extensions", {}).get("code") for e in body["errors"]]
    assert codes == [code] * len(codes), body
    return body["errors"][0]["message"]


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _create_export(tenant, asset_ids: list[str], config: dict | None = None) -> dict:
    variables: dict[str, Any] = {"input": {"assetIds": asset_ids}}
    if config is not None:
        variables["input"]["config"] = config
    body = await tenant.gql(_CREATE_EXPORT, variables)
    assert "errors" not in body, body
    return body["data"]["createExport"]


def _fake_id(i: int) -> str:
    return f"c{i:024d}"


# --- contents ---------------------------------------------------------------------------


async def test_mixed_formats_to_webp(tenant):
    png = await upload(tenant, make_image(200, 300, ".png"), "logo.png", "image/png")
    clip_bytes = make_mp4_head(70_000)
    clip = await upload(tenant, clip_bytes, "clip.mp4", "video/mp4")
    jpeg = await upload(tenant, make_image(300, 200), "hero.jpg", "image/jpeg")
    webp = await upload(tenant, make_image(150, 150, ".webp"), "pic.webp", "image/webp")
    small = await upload(tenant, make_image(40, 30), "small.jpg", "image/jpeg")
    ids = [png["id"], clip["id"], jpeg["id"], webp["id"], small["id"]]
    _, archive = await _export_zip(
        tenant, ids, {"format": "webp", "maxWidth": 100, "maxHeight": 100}
    )
    names = [info.filename for info in archive.infolist()]
    assert names == ["logo.webp", "clip.mp4", "hero.webp", "pic.webp", "small.webp"]
    entries = _entries(archive)
    assert entries["clip.mp4"] == clip_bytes
    expected = {
        "logo.webp": (67, 100),
        "hero.webp": (100, 67),
        "pic.webp": (100, 100),
        "small.webp": (40, 30),  # never enlarged
    }
    for name, size in expected.items():
        data = entries[name]
        assert data[:4] == b"RIFF" and data[8:12] == b"WEBP", name
        image = _decode(data)
        assert _loader(image).startswith("webpload"), name
        assert max(image.width, image.height) <= 100
        assert abs(image.width - size[0]) <= 1 and abs(image.height - size[1]) <= 1, (
            name,
            image.width,
            image.height,
        )


async def test_default_config_keeps_each_source_format(tenant):
    sources = [
        (make_image(64, 48, ".jpg"), "a.jpg", "image/jpeg", "a.jpg", "jpg"),
        (make_image(64, 48, ".png"), "b.png", "image/png", "b.png", "png"),
        (make_image(64, 48, ".webp"), "c.webp", "image/webp", "c.webp", "webp"),
        (
            pyvips.Image.new_from_buffer(make_image(64, 48, ".png"), "").gifsave_buffer(),
            "d.gif",
            "image/gif",
            "d.jpg",
            "jpg",
        ),
    ]
    ids = [(await upload(tenant, data, name, mime))["id"] for data, name, mime, _, _ in sources]
    _, archive = await _export_zip(tenant, ids)
    names = [info.filename for info in archive.infolist()]
    assert names == [entry for _, _, _, entry, _ in sources]
    for (_, _, _, _, ext), name in zip(sources, names, strict=True):
        image = _decode(archive.read(name))
        assert _loader(image).startswith(_LOADER[ext]), (name, _loader(image))
        assert (image.width, image.height) == (64, 48)


async def test_crop_and_quality_config(tenant):
    src = make_image(400, 300, ".png")
    a = await upload(tenant, src, "a.png", "image/png")
    b = await upload(tenant, src, "b.png", "image/png")
    _, low = await _export_zip(tenant, [a["id"], b["id"]], {"format": "JPG", "quality": 10})
    _, high = await _export_zip(tenant, [a["id"], b["id"]], {"format": "jpeg", "quality": 95})
    assert low.namelist() == high.namelist() == ["a.jpg", "b.jpg"]
    assert len(low.read("a.jpg")) < len(high.read("a.jpg"))
    _, crop = await _export_zip(
        tenant,
        [a["id"]],
        {"format": "PNG", "maxWidth": 50, "maxHeight": 50, "preserveAspect": False},
    )
    image = _decode(crop.read("a.png"))
    assert _loader(image).startswith("pngload") and (image.width, image.height) == (50, 50)


# --- entry names ------------------------------------------------------------------------


async def test_rename_on_export(tenant):
    asset = await upload(tenant, make_image(60, 40), "hero.jpg", "image/jpeg")
    r = await tenant.patch(f"/api/v1/assets/{asset['id']}", json={"name": "Summer Banner.png"})
    assert r.status_code == 200 and r.json()["name"] == "Summer Banner.png"
    _, original = await _export_zip(tenant, [asset["id"]], {"format": "webp"})
    assert original.namelist() == ["hero.webp"]
    _, default = await _export_zip(
        tenant, [asset["id"]], {"format": "webp", "renameOnExport": False}
    )
    assert default.namelist() == ["hero.webp"]
    _, renamed = await _export_zip(
        tenant, [asset["id"]], {"format": "webp", "renameOnExport": True}
    )
    assert renamed.namelist() == ["Summer Banner.webp"]
    assert _loader(_decode(renamed.read("Summer Banner.webp"))).startswith("webpload")
    _, keep = await _export_zip(tenant, [asset["id"]], {"renameOnExport": True})
    assert keep.namelist() == ["Summer Banner.jpg"]  # the bytes are JPEG: so is the name
    assert _loader(_decode(keep.read("Summer Banner.jpg"))).startswith("jpegload")


async def test_duplicate_names_are_made_unique(tenant):
    ids = []
    for name, fmt, mime in (
        ("hero.jpg", ".jpg", "image/jpeg"),
        ("hero.png", ".png", "image/png"),
        ("hero.jpg", ".jpg", "image/jpeg"),
        ("HERO.webp", ".webp", "image/webp"),
    ):
        ids.append((await upload(tenant, make_image(30, 20, fmt), name, mime))["id"])
    _, archive = await _export_zip(tenant, ids, {"format": "webp"})
    names = archive.namelist()
    assert names[:3] == ["hero.webp", "hero (2).webp", "hero (3).webp"]
    assert len({n.lower() for n in names}) == 4, names
    assert names[3].lower().endswith(".webp") and names[3].lower().startswith("hero")
    for name in names:
        assert _loader(_decode(archive.read(name))).startswith("webpload")


async def test_videos_keep_their_name_and_are_deduplicated_too(tenant):
    a = make_mp4_head(5000)
    b = make_mp4_head(6000)
    first = await upload(tenant, a, "clip.mp4", "video/mp4")
    second = await upload(tenant, b, "clip.mp4", "video/mp4")
    _, archive = await _export_zip(tenant, [first["id"], second["id"]], {"format": "webp"})
    assert archive.namelist() == ["clip.mp4", "clip (2).mp4"]
    assert archive.read("clip.mp4") == a and archive.read("clip (2).mp4") == b


async def test_unsafe_names_are_reduced_to_safe_basenames(tenant):
    originals = [
        "../../etc/passwd.jpg",
        "C:\\Users\\me\\cat.jpg",
        "a:b.jpg",
        "/absolute.jpg",
        "..",
        'we|ird<>"?*.jpg',
    ]
    ids = [
        (await upload(tenant, make_image(20, 20), name, "image/jpeg"))["id"] for name in originals
    ]
    # A rename can be hostile too.
    r = await tenant.patch(f"/api/v1/assets/{ids[0]}", json={"name": "../../../x/evil.png"})
    assert r.status_code == 200
    _, archive = await _export_zip(tenant, ids)
    names = archive.namelist()
    assert len(names) == len(originals) and len({n.lower() for n in names}) == len(names)
    for name in names:
        _assert_safe_name(name)
        assert name.endswith(".jpg"), name
        assert _loader(_decode(archive.read(name))).startswith("jpegload")
    assert names[0] == "passwd.jpg"
    assert names[1] == "cat.jpg"
    assert names[3] == "absolute.jpg"
    _, renamed = await _export_zip(tenant, ids[:1], {"renameOnExport": True})
    assert renamed.namelist() == ["evil.jpg"]


# --- failures inside the archive --------------------------------------------------------


async def test_corrupt_members_are_skipped_and_listed_in_errors_txt(tenant):
    good = await upload(tenant, make_image(80, 60), "good.jpg", "image/jpeg")
    broken = await upload(tenant, _truncated_jpeg(), "broken.jpg", "image/jpeg")
    bomb = await upload(tenant, _bomb_png(), "bomb.png", "image/png")
    clip_bytes = make_mp4_head(3000)
    clip = await upload(tenant, clip_bytes, "clip.mp4", "video/mp4")
    also = await upload(tenant, make_image(50, 50, ".png"), "also.png", "image/png")
    ids = [good["id"], broken["id"], bomb["id"], clip["id"], also["id"]]
    started = time.perf_counter()
    _, archive = await _export_zip(tenant, ids, {"format": "png", "maxWidth": 40})
    assert time.perf_counter() - started < 10
    names = archive.namelist()
    assert names == ["good.png", "clip.mp4", "also.png", "errors.txt"]
    assert archive.read("clip.mp4") == clip_bytes
    for name in ("good.png", "also.png"):
        image = _decode(archive.read(name))
        assert _loader(image).startswith("pngload") and image.width == 40
    errors = archive.read("errors.txt").decode()
    assert broken["id"] in errors or "broken.jpg" in errors, errors
    assert bomb["id"] in errors or "bomb.png" in errors, errors
    assert good["id"] not in errors and also["id"] not in errors


async def test_only_corrupt_members_still_give_a_valid_archive(tenant):
    broken = await upload(tenant, _truncated_jpeg(), "broken.jpg", "image/jpeg")
    _, archive = await _export_zip(tenant, [broken["id"]])
    assert archive.namelist() == ["errors.txt"]
    assert broken["id"] in archive.read("errors.txt").decode()


async def test_a_member_named_errors_txt_does_not_clash_with_the_error_list(tenant):
    """Videos keep their own name, so one may be called errors.txt: the list must not merge
    with it or be shadowed by it."""
    clip_bytes = make_mp4_head(2000)
    clip = await upload(tenant, clip_bytes, "errors.txt", "video/mp4")
    broken = await upload(tenant, _truncated_jpeg(), "broken.jpg", "image/jpeg")
    _, archive = await _export_zip(tenant, [clip["id"], broken["id"]])
    names = archive.namelist()
    assert len(names) == len({n.lower() for n in names}) == 2, names
    assert names[-1] == "errors.txt"
    assert broken["id"] in archive.read("errors.txt").decode()
    assert archive.read(names[0]) == clip_bytes
    assert names[0].endswith(".txt")


# --- validation before the first byte ---------------------------------------------------


async def test_validation_errors_are_json_not_zip(make_tenant):
    tenant, other = await make_tenant(), await make_tenant()
    mine = await upload(tenant, make_image(20, 20), "a.jpg", "image/jpeg")
    theirs = await upload(other, make_image(20, 20), "b.jpg", "image/jpeg")
    gone = await upload(tenant, make_image(20, 20), "c.jpg", "image/jpeg")
    assert (await tenant.delete(f"/api/v1/assets/{gone['id']}")).status_code == 200
    ok = [mine["id"]]
    cases: list[tuple[Any, int, str]] = [
        ({"assetIds": []}, 400, "assetIds"),
        ({"assetIds": [_fake_id(i) for i in range(501)]}, 400, "500"),
        ({"assetIds": [mine["id"], mine["id"]]}, 400, "distinct"),
        ({"assetIds": mine["id"]}, 400, "assetIds"),
        ({"assetIds": {"id": mine["id"]}}, 400, "assetIds"),
        ({}, 400, "assetIds"),
        ({"assetIds": None}, 400, "assetIds"),
        ({"assetIds": ok, "extra": 1}, 400, "extra"),
        ({"assetIds": ok, "config": []}, 400, "config"),
        ({"assetIds": ok, "config": {"lossless": True}}, 400, "lossless"),
        ({"assetIds": ok, "config": {"quality": 0}}, 400, "quality"),
        ({"assetIds": ok, "config": {"quality": 101}}, 400, "quality"),
        ({"assetIds": ok, "config": {"format": "gif"}}, 400, "format"),
        ({"assetIds": ok, "config": {"maxWidth": 0}}, 400, "maxWidth"),
        (
            {"assetIds": ok, "config": {"maxWidth": 10, "preserveAspect": False}},
            400,
            "preserveAspect",
        ),
        ({"assetIds": ok, "config": {"renameOnExport": "yes"}}, 400, "renameOnExport"),
        ({"assetIds": [mine["id"], _fake_id(7)]}, 404, _fake_id(7)),
        ({"assetIds": [mine["id"], "nope"]}, 404, ""),
        ({"assetIds": [mine["id"], gone["id"]]}, 404, gone["id"]),
        ({"assetIds": [mine["id"], theirs["id"]]}, 403, ""),
        ([mine["id"]], 400, ""),
    ]
    for body, status, needle in cases:
        _error(await _export(tenant, body), status, needle)
    r = await tenant.post(
        "/api/v1/exports", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    _error(r, 400)


async def test_exactly_500_ids_pass_the_count_check(tenant):
    ids = [_fake_id(i) for i in range(500)]
    _error(await _export(tenant, {"assetIds": ids}), 404)  # counted fine, then looked up


async def test_scopes(tenant):
    asset = await upload(tenant, make_image(20, 20), "a.jpg", "image/jpeg")
    reader = await tenant.add_key("read")
    _error(await _export(reader, {"assetIds": [asset["id"]]}), 403)
    r = await tenant.http.post("/api/v1/exports", json={"assetIds": [asset["id"]]})
    _error(r, 401)
    writer = await tenant.add_key("write")
    r = await _export(writer, {"assetIds": [asset["id"]]})
    assert r.status_code == 200 and _open_zip(r.content).namelist() == ["a.jpg"]


# --- streaming --------------------------------------------------------------------------


async def _many_images(tenant, count: int, width: int = 1200, height: int = 900) -> list[str]:
    data = make_image(width, height, ".jpg", Q=95)
    keys = [tenant, await tenant.add_key("read,write")]  # spread the rate limit over two keys
    ids = []
    for i in range(count):
        asset = await upload(keys[i % 2], data, f"big-{i:02d}.jpg", "image/jpeg")
        ids.append(asset["id"])
    return ids


async def _timed_stream(client: httpx.AsyncClient, tenant, body: dict) -> dict[str, Any]:
    started = time.perf_counter()
    first = None
    parts = []
    async with client.stream("POST", "/api/v1/exports", json=body, headers=tenant.auth) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].split(";")[0] == "application/zip"
        async for chunk in r.aiter_raw():
            if first is None:
                first = time.perf_counter()
            parts.append(chunk)
    done = time.perf_counter()
    return {
        "first": first - started,
        "total": done - started,
        "chunks": len(parts),
        "body": b"".join(parts),
        "done_at": done,
    }


async def test_zip_streams_before_the_export_is_finished(tenant, streaming):
    ids = await _many_images(tenant, 40)
    result = await _timed_stream(streaming, tenant, {"assetIds": ids, "config": {"format": "png"}})
    assert result["chunks"] > 1
    assert result["first"] < 0.5 * result["total"], result
    archive = _open_zip(result["body"])
    names = archive.namelist()
    assert names == [f"big-{i:02d}.png" for i in range(40)]
    for name in (names[0], names[-1]):
        image = _decode(archive.read(name))
        assert _loader(image).startswith("pngload") and (image.width, image.height) == (1200, 900)


async def test_other_requests_do_not_wait_for_a_running_export(tenant, streaming):
    # 60 images: with 30 a loaded CI run saw the export end 22 ms before the listing did.
    ids = await _many_images(tenant, 60)
    small = await upload(tenant, make_image(64, 48), "small.jpg", "image/jpeg")
    export = asyncio.create_task(
        _timed_stream(streaming, tenant, {"assetIds": ids, "config": {"format": "png"}})
    )
    await asyncio.sleep(0.05)  # the export is under way
    assert not export.done()
    r = await tenant.get("/api/v1/assets", params={"pageSize": 5})
    listed_at = time.perf_counter()
    assert r.status_code == 200 and len(r.json()["items"]) == 5
    r = await tenant.get(f"/api/v1/assets/{small['id']}/export-url", params={"format": "webp"})
    rendered_at = time.perf_counter()
    assert r.status_code == 200, r.text
    result = await export
    assert listed_at < result["done_at"], "GET /api/v1/assets waited for the export"
    assert rendered_at < result["done_at"], "a small export-url waited for the whole export"
    assert len(_open_zip(result["body"]).namelist()) == 60


# --- GraphQL createExport and the signed link -------------------------------------------


async def test_create_export_link_streams_the_same_archive(tenant):
    jpeg = await upload(tenant, make_image(120, 90), "hero.jpg", "image/jpeg")
    png = await upload(tenant, make_image(90, 120, ".png"), "logo.png", "image/png")
    clip_bytes = make_mp4_head(9000)
    clip = await upload(tenant, clip_bytes, "clip.mp4", "video/mp4")
    ids = [jpeg["id"], clip["id"], png["id"]]
    config = {"format": "WEBP", "maxWidth": 60, "maxHeight": 60}
    before = dt.datetime.now(dt.UTC)
    link = await _create_export(tenant, ids, config)
    assert set(link) == {"id", "url", "expiresAt", "assetCount"}
    assert link["assetCount"] == 3
    assert _ISO_MS_Z.match(link["expiresAt"]), link
    expires = dt.datetime.fromisoformat(link["expiresAt"].replace("Z", "+00:00"))
    assert expires > before + dt.timedelta(seconds=60)
    assert link["url"].startswith(f"{BASE_URL}/")
    r = await tenant.http.get(link["url"])  # no API key: the signature is the credential
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == "application/zip"
    assert r.headers["content-disposition"].lower().startswith("attachment")
    archive = _open_zip(r.content)
    assert archive.namelist() == ["hero.webp", "clip.mp4", "logo.webp"]
    assert archive.read("clip.mp4") == clip_bytes
    for name in ("hero.webp", "logo.webp"):
        image = _decode(archive.read(name))
        assert _loader(image).startswith("webpload") and max(image.width, image.height) == 60
    # The REST export of the same request holds the same entries.
    rest_config = {"format": "webp", "maxWidth": 60, "maxHeight": 60}
    _, rest = await _export_zip(tenant, ids, rest_config)
    assert _entries(rest) == _entries(archive)
    # The link can be fetched again while it is valid.
    again = await tenant.http.get(link["url"])
    assert again.status_code == 200 and _entries(_open_zip(again.content)) == _entries(archive)


async def test_an_organization_writes_a_bounded_number_of_archives_at_once(
    tenant, make_tenant, app, monkeypatch
):
    """A link can be fetched again and again: past MAX_ARCHIVES_PER_ORGANIZATION archives
    being written for one organization, the next is 429 with Retry-After (another
    organization is not affected), and each archive gives its slot back however it ends."""
    from pixelwand.models import ExportJob
    from pixelwand.web import exports as web_exports

    monkeypatch.setattr(web_exports, "MAX_ARCHIVES_PER_ORGANIZATION", 2)
    runtime = app.state.runtime
    a = await upload(tenant, make_image(30, 20, ".png"), "a.png", "image/png")
    job = await ExportJob.get(id=(await _create_export(tenant, [a["id"]]))["id"])
    first = await web_exports.stream_job(runtime, job)
    second = await web_exports.stream_job(runtime, job)
    refused = await web_exports.stream_job(runtime, job)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
    assert json.loads(refused.body) == {
        "error": "this organization is already downloading 2 archives at once; "
        "retry when one has finished"
    }
    other = await make_tenant()
    b = await upload(other, make_image(20, 30, ".png"), "b.png", "image/png")
    other_job = await ExportJob.get(id=(await _create_export(other, [b["id"]]))["id"])
    elsewhere = await web_exports.stream_job(runtime, other_job)
    assert elsewhere.status_code == 200
    await _drain(elsewhere)

    body = await _drain(first)  # sent whole: its slot is back
    assert _open_zip(body).namelist() == ["a.png"]
    third = await web_exports.stream_job(runtime, job)
    assert third.status_code == 200
    await _drain(second, disconnect=True)  # the client went away: its slot is back too
    await _drain(third)
    assert dict(web_exports._writing) == {}


async def _drain(response, *, disconnect: bool = False) -> bytes:
    """Run a response as the server would; `disconnect`: the client is gone at the first
    bytes of the body (the send fails, as a closed socket's does)."""
    body = bytearray()

    async def receive():
        await asyncio.sleep(3600)

    async def send(message):
        if disconnect and message["type"] == "http.response.body":
            raise OSError("the client went away")
        body.extend(message.get("body", b""))

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "GET"}
    try:
        await response(scope, receive, send)
    except ClientDisconnect:
        assert disconnect
    return bytes(body)


async def test_create_export_without_config(tenant):
    a = await upload(tenant, make_image(30, 20, ".png"), "a.png", "image/png")
    link = await _create_export(tenant, [a["id"]])
    archive = _open_zip((await tenant.http.get(link["url"])).content)
    assert archive.namelist() == ["a.png"]
    image = _decode(archive.read("a.png"))
    assert _loader(image).startswith("pngload") and (image.width, image.height) == (30, 20)


async def test_create_export_link_is_tamper_proof(tenant, monkeypatch):
    asset = await upload(tenant, make_image(30, 20), "a.jpg", "image/jpeg")
    link = await _create_export(tenant, [asset["id"]])
    query = dict(parse_qsl(urlsplit(link["url"]).query))
    sig = query["sig"]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    for bad in (
        _with_query(link["url"], sig=flipped),
        _with_query(link["url"], exp=str(int(query["exp"]) + 86400)),
        _with_query(link["url"], sig=""),
    ):
        r = await tenant.http.get(bad)
        _error(r, 403)
    other = await _create_export(tenant, [asset["id"]])
    swapped = urlunsplit(urlsplit(other["url"])._replace(query=urlsplit(link["url"]).query))
    _error(await tenant.http.get(swapped), 403)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 2 * 86400)
    r = await tenant.http.get(link["url"])
    assert "expired" in _error(r, 403)


async def test_member_deleted_after_create_export_goes_to_errors_txt(tenant):
    keep = await upload(tenant, make_image(30, 20), "keep.jpg", "image/jpeg")
    drop = await upload(tenant, make_image(30, 20), "drop.jpg", "image/jpeg")
    link = await _create_export(tenant, [keep["id"], drop["id"]])
    assert (await tenant.delete(f"/api/v1/assets/{drop['id']}")).status_code == 200
    r = await tenant.http.get(link["url"])
    assert r.status_code == 200, r.text
    archive = _open_zip(r.content)
    assert archive.namelist() == ["keep.jpg", "errors.txt"]
    assert drop["id"] in archive.read("errors.txt").decode()
    assert _loader(_decode(archive.read("keep.jpg"))).startswith("jpegload")


async def test_create_export_errors(make_tenant):
    tenant, other = await make_tenant(), await make_tenant()
    mine = await upload(tenant, make_image(20, 20), "a.jpg", "image/jpeg")
    theirs = await upload(other, make_image(20, 20), "b.jpg", "image/jpeg")
    cases = [
        ({"assetIds": []}, "BAD_REQUEST"),
        ({"assetIds": [_fake_id(i) for i in range(501)]}, "BAD_REQUEST"),
        ({"assetIds": [mine["id"], mine["id"]]}, "BAD_REQUEST"),
        ({"assetIds": [mine["id"]], "config": {"quality": 0}}, "BAD_REQUEST"),
        ({"assetIds": [mine["id"]], "config": {"format": "gif"}}, "BAD_REQUEST"),
        (
            {"assetIds": [mine["id"]], "config": {"maxWidth": 9, "preserveAspect": False}},
            "BAD_REQUEST",
        ),
        ({"assetIds": [mine["id"], _fake_id(3)]}, "NOT_FOUND"),
        ({"assetIds": [mine["id"], theirs["id"]]}, "FORBIDDEN"),
    ]
    for variables, code in cases:
        body = await tenant.gql(_CREATE_EXPORT, {"input": variables})
        _gql_error(body, code)
        assert not body.get("data") or body["data"].get("createExport") is None
    reader = await tenant.add_key("read")
    _gql_error(await reader.gql(_CREATE_EXPORT, {"input": {"assetIds": [mine["id"]]}}), "FORBIDDEN")


# --- many exports at once (in a subprocess: a deadlock there cannot hang this session) ---

_CONCURRENT_EXPORTS_SCRIPT = r"""
import asyncio, os, sys, tempfile
from pathlib import Path

import httpx

from pixelwand import db
from pixelwand.app import create_app
from pixelwand.config import Settings
from pixelwand.plans import Plan
from pixelwand.services import api_keys, organizations
from tests.api.test_exports_zip import StreamingASGITransport, _open_zip
from tests.helpers import make_image, make_mp4_head, upload
from tests.helpers import bomb_png as _bomb_png
from tests.helpers import decode as _decode
from tests.helpers import loader as _loader
from tests.helpers import truncated_jpeg as _truncated_jpeg
from tests.support.openapi_check import OPENAPI_HOOKS

EXPORTS = int(sys.argv[1])
# This is about thread pools under many archives at once, not the per-organization cap.
from pixelwand.web import exports as web_exports  # noqa: E402

web_exports.MAX_ARCHIVES_PER_ORGANIZATION = EXPORTS


class Client:
    def __init__(self, http, key):
        self.http, self.auth = http, {"Authorization": f"Bearer {key}"}

    async def post(self, url, **kw):
        return await self.http.post(url, headers=self.auth, **kw)

    async def get(self, url, **kw):
        return await self.http.get(url, headers=self.auth, **kw)


async def main():
    tmp = Path(tempfile.mkdtemp(prefix="pixelwand-exports-"))
    settings = Settings.from_env({
        "PIXELWAND_DATA_DIR": str(tmp),
        "PIXELWAND_DATABASE_URL": f"sqlite://{tmp}/pixelwand.db",
        "PIXELWAND_STORAGE_URL": f"local:{tmp}/storage",
        "PIXELWAND_SECRET_KEY": "test-secret",
        "PIXELWAND_PUBLIC_URL": "http://testserver",
        "PIXELWAND_SWEEP_INTERVAL_SECONDS": "0",
    })
    await db.migrate(settings.database_url)
    await db.disconnect()
    app = create_app(settings, run_sweeper=False)
    async with app.router.lifespan_context(app):
        org = await organizations.create_org("many-exports", Plan("ENTERPRISE"))
        _, key = await api_keys.create_key(org.id, "read,write", "test")
        transport = StreamingASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     timeout=60, event_hooks=OPENAPI_HOOKS) as http:
            client = Client(http, key)
            clip_bytes = make_mp4_head(40_000)
            clip = await upload(client, clip_bytes, "clip.mp4", "video/mp4")
            img = await upload(client, make_image(200, 150), "img.jpg", "image/jpeg")
            body = {"assetIds": [img["id"], clip["id"]], "config": {"format": "png"}}

            async def one():
                async with http.stream("POST", "/api/v1/exports", json=body,
                                       headers=client.auth) as r:
                    assert r.status_code == 200
                    data = b"".join([chunk async for chunk in r.aiter_raw()])
                archive = _open_zip(data)
                assert archive.namelist() == ["img.png", "clip.mp4"], archive.namelist()
                assert archive.read("clip.mp4") == clip_bytes

            async def meanwhile():
                await asyncio.sleep(0.2)
                r = await client.get("/api/v1/assets")
                assert r.status_code == 200
                r = await client.get(f"/api/v1/assets/{img['id']}/export-url",
                                     params={"format": "webp"})
                assert r.status_code == 200
                r = await http.get(r.json()["url"])
                assert r.status_code == 200

            try:
                await asyncio.wait_for(
                    asyncio.gather(meanwhile(), *(one() for _ in range(EXPORTS))), 8
                )
            except TimeoutError:
                print("TIMEOUT: exports still running after 8 s", flush=True)
                os._exit(3)
    print("OK", flush=True)
    os._exit(0)


asyncio.run(main())
"""


async def test_many_concurrent_exports_all_complete():
    """16 exports at once (each with a video) all finish, and other requests are served
    meanwhile: no export may hold a shared thread pool hostage while it waits."""
    env = {**os.environ, "PYTHONPATH": str(_REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CONCURRENT_EXPORTS_SCRIPT,
        "16",
        cwd=_REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("the export subprocess hung")
    text = out.decode(errors="replace")
    assert proc.returncode == 0 and "OK" in text, text[-3000:]
