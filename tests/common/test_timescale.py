import pytest
from django.db import connection

from apps.common.timescale import time_series_layout
from apps.students.models import AttendanceRecord


def test_postgres_with_the_extension_available_gets_a_hypertable() -> None:
    layout = time_series_layout(
        vendor="postgresql", available_extensions={"plpgsql", "timescaledb"}
    )
    assert layout == "hypertable"


def test_plain_postgres_gets_a_brin_index() -> None:
    assert time_series_layout(vendor="postgresql", available_extensions={"plpgsql"}) == "brin"


def test_sqlite_gets_a_plain_table_even_if_told_of_the_extension() -> None:
    assert time_series_layout(vendor="sqlite", available_extensions={"timescaledb"}) == "plain"


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_attendance_table_on_plain_postgres_has_a_brin_index_on_date() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s",
            [AttendanceRecord._meta.db_table],
        )
        definitions = [row[0] for row in cursor.fetchall()]
    assert any("USING brin (date)" in definition for definition in definitions), definitions
