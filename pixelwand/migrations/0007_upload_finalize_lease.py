"""A finalize lease on uploads: one finalize at a time per storage key, on every process.

Finalize pins the uploaded bytes (a rename on local disk, a server-side copy on S3) and
checks them before it records the asset. Two finalizes of one key at once must not both
pin: the second copy could land after the first had been checked and committed, and change
the bytes of a finalized asset. `finalizing_by` / `finalizing_until` are a lease taken with
a conditional UPDATE (services/uploads.py); an expired lease (a process killed mid-way) is
taken over. Two nullable columns: no table rewrite on either database.
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0006_postgres_listing_search_columns")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Upload",
            name="finalizing_by",
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AddField(
            model_name="Upload",
            name="finalizing_until",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
