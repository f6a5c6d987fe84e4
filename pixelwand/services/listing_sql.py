"""The SQL of asset listings, written out: a page and its COUNT share one WHERE clause.

Listing is the hottest query of the service, and the one whose SQL must match indexes
exactly. Building it through a Tortoise queryset cost ~0.5 ms of server CPU per request, as
much as the rest of the request; written out, it costs microseconds and its shape no longer
depends on how an ORM version renders a filter. The `q` pattern is escaped by Tortoise's own
`escape_like`, with the same `ESCAPE '\\'` clause Tortoise writes.

PostgreSQL (migration 0006): a filtered page walks the organization's live assets newest
first on `assets_live_newest_search` and tests each index entry until the page is full
(~2,100 entries for a 50-row page matching 2% of 100,000 assets), so what it tests is stored
in the entry: `q` against the stored `name_upper` / `original_name_upper`, `type`, and the
tags' 62-bit signature `tag_bits`. The signature is lossy, so the exact `tags @> '["a"]'`
is checked on the row of each entry that passes (a few percent more rows than match), and
the page is cut after that check. An entry holds no whole names or tags: every row the
contract allows fits in the index.

SQLite has no jsonb: one `asset_tags` sub-select per tag, on the covering
(organization_id, tag, asset_id) index, and `UPPER(CAST(name AS VARCHAR))` as Tortoise
renders `icontains`. Both tag columns are written in one transaction (services/assets.py,
services/uploads.py), so the two forms agree.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import orjson
from tortoise.filters import escape_like

from pixelwand.services.records import ASSET_COLUMNS

_COLUMNS = ", ".join(ASSET_COLUMNS)


class Where(NamedTuple):
    """What a listing filters on (validated and normalized by services/assets.py)."""

    media_type: str | None
    collection_id: str | None
    q: str | None
    tags: tuple[str, ...]
    content_hashes: tuple[str, ...] = ()  # "sha256:<hex>" values; any of them matches


class _Params:
    """Numbered placeholders ($n on PostgreSQL, ?n on SQLite), so a value can be reused."""

    def __init__(self, dialect: str) -> None:
        self.mark = "$" if dialect == "postgres" else "?"
        self.values: list[object] = []
        self.first = f"{self.mark}1"  # the organization id: always the first value

    def __call__(self, value: object) -> str:
        self.values.append(value)
        return f"{self.mark}{len(self.values)}"


def _where(p: _Params, org_id: str, w: Where, *, exact_tags: bool = True, alias: str = "") -> str:
    """The filter as one AND list, on columns prefixed with `alias`. On PostgreSQL with
    `exact_tags=False` the tags are tested by their signature only (what the index entry
    holds): the caller must check `_tags_contain` on each row that passes."""
    a = alias
    org = p(org_id)
    clauses = [f"{a}organization_id = {org}", f"{a}deleted_at IS NULL"]
    if w.media_type is not None:
        clauses.append(f"{a}media_type = {p(w.media_type)}")
    if w.collection_id is not None:
        clauses.append(f"{a}collection_id = {p(w.collection_id)}")
    if w.content_hashes:
        # On the (organization_id, content_hash) index of live assets (migration 0008).
        marks = ", ".join(p(h) for h in w.content_hashes)
        clauses.append(f"{a}content_hash IN ({marks})")
    postgres = p.mark == "$"
    if w.tags and postgres:
        # Before `q`: one AND on an integer rejects most entries before any LIKE runs.
        clauses.append(_tag_bits_contain(p, w.tags, a))
        if exact_tags:
            clauses.append(_tags_contain(p, w.tags, a))
    if w.q:
        clauses.append(_q_matches(p, w.q, a, postgres=postgres))
    if w.tags and not postgres:
        for tag in w.tags:
            clauses.append(
                f"{a}id IN (SELECT asset_id FROM asset_tags"
                f" WHERE organization_id = {org} AND tag = {p(tag)})"
            )
    return " AND ".join(clauses)


def _q_matches(p: _Params, q: str, a: str, *, postgres: bool) -> str:
    """`q` in the name or the original name, case-insensitively. PostgreSQL compares its
    stored `upper()` columns. SQLite's UPPER and LIKE fold ASCII only: an ASCII `q` keeps
    them (fast, native), any other goes through `pw_upper` (pixelwand.db.unicode_upper, per
    character like PostgreSQL's), so `q=ä` finds "ÄÖ.jpg" on both."""
    if postgres:
        name, original, upper = f"{a}name_upper", f"{a}original_name_upper", "UPPER"
    elif q.isascii():
        name = f"UPPER(CAST({a}name AS VARCHAR))"
        original = f"UPPER(CAST({a}original_name AS VARCHAR))"
        upper = "UPPER"
    else:
        name, original, upper = f"pw_upper({a}name)", f"pw_upper({a}original_name)", "pw_upper"
    pattern = p(f"%{escape_like(q)}%")
    return (
        f"({name} LIKE {upper}({pattern}) ESCAPE '\\'"
        f" OR {original} LIKE {upper}({pattern}) ESCAPE '\\')"
    )


def _tags_json(p: _Params, tags: tuple[str, ...]) -> str:
    return f"{p(orjson.dumps(list(tags)).decode())}::jsonb"


def _tags_contain(p: _Params, tags: tuple[str, ...], alias: str = "") -> str:
    return f"{alias}tags @> {_tags_json(p, tags)}"


def tag_bits(tags: tuple[str, ...]) -> int:
    """The tags' 62-bit signature, as `pixelwand_tag_bits` (migration 0006) stores it: for
    each tag, bits `md5(tag as UTF-8)[0] % 62` and `[1] % 62`. Computed here rather than by
    calling the SQL function in the statement: PostgreSQL evaluates a SQL function anew
    (parse and plan of its body) every time it plans, and listings are planned per
    execution."""
    bits = 0
    for tag in tags:
        digest = hashlib.md5(tag.encode("utf-8", "surrogatepass"), usedforsecurity=False)
        first, second = digest.digest()[:2]
        bits |= (1 << (first % 62)) | (1 << (second % 62))
    return bits


def _tag_bits_contain(p: _Params, tags: tuple[str, ...], alias: str) -> str:
    # Every listed tag's bit is set. `>=` rather than `=`: the masked value is a subset of
    # the mask's bits (both below 2**62, never negative), so the two are equivalent here,
    # but the planner's default guess for `=` on an expression (0.5% of rows) made a
    # sort-everything plan look cheaper and prepared statements switched to it after five
    # executions (16.5 ms instead of 0.5 ms, measured); its guess for `>=` (a third)
    # keeps the newest-first scan.
    mask = p(tag_bits(tags))
    return f"({alias}tag_bits & {mask}::bigint) >= {mask}::bigint"


def _generation(org: str) -> str:
    return f"(SELECT generation FROM asset_generations WHERE organization_id = {org})"


def page_sql(
    dialect: str, org_id: str, where: Where, limit: int, offset: int
) -> tuple[str, list[object]]:
    """A page of live assets, newest first; each row is ASSET_COLUMNS then the
    organization's write generation, read by the same statement."""
    p = _Params(dialect)
    order = "ORDER BY uploaded_at DESC, id DESC"
    if p.mark == "$" and where.tags:
        # The index entries pass on the tag signature; each candidate's row is then read
        # (newest first, by primary key) and kept only if its tags really contain the
        # listed ones. The page is cut after that check, so the scan stops at the page's
        # last match: a few rows more than the page are read, never the whole result. A
        # plain self-join: written as a lateral subquery, the planner chose to sort every
        # candidate first (18 ms instead of 0.9 ms, measured).
        candidates = _where(p, org_id, where, exact_tags=False, alias="candidate.")
        rows = ", ".join(f"asset.{c}" for c in ASSET_COLUMNS)
        sql = (
            f"SELECT {rows}, {_generation(p.first)}"
            " FROM assets AS candidate JOIN assets AS asset ON asset.id = candidate.id"
            f" WHERE {candidates} AND {_tags_contain(p, where.tags, 'asset.')}"
            " ORDER BY candidate.uploaded_at DESC, candidate.id DESC"
            f" LIMIT {p(limit)} OFFSET {p(offset)}"
        )
        return sql, p.values
    clause = _where(p, org_id, where)
    window = f"{order} LIMIT {p(limit)} OFFSET {p(offset)}"
    if p.mark == "$" and where.q:
        # Deferred join: find the page's ids in the index (migration 0006 stores what `q`
        # and `type` test in its entries, so rejected rows cost no heap visit), then read
        # the whole rows of those ids only.
        ids = f"SELECT id FROM assets WHERE {clause} {window}"
        sql = f"SELECT {_COLUMNS}, {_generation(p.first)} FROM assets WHERE id IN ({ids}) {order}"
    else:
        sql = f"SELECT {_COLUMNS}, {_generation(p.first)} FROM assets WHERE {clause} {window}"
    return sql, p.values


def count_sql(dialect: str, org_id: str, where: Where) -> tuple[str, list[object]]:
    """One row: the number of matching live assets and the generation it was counted at."""
    p = _Params(dialect)
    clause = _where(p, org_id, where)
    sql = f"SELECT (SELECT COUNT(*) FROM assets WHERE {clause}), {_generation(p.first)}"
    return sql, p.values
