"""Facts about the media, focal points, preset gravity, and the durable facts queue.

* `assets` gains the facts the worker fills after finalize (`content_hash`, `thumbhash`,
  `blurhash`, `dominant_color`, `duration_seconds`, `video_codec`, `frame_rate`), the
  automatic focal point (`focal_auto_x/y`, part of the facts) and the manual one
  (`focal_x/y`, set through PATCH / updateAsset). Videos' `width`/`height` reuse the
  existing columns. All nullable: adding them rewrites nothing.
* `assets_live_content_hash` serves the `contentHash` list filter (duplicates by hash).
* `export_presets.gravity` (default `center`, today's behaviour).
* `fact_jobs`: one row per asset whose facts are pending, written in the finalize
  transaction and claimed under a lease (services/facts.py), so several processes never
  work one asset at once and a killed process's jobs are taken up again.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

_ASSET_FIELDS: list[tuple[str, fields.Field]] = [
    ("content_hash", fields.CharField(null=True, max_length=71)),
    ("thumbhash", fields.CharField(null=True, max_length=64)),
    ("blurhash", fields.CharField(null=True, max_length=32)),
    ("dominant_color", fields.CharField(null=True, max_length=7)),
    ("duration_seconds", fields.FloatField(null=True)),
    ("video_codec", fields.CharField(null=True, max_length=32)),
    ("frame_rate", fields.FloatField(null=True)),
    ("focal_auto_x", fields.FloatField(null=True)),
    ("focal_auto_y", fields.FloatField(null=True)),
    ("focal_x", fields.FloatField(null=True)),
    ("focal_y", fields.FloatField(null=True)),
]


class Migration(migrations.Migration):
    dependencies = [("models", "0007_upload_finalize_lease")]

    initial = False

    operations = [
        *(
            ops.AddField(model_name="Asset", name=name, field=field)
            for name, field in _ASSET_FIELDS
        ),
        ops.AddField(
            model_name="ExportPreset",
            name="gravity",
            field=fields.CharField(default="center", null=True, max_length=16),
        ),
        ops.CreateModel(
            name="FactJob",
            fields=[
                (
                    "asset",
                    fields.OneToOneField(
                        "models.Asset",
                        source_field="asset_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="fact_job",
                        on_delete=OnDelete.CASCADE,
                        primary_key=True,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("attempts", fields.IntField(default=0)),
                ("holder", fields.CharField(null=True, max_length=64)),
                ("lease_expires_at", fields.DatetimeField(null=True)),
            ],
            options={
                "table": "fact_jobs",
                "app": "models",
                "pk_attr": "asset_id",
                "table_description": "Assets whose facts are still to be computed.",
            },
            bases=["Model"],
        ),
        ops.RunSQL(
            [
                "CREATE INDEX IF NOT EXISTS assets_live_content_hash ON assets"
                " (organization_id, content_hash) WHERE deleted_at IS NULL",
            ],
            ["DROP INDEX IF EXISTS assets_live_content_hash"],
        ),
    ]
