from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from pixelwand.ids import new_id


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Organization",
            fields=[
                (
                    "id",
                    fields.CharField(
                        primary_key=True, default=new_id, unique=True, db_index=True, max_length=25
                    ),
                ),
                ("name", fields.CharField(max_length=200)),
                ("plan", fields.CharField(default="TEAM", max_length=16)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "organizations", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ApiKey",
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
                        related_name="api_keys",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(default="", max_length=200)),
                ("key_hash", fields.CharField(unique=True, max_length=64)),
                ("prefix", fields.CharField(max_length=16)),
                ("scopes", fields.CharField(max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "api_keys", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Collection",
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
                        related_name="collections",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=200)),
                (
                    "parent",
                    fields.ForeignKeyField(
                        "models.Collection",
                        source_field="parent_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="children",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("color", fields.CharField(default="#6366f1", max_length=7)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "collections",
                "app": "models",
                "unique_together": (("organization", "name"),),
                "indexes": [Index(fields=["organization_id", "parent_id"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Asset",
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
                        related_name="assets",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=255)),
                ("original_name", fields.CharField(max_length=255)),
                ("size", fields.BigIntField()),
                ("mime_type", fields.CharField(max_length=64)),
                ("media_type", fields.CharField(max_length=8)),
                ("storage_key", fields.CharField(unique=True, max_length=512)),
                ("tags", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                (
                    "collection",
                    fields.ForeignKeyField(
                        "models.Collection",
                        source_field="collection_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="assets",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("location_x", fields.FloatField(default=0)),
                ("location_y", fields.FloatField(default=0)),
                ("width", fields.IntField(null=True)),
                ("height", fields.IntField(null=True)),
                ("uploaded_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("deleted_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "assets",
                "app": "models",
                "indexes": [
                    Index(fields=["organization_id", "deleted_at", "uploaded_at", "id"]),
                    Index(fields=["organization_id", "media_type", "uploaded_at"]),
                    Index(fields=["collection_id", "uploaded_at"]),
                    Index(fields=["deleted_at"]),
                ],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AssetTag",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "asset",
                    fields.ForeignKeyField(
                        "models.Asset",
                        source_field="asset_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="tag_rows",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("organization_id", fields.CharField(max_length=25)),
                ("tag", fields.CharField(max_length=64)),
            ],
            options={
                "table": "asset_tags",
                "app": "models",
                "unique_together": (("asset", "tag"),),
                "indexes": [Index(fields=["organization_id", "tag"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ExportJob",
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
                        related_name="export_jobs",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("asset_ids", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ("config", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "export_jobs",
                "app": "models",
                "indexes": [Index(fields=["expires_at"])],
                "pk_attr": "id",
                "table_description": "A validated batch export, streamed by whoever holds its signed link.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ExportPreset",
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
                        related_name="export_presets",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=100)),
                ("format", fields.CharField(max_length=8)),
                ("quality", fields.IntField(default=85)),
                ("max_width", fields.IntField(null=True)),
                ("max_height", fields.IntField(null=True)),
                ("preserve_aspect", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "export_presets",
                "app": "models",
                "unique_together": (("organization", "name"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Rendition",
            fields=[
                (
                    "id",
                    fields.CharField(
                        primary_key=True, default=new_id, unique=True, db_index=True, max_length=25
                    ),
                ),
                (
                    "asset",
                    fields.ForeignKeyField(
                        "models.Asset",
                        source_field="asset_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="renditions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("params_key", fields.CharField(max_length=128)),
                ("format", fields.CharField(max_length=8)),
                ("storage_key", fields.CharField(unique=True, max_length=512)),
                ("size", fields.BigIntField()),
                ("width", fields.IntField()),
                ("height", fields.IntField()),
                ("etag", fields.CharField(max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "renditions",
                "app": "models",
                "unique_together": (("asset", "params_key"),),
                "pk_attr": "id",
                "table_description": "A stored transformed copy of an asset, one per (asset, normalized parameters).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SweepLock",
            fields=[
                (
                    "name",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32),
                ),
                ("holder", fields.CharField(max_length=64)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "sweep_locks",
                "app": "models",
                "pk_attr": "name",
                "table_description": "One row per sweeper job: a lease so that one process sweeps at a time.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Upload",
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
                        related_name="uploads",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("storage_key", fields.CharField(unique=True, max_length=512)),
                ("original_name", fields.CharField(max_length=255)),
                ("mime_type", fields.CharField(max_length=64)),
                ("size", fields.BigIntField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("asset_id", fields.CharField(null=True, max_length=25)),
            ],
            options={
                "table": "uploads",
                "app": "models",
                "indexes": [
                    Index(fields=["organization_id", "asset_id", "created_at"]),
                    Index(fields=["asset_id", "created_at"]),
                ],
                "pk_attr": "id",
                "table_description": "A presigned upload: the proof that a storage key was issued to this organization.",
            },
            bases=["Model"],
        ),
    ]
