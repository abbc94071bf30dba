"""Single-prediction latency of POST /api/v1/predict under concurrent clients, on gunicorn.

    DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python benchmarks/api.py [--students 3000 --clients 50 --requests 3000]

Creates a throwaway database next to DATABASE_URL's (<name>_apibench) with a
district whose weekly features are in the store and an active model (random
but fixed weights: latency does not depend on how good the model is), starts
gunicorn on 127.0.0.1 (gthread workers, so concurrent requests in one process
can share a forward pass), and drives it with --clients threads, each with its
own keep-alive connection and the same API token. Configurations:

* cold, no batching: every request a student not cached yet, EDUPULSE_SCORE_BATCH_WAIT_MS=0;
* cold, batching: the same with the micro-batcher (requests arriving together
  share one forward pass);
* cached: the students again, answered from the prediction cache (Redis when
  REDIS_URL is set, else each worker's memory).

Throttles are raised for the run (they would otherwise answer 429). The last
line printed is one JSON object: p50_ms, p95_ms, p99_ms and rps of the
configuration with the lowest p95, plus every configuration's figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edupulse.settings.local")
os.environ.setdefault("DJANGO_DEBUG", "false")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import override_settings  # noqa: E402

YEAR = 2026
WEEK = 10


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--students", type=int, default=3000)
    p.add_argument("--schools", type=int, default=10)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--requests", type=int, default=3000, help="Per configuration.")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    p.add_argument("--threads", type=int, default=25, help="Threads per gunicorn worker.")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--keep", action="store_true", help="Keep the benchmark database.")
    return p.parse_args()


def _say(message: str) -> None:
    print(message, flush=True)


def _district(args: argparse.Namespace, model_dir: Path) -> tuple[list[str], str]:
    """Students with a year of weekly features, an active model and an admin token."""
    from rest_framework.authtoken.models import Token

    from apps.accounts.models import Role
    from apps.accounts.services import user_create
    from apps.features.selectors import feature_set_current
    from apps.students.models import Enrollment, Region, School, Student
    from tests.predictions.scoring_support import features_write, model_version_make, risk_model

    region = Region.objects.create(level="division", code="B", name="Bench", path="/B/")
    schools = School.objects.bulk_create(
        School(eiin=f"{900000 + i}", name=f"Bench {i}", school_type="government", region=region)
        for i in range(args.schools)
    )
    students = Student.objects.bulk_create(
        Student(student_id=f"B-{i:07d}", name=f"Student {i}", gender="female")
        for i in range(args.students)
    )
    per_school = np.array_split(np.arange(len(students)), len(schools))
    Enrollment.objects.bulk_create(
        Enrollment(
            student=students[i],
            school=school,
            academic_year=YEAR,
            grade_level=7,
            entry_date=dt.date(YEAR, 1, 4),
        )
        for school, indices in zip(schools, per_school, strict=True)
        for i in indices
    )
    for school, indices in zip(schools, per_school, strict=True):
        features_write([students[i] for i in indices], school)
    with override_settings(EDUPULSE_MODEL_DIR=model_dir):
        model_version_make(risk_model(model_dir, list(feature_set_current().columns)))
    admin = user_create(username="bench-admin", password=None, role=Role.ADMINISTRATOR)
    token, _ = Token.objects.get_or_create(user=admin)
    return [s.student_id for s in students], token.key


def _gunicorn(args: argparse.Namespace, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        str(ROOT / ".venv/bin/gunicorn"),
        "edupulse.wsgi:application",
        f"--bind=127.0.0.1:{args.port}",
        f"--workers={args.workers}",
        f"--threads={args.threads}",
        "--worker-class=gthread",
        "--keep-alive=30",
        "--log-level=warning",
    ]
    # Its output goes to a file: an inherited pipe would outlive a crashed benchmark.
    log = open(Path(tempfile.gettempdir()) / "edupulse-apibench-gunicorn.log", "ab")  # noqa: SIM115
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
    for _ in range(600):
        try:
            if requests.get(f"http://127.0.0.1:{args.port}/api/v1/ready", timeout=30).ok:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not become ready (see edupulse-apibench-gunicorn.log)")


def _drive(
    args: argparse.Namespace, token: str, ids: list[str], as_of: str
) -> dict[str, float | int]:
    url = f"http://127.0.0.1:{args.port}/api/v1/predict"
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    position = iter(range(len(ids)))

    def client() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        mine: list[float] = []
        while True:
            with lock:
                index = next(position, None)
            if index is None:
                break
            started = time.perf_counter()
            response = session.post(url, json={"student_id": ids[index], "as_of": as_of})
            mine.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors.append(response.status_code)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "rps": round(len(latencies) / elapsed, 1),
    }


def _flush_cache() -> None:
    from django.core.cache import cache

    cache.clear()


def main() -> None:
    args = _parse()
    if connection.vendor != "postgresql":
        sys.exit("benchmarks/api.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    original = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"{original}_apibench"
    bench_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, serialize=False, keepdb=False
    )
    model_dir = Path(tempfile.mkdtemp(prefix="edupulse-apibench-"))
    results: dict[str, dict[str, float | int]] = {}
    try:
        started = time.perf_counter()
        ids, token = _district(args, model_dir)
        _say(f"{bench_name}: {len(ids):,} students built in {time.perf_counter() - started:.1f}s")
        from apps.features.calendar import year_calendar

        week_start = year_calendar(YEAR).week_starts[WEEK].astype(object)
        as_of = (week_start + dt.timedelta(days=2)).isoformat()
        base_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        env = {
            **os.environ,
            "DATABASE_URL": f"{base_url}/{bench_name}",
            "EDUPULSE_MODEL_DIR": str(model_dir),
            "EDUPULSE_WARM_MODEL": "true",
            "EDUPULSE_API_RATE_USER": "100000000/min",
            "EDUPULSE_API_RATE_TOKEN": "100000000/min",
            "EDUPULSE_API_RATE_PREDICT": "100000000/min",
        }
        count = min(args.requests, len(ids))
        plan = [
            ("cold_no_batching", {"EDUPULSE_SCORE_BATCH_WAIT_MS": "0"}, True),
            ("cold_batching", {"EDUPULSE_SCORE_BATCH_WAIT_MS": "5"}, True),
            ("cached", {"EDUPULSE_SCORE_BATCH_WAIT_MS": "5"}, False),
        ]
        for name, extra, cold in plan:
            if cold:
                _flush_cache()
            server = _gunicorn(args, {**env, **extra})
            try:
                if not cold:
                    _drive(args, token, ids[:count], as_of)  # fill each worker's cache
                results[name] = _drive(args, token, ids[:count], as_of)
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
            _say(f"{name}: {json.dumps(results[name])}")
    finally:
        connection.creation.destroy_test_db(original, verbosity=0, keepdb=args.keep)
    best_name = min(results, key=lambda n: (results[n]["errors"] > 0, results[n]["p95_ms"]))
    best = results[best_name]
    print(
        json.dumps(
            {
                "p50_ms": best["p50_ms"],
                "p95_ms": best["p95_ms"],
                "p99_ms": best["p99_ms"],
                "rps": best["rps"],
                "best": best_name,
                "clients": args.clients,
                "configurations": results,
            }
        )
    )


if __name__ == "__main__":
    main()
