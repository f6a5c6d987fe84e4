"""Facts after finalize, duplicates by hash, focal points and gravity — on both backends."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from typing import Any

import httpx
import pytest

from tests.helpers import make_image, make_mp4_head, redness, subject_image, upload

_FACT_FIELDS = (
    "contentHash",
    "thumbhash",
    "blurhash",
    "dominantColor",
    "durationSeconds",
    "videoCodec",
    "frameRate",
    "focalPoint",
)


async def wait_for_facts(tenant, asset_id: str) -> dict[str, Any]:
    """Poll the asset until its contentHash is filled (facts are written in one go)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90.0  # a bound against hanging, not a timed assertion
    while True:
        r = await tenant.get(f"/api/v1/assets/{asset_id}")
        assert r.status_code == 200, r.text
        body = r.json()
        if body["contentHash"] is not None:
            return body
        assert loop.time() < deadline, f"facts of {asset_id} never filled: {body}"
        await asyncio.sleep(0.1)


async def fetch(url: str) -> bytes:
    async with httpx.AsyncClient(timeout=60) as client:  # a loaded machine is slow, not wrong
        r = await client.get(url)
    assert r.status_code == 200, r.text
    return r.content


async def _download(tenant, url: str) -> bytes:
    if url.startswith("http://testserver"):
        r = await tenant.http.get(url)
        assert r.status_code == 200, r.text
        return r.content
    return await fetch(url)


# --- facts ---------------------------------------------------------------------------------


