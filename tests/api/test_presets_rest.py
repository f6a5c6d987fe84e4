"""/api/v1/export-presets: upsert by name, validation."""

from __future__ import annotations

import pytest


async def test_create_list_update(tenant):
    body = {
        "name": "shopify-thumb",
        "format": "WEBP",
        "quality": 85,
        "maxWidth": 800,
        "maxHeight": 800,
        "preserveAspect": True,
    }
    r = await tenant.post("/api/v1/export-presets", json=body)
    assert r.status_code == 201
    preset = r.json()
    assert set(preset) >= {
        "id",
        "name",
        "format",
        "quality",
        "maxWidth",
        "maxHeight",
        "preserveAspect",
        "createdAt",
        "updatedAt",
        "perceptual",  # docs/perceptual.md: extra keys, null for fixed-quality presets
        "formats",
    }
    assert preset["perceptual"] is None and preset["formats"] is None
    assert {k: preset[k] for k in body} == body
    r = await tenant.post(
        "/api/v1/export-presets", json={"name": "shopify-thumb", "format": "jpg", "quality": 70}
    )
    assert r.status_code == 200
    updated = r.json()
    assert updated["id"] == preset["id"] and updated["createdAt"] == preset["createdAt"]
    assert updated["format"] == "JPEG" and updated["quality"] == 70
    assert updated["maxWidth"] is None and updated["preserveAspect"] is True  # replaced whole
    assert updated["updatedAt"] >= preset["updatedAt"]
    listing = (await tenant.get("/api/v1/export-presets")).json()
    assert listing == {"presets": [updated]}


async def test_defaults_and_case(tenant):
    r = await tenant.post("/api/v1/export-presets", json={"name": "p", "format": "avif"})
    assert r.status_code == 201
    p = r.json()
    assert (p["format"], p["quality"], p["maxWidth"], p["maxHeight"], p["preserveAspect"]) == (
        "AVIF",
        85,
        None,
        None,
        True,
    )


async def test_crop_preset_needs_both_dimensions(tenant):
    ok = {"name": "sq", "format": "PNG", "maxWidth": 100, "maxHeight": 100, "preserveAspect": False}
    assert (await tenant.post("/api/v1/export-presets", json=ok)).status_code == 201
    r = await tenant.post(
        "/api/v1/export-presets",
        json={"name": "bad", "format": "PNG", "maxWidth": 100, "preserveAspect": False},
    )
    assert r.status_code == 400
    assert "preserveAspect" in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"format": "WEBP"}, "name"),
        ({"name": "p"}, "format"),
        ({"name": "p", "format": "GIF"}, "format"),
        ({"name": "p", "format": "WEBP", "quality": 0}, "quality"),
        ({"name": "p", "format": "WEBP", "quality": 101}, "quality"),
        ({"name": "p", "format": "WEBP", "quality": "high"}, "quality"),
        ({"name": "p", "format": "WEBP", "maxWidth": 0}, "maxWidth"),
        ({"name": "p", "format": "WEBP", "maxHeight": 16385}, "maxHeight"),
        ({"name": "p", "format": "WEBP", "preserveAspect": "yes"}, "preserveAspect"),
        ({"name": "p", "format": "WEBP", "lossless": True}, "'lossless'"),
    ],
)
async def test_rejects_bad_input(tenant, body, message):
    r = await tenant.post("/api/v1/export-presets", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert (await tenant.get("/api/v1/export-presets")).json() == {"presets": []}


async def test_presets_are_per_org(make_tenant):
    a = await make_tenant()
    b = await make_tenant()
    await a.post("/api/v1/export-presets", json={"name": "p", "format": "WEBP"})
    assert (await b.get("/api/v1/export-presets")).json() == {"presets": []}
