import random
import statistics
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.services import user_create
from apps.common.bulk import bulk_insert_rows
from apps.dashboards.selectors import overview_cache_clear, school_days_between
from apps.students.models import (
    AttendanceRecord,
    Enrollment,
    Region,
    RegionLevel,
    School,
    SchoolType,
    Student,
)
from apps.students.services import academic_year_bounds, academic_year_of, staff_scope_grant


class _Rollback(Exception):
    pass


class Command(BaseCommand):
    help = (
        "Time the caseload page (and the student page and school overview) server side, "
        "through Django's test client, for a counselor "
        "of one school of --students students with a year of daily attendance. The school "
        "is built inside a transaction that is rolled back, so any database can be used."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--students", type=int, default=3000)
        parser.add_argument("--requests", type=int, default=15)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with transaction.atomic():
                self._run(options["students"], options["requests"])
                raise _Rollback
        except _Rollback:
            pass

    def _run(self, count: int, requests: int) -> None:
        today = timezone.localdate()
        year = academic_year_of(today)
        start, _end = academic_year_bounds(year)
        started = time.perf_counter()
        division = Region.objects.create(
            level=RegionLevel.DIVISION, code="bench-div", name="Bench", path="/bench-div/"
        )
        district = Region.objects.create(
            level=RegionLevel.DISTRICT,
            code="bench-dis",
            name="Bench",
            parent=division,
            path="/bench-div/bench-dis/",
        )
        upazila = Region.objects.create(
            level=RegionLevel.UPAZILA,
            code="bench-upa",
            name="Bench",
            parent=district,
            path="/bench-div/bench-dis/bench-upa/",
        )
        school = School.objects.create(
            eiin="BENCH-1",
            name="Benchmark School",
            school_type=SchoolType.GOVERNMENT,
            region=upazila,
        )
        students = Student.objects.bulk_create(
            Student(student_id=f"BENCH-{i:06d}", name=f"Bench Student {i}", gender="female")
            for i in range(count)
        )
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
        days = school_days_between(start, today)
        rng = random.Random(7)
        statuses = ["present"] * 8 + ["absent", "late"]
        rows = ((s.pk, school.pk, day, rng.choice(statuses)) for s in students for day in days)
        written = bulk_insert_rows(
            AttendanceRecord._meta.db_table, ["student_id", "school_id", "date", "status"], rows
        )
        if connection.vendor == "postgresql":
            # Fresh rows in an open transaction have no statistics yet; without
            # them the planner guesses, and the figures would not be the real page's.
            with connection.cursor() as cursor:
                cursor.execute(
                    "ANALYZE students_student, students_enrollment, students_attendancerecord"
                )
        counselor = user_create(username="bench-counselor", password=None, role=Role.COUNSELOR)
        staff_scope_grant(user=counselor, school=school)
        self.stdout.write(
            f"Built a school of {count} students and {written:,} attendance rows "
            f"in {time.perf_counter() - started:.1f}s."
        )
        host = next((h for h in settings.ALLOWED_HOSTS if h not in {"*", ""}), "localhost")
        client = Client(HTTP_HOST=host.lstrip("."))
        client.force_login(counselor)
        overview_cache_clear()  # only the overview's keys, not the whole cache
        began = time.perf_counter()
        client.get("/overview/")
        self.stdout.write(
            f"/overview/ before its cache is filled: {(time.perf_counter() - began) * 1000:.1f} ms"
        )
        caseload_urls = [
            "/caseload/" + query
            for query in [
                "",
                "?sort=name",
                "?sort=-overdue",
                "?q=Student 12",
                "?page=40",
                "?grade=7",
            ]
        ]
        others = [f"/students/{students[0].pk}/", "/overview/"]
        for url in caseload_urls + others:
            client.get(url)  # warm: template compiled, first-visit bookkeeping done
            timings = []
            for _ in range(requests):
                began = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - began) * 1000)
                if response.status_code != 200:
                    raise CommandError(f"{url} answered {response.status_code}")
            with CaptureQueriesContext(connection) as queries:
                client.get(url)
            sql_ms = sum(float(q["time"]) for q in queries.captured_queries) * 1000
            timings.sort()
            p95 = timings[min(len(timings) - 1, int(0.95 * len(timings)))]
            self.stdout.write(
                f"{url:<28} median {statistics.median(timings):6.1f} ms   p95 {p95:6.1f} ms   "
                f"({len(queries)} queries, {sql_ms:.1f} ms of SQL)"
            )
