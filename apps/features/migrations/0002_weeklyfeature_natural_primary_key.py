# The store's natural key becomes its primary key and the surrogate `id`
# goes: every row a build writes updated two B-tree indexes (id and the
# natural key) and drew from a sequence, which was about 40% of the cost of
# writing it. Django does not migrate a table to a composite primary key, so
# the state changes here and the table is altered by hand below.

from typing import Any

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

COLUMNS = ["feature_set_id", "student_id", "week_start", "academic_year"]


def natural_primary_key(apps: Any, schema_editor: BaseDatabaseSchemaEditor) -> None:
    model = apps.get_model("features", "WeeklyFeature")
    table = model._meta.db_table
    quote = schema_editor.quote_name
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        # Dropping `id` drops the primary key on it (on a hypertable: on id and week_start).
        schema_editor.execute(
            f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote('weekly_feature_natural_key')}"
        )
        schema_editor.execute(f"ALTER TABLE {quote(table)} DROP COLUMN {quote('id')}")
        schema_editor.execute(
            f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(table + '_pkey')} "
            f"PRIMARY KEY ({', '.join(quote(c) for c in COLUMNS)})"
        )
    else:
        # SQLite cannot change a primary key in place: a new table, the rows
        # copied, in portable SQL (the same works on any backend Django supports).
        old = f"{table}__old"
        schema_editor.execute(f"ALTER TABLE {quote(table)} RENAME TO {quote(old)}")
        schema_editor.create_model(model)
        columns = ", ".join(quote(f.column) for f in model._meta.local_concrete_fields)
        schema_editor.execute(
            f"INSERT INTO {quote(table)} ({columns}) SELECT {columns} FROM {quote(old)}"  # noqa: S608
        )
        schema_editor.execute(f"DROP TABLE {quote(old)}")


class Migration(migrations.Migration):
    dependencies = [
        ("features", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="weeklyfeature",
                    name="weekly_feature_natural_key",
                ),
                migrations.RemoveField(
                    model_name="weeklyfeature",
                    name="id",
                ),
                migrations.AddField(
                    model_name="weeklyfeature",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "feature_set",
                        "student",
                        "week_start",
                        "academic_year",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
            ],
        ),
        migrations.RunPython(natural_primary_key, elidable=False),
    ]
