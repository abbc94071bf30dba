#!/usr/bin/env bash
# Lint, migration check and the test suite. Extra arguments go to pytest.
# With DATABASE_URL=postgres://... the suite runs on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy apps edupulse
DJANGO_SETTINGS_MODULE=edupulse.settings.test .venv/bin/python manage.py makemigrations --check --dry-run
DJANGO_SETTINGS_MODULE=edupulse.settings.test .venv/bin/python manage.py spectacular --validate --fail-on-warn --file /dev/null
.venv/bin/python -m pytest "$@"
