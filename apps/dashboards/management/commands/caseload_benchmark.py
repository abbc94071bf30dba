import datetime as dt
import gc
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.accounts.services import user_create
from apps.common.bulk import bulk_insert_rows
from apps.common.startup import startup_objects_freeze
from apps.dashboards.selectors import school_days_between
from apps.dashboards.services import overview_refresh
from apps.feedback.models import Intervention, InterventionStatus
from apps.students.models import (
    AttendanceRecord,
    DisciplineIncident,
    Enrollment,
    GradeRecord,
    Region,
    RegionLevel,
    School,
    SchoolType,
    Student,
    Subject,
)
from apps.students.services import academic_year_bounds, academic_year_of, staff_scope_grant


class _Rollback(Exception):
    pass


# Six subjects, three of them the feature store's core subjects.
SUBJECTS = [("BAN", True), ("ENG", True), ("MATH", True), ("SCI", False), ("SOC", False)]
SUBJECTS += [("REL", False)]
# Month and day of each term's exam.
TERMS = [("Term 1", 4, 15), ("Half-yearly", 7, 15), ("Term 3", 10, 15)]


@dataclass
class BenchSchool:
    school: School
    student_ids: list[int]
    counselor: User
    attendance_rows: int
    feature_rows: int
    predictions: int
    notifications: int
    overview_year_ms: float
    overview_week_ms: float


def build_school(count: int, *, tag: str = "bench", scores: bool = True) -> BenchSchool:
    """One school of `count` students with a year of records up to today, as a district has.

    Daily attendance (each student with their own habit), three terms of marks in six
    subjects, some discipline incidents and interventions, the weekly feature store
    built from them, and (with `scores`) an active model with a prediction per student
    per week and the counselor's alerts. The caller owns the transaction.
    """
    today = timezone.localdate()
    year = academic_year_of(today)
    start, _end = academic_year_bounds(year)
    rng = np.random.default_rng(7)
    now = timezone.now()
    division = Region.objects.create(
        level=RegionLevel.DIVISION, code=f"{tag}-div", name="Bench", path=f"/{tag}-div/"
    )
    district = Region.objects.create(
        level=RegionLevel.DISTRICT,
        code=f"{tag}-dis",
        name="Bench",
        parent=division,
        path=f"/{tag}-div/{tag}-dis/",
    )
    upazila = Region.objects.create(
        level=RegionLevel.UPAZILA,
        code=f"{tag}-upa",
        name="Bench",
        parent=district,
        path=f"/{tag}-div/{tag}-dis/{tag}-upa/",
    )
    school = School.objects.create(
        eiin=f"{tag.upper()}-1",
        name="Benchmark School",
        school_type=SchoolType.GOVERNMENT,
        region=upazila,
    )
    students = Student.objects.bulk_create(
        Student(
            student_id=f"{tag.upper()}-{i:06d}",
            name=f"Bench Student {i}",
            name_bn=f"শিক্ষার্থী {i}",
            gender="female" if i % 2 else "male",
            date_of_birth=dt.date(year - 12 - i % 5, 1 + i % 12, 1 + i % 28),
        )
        for i in range(count)
    )
    ids = [s.pk for s in students]
    Enrollment.objects.bulk_create(
        Enrollment(
            student=s,
            school=school,
            academic_year=year,
            grade_level=6 + i % 5,
            section="ABC"[i % 3],
            entry_date=start,
        )
        for i, s in enumerate(students)
    )
    # Attendance: each student misses days at their own rate (most rarely, a few often).
    days = school_days_between(start, today)
    absent_rate = np.clip(rng.beta(1.2, 12, size=count), 0, 0.9)
    draws = rng.random((count, len(days)))
    statuses = np.where(
        draws < absent_rate[:, None],
        np.where(draws < absent_rate[:, None] * 0.2, "excused", "absent"),
        np.where(draws > 0.97, "late", "present"),
    )
    # Day by day, as imports arrive: the table's pages hold a day of the school each.
    attendance = bulk_insert_rows(
        AttendanceRecord._meta.db_table,
        ["student_id", "school_id", "date", "status"],
        (
            (pk, school.pk, day, status)
            for d, day in enumerate(days)
            for pk, status in zip(ids, statuses[:, d], strict=True)
        ),
    )
    subjects = [
        Subject.objects.get_or_create(code=code, defaults={"name": code, "is_core": core})[0]
        for code, core in SUBJECTS
    ]
    ability = rng.normal(0.62, 0.16, size=count)
    grade_rows = []
    for term, month, day_of_month in TERMS:
        exam = dt.date(year, month, day_of_month)
        if exam > today:
            continue
        for subject in subjects:
            shares = np.clip(ability + rng.normal(0, 0.1, size=count), 0, 1)
            missing = rng.random(count) < 0.02
            for pk, share, is_missing in zip(ids, shares, missing, strict=True):
                score = None if is_missing else round(float(share) * 100, 2)
                grade_rows.append(
                    (pk, subject.pk, year, term, "exam", exam, score, 100, bool(is_missing))
                )
    bulk_insert_rows(
        GradeRecord._meta.db_table,
        [
            "student_id",
            "subject_id",
            "academic_year",
            "term",
            "assessment",
            "assessment_date",
            "score",
            "max_score",
            "is_missing",
            "created_at",
            "updated_at",
        ],
        (row + (now, now) for row in grade_rows),
    )
    DisciplineIncident.objects.bulk_create(
        DisciplineIncident(
            student_id=pk,
            school=school,
            date=days[int(rng.integers(len(days)))],
            category="truancy" if i % 2 else "disruption",
            severity=1 + i % 3,
        )
        for i, pk in enumerate(ids[::20])
    )
    counselor = user_create(username=f"{tag}-counselor", password=None, role=Role.COUNSELOR)
    staff_scope_grant(user=counselor, school=school)
    # One student in ten has a plan: most still open, some past their review date.
    Intervention.objects.bulk_create(
        Intervention(
            student_id=pk,
            intervention_type="home_visit",
            goal="Attend every day",
            owner=counselor,
            created_by=counselor,
            start_date=today - dt.timedelta(days=10 + i % 60),
            review_date=today + dt.timedelta(days=7 - i % 30),
            status=[InterventionStatus.IN_PROGRESS, InterventionStatus.PLANNED][i % 2]
            if i % 5
            else InterventionStatus.COMPLETED,
        )
        for i, pk in enumerate(ids[::10])
    )
    from apps.features.services import features_build

    feature_rows = features_build(academic_year=year, school_ids=[school.pk]).rows
    predictions = notifications = 0
    if scores:
        predictions, notifications = _scores(school, ids, counselor, year, rng)
    _analyze()
    # What an import's signal has the overview's summaries do, timed: the whole
    # year (a school's first summary, or a roster change) and the last week
    # (a week of attendance arriving).
    began = time.perf_counter()
    overview_refresh(school_id=school.pk, academic_year=year)
    overview_year_ms = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    overview_refresh(
        school_id=school.pk, academic_year=year, since=days[-1], until=today, marks=False
    )
    overview_week_ms = (time.perf_counter() - began) * 1000
    _analyze()
    return BenchSchool(
        school=school,
        student_ids=ids,
        counselor=counselor,
        attendance_rows=attendance,
        feature_rows=feature_rows,
        predictions=predictions,
        notifications=notifications,
        overview_year_ms=overview_year_ms,
        overview_week_ms=overview_week_ms,
    )


