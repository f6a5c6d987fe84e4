"""Export presets: named output specs, upserted by name."""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError

from pixelwand.errors import BadRequest, NotFound
from pixelwand.imaging.params import parse_gravity
from pixelwand.models import ExportPreset
from pixelwand.services import organizations
from pixelwand.services.records import PRESET_COLUMNS, PresetRecord
from pixelwand.services.validation import check_text, require_name, require_range

MAX_PRESET_NAME = 100
# Every preset is listed in one answer: bounded well under the GraphQL object limit.
MAX_PRESETS = 1_000

FORMATS = ("JPEG", "PNG", "WEBP", "AVIF")
MAX_DIMENSION = 16384


def normalize_format(value: str | None, *, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise BadRequest("format is required")
        return None
    fmt = value.strip().upper()
    if fmt == "JPG":
        fmt = "JPEG"
    if fmt not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}")
    return fmt


def check_dimensions(max_width: int | None, max_height: int | None, preserve_aspect: bool) -> None:
    for field, value in (("maxWidth", max_width), ("maxHeight", max_height)):
        if value is not None:
            require_range(value, field, 1, MAX_DIMENSION)
    if not preserve_aspect and (max_width is None or max_height is None):
        raise BadRequest("preserveAspect false needs both maxWidth and maxHeight")


def preset_perceptual(
    format: str | None, quality: Any, perceptual: Any, formats: Any
) -> tuple[str | None, bool, str | None]:
    """(target, format is AUTO, formats as stored) of a preset; its `quality` stays the
    integer fallback (85 when only a target is given)."""
    from pixelwand.imaging.perceptual import parse_perceptual_args

    if format is None:
        raise BadRequest("format is required")
    _, _, target, candidates, auto = parse_perceptual_args(format, quality, perceptual, formats)
    return target, auto, ",".join(candidates) if candidates else None


async def list_presets(org_id: str) -> list[PresetRecord]:
    rows = (
        await ExportPreset.filter(organization_id=org_id)
        .order_by("name")
        .values_list(*PRESET_COLUMNS)
    )
    return [_record(r) for r in rows]


def _record(row: tuple[Any, ...]) -> PresetRecord:
    *rest, gravity, perceptual, formats = row
    return PresetRecord(  # type: ignore[call-arg]
        *rest,
        gravity or "center",  # null in rows from before migration 0008
        perceptual,
        formats.split(",") if formats else None,
    )


async def get_preset(org_id: str, name: str, field: str = "name") -> PresetRecord:
    check_text(name, field, MAX_PRESET_NAME)
    rows = await ExportPreset.filter(organization_id=org_id, name=name).values_list(*PRESET_COLUMNS)
    if not rows:
        raise NotFound(f"export preset {name!r} not found")
    return _record(rows[0])


async def upsert_preset(
    org_id: str,
    *,
    name: str | None,
    format: str | None,
    quality: int | None = None,
    max_width: int | None = None,
    max_height: int | None = None,
    preserve_aspect: bool | None = None,
    gravity: str | None = None,
    perceptual: str | None = None,
    formats: Any = None,
) -> tuple[PresetRecord, bool]:
    """(preset, created). An update replaces the whole spec; omitted fields take defaults."""
    name = require_name(name, "name", max_length=MAX_PRESET_NAME)
    target, auto, formats_ = preset_perceptual(format, quality, perceptual, formats)
    fields: dict[str, Any] = {
        "format": "AUTO" if auto else normalize_format(format),
        "quality": require_range(85 if quality is None else quality, "quality", 1, 100),
        "max_width": max_width,
        "max_height": max_height,
        "preserve_aspect": True if preserve_aspect is None else preserve_aspect,
        "perceptual": target,
        "formats": formats_,
    }
    check_dimensions(max_width, max_height, fields["preserve_aspect"])
    fields["gravity"] = parse_gravity(gravity, preserve_aspect=fields["preserve_aspect"])
    for _ in range(3):
        updated = await ExportPreset.filter(organization_id=org_id, name=name).update(**fields)
        if updated:
            return await get_preset(org_id, name), False
        try:
            async with organizations.locked(org_id):  # the count and the insert: one step
                if await ExportPreset.filter(organization_id=org_id).count() >= MAX_PRESETS:
                    raise BadRequest(
                        f"an organization may have at most {MAX_PRESETS} export presets"
                    )
                await ExportPreset.create(organization_id=org_id, name=name, **fields)
            return await get_preset(org_id, name), True
        except IntegrityError:
            continue  # created concurrently: update it on the next pass
    raise BadRequest(f"export preset {name!r} is being changed concurrently; retry")
