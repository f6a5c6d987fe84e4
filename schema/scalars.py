"""Custom scalars: millisecond UTC timestamps and 64-bit integers (see SCALAR_MAP)."""

from __future__ import annotations

import datetime as dt
from typing import Any, NewType

import strawberry
from graphql import IntValueNode, StringValueNode, ValueNode

from pixelwand.services.records import StoredInstant

_UTC = dt.UTC


def format_datetime(value: dt.datetime) -> str:
    """ISO-8601 UTC with milliseconds and Z: 2026-04-22T21:00:00.000Z."""
    if value.__class__ is StoredInstant:
        try:
            return value.api_text
        except AttributeError:  # made by arithmetic or replace(): format it
            pass
    if value.tzinfo is not _UTC and value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(_UTC)
    # Every listed asset pays this: %-formatting is 0.77 µs against 1.38 µs for
    # isoformat(timespec=...) plus slicing (measured), which also formats the offset.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond // 1000,
    )


def _parse_datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO-8601 string")
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


DateTime = strawberry.scalar(
    name="DateTime",
    description="An instant in UTC, ISO-8601 with milliseconds: 2026-04-22T21:00:00.000Z",
    serialize=format_datetime,
    parse_value=_parse_datetime,
)


def _parse_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Long cannot represent non-integer value: {value!r}")
    return value


def _parse_long_literal(node: ValueNode, _variables: Any = None) -> int:
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, StringValueNode):
        raise ValueError("Long cannot represent a string")
    raise ValueError("Long must be an integer")


Long = NewType("Long", int)

LongScalar = strawberry.scalar(
    name="Long",
    description="A signed 64-bit integer (byte counts: sizes and quotas).",
    serialize=int,
    parse_value=_parse_long,
    parse_literal=_parse_long_literal,
)


SCALAR_MAP = {dt.datetime: DateTime, Long: LongScalar}