def _analyze() -> None:
    if connection.vendor == "postgresql":
        # Fresh rows in an open transaction have no statistics yet, and BRIN
        # indexes do not cover them until a vacuum summarises them: without
        # both the planner guesses, or a BRIN scan reads the whole table, and
        # the figures would not be a real database's.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
            cursor.execute(
                "SELECT brin_summarize_new_values(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
                "WHERE a.amname = 'brin'"
            )


def _scores(
    school: School, ids: list[int], counselor: User, year: int, rng: np.random.Generator
) -> tuple[int, int]:
    """An active model that has scored every student every week of the year so far."""
    from apps.features.calendar import year_calendar
    from apps.predictions.models import ModelStatus, ModelVersion, Notification, Prediction

    today = timezone.localdate()
    now = timezone.now()
    ModelVersion.objects.filter(status=ModelStatus.ACTIVE).update(status=ModelStatus.RETIRED)
    model = ModelVersion.objects.create(
        name=f"benchmark-{now:%Y%m%d%H%M%S%f}",
        status=ModelStatus.ACTIVE,
        file_path="benchmark.pt",
        feature_version="weekly-v1",
        data_from=dt.date(year - 2, 1, 1),
        data_to=dt.date(year - 1, 12, 31),
        thresholds={"high": 0.6, "watch": 0.3},
        training_started_at=now,
        training_finished_at=now,
    )
    weeks = [
        w.astype(object)
        for w in year_calendar(year).week_starts
        if w.astype(object) <= today - dt.timedelta(days=6)
    ]
    base = rng.beta(1.5, 6, size=len(ids))
    factors = json.dumps(
        [
            {
                "feature": "attendance_rate_4w",
                "kind": "weekly",
                "direction": "raises",
                "weight": 0.4,
                "weeks": [],
                "recent_weeks": 4,
                "before": 0.95,
                "after": 0.61,
            }
        ]
    )
    rows = []
    previous = base
    alerts: list[tuple[int, int]] = []  # (student index, week index)
    for w, week in enumerate(weeks):
        p = np.clip(previous + rng.normal(0, 0.03, size=len(ids)), 0.001, 0.999)
        for i, pk in enumerate(ids):
            tier = "high" if p[i] >= 0.6 else "medium" if p[i] >= 0.3 else "low"
            if tier == "high" and previous[i] < 0.6:
                alerts.append((i, w))
            rows.append(
                (
                    pk,
                    school.pk,
                    year,
                    week,
                    model.pk,
                    float(p[i]),
                    tier,
                    factors if tier != "low" else "[]",
                    float(p[i] - previous[i]) if w else None,
                    now,
                )
            )
        previous = p
    from apps.predictions.services.scoring import COLUMNS

    written = bulk_insert_rows(Prediction._meta.db_table, COLUMNS, rows)
    keys = {
        (student, week): pk
        for pk, student, week in Prediction.objects.filter(model_version=model).values_list(
            "pk", "student_id", "week_start"
        )
    }
    Notification.objects.bulk_create(
        Notification(
            recipient=counselor,
            student_id=ids[i],
            prediction_id=keys[(ids[i], weeks[w])],
            kind="entered_high",
            week_start=weeks[w],
            emailed=True,
            read_at=now if w < len(weeks) - 2 else None,
        )
        for i, w in alerts
    )
    return written, len(alerts)


