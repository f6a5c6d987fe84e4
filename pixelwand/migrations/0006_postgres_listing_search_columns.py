"""PostgreSQL only: what listings test is stored, and the newest-first index entry stays small.

Migration 0005's covering index held `name`, `original_name` and the whole `tags` jsonb. A
B-tree entry must fit in a third of a page (2,704 bytes) and incompressible text is not
shrunk to fit, so an asset the contract allows — 50 tags of 64 four-byte characters, ~13 KB
of jsonb — could not be written at all ("index row requires 15112 bytes"). The scan also
computed `UPPER(name)` and `UPPER(original_name)` again for every entry it tested. Now:

* `name_upper` and `original_name_upper` are stored generated columns (`upper(name)`), so
  `q` compares stored text; the trigram indexes move onto them (the same `upper`, applied
  on both sides of LIKE, as before).
* `tag_bits` is a 62-bit Bloom signature of the tags: for each tag, bits `md5(tag)[0] % 62`
  and `md5(tag)[1] % 62`, the tag taken as UTF-8 whatever the database's encoding
  (`pixelwand_tag_bits`; listing_sql.py computes the same in Python). It is lossy: listings
  test it in the index and check the exact `tags @> …` on the rows that pass. With two bits
  per tag, an asset with 3 tags passes the test for a tag it lacks about 1 time in 110
  (with one bit: 1 in 20), so a rare tag's page reads few rows that do not match.
  `convert_to` is only STABLE (conversions can be redefined); to UTF-8 it does not change,
  so the function is declared IMMUTABLE, which a generated column requires.
* `assets_live_newest_search` replaces `assets_live_newest_covering` (which 0005 now no
  longer builds; a database that has it loses it here): the same key and predicate,
  covering `tag_bits`, `media_type` and the two upper-case names. Its largest entry is
  ~2.2 KB (two 255-character names of four-byte characters), under the limit. Going
  back leaves the plain newest-first index of 0003, never the covering one.

Measured on the filtered benchmark page over 100,000 assets: 0.27 ms planning and 0.43 ms
execution against 0.4 and 1.45 ms in 0005's form (psql, warm), and 1.7x the transactions per
second under pgbench (8 clients, prepared statements, alternating runs).

Adding stored columns rewrites `assets` under an ACCESS EXCLUSIVE lock (about 6 s per
180,000 rows here); docs/deploy.md says how to plan for it. SQLite keeps its own SQL.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

_FORWARD = """
CREATE OR REPLACE FUNCTION pixelwand_tag_bits(tags jsonb) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
        SELECT COALESCE(bit_or(
            (1::bigint << (get_byte(digest, 0) % 62)) | (1::bigint << (get_byte(digest, 1) % 62))
        ), 0)
        FROM jsonb_array_elements_text(tags) AS tag,
            LATERAL decode(md5(convert_to(tag, 'UTF8')), 'hex') AS digest
    $$;
ALTER TABLE assets
    ADD COLUMN IF NOT EXISTS name_upper text
        GENERATED ALWAYS AS (upper(name::text)) STORED,
    ADD COLUMN IF NOT EXISTS original_name_upper text
        GENERATED ALWAYS AS (upper(original_name::text)) STORED,
    ADD COLUMN IF NOT EXISTS tag_bits bigint
        GENERATED ALWAYS AS (pixelwand_tag_bits(tags)) STORED;
CREATE INDEX IF NOT EXISTS assets_live_newest_search ON assets
    (organization_id, uploaded_at DESC, id DESC)
    INCLUDE (tag_bits, media_type, name_upper, original_name_upper)
    WHERE deleted_at IS NULL;
DROP INDEX IF EXISTS assets_live_newest_covering;
CREATE INDEX IF NOT EXISTS assets_name_upper_trgm
    ON assets USING gin (name_upper gin_trgm_ops);
CREATE INDEX IF NOT EXISTS assets_original_name_upper_trgm
    ON assets USING gin (original_name_upper gin_trgm_ops);
DROP INDEX IF EXISTS assets_name_trgm;
DROP INDEX IF EXISTS assets_original_name_trgm;
ANALYZE assets;
"""

_BACKWARD = """
CREATE INDEX IF NOT EXISTS assets_name_trgm
    ON assets USING gin ((UPPER(CAST(name AS VARCHAR))) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS assets_original_name_trgm
    ON assets USING gin ((UPPER(CAST(original_name AS VARCHAR))) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS assets_live_newest ON assets
    (organization_id, uploaded_at DESC, id DESC) WHERE deleted_at IS NULL;
DROP INDEX IF EXISTS assets_live_newest_search;
DROP INDEX IF EXISTS assets_name_upper_trgm;
DROP INDEX IF EXISTS assets_original_name_upper_trgm;
ALTER TABLE assets
    DROP COLUMN IF EXISTS name_upper,
    DROP COLUMN IF EXISTS original_name_upper,
    DROP COLUMN IF EXISTS tag_bits;
DROP FUNCTION IF EXISTS pixelwand_tag_bits(jsonb);
"""


def _on_postgres(sql: str):
    async def run(apps, schema_editor) -> None:
        if schema_editor.client.capabilities.dialect == "postgres":
            await schema_editor.client.execute_script(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("models", "0005_postgres_covering_listing_index")]

    initial = False

    operations = [ops.RunPython(_on_postgres(_FORWARD), _on_postgres(_BACKWARD))]
