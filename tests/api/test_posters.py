"""Video facts and poster frames through export-url — on both backends."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import pytest

from pixelwand.errors import StorageUnavailable
from tests.api.test_media import _download, wait_for_facts
from tests.helpers import (
    decode,
    encode_frames,
    grey_frame,
    make_growing_mjpeg,
    make_image,
    make_mp4,
    make_mp4_head,
    upload,
)

pytest.importorskip("av")


@pytest.fixture(scope="module")
def clip() -> bytes:
    """2 s, 320x240, 10 fps, a keyframe every second; frame i is grey level 10 * i."""
    return make_mp4(seconds=2.0, width=320, height=240, fps=10, gop=10)


async def _poster(tenant, asset_id: str, **params):
    return await tenant.get(f"/api/v1/assets/{asset_id}/export-url", params=params)


async def test_video_facts_are_filled(tenant, clip):
    asset = await upload(tenant, clip, "clip.mp4", "video/mp4")
    filled = await wait_for_facts(tenant, asset["id"])
    assert filled["videoCodec"] == "h264"
    assert filled["durationSeconds"] == pytest.approx(2.0, abs=0.15)
    assert filled["frameRate"] == pytest.approx(10.0)
    assert (filled["width"], filled["height"]) == (320, 240)
    assert filled["focalPoint"]["source"] == "auto"
    assert filled["thumbhash"] is None and filled["blurhash"] is None


def _av1_webm() -> bytes:
    """1 s of 64x64 AV1 in WebM (SVT-AV1), skipped where PyAV's FFmpeg lacks the encoder."""
    import av

    if "libsvtav1" not in av.codecs_available:
        pytest.skip("this PyAV build has no AV1 encoder")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="webm") as container:
        stream = container.add_stream("libsvtav1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.options = {"preset": "12"}
        frames = []
        for i in range(10):
            frame = av.VideoFrame(64, 64, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(20 * i) % 256]) * plane.buffer_size)
            frames.append(frame)
        encode_frames(container, stream, frames)
    return buffer.getvalue()


async def test_video_codec_is_the_codec_not_its_decoder(tenant):
    """FFmpeg decodes AV1 with libdav1d: `videoCodec` is the codec's name (`av1`), never the
    decoder's (`libdav1d`), as DESIGN.md says."""
    asset = await upload(tenant, _av1_webm(), "clip.webm", "video/webm")
    filled = await wait_for_facts(tenant, asset["id"])
    assert (filled["videoCodec"], filled["width"], filled["height"]) == ("av1", 64, 64)