@dataclass
class Sample:
    wall_ms: float
    cpu_ms: float  # this process only: Python, templates, the driver; not PostgreSQL's share
    gc_ms: float  # Python's garbage collector during the request
    full_gc: int  # collections of the oldest generation (those walk the whole heap)


class _GcWatch:
    """Time Python's garbage collections, to tell them apart from slow queries in the tail."""

    def __init__(self) -> None:
        self.ms = 0.0
        self.full = 0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        self.ms += (time.perf_counter() - self._began) * 1000
        self.full += info["generation"] == 2


@dataclass
class Page:
    name: str
    url: str
    # Cold: the first load in a new session (a counselor's first caseload of a
    # session also records the visit); no page keeps a cache of its own.
    cold: list[Sample] = field(default_factory=list)
    warm: list[Sample] = field(default_factory=list)
    cold_queries: int = 0
    warm_queries: int = 0
    sql_ms: float = 0.0

    @property
    def p95_ms(self) -> float:
        return max(_p95([s.wall_ms for s in self.cold]), _p95([s.wall_ms for s in self.warm]))

    def figures(self) -> dict[str, Any]:
        cold = [s.wall_ms for s in self.cold]
        warm = [s.wall_ms for s in self.warm]
        samples = self.cold + self.warm
        slowest = max(samples, key=lambda s: s.wall_ms)
        return {
            "url": self.url,
            "cold_median_ms": round(statistics.median(cold), 1),
            "cold_p95_ms": round(_p95(cold), 1),
            "warm_median_ms": round(statistics.median(warm), 1),
            "warm_p95_ms": round(_p95(warm), 1),
            "warm_cpu_median_ms": round(statistics.median(s.cpu_ms for s in self.warm), 1),
            "cold_queries": self.cold_queries,
            "warm_queries": self.warm_queries,
            "warm_sql_ms": round(self.sql_ms, 1),
            "full_gc_runs": sum(s.full_gc for s in samples),
            "gc_max_ms": round(max(s.gc_ms for s in samples), 1),
            "slowest_ms": round(slowest.wall_ms, 1),
            "slowest_cpu_ms": round(slowest.cpu_ms, 1),
            "slowest_gc_ms": round(slowest.gc_ms, 1),
        }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


