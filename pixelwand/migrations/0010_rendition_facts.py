"""Perceptual quality: what a rendition reports, and presets' targets.

`renditions` gains `quality` (the encoder setting used), `score` (the SSIMULACRA2 the search
reached; null without a target) and `perceptual` (the normalised target, null when none).
Rows written before this migration keep nulls: they were all fixed-quality renditions, so
their answer takes `quality` from the request's parameters (100 for PNG) and reports
`score`/`perceptual` as null — which is what they are (docs/perceptual.md). No backfill, no
table rewrite: nullable columns without defaults are added in place on both databases.

`export_presets` gains `perceptual` (null: none) and `formats` (format AUTO's candidates,
comma-separated; null: the default avif,webp,jpeg).
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0009_multipart_uploads")]

    initial = False

    operations = [
        ops.AddField(model_name="Rendition", name="quality", field=fields.IntField(null=True)),
        ops.AddField(model_name="Rendition", name="score", field=fields.FloatField(null=True)),
        ops.AddField(
            model_name="Rendition",
            name="perceptual",
            field=fields.CharField(max_length=16, null=True),
        ),
        ops.AddField(
            model_name="ExportPreset",
            name="perceptual",
            field=fields.CharField(max_length=16, null=True),
        ),
        ops.AddField(
            model_name="ExportPreset",
            name="formats",
            field=fields.CharField(max_length=32, null=True),
        ),
    ]
