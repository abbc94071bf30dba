import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from edupulse.settings.env import Env

ROOT = Path(__file__).resolve().parents[2]


def test_it_reads_booleans_and_rejects_misspelt_ones() -> None:
    assert Env({"X": "true"}).flag("X", False) is True
    assert Env({"X": "Off"}).flag("X", True) is False
    assert Env({}).flag("X", True) is True
    with pytest.raises(ImproperlyConfigured, match="X='ture' is not a boolean"):
        Env({"X": "ture"}).flag("X", False)


def test_it_rejects_non_integers_and_values_below_the_minimum() -> None:
    assert Env({"N": "42"}).integer("N", 1) == 42
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        Env({"N": "4x"}).integer("N", 1)
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        Env({"N": "0"}).integer("N", 5, minimum=1)


def test_it_parses_database_urls_and_rejects_unknown_schemes() -> None:
    config = Env({"DB": "postgres://postgres@127.0.0.1:5432/edupulse"}).database("DB", "")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "edupulse"
    assert config["HOST"] == "127.0.0.1"
    with pytest.raises(ImproperlyConfigured, match="DB"):
        Env({"DB": "oracle-ish://nowhere"}).database("DB", "")


def test_it_requires_redis_urls_to_have_a_redis_scheme() -> None:
    assert Env({"R": "redis://127.0.0.1:6379/0"}).url("R", schemes={"redis"}) == (
        "redis://127.0.0.1:6379/0"
    )
    with pytest.raises(ImproperlyConfigured, match="must be a URL with scheme"):
        Env({"R": "127.0.0.1:6379"}).url("R", schemes={"redis"})


def test_it_reads_the_academic_year_start_as_month_and_day() -> None:
    assert Env({"S": "07-01"}).month_day("S", "01-01") == (7, 1)
    with pytest.raises(ImproperlyConfigured, match="MM-DD"):
        Env({"S": "July"}).month_day("S", "01-01")
    with pytest.raises(ImproperlyConfigured, match="month 1-12"):
        Env({"S": "13-01"}).month_day("S", "01-01")


def test_it_reads_school_days_and_rejects_unknown_weekdays() -> None:
    assert Env({"D": "sat, sun,mon"}).weekdays("D", ["sun"]) == ["sat", "sun", "mon"]
    with pytest.raises(ImproperlyConfigured, match="weekday names"):
        Env({"D": "sunday,monday"}).weekdays("D", ["sun"])


def test_it_restricts_choices() -> None:
    assert Env({"L": "bn"}).choice("L", "en", {"en", "bn"}) == "bn"
    with pytest.raises(ImproperlyConfigured, match="not one of: bn, en"):
        Env({"L": "fr"}).choice("L", "en", {"en", "bn"})


def _manage_check(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update({"DJANGO_SETTINGS_MODULE": "edupulse.settings.local", **extra_env})
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_start_up_stops_with_a_clear_error_on_a_malformed_value() -> None:
    result = _manage_check({"DJANGO_DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


def test_production_settings_refuse_the_insecure_default_key() -> None:
    result = _manage_check({"DJANGO_SETTINGS_MODULE": "edupulse.settings.production"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


def test_no_environment_means_sqlite_and_eager_celery() -> None:
    code = (
        "import django, os; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER); "
        "from apps.common.tasks import ping; print(ping.delay().get())"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "CELERY_"))
    }
    env["DJANGO_SETTINGS_MODULE"] = "edupulse.settings.local"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True", "pong"], result.stderr
    # An eager call builds no connection to a broker nobody configured (kombu warned).
    assert "No hostname was supplied" not in result.stderr
