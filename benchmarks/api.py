"""Single-prediction latency of POST /api/v1/predict under 50 concurrent clients, on gunicorn.

    DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python benchmarks/api.py [--students 3000 --clients 50 --requests 3000 --rate 100]

Creates a throwaway database next to DATABASE_URL's (<name>_apibench): a
district of --schools schools whose weekly features are in the store, an
active model (random but fixed weights: latency does not depend on how good
the model is), and --clients counselors, each with their own API token and
scoped to one school, as in production. It starts gunicorn on 127.0.0.1 with
the production settings (edupulse.settings.production, DEBUG off, Redis
cache, gthread workers, --workers/--threads, keep-alive 30 s) and drives it
from a load generator in a separate process (asyncio, one keep-alive
connection per client, no Django), so the clients never share a GIL with
anything. Requests carry X-Forwarded-Proto: https, as behind the TLS proxy.

Configurations (a fresh server each):

* cold_no_batching: every request a student whose answer is not cached,
  EDUPULSE_SCORE_BATCH_WAIT_MS=0 (a forward pass, explanations, an upsert);
* cold_batching: the same with the micro-batcher (requests arriving within
  5 ms share one forward pass);
* cached: the same students again, answered from the Redis cache.

Two load shapes for each configuration:

* closed: --clients clients, each sending its next request the moment the
  previous answer arrives, no think time: the server is saturated, so this
  measures throughput. By Little's law latency = clients / throughput, so the
  p95 under it can only be <= 50 ms at >= 1,000 req/s for 50 clients.
* paced: the same clients, each sending at a fixed average rate with Poisson
  (exponential) gaps, --rate req/s in all, for --paced-seconds. Latency is
  measured from each request's scheduled send time, so a client held up by a
  slow answer carries its queueing into the next requests rather than hiding
  it (no coordinated omission). This is what a counselor sees at that load.

Besides latency it reports each server process's CPU per request (from
/proc: utime + stime of the gunicorn master and workers), the whole
machine's CPU per request (/proc/stat: workers, PostgreSQL, Redis and the
load generator together) and the load generator's own CPU. Throttles are
raised for the run. The last line printed is one JSON object: p50_ms, p95_ms,
p99_ms and rps of the configuration with the lowest p95 under the closed
loop, a `paced` object with the same for the paced shape, and every
configuration's figures under both shapes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
YEAR = 2026
WEEK = 10
TICK = os.sysconf("SC_CLK_TCK")


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--students", type=int, default=3000)
    p.add_argument("--schools", type=int, default=10)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--requests", type=int, default=3000, help="Closed loop, per configuration.")
    p.add_argument("--rate", type=float, default=100.0, help="Paced: requests/s of all clients.")
    p.add_argument("--paced-seconds", type=float, default=15.0, help="Paced: how long.")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    p.add_argument("--threads", type=int, default=4, help="Threads per gunicorn worker.")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--keep", action="store_true", help="Keep the benchmark database.")
    p.add_argument("--load", help=argparse.SUPPRESS)  # internal: be the load generator
    return p.parse_args()


def _say(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- load generator
# Runs in its own process (`--load spec.json`) and imports nothing of Django.


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, token: str, payload: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Token {token}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nX-Forwarded-Proto: https\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        try:
            self.writer.write(head + payload)
            headers = await self.reader.readuntil(b"\r\n\r\n")
            lines = headers.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            fields = {
                k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
            }
            await self.reader.readexactly(int(fields.get("content-length", "0")))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.close()
            return 0
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _client(
    spec: dict[str, Any], me: dict[str, Any], count: int, rate: float | None, out: list[Any]
) -> None:
    """Closed: `count` requests back to back. Paced: Poisson arrivals until the run's end."""
    connection = _Connection(spec["host"], spec["port"])
    students = me["students"]
    rng = random.Random(me["seed"])
    start = time.perf_counter()
    scheduled = start + (rng.expovariate(rate) if rate else 0.0)
    end = start + spec["seconds"]
    i = 0
    while (i < count) if not rate else (scheduled < end):
        body = json.dumps({"student": students[i % len(students)], "as_of": spec["as_of"]})
        if rate:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            started = scheduled  # queueing behind a slow answer counts
            scheduled += rng.expovariate(rate)
        else:
            started = time.perf_counter()
        status = await connection.post("/api/v1/predict", me["token"], body.encode())
        out.append((time.perf_counter() - started, status))
        i += 1
    connection.close()


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    clients = spec["clients"]
    total = spec["requests"]
    counts = [
        total // len(clients) + (1 if i < total % len(clients) else 0) for i in range(len(clients))
    ]
    paced = spec["shape"] == "paced"
    rate = spec["rate"] / len(clients) if paced else None
    results: list[Any] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(_client(spec, me, n, rate, results) for me, n in zip(clients, counts, strict=True))
    )
    wall = time.perf_counter() - started
    # Paced: requests over the run's length (the offered rate; the last answers come
    # later, and wall_s says how much later when the server fell behind).
    elapsed = spec["seconds"] if paced else wall
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "latencies_ms": [round(seconds * 1000, 3) for seconds, _ in results],
        "statuses": [status for _, status in results],
        "elapsed_s": elapsed,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def _load_main(path: str) -> None:
    spec = json.loads(Path(path).read_text())
    print(json.dumps(asyncio.run(_load(spec))))