async def test_image_facts_are_filled_after_finalize(tenant):
    data = subject_image(600, 400, 0.25, 0.3)
    asset = await upload(tenant, data, "scene.jpg")
    for field in _FACT_FIELDS:
        assert field in asset  # extra keys, null until filled (or already filled)
    filled = await wait_for_facts(tenant, asset["id"])
    assert filled["contentHash"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert len(base64.b64decode(filled["thumbhash"], validate=True)) > 5
    assert re.fullmatch(r"[0-9A-Za-z#$%*+,\-.:;=?@\[\]^_{|}~]{28}", filled["blurhash"])
    assert re.fullmatch(r"#[0-9a-f]{6}", filled["dominantColor"])
    focal = filled["focalPoint"]
    assert focal["source"] == "auto"
    # The red disc is the subject: attention finds it, left of and above the centre.
    assert focal["x"] < 0.45 and focal["y"] < 0.5, focal
    assert filled["durationSeconds"] is None and filled["videoCodec"] is None


@pytest.mark.parametrize("alpha", [128, "disc"])
async def test_transparent_images_get_a_thumbhash_with_alpha(tenant, alpha):
    """Uniform and varying transparency: every fact is filled and the ThumbHash says alpha."""
    import pyvips
    from fast_thumbhash import thumb_hash_to_rgba

    rgb = pyvips.Image.black(120, 80, bands=3).new_from_image([200, 40, 30]).cast("uchar")
    if alpha == "disc":
        xyz = pyvips.Image.xyz(120, 80)
        band = (((xyz[0] - 60) ** 2 + (xyz[1] - 40) ** 2) < 900).ifthenelse(255, 0)
    else:
        band = pyvips.Image.black(120, 80).new_from_image(alpha)
    data = rgb.bandjoin(band.cast("uchar")).copy(interpretation="srgb").pngsave_buffer()
    asset = await upload(tenant, data, "see-through.png", "image/png")
    filled = await wait_for_facts(tenant, asset["id"])
    raw = base64.b64decode(filled["thumbhash"], validate=True)
    assert raw[2] & 0x80, "ThumbHash header: has-alpha bit"
    width, height, rgba = thumb_hash_to_rgba(raw)
    alphas = rgba[3::4]
    if alpha == "disc":  # opaque in the middle, clear at the corners
        assert alphas[(height // 2) * width + width // 2] > 200 and alphas[0] < 60, alphas
    else:
        assert all(100 < a < 160 for a in alphas), alphas
    assert filled["blurhash"] and re.fullmatch(r"#[0-9a-f]{6}", filled["dominantColor"])
    assert filled["focalPoint"]["source"] == "auto"


async def test_dominant_color_of_a_transparent_image_is_its_visible_colour(tenant):
    """A red disc on a transparent background: the dominant colour is the disc's. Transparent
    pixels used to count as white (flattened), so every logo on transparency got #ffffff, a
    colour it does not have."""
    import pyvips

    rgb = pyvips.Image.black(160, 120, bands=3).new_from_image([200, 40, 30]).cast("uchar")
    xyz = pyvips.Image.xyz(160, 120)
    band = (((xyz[0] - 50) ** 2 + (xyz[1] - 40) ** 2) < 30**2).ifthenelse(255, 0)
    data = rgb.bandjoin(band.cast("uchar")).copy(interpretation="srgb").pngsave_buffer()
    asset = await upload(tenant, data, "logo.png", "image/png")
    filled = await wait_for_facts(tenant, asset["id"])
    colour = filled["dominantColor"]
    channels = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    assert all(abs(c - e) <= 8 for c, e in zip(channels, (200, 40, 30), strict=True)), colour


@pytest.mark.parametrize("fmt", [".png", ".webp"])
async def test_a_featureless_image_has_its_focal_point_in_the_centre(tenant, fmt):
    """Attention finds nothing in a flat image (lossy WebP ripples it by a level or two); its
    automatic focal point is the centre (it was near the top left pixel, where libvips'
    search for a maximum starts)."""
    import pyvips

    flat = pyvips.Image.black(300, 200, bands=3).new_from_image([30, 90, 200]).cast("uchar")
    options = {"Q": 50} if fmt == ".webp" else {}
    data = flat.copy(interpretation="srgb").write_to_buffer(fmt, **options)
    asset = await upload(tenant, data, f"flat{fmt}", "image/" + fmt[1:])
    filled = await wait_for_facts(tenant, asset["id"])
    assert filled["focalPoint"] == {"x": 0.5, "y": 0.5, "source": "auto"}
    if fmt == ".png":
        assert filled["dominantColor"] == "#1e5ac8"


async def test_undecodable_media_keep_facts_null_and_finalize_anyway(tenant):
    video = make_mp4_head(8192)  # an MP4 header and zeros: passes the sniff, decodes to nothing
    asset = await upload(tenant, video, "broken.mp4", "video/mp4")
    filled = await wait_for_facts(tenant, asset["id"])
    assert filled["contentHash"] == "sha256:" + hashlib.sha256(video).hexdigest()
    for field in _FACT_FIELDS[1:]:
        assert filled[field] is None, field


async def test_duplicates_are_found_by_content_hash(tenant, make_tenant):
    data = make_image(90, 60)
    first = await upload(tenant, data, "a.jpg")
    second = await upload(tenant, data, "b-copy.jpg")
    other = await upload(tenant, make_image(91, 60), "c.jpg")
    digest = (await wait_for_facts(tenant, first["id"]))["contentHash"]
    await wait_for_facts(tenant, second["id"])
    other_hash = (await wait_for_facts(tenant, other["id"]))["contentHash"]
    assert other_hash != digest

    r = await tenant.get("/api/v1/assets", params={"contentHash": digest})
    assert r.status_code == 200, r.text
    assert {a["id"] for a in r.json()["items"]} == {first["id"], second["id"]}
    assert r.json()["total"] == 2

    both = f"{digest.upper().replace('SHA256', 'sha256')},{other_hash}"
    r = await tenant.get("/api/v1/assets", params={"contentHash": both})
    assert {a["id"] for a in r.json()["items"]} == {first["id"], second["id"], other["id"]}

    # Another organization holding the same bytes sees only its own.
    stranger = await make_tenant()
    r = await stranger.get("/api/v1/assets", params={"contentHash": digest})
    assert r.json()["items"] == []

    body = await tenant.gql(
        "query($h: [String!]) { assets(contentHash: $h) { total items { id contentHash } } }",
        {"h": [digest]},
    )
    assert body["data"]["assets"]["total"] == 2
    assert {a["contentHash"] for a in body["data"]["assets"]["items"]} == {digest}


async def test_a_repeated_content_hash_parameter_adds_its_values(tenant):
    """`?contentHash=a&contentHash=b` finds both files' duplicates, as `a,b` does (the last
    value alone was used: half the duplicates went missing without an error)."""
    one, two = make_image(30, 20), make_image(20, 30)
    for data, name in ((one, "one.jpg"), (two, "two.jpg")):
        await wait_for_facts(tenant, (await upload(tenant, data, name))["id"])
    hashes = ["sha256:" + hashlib.sha256(d).hexdigest() for d in (one, two)]
    r = await tenant.get("/api/v1/assets", params=[("contentHash", h) for h in hashes])
    assert r.status_code == 200, r.text
    assert sorted(a["name"] for a in r.json()["items"]) == ["one.jpg", "two.jpg"]
    bad = [("contentHash", hashes[0]), ("contentHash", "x")]
    r = await tenant.get("/api/v1/assets", params=bad)
    assert r.status_code == 400 and "contentHash" in r.json()["error"], r.text


@pytest.mark.parametrize(
    "value",
    [
        "md5:abc",
        "sha256:" + "0" * 63,
        "sha256:" + "g" * 64,
        ",".join(["sha256:" + "0" * 64] * 2) + ",",
        ",".join(f"sha256:{i:064x}" for i in range(201)),
    ],
)
async def test_content_hash_filter_refuses_bad_values(tenant, value):
    r = await tenant.get("/api/v1/assets", params={"contentHash": value})
    assert r.status_code == 400, r.text
    assert "contentHash" in r.json()["error"]


async def test_content_hash_filter_takes_two_hundred_values(tenant):
    values = ",".join(f"sha256:{i:064x}" for i in range(200))
    r = await tenant.get("/api/v1/assets", params={"contentHash": values})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []


async def test_content_hash_filter_stops_reading_past_two_hundred_values(tenant):
    """GraphQL takes a list as long as the body allows (~14,000 hashes in 1 MiB): the count
    is checked while the values are read, so the 201st distinct value ends it, whatever
    follows (it used to check every value and compare each with all the distinct ones
    before it first, ~1.5 s of the event loop for 14,000 values)."""
    values = [f"sha256:{i:064x}" for i in range(201)] + ["not a hash"]
    body = await tenant.gql(
        "query($h: [String!]) { assets(contentHash: $h) { total } }", {"h": values}
    )
    assert body["errors"][0]["message"] == "contentHash takes at most 200 values"
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    repeated = ["sha256:" + "A" * 64, "sha256:" + "a" * 64] * 150  # one value, any case
    body = await tenant.gql(
        "query($h: [String!]) { assets(contentHash: $h) { total } }", {"h": repeated}
    )
    assert body["data"]["assets"]["total"] == 0, body


# --- focal points ----------------------------------------------------------------------------


async def test_a_negative_zero_focal_point_is_zero(tenant):
    """-0.0 is in range; it is stored and answered as 0 on every backend (PostgreSQL kept the
    sign, so the same PATCH answered `-0.0` there and `0.0` on SQLite)."""
    asset = await upload(tenant, make_image(40, 30), "z.jpg")
    r = await tenant.patch(
        f"/api/v1/assets/{asset['id']}",
        content=b'{"focalPoint": {"x": -0.0, "y": -0}}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert "-0" not in r.text.split('"focalPoint"')[1].split("}")[0], r.text
    body = await tenant.gql(
        "mutation($id: ID!) { updateAsset(id: $id, input: {focalPoint: {x: -0.0, y: 0.5}})"
        " { focalPoint { x y } } }",
        {"id": asset["id"]},
    )
    assert body["data"]["updateAsset"]["focalPoint"] == {"x": 0.0, "y": 0.5}
    r = await tenant.get(f"/api/v1/assets/{asset['id']}")
    assert '"x":-0' not in r.text.replace(" ", ""), r.text


async def test_manual_focal_point_and_back_to_auto(tenant):
    asset = await upload(tenant, subject_image(300, 200, 0.8, 0.7), "f.jpg")
    auto = (await wait_for_facts(tenant, asset["id"]))["focalPoint"]
    assert auto["source"] == "auto"

    r = await tenant.patch(f"/api/v1/assets/{asset['id']}", json={"focalPoint": {"x": 0.1, "y": 1}})
    assert r.status_code == 200, r.text
    assert r.json()["focalPoint"] == {"x": 0.1, "y": 1.0, "source": "manual"}

    r = await tenant.patch(f"/api/v1/assets/{asset['id']}", json={"focalPoint": None})
    assert r.status_code == 200, r.text
    assert r.json()["focalPoint"] == auto

    body = await tenant.gql(
        "mutation($id: ID!) { updateAsset(id: $id, input: {focalPoint: {x: 0.5, y: 0.25}})"
        " { focalPoint { x y source } } }",
        {"id": asset["id"]},
    )
    assert body["data"]["updateAsset"]["focalPoint"] == {"x": 0.5, "y": 0.25, "source": "manual"}
    body = await tenant.gql(
        "mutation($id: ID!) { updateAsset(id: $id, input: {focalPoint: null}) "
        "{ focalPoint { source } } }",
        {"id": asset["id"]},
    )
    assert body["data"]["updateAsset"]["focalPoint"] == {"source": "auto"}


@pytest.mark.parametrize(
    "point",
    [{"x": 1.5, "y": 0.5}, {"x": -0.1, "y": 0}, {"x": 0.5}, {"x": "0.5", "y": 0.5},
     {"x": 0.5, "y": 0.5, "z": 1}, [0.5, 0.5], {"x": True, "y": 0.5}],
)  # fmt: skip
async def test_bad_focal_points_are_refused(tenant, point):
    asset = await upload(tenant, make_image(40, 30), "g.jpg")
    r = await tenant.patch(f"/api/v1/assets/{asset['id']}", json={"focalPoint": point})
    assert r.status_code == 400, r.text
    assert "focalPoint" in r.json()["error"]


async def test_bad_focal_points_are_refused_on_graphql(tenant):
    asset = await upload(tenant, make_image(40, 30), "g.jpg")
    query = "mutation($id: ID!, $p: FocalPointInput) { updateAsset(id: $id, input: {focalPoint: $p}) { id } }"  # noqa: E501
    for point in ({"x": 2, "y": 0.5}, {"x": 0.5, "y": -1}):
        body = await tenant.gql(query, {"id": asset["id"], "p": point})
        assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        assert "focalPoint" in body["errors"][0]["message"]
    body = await tenant.gql(
        "mutation($id: ID!) { updateAsset(id: $id, input: {focalPoint: {x: 1e999, y: 0}}) { id } }",
        {"id": asset["id"]},
    )
    assert body["errors"]  # GraphQL's Float refuses non-finite numbers


# --- gravity ---------------------------------------------------------------------------------


async def _crop(tenant, asset_id: str, gravity: str, width: int, height: int) -> bytes:
    r = await tenant.get(
        f"/api/v1/assets/{asset_id}/export-url",
        params={
            "format": "png",
            "maxWidth": width,
            "maxHeight": height,
            "preserveAspect": "false",
            "gravity": gravity,
        },
    )
    assert r.status_code == 200, r.text
    return await _download(tenant, r.json()["url"])


@pytest.mark.parametrize(
    ("size", "box"),
    [((900, 400), (200, 200)), ((400, 900), (200, 200)), ((900, 400), (100, 300))],
    ids=["landscape", "portrait", "tall-box"],
)
async def test_each_gravity_crops_exactly_and_keeps_the_subject(tenant, size, box):
    from tests.helpers import decode

    # The subject sits near a corner, far from the centre of the crop axis.
    asset = await upload(tenant, subject_image(*size, 0.15, 0.2), "subject.jpg")
    await wait_for_facts(tenant, asset["id"])
    crops = {}
    for gravity in ("center", "focal", "attention", "entropy"):
        data = await _crop(tenant, asset["id"], gravity, *box)
        image = decode(data)
        assert (image.width, image.height) == box, gravity
        crops[gravity] = data
    assert redness(crops["attention"]) > redness(crops["center"]) + 5
    assert redness(crops["focal"]) > redness(crops["center"]) + 5
    assert crops["attention"] != crops["center"]


# Stored pixels whose EXIF orientation turns them into the displayed image (libvips' autorot
# of the stored image gives the displayed one back).
_STORED_FOR = {
    5: lambda shown: shown.rot90().fliphor(),
    6: lambda shown: shown.rot270(),
    7: lambda shown: shown.rot270().fliphor(),
    8: lambda shown: shown.rot90(),
}


@pytest.mark.parametrize("orientation", sorted(_STORED_FOR))
async def test_exif_turned_images_have_their_focal_point_and_crops_as_displayed(
    tenant, orientation
):
    import pyvips

    # Displayed 400x900 (portrait), the subject low on the right.
    shown = pyvips.Image.new_from_buffer(subject_image(400, 900, 0.8, 0.85, ".png"), "")
    stored = _STORED_FOR[orientation](shown).copy()
    stored.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    assert (stored.autorot() - shown).abs().max() == 0
    asset = await upload(tenant, stored.jpegsave_buffer(Q=92, keep="exif"), "phone.jpg")
    assert (asset["width"], asset["height"]) == (400, 900)
    filled = await wait_for_facts(tenant, asset["id"])
    point = filled["focalPoint"]
    assert abs(point["x"] - 0.8) < 0.1 and abs(point["y"] - 0.85) < 0.1, point
    from fast_thumbhash import thumb_hash_to_approximate_aspect_ratio

    thumbhash = base64.b64decode(filled["thumbhash"])
    assert thumb_hash_to_approximate_aspect_ratio(thumbhash) < 0.5  # 400/900, not 900/400
    for box in ((200, 200), (300, 100)):  # boxes where the centre crop misses the subject
        crops = {g: await _crop(tenant, asset["id"], g, *box) for g in ("center", "focal")}
        assert redness(crops["focal"]) > redness(crops["center"]) + 3, (box, orientation)


async def test_focal_crop_follows_a_moved_focal_point(tenant):
    asset = await upload(tenant, subject_image(800, 400, 0.1, 0.5), "moved.jpg")
    await wait_for_facts(tenant, asset["id"])
    first = await _crop(tenant, asset["id"], "focal", 200, 200)
    r = await tenant.patch(f"/api/v1/assets/{asset['id']}", json={"focalPoint": {"x": 1, "y": 0}})
    assert r.status_code == 200
    second = await _crop(tenant, asset["id"], "focal", 200, 200)
    assert redness(first) > redness(second) + 5  # a new rendition, away from the subject


@pytest.mark.parametrize(
    "params",
    [
        {"gravity": "focal", "maxWidth": 10, "maxHeight": 10},
        {"gravity": "attention", "maxWidth": 10, "maxHeight": 10, "preserveAspect": "true"},
        {"gravity": "north", "maxWidth": 10, "maxHeight": 10, "preserveAspect": "false"},
    ],
)
async def test_bad_gravity_is_refused(tenant, params):
    asset = await upload(tenant, make_image(40, 30), "g.jpg")
    r = await tenant.get(f"/api/v1/assets/{asset['id']}/export-url", params=params)
    assert r.status_code == 400, r.text
    assert "gravity" in r.json()["error"]
    body = await tenant.gql(
        "query($id: ID!, $g: String) { exportUrl(assetId: $id, maxWidth: 10, maxHeight: 10, "
        "gravity: $g) { url } }",
        {"id": asset["id"], "g": params["gravity"]},
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "gravity" in body["errors"][0]["message"]


async def test_center_gravity_is_todays_crop(tenant):
    asset = await upload(tenant, subject_image(600, 300, 0.2, 0.2), "c.jpg")
    base = {"format": "png", "maxWidth": 100, "maxHeight": 100, "preserveAspect": "false"}
    r1 = await tenant.get(f"/api/v1/assets/{asset['id']}/export-url", params=base)
    r2 = await tenant.get(
        f"/api/v1/assets/{asset['id']}/export-url", params={**base, "gravity": "center"}
    )
    assert r1.status_code == r2.status_code == 200
    assert r2.json()["cached"] is True  # the same rendition as without gravity


async def test_presets_and_zip_exports_take_gravity(tenant):
    r = await tenant.post(
        "/api/v1/export-presets",
        json={
            "name": "square-subject",
            "format": "png",
            "maxWidth": 120,
            "maxHeight": 120,
            "preserveAspect": False,
            "gravity": "Attention",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["gravity"] == "attention"
    listed = (await tenant.get("/api/v1/export-presets")).json()["presets"]
    assert [p["gravity"] for p in listed if p["name"] == "square-subject"] == ["attention"]
    bad = await tenant.post(
        "/api/v1/export-presets", json={"name": "x", "format": "png", "gravity": "focal"}
    )
    assert bad.status_code == 400 and "gravity" in bad.json()["error"]

    asset = await upload(tenant, subject_image(800, 400, 0.12, 0.5), "zip.jpg")
    r = await tenant.get(
        f"/api/v1/assets/{asset['id']}/export-url", params={"preset": "square-subject"}
    )
    assert r.status_code == 200, r.text
    by_preset = await _download(tenant, r.json()["url"])
    assert redness(by_preset) > redness(await _crop(tenant, asset["id"], "center", 120, 120)) + 5

    import io
    import zipfile

    config = {"format": "png", "maxWidth": 120, "maxHeight": 120, "preserveAspect": False}
    r = await tenant.post(
        "/api/v1/exports",
        json={"assetIds": [asset["id"]], "config": {**config, "gravity": "attention"}},
    )
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        entry = archive.read("zip.png")
    assert redness(entry) > redness(await _crop(tenant, asset["id"], "center", 120, 120)) + 5
    r = await tenant.post(
        "/api/v1/exports", json={"assetIds": [asset["id"]], "config": {"gravity": "entropy"}}
    )
    assert r.status_code == 400 and "gravity" in r.json()["error"]


async def test_an_image_too_large_for_the_temporary_disk_gets_its_hash(tenant, full_temp_disk):
    """On S3 an image's facts read a temporary copy; when the disk cannot hold it, the copy
    failed as an outage of the store, so the job was given back and tried again every poll
    for ever (filling the disk each time). Now the hash is streamed and the job completes;
    the pixel facts stay null (on local storage the file is read in place: all facts)."""
    data = subject_image(120, 90, 0.3, 0.3)
    asset = await upload(tenant, data, "no-room.jpg")
    filled = await wait_for_facts(tenant, asset["id"])
    assert filled["contentHash"] == "sha256:" + hashlib.sha256(data).hexdigest()
