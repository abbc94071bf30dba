"""Every migration applies from scratch on SQLite and on PostgreSQL."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def _migrate(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    env["DJANGO_SETTINGS_MODULE"] = "edupulse.settings.local"
    return subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_migrations_apply_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    result = _migrate(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    assert result.returncode == 0, result.stderr
    assert "students.0001_initial... OK" in result.stdout


@pytest.mark.postgres
def test_migrations_apply_on_a_fresh_postgres_database() -> None:
    settings_dict = connection.settings_dict
    name = f"edupulse_migrate_{uuid.uuid4().hex[:8]}"
    admin_url = f"postgresql://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        result = _migrate(admin_url.rsplit("/", 1)[0] + f"/{name}")
        assert result.returncode == 0, result.stderr
        assert "students.0001_initial... OK" in result.stdout
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
