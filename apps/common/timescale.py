"""Time-series tables: TimescaleDB hypertables where the extension exists.

django-timescaledb's backend runs CREATE EXTENSION unconditionally and so
breaks `migrate` on a PostgreSQL without it. Instead, migrations that create
a time-series table add `TimeSeriesTable(...)`, which picks one of three
layouts when it runs:

* ``hypertable``: PostgreSQL with `timescaledb` in pg_available_extensions;
* ``brin``: plain PostgreSQL, a BRIN index on the time column (rows arrive
  roughly in time order, so BRIN stays tiny and still prunes date ranges);
* ``plain``: SQLite and anything else, the ordinary table and its indexes.

Queries never call time_bucket(): they use Django's Trunc*, which works on
all three.
"""

from __future__ import annotations

from typing import Any, Literal

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

Layout = Literal["hypertable", "brin", "plain"]


def time_series_layout(*, vendor: str, available_extensions: set[str]) -> Layout:
    if vendor != "postgresql":
        return "plain"
    if "timescaledb" in available_extensions:
        return "hypertable"
    return "brin"


def _available_extensions(schema_editor: BaseDatabaseSchemaEditor) -> set[str]:
    if schema_editor.connection.vendor != "postgresql":
        return set()
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_available_extensions")
        return {row[0] for row in cursor.fetchall()}


def _make_hypertable(
    schema_editor: BaseDatabaseSchemaEditor, table: str, time_column: str, chunk_interval: str
) -> None:
    # Untested here (no TimescaleDB on the CI machine). Hypertables need every
    # unique index to contain the time column, so the surrogate primary key
    # becomes (id, time); the natural-key constraints already contain it.
    quote = schema_editor.quote_name
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    schema_editor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(table + '_pkey')}")
    schema_editor.execute(f"ALTER TABLE {quote(table)} ADD PRIMARY KEY (id, {quote(time_column)})")
    schema_editor.execute(
        "SELECT create_hypertable(%s, %s, chunk_time_interval => %s::interval, "
        "migrate_data => true, if_not_exists => true)",
        params=[table, time_column, chunk_interval],
    )


def _make_brin_index(schema_editor: BaseDatabaseSchemaEditor, table: str, time_column: str) -> None:
    quote = schema_editor.quote_name
    index = f"{table}_{time_column}_brin"[:63]
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {quote(index)} ON {quote(table)} "
        f"USING brin ({quote(time_column)})"
    )


class TimeSeriesTable(migrations.operations.base.Operation):
    reversible = True
    reduces_to_sql = False

    def __init__(self, model_name: str, time_column: str, chunk_interval: str = "90 days") -> None:
        self.model_name = model_name
        self.time_column = time_column
        self.chunk_interval = chunk_interval

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass  # the layout is physical only; Django's model state is unchanged

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: Any,
        to_state: Any,
    ) -> None:
        apps: StateApps = to_state.apps
        table = apps.get_model(app_label, self.model_name)._meta.db_table
        layout = time_series_layout(
            vendor=schema_editor.connection.vendor,
            available_extensions=_available_extensions(schema_editor),
        )
        if layout == "hypertable":
            _make_hypertable(schema_editor, table, self.time_column, self.chunk_interval)
        elif layout == "brin":
            _make_brin_index(schema_editor, table, self.time_column)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: Any,
        to_state: Any,
    ) -> None:
        # Dropping the table in the previous operation removes either layout.
        pass

    def describe(self) -> str:
        return f"Lay out {self.model_name} as a time series on {self.time_column}"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (
            self.__class__.__qualname__,
            [],
            {
                "model_name": self.model_name,
                "time_column": self.time_column,
                "chunk_interval": self.chunk_interval,
            },
        )