# --------------------------------------------------------------------------- the district


def _district(args: argparse.Namespace, model_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """Students with a year of weekly features, an active model, and a counselor per client."""
    import numpy as np
    from django.test import override_settings
    from rest_framework.authtoken.models import Token

    from apps.accounts.models import Role
    from apps.accounts.services import user_create
    from apps.features.selectors import feature_set_current
    from apps.students.models import Enrollment, Region, School, StaffScope, Student
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
    # Counselors take turns over the schools; the counselors of one school split its
    # students, so a cold run asks for each student once.
    clients: list[dict[str, Any]] = []
    for k in range(args.clients):
        school = k % len(schools)
        counselor = user_create(username=f"bench-{k}", password=None, role=Role.COUNSELOR)
        StaffScope.objects.create(user=counselor, school=schools[school])
        token, _ = Token.objects.get_or_create(user=counselor)
        peers = list(range(school, args.clients, len(schools)))
        mine = [students[i].pk for i in per_school[school][peers.index(k) :: len(peers)]]
        clients.append({"token": token.key, "students": mine, "seed": k})
    return clients, len(students)


# --------------------------------------------------------------------------- server and CPU


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
    ready = urllib.request.Request(  # noqa: S310 - loopback
        f"http://127.0.0.1:{args.port}/api/v1/ready", headers={"X-Forwarded-Proto": "https"}
    )
    for _ in range(600):
        try:
            with urllib.request.urlopen(ready, timeout=30) as response:  # noqa: S310
                if response.status == 200 and len(_workers(server.pid)) == args.workers:
                    return server
        except OSError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not become ready (see edupulse-apibench-gunicorn.log)")


def _workers(master: int) -> list[int]:
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return []
    return [int(pid) for pid in children]


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def _machine_busy() -> int:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def _flush_cache() -> None:
    from django.core.cache import cache

    cache.clear()


def _run_load(spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(spec, handle)
    try:
        out = subprocess.run(  # noqa: S603
            [sys.executable, __file__, "--load", handle.name],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(server: subprocess.Popen[bytes], spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    processes = [server.pid, *_workers(server.pid)]
    before = {pid: _ticks(pid) for pid in processes}
    busy_before = _machine_busy()
    load = _run_load(spec)
    busy = _machine_busy() - busy_before
    n = len(load["latencies_ms"])
    per_process = {
        ("master" if pid == server.pid else f"worker-{pid}"): round(
            (_ticks(pid) - before[pid]) / TICK * 1000 / n, 2
        )
        for pid in processes
    }
    ms = np.asarray(load["latencies_ms"])
    errors = sum(1 for status in load["statuses"] if status != 200)
    return {
        "requests": n,
        "errors": errors,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "rps": round(n / load["elapsed_s"], 1),
        "wall_s": round(load["wall_s"], 1),
        "server_cpu_ms_per_request": round(sum(per_process.values()), 2),
        "cpu_ms_per_request_by_process": per_process,
        "machine_cpu_ms_per_request": round(busy / TICK * 1000 / n, 2),
        "loadgen_cpu_ms_per_request": round(load["cpu_s"] * 1000 / n, 2),
    }


def _best(results: dict[str, dict[str, Any]], shape: str) -> tuple[str, dict[str, Any]]:
    name = min(
        results, key=lambda n: (results[n][shape]["errors"] > 0, results[n][shape]["p95_ms"])
    )
    return name, results[name][shape]


def main() -> None:
    args = _parse()
    if args.load:
        _load_main(args.load)
        return
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edupulse.settings.local")
    os.environ.setdefault("DJANGO_DEBUG", "false")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("benchmarks/api.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        sys.exit("benchmarks/api.py needs Redis, as production: set REDIS_URL=redis://...")
    load_before = os.getloadavg()
    original = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = f"{original}_apibench"
    bench_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, serialize=False, keepdb=False
    )
    model_dir = Path(tempfile.mkdtemp(prefix="edupulse-apibench-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        started = time.perf_counter()
        clients, students = _district(args, model_dir)
        _say(f"{bench_name}: {students:,} students built in {time.perf_counter() - started:.1f}s")
        from apps.features.calendar import year_calendar

        week_start = year_calendar(YEAR).week_starts[WEEK].astype(object)
        as_of = (week_start + dt.timedelta(days=2)).isoformat()
        base_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "edupulse.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_DEBUG": "false",
            "DATABASE_URL": f"{base_url}/{bench_name}",
            "EDUPULSE_MODEL_DIR": str(model_dir),
            "EDUPULSE_WARM_MODEL": "true",
            "EDUPULSE_LOG_LEVEL": "WARNING",
            "EDUPULSE_API_RATE_USER": "100000000/min",
            "EDUPULSE_API_RATE_TOKEN": "100000000/min",
            "EDUPULSE_API_RATE_PREDICT": "100000000/min",
        }
        spec = {"host": "127.0.0.1", "port": args.port, "as_of": as_of, "clients": clients}
        closed = {
            **spec,
            "shape": "closed",
            "requests": min(args.requests, students),
            "rate": 0,
            "seconds": 0,
        }
        paced = {
            **spec,
            "shape": "paced",
            "requests": 0,
            "rate": args.rate,
            "seconds": args.paced_seconds,
        }
        plan = [
            ("cold_no_batching", {"EDUPULSE_SCORE_BATCH_WAIT_MS": "0"}, True),
            ("cold_batching", {"EDUPULSE_SCORE_BATCH_WAIT_MS": "5"}, True),
            ("cached", {"EDUPULSE_SCORE_BATCH_WAIT_MS": "5"}, False),
        ]
        for name, extra, cold in plan:
            _flush_cache()
            server = _gunicorn(args, {**env, **extra})
            try:
                results[name] = {}
                if not cold:
                    _run_load(closed)  # fill the cache with every student's answer
                for shape, load in (("closed", closed), ("paced", paced)):
                    if cold:
                        _flush_cache()
                    results[name][shape] = _measure(server, load)
                    _say(f"{name} {shape}: {json.dumps(results[name][shape])}")
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
    finally:
        connection.creation.destroy_test_db(original, verbosity=0, keepdb=args.keep)
    best_name, best = _best(results, "closed")
    paced_name, paced_best = _best(results, "paced")
    keys = ("p50_ms", "p95_ms", "p99_ms", "rps")
    print(
        json.dumps(
            {
                **{key: best[key] for key in keys},
                "best": best_name,
                "clients": args.clients,
                "paced": {
                    **{key: paced_best[key] for key in keys},
                    "best": paced_name,
                    "rate": args.rate,
                    "seconds": args.paced_seconds,
                },
                "conditions": {
                    "workers": args.workers,
                    "threads": args.threads,
                    "cpus": os.cpu_count(),
                    "loadavg_before": [round(v, 2) for v in load_before],
                    "settings": "edupulse.settings.production",
                },
                "configurations": results,
            }
        )
    )


if __name__ == "__main__":
    main()
