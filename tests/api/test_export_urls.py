"""Export URLs: REST `GET /api/v1/assets/{id}/export-url`, GraphQL `exportUrl`,
`Asset.originalUrl`, and the signed rendition URLs they hand out.

Black-box: every output is fetched through its signed URL and decoded with pyvips; names,
`format` fields and Content-Type headers are never trusted on their own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import pyvips

from tests.helpers import bomb_png as _bomb_png
from tests.helpers import decode as _decode
from tests.helpers import loader as _loader
from tests.helpers import make_image, make_mp4_head, upload
from tests.helpers import truncated_jpeg as _truncated_jpeg

_ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# The reference's keys plus what a rendition reports (DESIGN.md "What a rendition reports").
_REFERENCE_SHAPE = {"assetId", "url", "format", "ttlSeconds", "expiresAt", "cached"}
_SHAPE = _REFERENCE_SHAPE | {
    "width",
    "height",
    "bytes",
    "quality",
    "score",
    "perceptual",
}
_MAGIC = {
    "JPEG": lambda b: b[:3] == b"\xff\xd8\xff",
    "PNG": lambda b: b[:8] == b"\x89PNG\r\n\x1a\n",
    "WEBP": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
    "AVIF": lambda b: b[4:8] == b"ftyp" and b[8:12] in (b"avif", b"avis"),
}
_LOADER = {"JPEG": "jpegload", "PNG": "pngload", "WEBP": "webpload", "AVIF": "heifload"}
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "AVIF": "image/avif"}

RED = (255, 0, 0)
BLUE = (0, 0, 255)

_EXPORT_URL_GQL = """
query E($assetId: ID!, $preset: String, $format: String, $quality: Int, $maxWidth: Int,
        $maxHeight: Int, $preserveAspect: Boolean, $ttl: Int) {
  exportUrl(assetId: $assetId, preset: $preset, format: $format, quality: $quality,
            maxWidth: $maxWidth, maxHeight: $maxHeight, preserveAspect: $preserveAspect,
            ttl: $ttl) {
    assetId url format ttlSeconds expiresAt cached
  }
}"""

_ORIGINAL_URL_GQL = "query O($id: ID!, $ttl: Int) { asset(id: $id) { id originalUrl(ttl: $ttl) } }"


# --- image makers -----------------------------------------------------------------------


def _split(width: int = 400, height: int = 300, fmt: str = ".png", **save: Any) -> bytes:
    """Left half red, right half blue: a centre crop must keep both colours."""
    half = width // 2
    left = pyvips.Image.black(half, height).new_from_image(list(RED))
    right = pyvips.Image.black(width - half, height).new_from_image(list(BLUE))
    image = left.join(right, "horizontal").cast("uchar").copy(interpretation="srgb")
    return image.write_to_buffer(fmt, **save)


def _with_alpha(width: int, height: int, transparent_left: bool = True) -> pyvips.Image:
    """Black RGB; the left half fully transparent (alpha 0), the right half opaque."""
    rgb = pyvips.Image.black(width, height, bands=3).cast("uchar")
    x = pyvips.Image.xyz(width, height)[0]
    alpha = (x < width // 2).ifthenelse(0 if transparent_left else 255, 255).cast("uchar")
    return rgb.bandjoin(alpha).copy(interpretation="srgb")


def _oriented_jpeg(orientation: int = 6) -> bytes:
    """A 400x300 stored JPEG (left red, right blue) whose EXIF says to rotate it."""
    image = pyvips.Image.new_from_buffer(_split(fmt=".png"), "").copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return image.jpegsave_buffer(Q=90)


# --- helpers ----------------------------------------------------------------------------


def _pixel(image: pyvips.Image, x: int, y: int) -> tuple[int, ...]:
    return tuple(round(v) for v in image.getpoint(x, y))


def _close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 24) -> bool:
    return len(actual) >= len(expected) and all(
        abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False)
    )


def _has_field(image: pyvips.Image, name: str) -> bool:
    return bool(image.get_typeof(name))


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _export(tenant, asset_id: str, **params: Any) -> httpx.Response:
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
    return await tenant.get(f"/api/v1/assets/{asset_id}/export-url", params=query)


async def _export_ok(tenant, asset_id: str, **params: Any) -> dict[str, Any]:
    r = await _export(tenant, asset_id, **params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == _SHAPE, body
    return body


async def _fetch(tenant, url: str, **kw: Any) -> httpx.Response:
    """GET a signed URL with no API key: the signature is the credential."""
    return await tenant.http.get(url, **kw)


async def _rendition(tenant, asset_id: str, **params: Any) -> tuple[dict[str, Any], bytes]:
    body = await _export_ok(tenant, asset_id, **params)
    r = await _fetch(tenant, body["url"])
    assert r.status_code == 200, r.text
    data = r.content
    assert _MAGIC[body["format"]](data), (body["format"], data[:16])
    return body, data


def _error(r: httpx.Response, status: int, *needles: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    message = r.json()["error"]
    assert isinstance(message, str) and message
    for needle in needles:
        assert needle.lower() in message.lower(), message
    return message


def _gql_error(body: dict[str, Any], code: str) -> str:
    assert body.get("errors"), body
    codes = [e.get("extensions", {}).get("code") for e in body["errors"]]
    assert codes == [code] * len(codes), body
    assert not body.get("data") or body["data"].get("exportUrl") is None, body
    return body["errors"][0]["message"]


def _parse_iso(value: str) -> dt.datetime:
    assert _ISO_MS_Z.match(value), value
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _png_asset(tenant, width: int = 400, height: int = 300) -> dict[str, Any]:
    return await upload(tenant, make_image(width, height, ".png"), "pic.png", "image/png")


# --- response shape ---------------------------------------------------------------------


async def test_response_shape_and_expiry(tenant):
    asset = await upload(tenant, make_image(400, 300), "hero.jpg", "image/jpeg")
    before = dt.datetime.now(dt.UTC)
    body = await _export_ok(tenant, asset["id"], format="webp", maxWidth=200)
    after = dt.datetime.now(dt.UTC)
    assert body["assetId"] == asset["id"]
    assert body["format"] == "WEBP"
    assert body["ttlSeconds"] == 3600
    assert body["cached"] is False
    assert urlsplit(body["url"]).scheme in ("http", "https") and urlsplit(body["url"]).netloc
    expires = _parse_iso(body["expiresAt"])
    lo = before + dt.timedelta(seconds=3600) - dt.timedelta(seconds=2)
    hi = after + dt.timedelta(seconds=3600) + dt.timedelta(seconds=2)
    assert lo <= expires <= hi, (before, expires, after)


async def test_format_is_upper_case_whatever_the_input_case(tenant):
    asset = await _png_asset(tenant, 40, 30)
    for given, expected in (("jpeg", "JPEG"), ("Png", "PNG"), ("webP", "WEBP"), ("jpg", "JPEG")):
        body, data = await _rendition(tenant, asset["id"], format=given)
        assert body["format"] == expected
        assert _loader(_decode(data)).startswith(_LOADER[expected])


# --- dimensions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({"maxWidth": 800}, (400, 300)),  # never enlarges
        ({"maxWidth": 800, "maxHeight": 900}, (400, 300)),
        ({"maxWidth": 200}, (200, 150)),
        ({"maxHeight": 150}, (200, 150)),
        ({"maxWidth": 100, "maxHeight": 100}, (100, 75)),
        ({"maxWidth": 800, "maxHeight": 30}, (40, 30)),
        ({"maxWidth": 200, "preserveAspect": True}, (200, 150)),
        ({"format": "PNG"}, (400, 300)),  # no size at all: the source's own
    ],
)
async def test_preserve_aspect_fits_inside_and_never_enlarges(tenant, params, size):
    asset = await _png_asset(tenant)
    body, data = await _rendition(tenant, asset["id"], **params)
    image = _decode(data)
    assert (image.width, image.height) == size
    assert body["format"] == "PNG"  # no format asked: the source's own


@pytest.mark.parametrize("size", [(100, 100), (300, 100), (60, 200), (800, 100)])
async def test_crop_gives_the_exact_size_around_the_centre(tenant, size):
    asset = await upload(tenant, _split(), "split.png", "image/png")
    width, height = size
    _, data = await _rendition(
        tenant, asset["id"], format="PNG", maxWidth=width, maxHeight=height, preserveAspect=False
    )
    image = _decode(data)
    assert (image.width, image.height) == size
    # The source's left half is red, its right half blue: a centred crop keeps both.
    assert _close(_pixel(image, 1, height // 2), RED), _pixel(image, 1, height // 2)
    assert _close(_pixel(image, width - 2, height // 2), BLUE), _pixel(image, width - 2, 0)


@pytest.mark.parametrize("params", [{"maxWidth": 100}, {"maxHeight": 100}, {}])
async def test_crop_needs_both_dimensions(tenant, params):
    asset = await _png_asset(tenant, 40, 30)
    r = await _export(tenant, asset["id"], preserveAspect=False, **params)
    _error(r, 400)


# --- formats ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "AVIF"])
async def test_each_output_format_decodes_as_itself(tenant, fmt):
    asset = await upload(tenant, make_image(120, 90), "hero.jpg", "image/jpeg")
    body = await _export_ok(tenant, asset["id"], format=fmt.lower(), maxWidth=60)
    assert body["format"] == fmt
    r = await _fetch(tenant, body["url"])
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == _MIME[fmt]
    assert _MAGIC[fmt](r.content), r.content[:16]
    image = _decode(r.content)
    assert _loader(image).startswith(_LOADER[fmt]), _loader(image)
    assert (image.width, image.height) == (60, 45)


async def test_quality_changes_the_bytes(tenant):
    asset = await upload(tenant, make_image(400, 300, ".png"), "q.png", "image/png")
    low, low_data = await _rendition(tenant, asset["id"], format="JPEG", quality=20)
    high, high_data = await _rendition(tenant, asset["id"], format="JPEG", quality=95)
    assert low["cached"] is False and high["cached"] is False
    assert len(low_data) < len(high_data)
    assert _decode(low_data).width == _decode(high_data).width == 400


@pytest.mark.parametrize(
    ("fmt", "mime", "expected"),
    [
        (".png", "image/png", "PNG"),
        (".webp", "image/webp", "WEBP"),
        (".jpg", "image/jpeg", "JPEG"),
        (".avif", "image/avif", "AVIF"),
    ],
)
async def test_without_format_the_source_format_is_kept(tenant, fmt, mime, expected):
    asset = await upload(tenant, make_image(200, 100, fmt), f"src{fmt}", mime)
    body, data = await _rendition(tenant, asset["id"], maxWidth=100)
    assert body["format"] == expected
    image = _decode(data)
    assert _loader(image).startswith(_LOADER[expected])
    assert (image.width, image.height) == (100, 50)


async def test_gif_source_becomes_jpeg_when_opaque(tenant):
    gif = pyvips.Image.new_from_buffer(_split(100, 80), "").gifsave_buffer()
    asset = await upload(tenant, gif, "anim.gif", "image/gif")
    body, data = await _rendition(tenant, asset["id"], maxWidth=50)
    assert body["format"] == "JPEG"
    image = _decode(data)
    assert _loader(image).startswith("jpegload")
    assert (image.width, image.height) == (50, 40)
    assert _close(_pixel(image, 2, 20), RED, 40) and _close(_pixel(image, 47, 20), BLUE, 40)


async def test_gif_source_becomes_png_when_transparent(tenant):
    gif = _with_alpha(100, 80).gifsave_buffer()
    asset = await upload(tenant, gif, "clear.gif", "image/gif")
    body, data = await _rendition(tenant, asset["id"], maxWidth=50)
    assert body["format"] == "PNG"
    image = _decode(data)
    assert _loader(image).startswith("pngload")
    assert image.hasalpha()
    assert _pixel(image, 2, 20)[3] == 0 and _pixel(image, 47, 20)[3] == 255


async def test_opaque_gif_quality_is_not_ignored(tenant):
    """An opaque GIF exports as JPEG: two qualities are two different renditions."""
    gif = pyvips.Image.new_from_buffer(make_image(300, 200, ".png"), "").gifsave_buffer()
    asset = await upload(tenant, gif, "q.gif", "image/gif")
    low, low_data = await _rendition(tenant, asset["id"], quality=20)
    high, high_data = await _rendition(tenant, asset["id"], quality=95)
    assert low["format"] == high["format"] == "JPEG"
    assert low["cached"] is False
    assert high["cached"] is False, "quality 95 answered with the quality-20 rendition"
    assert len(low_data) < len(high_data)


@pytest.mark.parametrize(("alpha", "expected"), [(False, "JPEG"), (True, "PNG")])
async def test_tiff_source(tenant, alpha, expected):
    image = _with_alpha(120, 80) if alpha else pyvips.Image.new_from_buffer(_split(120, 80), "")
    asset = await upload(tenant, image.tiffsave_buffer(), "scan.tiff", "image/tiff")
    body, data = await _rendition(tenant, asset["id"], maxWidth=60)
    assert body["format"] == expected
    out = _decode(data)
    assert _loader(out).startswith(_LOADER[expected])
    assert (out.width, out.height) == (60, 40)
    assert bool(out.hasalpha()) is alpha


# --- orientation, colour, metadata ------------------------------------------------------


async def test_exif_orientation_is_applied(tenant):
    source = _oriented_jpeg(6)
    stored = _decode(source)
    assert (stored.width, stored.height) == (400, 300) and stored.get("orientation") == 6
    upright = stored.autorot()
    assert (upright.width, upright.height) == (300, 400)
    asset = await upload(tenant, source, "turned.jpg", "image/jpeg")
    for params in ({"format": "PNG"}, {"format": "PNG", "maxHeight": 200}):
        _, data = await _rendition(tenant, asset["id"], **params)
        out = _decode(data)
        scale = out.height / 400
        assert (out.width, out.height) == (round(300 * scale), round(400 * scale))
        # The output looks like the upright image, not like the stored pixels.
        for fx, fy in ((0.5, 0.1), (0.5, 0.9)):
            want = _pixel(upright, int(fx * 299), int(fy * 399))
            got = _pixel(out, int(fx * (out.width - 1)), int(fy * (out.height - 1)))
            assert _close(got, want[:3], 40), (fx, fy, got, want)
        assert not _has_field(out, "orientation") or out.get("orientation") == 1


async def test_transparent_png_to_jpeg_is_flattened_on_white(tenant):
    png = _with_alpha(100, 60).pngsave_buffer()
    asset = await upload(tenant, png, "logo.png", "image/png")
    _, data = await _rendition(tenant, asset["id"], format="JPEG", quality=95)
    image = _decode(data)
    assert image.bands == 3
    assert _close(_pixel(image, 10, 30), (255, 255, 255), 8), _pixel(image, 10, 30)
    assert _close(_pixel(image, 90, 30), (0, 0, 0), 8), _pixel(image, 90, 30)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
async def test_metadata_is_stripped(tenant, fmt):
    source = pyvips.Image.new_from_buffer(make_image(200, 100), "").copy()
    source.set_type(pyvips.GValue.gint_type, "orientation", 1)
    source.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "Secret Person (1, ASCII, 14)")
    data = source.jpegsave_buffer(keep="all")
    assert _has_field(_decode(data), "exif-data")
    asset = await upload(tenant, data, "meta.jpg", "image/jpeg")
    _, out_data = await _rendition(tenant, asset["id"], format=fmt, maxWidth=100)
    out = _decode(out_data)
    for field in ("exif-data", "xmp-data", "iptc-data"):
        assert not _has_field(out, field), field
    assert b"Secret Person" not in out_data


# --- caching and presets ----------------------------------------------------------------


async def test_second_identical_request_is_cached(tenant):
    asset = await upload(tenant, make_image(300, 200), "hero.jpg", "image/jpeg")
    first, first_data = await _rendition(tenant, asset["id"], format="WEBP", maxWidth=150)
    assert first["cached"] is False
    second, second_data = await _rendition(tenant, asset["id"], format="WEBP", maxWidth=150)
    assert second["cached"] is True
    assert second_data == first_data
    third, third_data = await _rendition(tenant, asset["id"], format="webp", maxWidth=150, ttl=120)
    assert third["cached"] is True and third["ttlSeconds"] == 120
    assert third_data == first_data
    other, other_data = await _rendition(tenant, asset["id"], format="WEBP", maxWidth=100)
    assert other["cached"] is False
    assert _decode(other_data).width == 100


async def test_renditions_are_per_asset(tenant):
    a = await upload(tenant, make_image(300, 200), "a.jpg", "image/jpeg")
    b = await upload(tenant, _split(300, 200, ".jpg"), "b.jpg", "image/jpeg")
    _, a_data = await _rendition(tenant, a["id"], format="PNG", maxWidth=100)
    body, b_data = await _rendition(tenant, b["id"], format="PNG", maxWidth=100)
    assert body["cached"] is False
    assert a_data != b_data


async def test_preset_export_and_upsert_is_never_stale(tenant):
    asset = await upload(tenant, make_image(400, 300), "hero.jpg", "image/jpeg")
    preset = {"name": "thumb", "format": "webp", "quality": 80, "maxWidth": 200}
    r = await tenant.post("/api/v1/export-presets", json=preset)
    assert r.status_code == 201, r.text
    body, data = await _rendition(tenant, asset["id"], preset="thumb")
    assert body["format"] == "WEBP" and body["cached"] is False
    image = _decode(data)
    assert _loader(image).startswith("webpload") and (image.width, image.height) == (200, 150)
    again, _ = await _rendition(tenant, asset["id"], preset="thumb")
    assert again["cached"] is True

    # Same name, new parameters: the next export renders them, never the old rendition.
    preset = {
        "name": "thumb",
        "format": "PNG",
        "maxWidth": 100,
        "maxHeight": 100,
        "preserveAspect": False,
    }
    r = await tenant.post("/api/v1/export-presets", json=preset)
    assert r.status_code == 200, r.text
    body, data = await _rendition(tenant, asset["id"], preset="thumb")
    assert body["format"] == "PNG" and body["cached"] is False
    image = _decode(data)
    assert _loader(image).startswith("pngload") and (image.width, image.height) == (100, 100)


async def test_preset_and_inline_conflicts(tenant):
    asset = await _png_asset(tenant, 40, 30)
    r = await tenant.post("/api/v1/export-presets", json={"name": "p", "format": "PNG"})
    assert r.status_code == 201
    _error(await _export(tenant, asset["id"], preset="p", maxWidth=10), 400)
    _error(await _export(tenant, asset["id"], preset="p", format="PNG"), 400)
    _error(await _export(tenant, asset["id"]), 400)
    _error(await _export(tenant, asset["id"], ttl=120), 400)
    _error(await _export(tenant, asset["id"], preset="nope"), 404)


async def test_presets_are_per_org(make_tenant):
    alice, bob = await make_tenant(), await make_tenant()
    r = await alice.post("/api/v1/export-presets", json={"name": "mine", "format": "PNG"})
    assert r.status_code == 201
    asset = await _png_asset(bob, 40, 30)
    _error(await _export(bob, asset["id"], preset="mine"), 404)


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"quality": 0}, "quality"),
        ({"quality": 101}, "quality"),
        ({"quality": "abc"}, "quality"),
        ({"format": "GIF"}, "format"),
        ({"format": "heic"}, "format"),
        ({"maxWidth": "abc"}, "maxWidth"),
        ({"maxWidth": 0}, "maxWidth"),
        ({"maxHeight": 16385}, "maxHeight"),
        ({"maxWidth": 10, "preserveAspect": "maybe"}, "preserveAspect"),
        ({"format": "PNG", "ttl": "soon"}, "ttl"),
    ],
)
async def test_bad_values_are_400(tenant, params, field):
    asset = await _png_asset(tenant, 40, 30)
    _error(await _export(tenant, asset["id"], **params), 400, field)


@pytest.mark.parametrize("ttl", [59, 86401, 0, -1])
async def test_ttl_out_of_range_is_400(tenant, ttl):
    asset = await _png_asset(tenant, 40, 30)
    _error(await _export(tenant, asset["id"], format="PNG", ttl=ttl), 400, "ttl")


@pytest.mark.parametrize(("ttl", "expected"), [(60, 60), (86400, 86400), (None, 3600)])
async def test_ttl_in_range(tenant, ttl, expected):
    asset = await _png_asset(tenant, 40, 30)
    params = {"format": "PNG"} if ttl is None else {"format": "PNG", "ttl": ttl}
    before = time.time()
    body = await _export_ok(tenant, asset["id"], **params)
    assert body["ttlSeconds"] == expected
    expires = _parse_iso(body["expiresAt"]).timestamp()
    assert before + expected - 2 <= expires <= time.time() + expected + 2
    r = await _fetch(tenant, body["url"])
    assert r.status_code == 200
    assert _decode(r.content).width == 40


async def test_video_asset_is_400(tenant):
    video = await upload(tenant, make_mp4_head(), "clip.mp4", "video/mp4")
    _error(await _export(tenant, video["id"], format="PNG"), 400)


async def test_unknown_and_malformed_ids_are_404(tenant):
    _error(await _export(tenant, "c" + "0" * 24, format="PNG"), 404)
    _error(await _export(tenant, "not-an-id", format="PNG"), 404)


async def test_other_orgs_asset_is_403(make_tenant):
    alice, mallory = await make_tenant(), await make_tenant()
    asset = await _png_asset(alice, 40, 30)
    _error(await _export(mallory, asset["id"], format="PNG"), 403)


async def test_read_scope_is_enough_and_a_key_is_needed(tenant):
    asset = await _png_asset(tenant, 40, 30)
    reader = await tenant.add_key("read")
    _, data = await _rendition(reader, asset["id"], format="PNG", maxWidth=20)
    assert _decode(data).width == 20
    r = await tenant.http.get(f"/api/v1/assets/{asset['id']}/export-url?format=PNG")
    assert r.status_code == 401
    r = await tenant.http.get(
        f"/api/v1/assets/{asset['id']}/export-url?format=PNG",
        headers={"Authorization": "Bearer ak_live_" + "x" * 40},
    )
    assert r.status_code == 401


# --- single flight ----------------------------------------------------------------------


async def test_concurrent_identical_requests_render_once(tenant):
    asset = await upload(tenant, make_image(600, 400), "hero.jpg", "image/jpeg")
    responses = await asyncio.gather(
        *(_export(tenant, asset["id"], format="WEBP", maxWidth=300) for _ in range(5))
    )
    assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
    bodies = [r.json() for r in responses]
    assert sorted(b["cached"] for b in bodies) == [False, True, True, True, True]
    blobs = [(await _fetch(tenant, b["url"])).content for b in bodies]
    assert all(blob == blobs[0] for blob in blobs)
    image = _decode(blobs[0])
    assert _loader(image).startswith("webpload") and image.width == 300


async def test_concurrent_requests_for_a_broken_image_all_fail_cleanly(tenant):
    asset = await upload(tenant, _truncated_jpeg(), "broken.jpg", "image/jpeg")
    responses = await asyncio.gather(
        *(_export(tenant, asset["id"], format="PNG") for _ in range(4))
    )
    for r in responses:
        _error(r, 400, "could not decode image")


# --- the signed URL ---------------------------------------------------------------------


async def test_signed_url_etag_and_conditional_get(tenant):
    asset = await upload(tenant, make_image(200, 100), "hero.jpg", "image/jpeg")
    body = await _export_ok(tenant, asset["id"], format="PNG", ttl=600)
    r = await _fetch(tenant, body["url"])
    assert r.status_code == 200
    etag = r.headers["etag"]
    assert re.fullmatch(r'(W/)?"[^"]+"', etag), etag
    assert int(r.headers["content-length"]) == len(r.content)
    again = await _fetch(tenant, body["url"], headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    other = await _fetch(tenant, body["url"], headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == r.content
    # A later export URL for the same rendition names the same bytes, so the same ETag.
    later = await _export_ok(tenant, asset["id"], format="PNG", ttl=900)
    assert later["cached"] is True
    r2 = await _fetch(tenant, later["url"])
    assert r2.headers["etag"] == etag and r2.content == r.content


async def test_signed_url_cache_control(tenant):
    """DESIGN: the GET is answered with `Cache-Control: private, max-age=<remaining ttl>`."""
    asset = await upload(tenant, make_image(200, 100), "hero.jpg", "image/jpeg")
    for ttl in (600, 86400):
        body = await _export_ok(tenant, asset["id"], format="PNG", ttl=ttl)
        r = await _fetch(tenant, body["url"])
        assert r.status_code == 200
        assert "cache-control" in r.headers, dict(r.headers)
        max_age = int(re.fullmatch(r"private, max-age=(\d+)", r.headers["cache-control"])[1])
        assert ttl - 10 <= max_age <= ttl


@pytest.mark.backends("sqlite-local")  # the app's own file server (S3 answers for itself)
async def test_if_none_match_list_is_honoured(tenant):
    """RFC 9110 13.1.2: If-None-Match is a list, compared weakly."""
    asset = await _png_asset(tenant, 40, 30)
    body = await _export_ok(tenant, asset["id"], format="PNG")
    etag = (await _fetch(tenant, body["url"])).headers["etag"]
    for header in (f'"other", {etag}', f"W/{etag}", "*"):
        r = await _fetch(tenant, body["url"], headers={"If-None-Match": header})
        assert r.status_code == 304, header


def _param(query: dict[str, str], *names: str) -> str:
    """The first of `names` the URL carries (local storage's names, then S3's)."""
    return next(name for name in names if name in query)


async def test_altered_signed_url_is_403(tenant):
    asset = await _png_asset(tenant, 40, 30)
    body = await _export_ok(tenant, asset["id"], format="PNG")
    assert (await _fetch(tenant, body["url"])).status_code == 200
    query = dict(parse_qsl(urlsplit(body["url"]).query))
    sig_name = _param(query, "sig", "X-Amz-Signature")
    sig = query[sig_name]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    r = await _fetch(tenant, _with_query(body["url"], **{sig_name: flipped}))
    assert r.status_code == 403
    exp_name = _param(query, "exp", "X-Amz-Expires")
    longer = str(int(query[exp_name]) + 3600)
    r = await _fetch(tenant, _with_query(body["url"], **{exp_name: longer}))
    assert r.status_code == 403
    ct_name = _param(query, "ct", "response-content-type")
    r = await _fetch(tenant, _with_query(body["url"], **{ct_name: "text/html"}))
    assert r.status_code == 403
    # A valid signature for one rendition does not open another.
    other = await _export_ok(tenant, asset["id"], format="JPEG")
    swapped = urlunsplit(urlsplit(other["url"])._replace(query=urlsplit(body["url"]).query))
    assert (await _fetch(tenant, swapped)).status_code == 403


@pytest.mark.backends("sqlite-local")  # S3 checks expiry against its own clock
async def test_expired_signed_url_is_403(tenant, monkeypatch):
    asset = await _png_asset(tenant, 40, 30)
    body = await _export_ok(tenant, asset["id"], format="PNG", ttl=60)
    assert (await _fetch(tenant, body["url"])).status_code == 200
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120)
    r = await _fetch(tenant, body["url"])
    assert r.status_code == 403
    assert "expired" in r.json()["error"]


async def test_deleted_asset_has_no_export_url(tenant):
    asset = await upload(tenant, make_image(80, 60), "gone.jpg", "image/jpeg")
    await _export_ok(tenant, asset["id"], format="PNG")
    assert (await tenant.delete(f"/api/v1/assets/{asset['id']}")).status_code == 200
    _error(await _export(tenant, asset["id"], format="PNG"), 404)
    body = await tenant.gql(_EXPORT_URL_GQL, {"assetId": asset["id"], "format": "PNG"})
    _gql_error(body, "NOT_FOUND")


@pytest.mark.backends("sqlite-local")  # a presigned S3 URL lives until the sweeper runs
async def test_deleted_assets_urls_stop_working(tenant):
    asset = await upload(tenant, make_image(80, 60), "gone.jpg", "image/jpeg")
    body = await _export_ok(tenant, asset["id"], format="PNG")
    original = (await tenant.gql(_ORIGINAL_URL_GQL, {"id": asset["id"]}))["data"]["asset"]
    assert (await _fetch(tenant, body["url"])).status_code == 200
    assert (await _fetch(tenant, original["originalUrl"])).status_code == 200
    r = await tenant.delete(f"/api/v1/assets/{asset['id']}")
    assert r.status_code == 200
    assert (await _fetch(tenant, body["url"])).status_code == 404
    assert (await _fetch(tenant, original["originalUrl"])).status_code == 404
    _error(await _export(tenant, asset["id"], format="PNG"), 404)


# --- GraphQL ----------------------------------------------------------------------------


async def test_graphql_export_url(tenant):
    asset = await upload(tenant, make_image(400, 300), "hero.jpg", "image/jpeg")
    variables = {"assetId": asset["id"], "format": "avif", "maxWidth": 100, "ttl": 300}
    body = await tenant.gql(_EXPORT_URL_GQL, variables)
    assert "errors" not in body, body
    result = body["data"]["exportUrl"]
    assert set(result) == _REFERENCE_SHAPE  # what the query selects
    assert result["assetId"] == asset["id"] and result["format"] == "AVIF"
    assert result["ttlSeconds"] == 300 and result["cached"] is False
    expires = _parse_iso(result["expiresAt"]).timestamp()
    assert abs(expires - (time.time() + 300)) < 5
    r = await _fetch(tenant, result["url"])
    assert r.status_code == 200 and _MAGIC["AVIF"](r.content)
    image = _decode(r.content)
    assert _loader(image).startswith("heifload") and (image.width, image.height) == (100, 75)
    # REST and GraphQL share renditions.
    rest = await _export_ok(tenant, asset["id"], format="AVIF", maxWidth=100)
    assert rest["cached"] is True
    assert (await _fetch(tenant, rest["url"])).content == r.content


async def test_graphql_export_url_with_preset(tenant):
    asset = await upload(tenant, make_image(400, 300), "hero.jpg", "image/jpeg")
    r = await tenant.post(
        "/api/v1/export-presets",
        json={
            "name": "sq",
            "format": "JPEG",
            "maxWidth": 64,
            "maxHeight": 64,
            "preserveAspect": False,
        },
    )
    assert r.status_code == 201
    body = await tenant.gql(_EXPORT_URL_GQL, {"assetId": asset["id"], "preset": "sq"})
    result = body["data"]["exportUrl"]
    assert result["format"] == "JPEG" and result["ttlSeconds"] == 3600
    image = _decode((await _fetch(tenant, result["url"])).content)
    assert _loader(image).startswith("jpegload") and (image.width, image.height) == (64, 64)


async def test_graphql_export_url_errors(make_tenant):
    tenant, other = await make_tenant(), await make_tenant()
    asset = await _png_asset(tenant, 40, 30)
    foreign = await _png_asset(other, 40, 30)
    video = await upload(tenant, make_mp4_head(), "clip.mp4", "video/mp4")
    await tenant.post("/api/v1/export-presets", json={"name": "p", "format": "PNG"})
    cases = [
        ({"assetId": asset["id"], "format": "GIF"}, "BAD_REQUEST"),
        ({"assetId": asset["id"], "quality": 0}, "BAD_REQUEST"),
        ({"assetId": asset["id"], "maxWidth": 10, "preserveAspect": False}, "BAD_REQUEST"),
        ({"assetId": asset["id"]}, "BAD_REQUEST"),
        ({"assetId": asset["id"], "preset": "p", "quality": 50}, "BAD_REQUEST"),
        ({"assetId": asset["id"], "format": "PNG", "ttl": 59}, "BAD_REQUEST"),
        ({"assetId": asset["id"], "format": "PNG", "ttl": 86401}, "BAD_REQUEST"),
        ({"assetId": video["id"], "format": "PNG"}, "BAD_REQUEST"),
        ({"assetId": asset["id"], "preset": "missing"}, "NOT_FOUND"),
        ({"assetId": "c" + "1" * 24, "format": "PNG"}, "NOT_FOUND"),
        ({"assetId": foreign["id"], "format": "PNG"}, "FORBIDDEN"),
    ]
    for variables, code in cases:
        _gql_error(await tenant.gql(_EXPORT_URL_GQL, variables), code)


async def test_graphql_export_url_needs_read_scope(tenant):
    asset = await _png_asset(tenant, 40, 30)
    writer = await tenant.add_key("write")
    body = await writer.gql(_EXPORT_URL_GQL, {"assetId": asset["id"], "format": "PNG"})
    _gql_error(body, "FORBIDDEN")


async def test_original_url_serves_the_exact_original(tenant, backend):
    clip = make_mp4_head(50_000)
    video = await upload(tenant, clip, "clip.mp4", "video/mp4")
    jpeg = make_image(120, 80)
    image = await upload(tenant, jpeg, "photo.jpg", "image/jpeg")
    for asset, data, mime in ((video, clip, "video/mp4"), (image, jpeg, "image/jpeg")):
        body = await tenant.gql(_ORIGINAL_URL_GQL, {"id": asset["id"], "ttl": 120})
        assert "errors" not in body, body
        url = body["data"]["asset"]["originalUrl"]
        r = await _fetch(tenant, url)
        assert r.status_code == 200
        assert r.content == data
        assert r.headers["content-type"].split(";")[0] == mime
        if backend.storage_url.startswith("local:"):
            max_age = int(re.fullmatch(r"private, max-age=(\d+)", r.headers["cache-control"])[1])
            assert 110 <= max_age <= 120
    default = await tenant.gql(_ORIGINAL_URL_GQL, {"id": video["id"]})
    assert (await _fetch(tenant, default["data"]["asset"]["originalUrl"])).content == clip


@pytest.mark.parametrize("ttl", [59, 86401])
async def test_original_url_ttl_out_of_range(tenant, ttl):
    video = await upload(tenant, make_mp4_head(), "clip.mp4", "video/mp4")
    body = await tenant.gql(_ORIGINAL_URL_GQL, {"id": video["id"], "ttl": ttl})
    assert body.get("errors"), body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_REQUEST"], body


@pytest.mark.backends("sqlite-local")  # S3 checks expiry against its own clock
async def test_original_url_expires(tenant, monkeypatch):
    video = await upload(tenant, make_mp4_head(), "clip.mp4", "video/mp4")
    body = await tenant.gql(_ORIGINAL_URL_GQL, {"id": video["id"], "ttl": 60})
    url = body["data"]["asset"]["originalUrl"]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 61)
    assert (await _fetch(tenant, url)).status_code == 403


# --- hostile files ----------------------------------------------------------------------


async def test_decompression_bomb_is_refused_quickly(tenant):
    bomb = _bomb_png()
    assert (_decode(bomb).width, _decode(bomb).height) == (60_000, 60_000)
    asset = await upload(tenant, bomb, "bomb.png", "image/png")
    started = time.perf_counter()
    r = await _export(tenant, asset["id"], format="JPEG", maxWidth=100)
    elapsed = time.perf_counter() - started
    _error(r, 400, "image too large")
    assert elapsed < 2, elapsed
    body = await tenant.gql(_EXPORT_URL_GQL, {"assetId": asset["id"], "format": "WEBP"})
    assert "too large" in _gql_error(body, "BAD_REQUEST")
    # Nothing half-made was cached: asking again is refused again.
    _error(await _export(tenant, asset["id"], format="JPEG", maxWidth=100), 400, "too large")


async def test_truncated_jpeg_is_refused(tenant):
    broken = _truncated_jpeg()
    assert _decode(broken).width == 600  # the header alone still parses
    asset = await upload(tenant, broken, "broken.jpg", "image/jpeg")
    for params in ({"format": "PNG"}, {"maxWidth": 100}, {"format": "WEBP", "maxWidth": 50}):
        _error(await _export(tenant, asset["id"], **params), 400, "could not decode image")
    body = await tenant.gql(_EXPORT_URL_GQL, {"assetId": asset["id"], "format": "JPEG"})
    assert "could not decode" in _gql_error(body, "BAD_REQUEST")