def _webm_without_duration() -> bytes:
    """2 s of 320x240 VP9 in a WebM written as a live stream, as browsers' MediaRecorder
    writes them: no duration, no cues. Frame i is grey level 10 * i, a keyframe a second."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="webm", options={"live": "1"}) as container:
        stream = container.add_stream("libvpx-vp9", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.gop_size = 10
        stream.options = {"deadline": "realtime", "cpu-used": "8"}
        encode_frames(container, stream, (grey_frame(320, 240, 10 * i) for i in range(20)))
    return buffer.getvalue()


async def test_a_video_without_a_duration_in_its_headers(tenant):
    """The duration comes from the packets; posters use it for percentages and refuse a
    `posterAt` past the end (both used to act as if the video had no end: 100% answered the
    first frame, 999999 seconds a frame)."""
    asset = await upload(tenant, _webm_without_duration(), "recorded.webm", "video/webm")
    filled = await wait_for_facts(tenant, asset["id"])
    assert filled["durationSeconds"] == pytest.approx(2.0, abs=0.15)
    assert (filled["videoCodec"], filled["width"], filled["height"]) == ("vp9", 320, 240)
    r = await _poster(tenant, asset["id"], posterAt="100%")  # the keyframe at 1.0 s
    assert r.status_code == 200, r.text
    assert decode(await _download(tenant, r.json()["url"])).avg() == pytest.approx(100, abs=8)
    r = await _poster(tenant, asset["id"], posterAt="999999")
    assert r.status_code == 400, r.text
    assert "posterAt" in r.json()["error"]


async def test_posters_made_before_the_duration_was_known_are_not_reused_after(tenant):
    """Before the facts arrive, a video without a duration in its headers renders 100% as
    its first frame; once the duration is known, 100% is a new rendition (not that one)."""
    from pixelwand.models import Asset

    asset = await upload(tenant, _webm_without_duration(), "recorded.webm", "video/webm")
    filled = await wait_for_facts(tenant, asset["id"])
    await Asset.filter(id=asset["id"]).update(duration_seconds=None)  # as before the facts
    r = await _poster(tenant, asset["id"], posterAt="100%")
    assert r.status_code == 200, r.text
    assert decode(await _download(tenant, r.json()["url"])).avg() == pytest.approx(0, abs=8)
    await Asset.filter(id=asset["id"]).update(duration_seconds=filled["durationSeconds"])
    r = await _poster(tenant, asset["id"], posterAt="100%")
    assert r.status_code == 200, r.text
    assert r.json()["cached"] is False
    assert decode(await _download(tenant, r.json()["url"])).avg() == pytest.approx(100, abs=8)


async def test_poster_is_the_keyframe_at_or_before_poster_at(tenant, clip):
    asset = await upload(tenant, clip, "clip.mp4", "video/mp4")
    # A poster made before the facts is keyed apart from one made after (poster_cache_key:
    # duration_known), so the second request below would miss if the facts landed between
    # the two (a loaded CI run saw it on S3): facts first, this test is about frame and cache.
    await wait_for_facts(tenant, asset["id"])
    r = await _poster(tenant, asset["id"], posterAt="1.5")  # posterAt alone is complete
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["format"] == "JPEG" and body["cached"] is False
    image = decode(await _download(tenant, body["url"]))
    assert (image.width, image.height) == (320, 240)
    assert image.avg() == pytest.approx(100, abs=6)  # frame 10: the keyframe at 1.0 s

    again = await _poster(tenant, asset["id"], posterAt="1.5")
    assert again.json()["cached"] is True

    default = await _poster(tenant, asset["id"], maxWidth="100")  # 25%: 0.5 s → frame 0
    assert default.status_code == 200, default.text
    image = decode(await _download(tenant, default.json()["url"]))
    assert (image.width, image.height) == (100, 75)
    assert image.avg() == pytest.approx(0, abs=6)

    r = await _poster(
        tenant,
        asset["id"],
        posterAt="100%",
        format="webp",
        maxWidth="50",
        maxHeight="50",
        preserveAspect="false",
        gravity="attention",
    )
    assert r.status_code == 200, r.text
    assert r.json()["format"] == "WEBP"
    image = decode(await _download(tenant, r.json()["url"]))
    assert (image.width, image.height) == (50, 50)

    body = await tenant.gql(
        'query($id: ID!) { exportUrl(assetId: $id, posterAt: "1", maxWidth: 64) { url format } }',
        {"id": asset["id"]},
    )
    assert body["data"]["exportUrl"]["format"] == "JPEG"


@pytest.mark.parametrize("value", ["1,5", "abc", "+1", "-1", "1e1", "٣", "101%", "2.5s", " "])
async def test_malformed_poster_at_is_refused(tenant, clip, value):
    asset = await upload(tenant, clip, "clip.mp4", "video/mp4")
    r = await _poster(tenant, asset["id"], posterAt=value)
    if value.strip() == "":
        assert r.status_code == 400  # nothing given at all
        return
    assert r.status_code == 400, r.text
    assert "posterAt" in r.json()["error"]


@pytest.mark.parametrize("given", [{"format": "AUTO"}, {"quality": "auto"}, {"perceptual": "auto"}])
async def test_perceptual_settings_on_a_video_are_refused_naming_the_field(tenant, clip, given):
    """format AUTO and quality=auto are perceptual targets too: the 400 names what was sent
    (it named only `perceptual`)."""
    asset = await upload(tenant, clip, "clip.mp4", "video/mp4")
    r = await _poster(tenant, asset["id"], posterAt="1", **given)
    assert r.status_code == 400, r.text
    assert next(iter(given)) in r.json()["error"]
    body = await tenant.gql(
        'query($id: ID!) { exportUrl(assetId: $id, posterAt: "1", format: "AUTO") { url } }',
        {"id": asset["id"]},
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "format" in body["errors"][0]["message"]


async def test_poster_at_past_the_end_or_on_an_image_is_refused(tenant, clip):
    asset = await upload(tenant, clip, "clip.mp4", "video/mp4")
    r = await _poster(tenant, asset["id"], posterAt="2.5")
    assert r.status_code == 400, r.text
    assert "posterAt" in r.json()["error"]
    body = await tenant.gql(
        'query($id: ID!) { exportUrl(assetId: $id, posterAt: "30") { url } }', {"id": asset["id"]}
    )
    assert "posterAt" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"

    image = await upload(tenant, make_image(40, 30), "still.jpg")
    r = await _poster(tenant, image["id"], posterAt="1", maxWidth="10")
    assert r.status_code == 400, r.text
    assert "posterAt" in r.json()["error"]


@pytest.mark.parametrize("kind", ["zeros", "garbage", "truncated"])
async def test_hostile_videos_answer_400(tenant, clip, kind):
    import random

    if kind == "zeros":
        data = make_mp4_head(16_384)
    elif kind == "garbage":
        rng = random.Random(7)
        data = make_mp4_head(64)[:24] + bytes(rng.getrandbits(8) for _ in range(20_000))
    else:
        data = clip[: len(clip) // 3]
    asset = await upload(tenant, data, f"{kind}.mp4", "video/mp4")
    r = await _poster(tenant, asset["id"], posterAt="0.5")
    assert r.status_code == 400, r.text
    assert "video" in r.json()["error"]
    filled = await wait_for_facts(tenant, asset["id"])  # the worker survives it too
    assert filled["contentHash"].startswith("sha256:")


async def test_frames_larger_than_the_declared_size_are_refused(tenant):
    """The memory reserved for a poster is the declared frame size's, so a frame decoding
    larger is refused; the comparison must use the size read before decoding (FFmpeg updates
    the codec context's to each decoded frame, which let every frame through)."""
    data = make_growing_mjpeg(small=(320, 240), large=(1600, 1200))
    asset = await upload(tenant, data, "grows.mp4", "video/mp4")
    r = await _poster(tenant, asset["id"], posterAt="0")  # frame 0: the declared size
    assert r.status_code == 200, r.text
    assert (r.json()["width"], r.json()["height"]) == (320, 240)
    r = await _poster(tenant, asset["id"], posterAt="50%")  # a 1600x1200 frame
    assert (r.status_code, r.json()) == (400, {"error": "could not decode video"})
    filled = await wait_for_facts(tenant, asset["id"])  # its 25% frame is a large one too
    assert (filled["width"], filled["height"], filled["videoCodec"]) == (320, 240, "mjpeg")
    assert filled["focalPoint"] is None


async def test_zip_exports_keep_videos_as_original_bytes(tenant, clip):
    asset = await upload(tenant, clip, "keep.mp4", "video/mp4")
    r = await tenant.post(
        "/api/v1/exports",
        json={"assetIds": [asset["id"]], "config": {"format": "jpeg", "maxWidth": 10}},
    )
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        assert archive.read("keep.mp4") == clip


@pytest.fixture
def small_render_budget(app):
    """A per-render memory limit of 40 MiB: a 1920x1080 poster (estimated ~54 MiB: 32 MiB fixed
    and ~11 bytes a frame pixel, measured) is over it, a 320x240 one (~33 MiB) under it."""
    runtime = app.state.runtime
    saved = runtime.settings
    runtime.settings = dataclasses.replace(saved, render_memory_bytes=40 * 1024 * 1024)
    yield
    runtime.settings = saved


async def test_video_frames_count_in_the_render_memory_budget(tenant, clip, small_render_budget):
    """A poster is a render: its frame's memory is estimated from the declared frame size and
    refused like an image's past the limit; the facts worker then keeps to the probe."""
    big = make_mp4(seconds=0.4, width=1920, height=1080, fps=5, gop=1)
    asset = await upload(tenant, big, "big.mp4", "video/mp4")
    r = await _poster(tenant, asset["id"], maxWidth="200")
    assert (r.status_code, r.json()) == (400, {"error": "image too large to render"})
    filled = await wait_for_facts(tenant, asset["id"])
    assert (filled["width"], filled["height"], filled["videoCodec"]) == (1920, 1080, "h264")
    assert filled["focalPoint"] is None  # no poster frame decoded for the facts

    small = await upload(tenant, clip, "clip.mp4", "video/mp4")
    r = await _poster(tenant, small["id"], maxWidth="200")
    assert r.status_code == 200, r.text
    assert (await wait_for_facts(tenant, small["id"]))["focalPoint"]["source"] == "auto"


def _turned(data: bytes) -> bytes:
    """`data` (an MP4) with its video track's display matrix turned 90 degrees clockwise,
    as a phone held upright records: the same coded frames, displayed portrait."""
    import struct

    at = data.index(b"tkhd")
    version = data[at + 4]
    # tkhd: size+type before `at`; version/flags 4, times and ids 20 (32 in version 1),
    # reserved 8, layer, alternate group, volume, reserved 2 each: then the 3x3 matrix.
    matrix = at + 4 + 4 + (32 if version == 1 else 20) + 8 + 8
    one, minus_one = 0x10000, -0x10000 & 0xFFFFFFFF
    assert struct.unpack(">9I", data[matrix : matrix + 36])[:5] == (one, 0, 0, 0, one)
    turned = struct.pack(">9I", 0, one, 0, minus_one, 0, 0, 0, 0, 0x40000000)
    return data[:matrix] + turned + data[matrix + 36 :]


def _subject_clip(width: int, height: int, cx: float, cy: float) -> bytes:
    """1 s of one still: grey noise with a red disc at (cx, cy) of the coded frame."""
    import av
    import pyvips

    from tests.helpers import subject_image

    still = pyvips.Image.new_from_buffer(subject_image(width, height, cx, cy, ".png"), "")
    pixels = still.write_to_memory()

    def frames():
        for _ in range(10):
            frame = av.VideoFrame(width, height, "rgb24")
            frame.planes[0].update(pixels)
            yield frame

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        encode_frames(container, stream, frames())
    return buffer.getvalue()


async def test_a_phone_video_is_upright_in_its_facts_posters_and_crops(tenant):
    from tests.helpers import redness

    # Coded 320x160 with the subject at the right; turned clockwise, the right is the bottom.
    data = _turned(_subject_clip(320, 160, 0.85, 0.5))
    asset = await upload(tenant, data, "upright.mp4", "video/mp4")
    filled = await wait_for_facts(tenant, asset["id"])
    assert (filled["width"], filled["height"]) == (160, 320)
    assert filled["focalPoint"]["y"] > 0.7 and 0.3 < filled["focalPoint"]["x"] < 0.7
    r = await _poster(tenant, asset["id"], posterAt="0.5", format="png")
    assert r.status_code == 200, r.text
    poster = decode(await _download(tenant, r.json()["url"]))
    assert (poster.width, poster.height) == (160, 320)
    bottom = poster.crop(0, 240, 160, 80).write_to_buffer(".png")
    top = poster.crop(0, 0, 160, 240).write_to_buffer(".png")
    assert redness(bottom) > redness(top) + 5
    crops = {}
    for gravity in ("center", "focal", "attention"):
        r = await _poster(
            tenant,
            asset["id"],
            posterAt="0.5",
            format="png",
            maxWidth="100",
            maxHeight="100",
            preserveAspect="false",
            gravity=gravity,
        )
        assert r.status_code == 200, r.text
        assert (r.json()["width"], r.json()["height"]) == (100, 100)
        crops[gravity] = redness(await _download(tenant, r.json()["url"]))
    assert crops["focal"] > crops["center"] + 5
    assert crops["attention"] > crops["center"] + 5


async def test_video_facts_need_no_copy_of_the_video_on_disk(tenant, clip, full_temp_disk):
    """On S3 the facts worker copied the whole object to the temporary disk before hashing
    or probing it: a video larger than the free space failed every poll (ENOSPC counts as
    the store being unavailable, so it was retried for ever, filling the disk each time)
    and never got its facts. Hashed as it streams and probed by ranged reads, it needs
    no copy (the local backend reads the file in place)."""
    import hashlib

    asset = await upload(tenant, clip, "big.mp4", "video/mp4")
    filled = await wait_for_facts(tenant, asset["id"])
    assert filled["contentHash"] == "sha256:" + hashlib.sha256(clip).hexdigest()
    assert filled["videoCodec"] == "h264"
    assert filled["durationSeconds"] == pytest.approx(2.0, abs=0.15)
    assert (filled["width"], filled["height"]) == (320, 240)
    assert filled["focalPoint"]["source"] == "auto"


async def test_a_store_outage_while_a_video_is_probed_is_retried_not_taken_for_the_video(
    app, tenant, clip, monkeypatch
):
    """Read by ranges, a failed read looks like the end of the file to FFmpeg: the facts
    would be the hash alone, for good. The outage is the store's, so the job waits."""
    storage = app.state.runtime.storage
    read_range = storage.read_range
    failed = []

    async def fails_once(key, start, length):
        # A reader's read-ahead (not finalize's sniff); FFmpeg tries a failed read again.
        if length >= 64 * 1024 and len(failed) < 4:
            failed.append(key)
            raise StorageUnavailable()
        return await read_range(key, start, length)

    monkeypatch.setattr(storage, "read_range", fails_once)
    asset = await upload(tenant, clip, "outage.mp4", "video/mp4")
    filled = await wait_for_facts(tenant, asset["id"])
    assert filled["videoCodec"] == "h264" and filled["durationSeconds"], (filled, len(failed))


async def test_a_store_outage_while_a_poster_decodes_is_a_503_not_a_bad_video(
    app, backend, tenant, clip, monkeypatch
):
    asset = await upload(tenant, clip, "outage.mp4", "video/mp4")
    storage = app.state.runtime.storage
    read_range = storage.read_range

    async def fails(key, start, length):
        if length >= 64 * 1024:  # a reader's read-ahead
            raise StorageUnavailable()
        return await read_range(key, start, length)

    monkeypatch.setattr(storage, "read_range", fails)
    r = await _poster(tenant, asset["id"], posterAt="0.5")
    if backend.is_local:  # FFmpeg reads the file itself
        assert r.status_code == 200, r.text
        return
    assert r.status_code == 503, r.text
    monkeypatch.undo()
    r = await _poster(tenant, asset["id"], posterAt="0.5")
    assert r.status_code == 200, r.text
