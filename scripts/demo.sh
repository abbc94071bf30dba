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
# Keeps an existing district: delete var/edupulse.sqlite3 to start over.
step "synthetic district" manage generate_demo_data --schools 12 --students 6000 --years 2 \
    --seed 7 --if-empty
step "demo accounts" manage create_demo_accounts

if [ "${EDUPULSE_DEMO_NO_SERVE:-0}" = "1" ]; then
    exit 0
fi
echo "==> serving on http://127.0.0.1:8000/admin/ (Ctrl-C to stop)"
exec .venv/bin/python manage.py runserver 127.0.0.1:8000
