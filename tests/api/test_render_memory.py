"""Memory per render: the issue's small files that declare huge shapes are refused from
their header (400 "image too large to render") by export-url, GraphQL and ZIP exports,
before a pixel is decoded; ordinary images still render. The memory actually used is
measured in tests/imaging/test_hostile_media.py (a subprocess)."""

from __future__ import annotations

import functools
import io
import zipfile

import pytest

from tests.helpers import make_image, upload
from tests.imaging.hostile_media import png_declaring, png_shape

TOO_LARGE = "image too large to render"


@functools.cache
def issue_files() -> dict[str, bytes]:
    return {
        # 779 KB: 10,000,000 x 10, 16-bit RGBA (14 GB of RSS before the fix)
        "wide-rgba16.png": png_shape(10_000_000, 10, 16, 6),
        # 539 KB: 1,081,440 x 64 RGBA16 (2.6 GB)
        "wider-rgba16.png": png_shape(1_081_440, 64, 16, 6),
        # 98 KB: 25,000,000 x 4 greyscale (3.3 GB)
        "grey.png": png_shape(25_000_000, 4, 8, 0),
        # a valid small PNG whose header was mutated to declare 10,000,000 x 10 RGBA16
        "mutated-header.png": png_declaring(make_image(96, 64, ".png"), 10_000_000, 10, 16, 6),
    }


@pytest.mark.parametrize("name", sorted(issue_files()))
async def test_export_url_refuses_from_the_header(tenant, name: str) -> None:
    data = issue_files()[name]
    asset = await upload(tenant, data, name, "image/png")
    # finalize reads the shape from the header (no pixels decoded) and accepts the file
    assert asset["width"] in (10_000_000, 1_081_440, 25_000_000), asset
    r = await tenant.get(
        f"/api/v1/assets/{asset['id']}/export-url", params={"format": "WEBP", "maxWidth": "800"}
    )
    assert r.status_code == 400, r.text
    assert r.json() == {"error": TOO_LARGE}
    # Unresized and with the source's format: refused the same way.
    r = await tenant.get(f"/api/v1/assets/{asset['id']}/export-url", params={"quality": "80"})
    assert r.status_code == 400 and r.json() == {"error": TOO_LARGE}, r.text


async def test_graphql_export_url_refuses_too(tenant) -> None:
    asset = await upload(tenant, issue_files()["grey.png"], "grey.png", "image/png")
    body = await tenant.gql(
        'query($id: ID!) { exportUrl(assetId: $id, format: "JPEG", maxWidth: 800) { url } }',
        {"id": asset["id"]},
    )
    [error] = body["errors"]
    assert error["message"] == TOO_LARGE and error["extensions"]["code"] == "BAD_REQUEST"


async def test_zip_lists_a_too_large_image_in_errors_txt_and_goes_on(tenant) -> None:
    big = await upload(tenant, issue_files()["wide-rgba16.png"], "wide.png", "image/png")
    small = await upload(tenant, make_image(64, 48), "small.jpg", "image/jpeg")
    r = await tenant.post(
        "/api/v1/exports",
        json={"assetIds": [big["id"], small["id"]], "config": {"format": "webp"}},
    )
    assert r.status_code == 200, r.text
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert sorted(archive.namelist()) == ["errors.txt", "small.webp"]
    errors = archive.read("errors.txt").decode()
    assert f"wide.png ({big['id']}): {TOO_LARGE}" in errors


async def test_ordinary_images_still_render(tenant) -> None:
    asset = await upload(tenant, make_image(1200, 800, ".png"), "photo.png", "image/png")
    for params in ({"format": "WEBP", "maxWidth": "800"}, {"format": "AVIF"}, {"quality": "90"}):
        r = await tenant.get(f"/api/v1/assets/{asset['id']}/export-url", params=params)
        assert r.status_code == 200, (params, r.text)
