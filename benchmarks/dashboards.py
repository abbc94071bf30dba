"""Server time of every dashboard page for one school (issue 7: at most 150 ms, first load too).

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/dashboards.py
    DATABASE_URL=postgres://... .venv/bin/python benchmarks/dashboards.py --students 3000 \\
        --requests 30 --cold 9 [--no-scores]

Runs the `caseload_benchmark` management command
(apps/dashboards/management/commands/caseload_benchmark.py) in this process,
with DEBUG off as production serves pages. It builds, inside a transaction
that is rolled back, a school of --students students with a year of daily
attendance, marks, incidents, plans, the weekly feature store, the overview's
summaries and (unless --no-scores) an active model with a prediction per
student and week and a counselor's alerts; then it times each page through
Django's test client for that counselor: first loads (cold: a new session
each) and repeated loads (warm), median and p95, with the process's CPU time,
the query count and Python's full garbage collections beside them.

The last line printed is one JSON object: per page (`pages`) cold and warm
median and p95, queries, SQL and CPU time; `worst_page` and `worst_p95_ms`;
the time to rewrite the overview's summaries for the whole year and for one
week (`overview_refresh_year_ms`, `overview_refresh_week_ms`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edupulse.settings.local")
os.environ.setdefault("DJANGO_DEBUG", "false")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402


def main() -> None:
    call_command("caseload_benchmark", *sys.argv[1:])


if __name__ == "__main__":
    main()
