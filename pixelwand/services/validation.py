"""Input rules shared by the services; each failure is a BadRequest naming the field."""

from __future__ import annotations

import re

from pixelwand.errors import BadRequest

MAX_TAGS = 50
MAX_TAG_LENGTH = 64
MAX_NAME_LENGTH = 255
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def normalize_tags(tags: list[str] | None) -> list[str]:
    """Trimmed, empty ones dropped, duplicates removed (first kept), case preserved."""
    if tags is None:
        return []
    out: list[str] = []
    seen: set[str] = set()
    for raw in tags:
        if not isinstance(raw, str):
            raise BadRequest("tags must be strings")
        tag = raw.strip()
        if not tag or tag in seen:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise BadRequest(f"a tag may have at most {MAX_TAG_LENGTH} characters")
        seen.add(tag)
        out.append(tag)
    if len(out) > MAX_TAGS:
        raise BadRequest(f"an asset may carry at most {MAX_TAGS} tags")
    return out


def require_name(value: str | None, field: str, *, max_length: int = MAX_NAME_LENGTH) -> str:
    if value is None:
        raise BadRequest(f"{field} is required")
    name = value.strip()
    if not name:
        raise BadRequest(f"{field} must not be empty")
    if len(name) > max_length:
        raise BadRequest(f"{field} may have at most {max_length} characters")
    if any(ord(c) < 32 for c in name):
        raise BadRequest(f"{field} must not contain control characters")
    return name


def require_color(value: str | None) -> str:
    if value is None:
        return "#6366f1"
    if not _COLOR.match(value):
        raise BadRequest("color must be #rrggbb")
    return value.lower()


def require_range(value: int, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{field} must be between {low} and {high}")
    return value
