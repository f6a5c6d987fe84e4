"""Multipart uploads: one row per started upload (docs/multipart.md)."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from pixelwand.ids import new_id


class Migration(migrations.Migration):
    dependencies = [("models", "0008_media_facts")]

    initial = False

    operations = [
        ops.CreateModel(
            name="MultipartUpload",
            fields=[
                (
                    "id",
                    fields.CharField(
                        primary_key=True, default=new_id, unique=True, db_index=True, max_length=25
                    ),
                ),
                (
                    "organization",
                    fields.ForeignKeyField(
                        "models.Organization",
                        source_field="organization_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="multipart_uploads",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("storage_key", fields.CharField(unique=True, max_length=512)),
                ("backend_upload_id", fields.CharField(max_length=1024)),
                ("original_name", fields.CharField(max_length=255)),
                ("mime_type", fields.CharField(max_length=64)),
                ("size", fields.BigIntField()),
                ("part_size", fields.BigIntField()),
                ("part_count", fields.IntField()),
                ("state", fields.CharField(default="pending", max_length=16)),
                (
                    "lease_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("asset_id", fields.CharField(null=True, max_length=25)),
            ],
            options={
                "table": "multipart_uploads",
                "app": "models",
                "indexes": [
                    Index(fields=["organization_id", "asset_id", "expires_at"]),
                    Index(fields=["asset_id", "created_at"]),
                ],
                "pk_attr": "id",
                "table_description": "A multipart upload: started, then parts PUT by the client, then completed or aborted.",
            },
            bases=["Model"],
        ),
    ]
