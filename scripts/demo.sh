#!/usr/bin/env bash
# The whole demo on the embedded default (SQLite, Celery in eager mode):
# install, migrate, load a synthetic district, create demo accounts, serve.
# EDUPULSE_DEMO_NO_SERVE=1 stops before serving (CI uses it).
set -euo pipefail
cd "$(dirname "$0")/.."

step() {
    local name=$1
    shift
    local started=$SECONDS
    echo "==> $name"
    "$@"
    echo "    ($name took $((SECONDS - started))s)"
}

step "install" scripts/bootstrap.sh
export DJANGO_SETTINGS_MODULE=edupulse.settings.local
manage() { .venv/bin/python manage.py "$@"; }

step "migrate" manage migrate --noinput -v0
step "regions" manage load_regions
# The district arrives as files and goes in through the import pipeline, as a
# real district's would. Keeps an existing district (no new files, and files
# already imported are skipped by checksum): delete var/edupulse.sqlite3 to
# start over.
step "synthetic district files" manage generate_demo_data --schools 12 --students 6000 \
    --years 2 --seed 7 --if-empty --csv-only --out var/demo-files
step "import district" manage import_data auto var/demo-files --skip-known --quiet-problems
step "demo accounts" manage create_demo_accounts
# Trains on the district's closed academic years and makes the model active;
# a re-run keeps the active model. One torch thread: faster on 2 shared cores.
step "risk model" manage train_model --promote --user admin --if-none-active --threads 1
# Scores every student at the latest week with features; a re-run replaces, never duplicates.
step "risk scores" manage score_students

if [ "${EDUPULSE_DEMO_NO_SERVE:-0}" = "1" ]; then
    exit 0
fi
echo "==> serving: counselors at http://127.0.0.1:8000/caseload/, data managers at /admin/ (Ctrl-C to stop)"
exec .venv/bin/python manage.py runserver 127.0.0.1:8000
