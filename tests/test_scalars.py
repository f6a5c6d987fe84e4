"""The DateTime scalar's hand-written formatting against the standard library's isoformat."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from schema.scalars import format_datetime

_offsets = st.one_of(
    st.none(),
    st.just(dt.UTC),
    st.integers(min_value=-23 * 60, max_value=23 * 60).map(
        lambda m: dt.timezone(dt.timedelta(minutes=m))
    ),
)


def _reference(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.isoformat(timespec="milliseconds")[:23] + "Z"


@given(st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 30)), _offsets)
def test_format_datetime_matches_isoformat(value: dt.datetime, tz: dt.tzinfo | None) -> None:
    value = value.replace(tzinfo=tz)
    assert format_datetime(value) == _reference(value)


def test_examples() -> None:
    assert (
        format_datetime(dt.datetime(2026, 4, 22, 21, tzinfo=dt.UTC)) == "2026-04-22T21:00:00.000Z"
    )
    paris = dt.timezone(dt.timedelta(hours=2))
    when = dt.datetime(2026, 4, 22, 23, 0, 0, 999_999, tzinfo=paris)
    assert format_datetime(when) == "2026-04-22T21:00:00.999Z"


@given(st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9998, 12, 30)))
def test_sqlite_text_keeps_its_rendering(value: dt.datetime) -> None:
    """Rows read from SQLite (Tortoise stores str(aware datetime)) render like any datetime,
    and so does anything computed from them."""
    from pixelwand.services.rows import _timestamp

    value = value.replace(tzinfo=dt.UTC)
    stored = _timestamp(str(value))
    assert stored == value
    assert format_datetime(stored) == _reference(value)
    later = stored + dt.timedelta(microseconds=1500)
    assert format_datetime(later) == _reference(value + dt.timedelta(microseconds=1500))
    assert format_datetime(stored.replace(microsecond=0)) == _reference(
        value.replace(microsecond=0)
    )