class Command(BaseCommand):
    help = (
        "Time every dashboard page server side (caseload and its exports, student page, "
        "school overview and its export, alerts), through Django's test client, for a "
        "counselor of one school of --students students with a year of records, weekly "
        "features and scores. Each page is timed on first load (cold: a new session) "
        "and again (warm), with this process's CPU time and garbage collections beside "
        "the wall time. The school is built inside a "
        "transaction that is rolled back, so any database can be used. The last line "
        "printed is one JSON object with the figures."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--students", type=int, default=3000)
        parser.add_argument("--requests", type=int, default=30, help="Warm requests per page.")
        parser.add_argument("--cold", type=int, default=9, help="Cold requests per page.")
        parser.add_argument(
            "--no-scores",
            action="store_true",
            help="No active model: the pages as they are before the first scoring.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with transaction.atomic():
                result = self._run(options)
                raise _Rollback
        except _Rollback:
            pass
        self.stdout.write(json.dumps(result))

    def _run(self, options: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        bench = build_school(options["students"], scores=not options["no_scores"])
        build_s = time.perf_counter() - started
        self.stdout.write(
            f"Built a school of {len(bench.student_ids)} students, "
            f"{bench.attendance_rows:,} attendance rows, {bench.feature_rows:,} weekly "
            f"feature rows, {bench.predictions:,} predictions and {bench.notifications} "
            f"alerts in {build_s:.1f}s. Overview summaries: the year in "
            f"{bench.overview_year_ms:.0f} ms, a week in {bench.overview_week_ms:.0f} ms."
        )
        results = self.measure_pages(bench, colds=options["cold"], warms=options["requests"])
        worst = max(results, key=lambda page: page.p95_ms)
        return {
            "students": len(bench.student_ids),
            "attendance_rows": bench.attendance_rows,
            "feature_rows": bench.feature_rows,
            "predictions": bench.predictions,
            "scores": not options["no_scores"],
            "database": connection.vendor,
            "build_s": round(build_s, 1),
            "overview_refresh_year_ms": round(bench.overview_year_ms, 1),
            "overview_refresh_week_ms": round(bench.overview_week_ms, 1),
            "worst_page": worst.name,
            "worst_p95_ms": round(worst.p95_ms, 1),
            "pages": {page.name: page.figures() for page in results},
        }

    def measure_pages(self, bench: BenchSchool, *, colds: int, warms: int) -> list[Page]:
        host = next((h for h in settings.ALLOWED_HOSTS if h not in {"*", ""}), "localhost")
        student = bench.student_ids[0]

        def client() -> Client:
            fresh = Client(HTTP_HOST=host.lstrip("."))
            fresh.force_login(bench.counselor)
            return fresh

        pages = [
            ("caseload", "/caseload/"),
            ("caseload_by_name", "/caseload/?sort=name"),
            ("caseload_by_overdue", "/caseload/?sort=-overdue"),
            ("caseload_by_attendance", "/caseload/?sort=attendance"),
            ("caseload_search", "/caseload/?q=Student 12"),
            ("caseload_page_40", "/caseload/?page=40"),
            ("caseload_grade_7", "/caseload/?grade=7"),
            ("caseload_export_csv", "/caseload/export.csv"),
            ("caseload_export_xlsx", "/caseload/export.xlsx"),
            ("student", f"/students/{student}/"),
            ("student_interventions_csv", f"/students/{student}/interventions.csv"),
            ("overview", "/overview/"),
            ("overview_export_csv", "/overview/export.csv"),
            ("notifications", "/notifications/"),
        ]
        # As edupulse/wsgi.py does once a web worker has started.
        startup_objects_freeze()
        # The process's first request imports and compiles what every page needs;
        # that is start-up, not a page's first load.
        warmup = client()
        for _name, url in pages:
            warmup.get(url)
        return [self._measure(name, url, client, colds, warms) for name, url in pages]

    def _measure(
        self, name: str, url: str, client: Callable[[], Client], colds: int, warms: int
    ) -> Page:
        page = Page(name=name, url=url)
        for i in range(colds):
            fresh = client()
            if i == 0:
                with CaptureQueriesContext(connection) as queries:
                    page.cold.append(self._get(fresh, url))
                page.cold_queries = len(queries)
            else:
                page.cold.append(self._get(fresh, url))
        warm = client()
        warm.get(url)
        for _ in range(warms):
            page.warm.append(self._get(warm, url))
        with CaptureQueriesContext(connection) as queries:
            self._get(warm, url)
        page.warm_queries = len(queries)
        page.sql_ms = sum(float(q["time"]) for q in queries.captured_queries) * 1000
        figures = page.figures()
        self.stdout.write(
            f"{name:<26} cold median {figures['cold_median_ms']:6.1f} p95 "
            f"{figures['cold_p95_ms']:6.1f} ms ({page.cold_queries} queries)   warm median "
            f"{figures['warm_median_ms']:6.1f} p95 {figures['warm_p95_ms']:6.1f} ms "
            f"(cpu {figures['warm_cpu_median_ms']:.1f} ms; {page.warm_queries} queries, "
            f"{page.sql_ms:.1f} ms of SQL)   slowest {figures['slowest_ms']:.1f} ms "
            f"(cpu {figures['slowest_cpu_ms']:.1f}, gc {figures['slowest_gc_ms']:.1f}); "
            f"full collections {figures['full_gc_runs']}"
        )
        return page

    @staticmethod
    def _get(client: Client, url: str) -> Sample:
        watch = _GcWatch()
        gc.callbacks.append(watch)
        try:
            began, cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            sample = Sample(
                wall_ms=(time.perf_counter() - began) * 1000,
                cpu_ms=(time.process_time() - cpu) * 1000,
                gc_ms=watch.ms,
                full_gc=watch.full,
            )
        finally:
            gc.callbacks.remove(watch)
        if response.status_code != 200:
            raise CommandError(f"{url} answered {response.status_code}")
        return sample
