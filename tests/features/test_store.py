import datetime as dt
from collections.abc import Callable

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.common.signals import student_data_changed
from apps.features.definition import current_definition
from apps.features.exceptions import FeatureVersionMismatch
from apps.features.models import FeatureSet, WeeklyFeature
from apps.features.selectors import (
    feature_set_check,
    feature_set_current,
    history_chunks,
    student_window,
    students_as_of,
)
from apps.features.services import features_build, features_refresh
from apps.students.models import DataQualityFlag, QualityCheck, School, Student
from tests.factories import EnrollmentFactory, RegionFactory, SchoolFactory, StudentFactory
from tests.features.conftest import YEAR, Built, grade, incident, mark, week

pytestmark = pytest.mark.django_db


def _values(student: Student) -> dict[dt.date, bytes]:
    return {
        row.week_start: bytes(row.values)
        for row in WeeklyFeature.objects.filter(student=student).order_by("week_start")
    }


def test_the_feature_set_records_its_definition() -> None:
    feature_set = feature_set_current()
    definition = current_definition()
    assert feature_set.version == "weekly-v1"
    assert feature_set.columns == definition.columns
    assert feature_set.params["attendance"]["chronic_below"] == 0.9
    assert feature_set_current().pk == feature_set.pk  # created once


def test_scoring_with_another_version_is_refused() -> None:
    assert feature_set_check("weekly-v1").version == "weekly-v1"
    with pytest.raises(FeatureVersionMismatch, match="weekly-v0"):
        feature_set_check("weekly-v0")


def test_a_changed_definition_under_the_same_version_is_refused() -> None:
    FeatureSet.objects.create(version="weekly-v1", fingerprint="another", columns=["x"])
    from apps.features.exceptions import FeatureSetConflict

    with pytest.raises(FeatureSetConflict):
        feature_set_current()


def test_an_incremental_update_equals_a_full_rebuild(
    student: Student,
    school: School,
    build: Callable[..., Built],
    django_capture_on_commit_callbacks: Callable,
) -> None:
    other = StudentFactory()
    EnrollmentFactory(student=other, school=school, entry_date=dt.date(2026, 1, 1))
    mark(student, school, week(1), "PPAAA")
    mark(other, school, week(1), "PPPPP")
    grade(student, "MATH", dt.date(2026, 1, 6), 30)
    grade(other, "ENG", dt.date(2026, 1, 7), 70)
    incident(other, school, dt.date(2026, 1, 5), severity=3)
    build(until=dt.date(2026, 1, 17))  # weeks 0-2
    kept = dict(
        WeeklyFeature.objects.filter(week_start__lt=week(2)).values_list("pk", "week_start")
    )

    # A one-week import: week 3 for both students, then the signal.
    mark(student, school, week(3), "AAPPP")
    mark(other, school, week(3), "PPPPA")
    incident(student, school, dt.date(2026, 1, 19), severity=2)
    grade(other, "ENG", dt.date(2026, 1, 20), 20)  # recomputed; `student`'s marks carry
    with django_capture_on_commit_callbacks(execute=True):
        student_data_changed.send(
            sender=None,
            student_ids=[student.pk, other.pk],
            since=week(3),
            until=week(3) + dt.timedelta(days=4),
            kinds=["attendance", "discipline"],
            source="test",
        )
    incremental = {s.pk: _values(s) for s in (student, other)}
    # Weeks before the import were not rewritten.
    assert (
        dict(WeeklyFeature.objects.filter(week_start__lt=week(2)).values_list("pk", "week_start"))
        == kept
    )

    # The store grew by the imported week, not up to today.
    assert len(incremental[student.pk]) == 4
    WeeklyFeature.objects.all().delete()
    features_build(academic_year=YEAR, until=dt.date(2026, 1, 24))
    full = {s.pk: _values(s) for s in (student, other)}
    assert incremental == full
    streak = feature_set_current().columns.index("absence_streak")
    row = WeeklyFeature.objects.get(student=student, week_start=week(3))
    assert np.frombuffer(bytes(row.values), dtype="<f4")[streak] == 5  # A A A | A A
    columns = feature_set_current().columns
    other_week3 = np.frombuffer(
        bytes(WeeklyFeature.objects.get(student=other, week_start=week(3)).values), dtype="<f4"
    )
    assert other_week3[columns.index("weeks_since_incident")] == 2
    assert other_week3[columns.index("marks_average")] == pytest.approx(0.45)
    assert other_week3[columns.index("failing_subjects")] == 1


def _store() -> dict[tuple[int, dt.date], tuple[int, bool, int, bytes]]:
    """Every stored row but its state (kept only in the last weeks a build writes)."""
    return {
        (row.student_id, row.week_start): (
            row.school_id,
            row.in_session,
            row.observed,
            bytes(row.values),
        )
        for row in WeeklyFeature.objects.all()
    }


def _full_rebuild(until: dt.date) -> dict[tuple[int, dt.date], tuple[int, bool, int, bytes]]:
    WeeklyFeature.objects.all().delete()
    features_build(academic_year=YEAR, until=until)
    return _store()


def _refresh(students: list[Student], since: dt.date, until: dt.date, capture: Callable) -> None:
    with capture(execute=True):
        student_data_changed.send(
            sender=None,
            student_ids=[s.pk for s in students],
            since=since,
            until=until,
            kinds=["attendance", "grades", "discipline"],
            source="test",
        )


def test_updates_of_a_district_equal_full_rebuilds(
    holiday_week: None, django_capture_on_commit_callbacks: Callable
) -> None:
    """A small district: a holiday week (2), a student missing a school week
    (3), a transfer between schools (week 4), a student who joins late (week
    4), marks and incidents. A weekly import and a correction of an earlier
    week (carried into the later one) each leave the store exactly as a full
    rebuild would."""
    north, south = SchoolFactory(), SchoolFactory()
    steady, absent, mover, joiner = (
        StudentFactory(date_of_birth=dt.date(2012, 3, 1)) for _ in range(4)
    )
    for pupil in (steady, absent):
        EnrollmentFactory(student=pupil, school=north, entry_date=dt.date(2026, 1, 1))
    EnrollmentFactory(
        student=mover,
        school=north,
        entry_date=dt.date(2026, 1, 1),
        exit_date=week(4) - dt.timedelta(days=1),
        exit_reason="transferred",
    )
    EnrollmentFactory(student=mover, school=south, entry_date=week(4))
    EnrollmentFactory(student=joiner, school=south, entry_date=week(4) + dt.timedelta(days=2))
    for pupil in (steady, absent, mover):
        mark(pupil, north, dt.date(2026, 1, 1), "P")
    mark(steady, north, week(1), "PPAAE")
    mark(absent, north, week(1), "PLPPA")
    mark(mover, north, week(1), "PPPPP")
    # Week 2: the holiday. Week 3: `absent` has no records at all.
    mark(steady, north, week(3), "PPLAA")
    mark(mover, north, week(3), "PAPPP")
    mark(steady, north, week(4), "PPPPP")
    mark(absent, north, week(4), "PPPAA")  # a run of absences into week 5
    mark(mover, south, week(4), "PPAPP")
    mark(joiner, south, week(4) + dt.timedelta(days=2), "PPP")
    grade(steady, "MATH", week(1) + dt.timedelta(days=2), 25)
    grade(absent, "ENG", week(3) + dt.timedelta(days=1), None)
    grade(mover, "BAN", week(4) + dt.timedelta(days=1), 70)
    incident(absent, north, week(1) + dt.timedelta(days=3), severity=2, suspended=1)
    features_build(academic_year=YEAR, until=week(4) + dt.timedelta(days=6))  # weeks 0-4

    # The weekly import of week 5.
    mark(steady, north, week(5), "AAPPP")
    mark(absent, north, week(5), "APPP.")
    mark(mover, south, week(5), "PPPPA")
    mark(joiner, south, week(5), "LPPPP")
    grade(steady, "MATH", week(5) + dt.timedelta(days=1), 60)
    incident(mover, south, week(5) + dt.timedelta(days=2), severity=3)
    everyone = [steady, absent, mover, joiner]
    end = week(5) + dt.timedelta(days=4)
    _refresh(everyone, week(5), end, django_capture_on_commit_callbacks)
    updated = _store()
    assert len(updated) == 3 * 6 + 2  # weeks 0-5; the joiner's weeks 4-5
    assert updated == _full_rebuild(end)

    # A corrected upload of week 4 for two students: week 5 carries the change.
    from apps.students.models import AttendanceRecord

    AttendanceRecord.objects.filter(student=steady, date__gte=week(4)).filter(
        date__lt=week(5)
    ).update(status="absent")
    AttendanceRecord.objects.filter(student=mover, date=week(4)).update(status="late")
    grade(mover, "ENG", week(4) + dt.timedelta(days=3), 20)
    before = _store()
    _refresh(
        [steady, mover],
        week(4),
        week(4) + dt.timedelta(days=4),
        capture=django_capture_on_commit_callbacks,
    )
    corrected = _store()
    assert corrected == _full_rebuild(end)
    changed = {key for key in corrected if corrected[key] != before[key]}
    assert {(steady.pk, week(5)), (mover.pk, week(5))} <= changed  # carried forward
    assert all(week_start >= week(4) for _student, week_start in changed)


def test_refresh_is_idempotent(student: Student, school: School) -> None:
    mark(student, school, week(1), "PPAPP")
    features_refresh(student_ids=[student.pk], since=week(1), until=dt.date(2026, 1, 10))
    first = _values(student)
    features_refresh(student_ids=[student.pk], since=week(1), until=dt.date(2026, 1, 10))
    assert _values(student) == first
    assert WeeklyFeature.objects.filter(student=student).count() == len(first)


def test_the_receiver_waits_for_the_commit(
    student: Student, school: School, django_capture_on_commit_callbacks: Callable
) -> None:
    mark(student, school, week(1), "PPPPP")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        student_data_changed.send(
            sender=None, student_ids=[student.pk], since=week(1), until=None, kinds=[], source="t"
        )
    assert not WeeklyFeature.objects.exists()
    from apps.features.tasks import features_refresh_task

    # Other receivers (the overview's summaries) wait for the commit too.
    refreshes = [c for c in callbacks if getattr(c, "func", None) == features_refresh_task.delay]
    assert len(refreshes) == 1
    refreshes[0]()
    assert WeeklyFeature.objects.filter(student=student).exists()


@pytest.mark.parametrize(("eager", "tasks"), [(True, 1), (False, 3)])
def test_a_refresh_is_split_into_tasks_only_for_workers(
    eager: bool,
    tasks: int,
    school: School,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable,
) -> None:
    from apps.features import receivers
    from apps.features.tasks import features_refresh_task

    monkeypatch.setattr(receivers, "TASK_STUDENTS", 2)
    monkeypatch.setitem(features_refresh_task.app.conf, "task_always_eager", eager)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        student_data_changed.send(
            sender=None,
            student_ids=[1, 2, 3, 4, 5],
            since=week(1),
            until=None,
            kinds=[],
            source="t",
        )
    sent = [
        c.keywords["student_ids"]
        for c in callbacks
        if getattr(c, "func", None) == features_refresh_task.delay
    ]
    assert len(sent) == tasks
    assert sorted(i for ids in sent for i in ids) == [1, 2, 3, 4, 5]


def test_the_refresh_task_is_routed_to_the_ml_queue() -> None:
    from apps.features.tasks import features_refresh_task
    from edupulse.celery import app

    route = app.amqp.router.route({}, features_refresh_task.name)
    assert route["queue"].name == "ml"


def test_student_window_pads_cached_and_invalidated(
    student: Student,
    school: School,
    build: Callable[..., Built],
    django_assert_num_queries: Callable,
    django_capture_on_commit_callbacks: Callable,
) -> None:
    mark(student, school, week(1), "PPPPA")
    build(until=dt.date(2026, 1, 24))
    feature_set = feature_set_current()
    window = student_window(feature_set, student_id=student.pk, as_of=dt.date(2026, 1, 14), weeks=4)
    # Weeks 2, 1, 0 and one before the year (padding).
    assert window.values.shape == (1, 4, len(feature_set.columns))
    assert window.week_starts[0] == np.datetime64("2025-12-21")
    assert window.week_starts[-1] == np.datetime64(week(2))
    assert window.in_session.tolist() == [[False, True, True, True]]
    assert np.isnan(window.values[0, 0]).all()
    rate = feature_set.columns.index("attendance_rate")
    assert window.values[0, 2, rate] == pytest.approx(0.8)

    with django_assert_num_queries(0):
        again = student_window(
            feature_set, student_id=student.pk, as_of=dt.date(2026, 1, 14), weeks=4
        )
    assert np.array_equal(again.values, window.values, equal_nan=True)

    # New records for week 1 arrive: the cached window goes, the new one is right.
    from apps.students.models import AttendanceRecord

    AttendanceRecord.objects.filter(student=student, date=week(1)).update(status="absent")
    with django_capture_on_commit_callbacks(execute=True):
        student_data_changed.send(
            sender=None,
            student_ids=[student.pk],
            since=week(1),
            until=week(1),
            kinds=[],
            source="t",
        )
    fresh = student_window(feature_set, student_id=student.pk, as_of=dt.date(2026, 1, 14), weeks=4)
    assert fresh.values[0, 2, rate] == pytest.approx(0.6)


def test_students_as_of_a_week_by_school_and_region(build: Callable[..., Built]) -> None:
    north, south = RegionFactory(), RegionFactory()
    here, there = SchoolFactory(region=north), SchoolFactory(region=south)
    a, b, c = StudentFactory(), StudentFactory(), StudentFactory()
    EnrollmentFactory(student=a, school=here, entry_date=dt.date(2026, 1, 1))
    EnrollmentFactory(student=b, school=here, entry_date=dt.date(2026, 1, 1))
    EnrollmentFactory(student=c, school=there, entry_date=dt.date(2026, 1, 1))
    build(until=dt.date(2026, 2, 7))
    feature_set = feature_set_current()
    batch = students_as_of(feature_set, week_start=week(3), school_ids=[here.pk])
    assert batch.student_ids.tolist() == sorted([a.pk, b.pk])
    assert batch.values.shape == (2, 4, len(feature_set.columns))
    assert batch.week_starts[-1] == np.datetime64(week(3))
    by_region = students_as_of(feature_set, week_start=week(3), region_id=south.pk)
    assert by_region.student_ids.tolist() == [c.pk]


def test_history_comes_in_chunks_of_students(build: Callable[..., Built]) -> None:
    school = SchoolFactory()
    pupils = [StudentFactory() for _ in range(5)]
    for pupil in pupils:
        EnrollmentFactory(student=pupil, school=school, entry_date=dt.date(2026, 1, 1))
    build(until=dt.date(2026, 1, 31))
    chunks = list(history_chunks(feature_set_current(), academic_year=YEAR, chunk_students=2))
    assert [len(c.student_ids) for c in chunks] == [2, 2, 1]
    assert np.concatenate([c.student_ids for c in chunks]).tolist() == sorted(p.pk for p in pupils)
    assert all(c.values.dtype == np.float32 for c in chunks)
    assert all(c.values.shape[1] == len(c.week_starts) == 53 for c in chunks)


def test_a_school_at_zero_attendance_is_flagged_and_held_back(
    build: Callable[..., Built],
) -> None:
    school = SchoolFactory()
    pupils = [StudentFactory() for _ in range(3)]
    for pupil in pupils:
        EnrollmentFactory(student=pupil, school=school, entry_date=dt.date(2026, 1, 1))
        mark(pupil, school, week(1), "PPPPP")
        mark(pupil, school, week(2), "AAAAA")  # 15 records, nobody present: a register error
        mark(pupil, school, week(3), "PPPPP")
    got = build(until=dt.date(2026, 1, 24))
    flag = DataQualityFlag.objects.get(check_code=QualityCheck.DROP_TO_ZERO)
    assert (flag.school_id, flag.week_start, flag.source) == (
        school.pk,
        week(2),
        "features:weekly-v1",
    )
    assert got(pupils[0], "attendance_rate", weeks=4) == [None, 1.0, None, 1.0]
    assert got(pupils[0], "absence_streak", weeks=4) == [None, 0, None, 0]
    # Rebuilding does not pile up copies.
    build(until=dt.date(2026, 1, 24))
    assert DataQualityFlag.objects.filter(check_code=QualityCheck.DROP_TO_ZERO).count() == 1


def test_a_sudden_fall_is_flagged_but_kept(build: Callable[..., Built]) -> None:
    school = SchoolFactory()
    pupils = [StudentFactory() for _ in range(3)]
    for pupil in pupils:
        EnrollmentFactory(student=pupil, school=school, entry_date=dt.date(2026, 1, 1))
        mark(pupil, school, week(1), "PPPPP")
        mark(pupil, school, week(2), "PAAAA")  # 100% then 20%
    got = build(until=dt.date(2026, 1, 17))
    flag = DataQualityFlag.objects.get(check_code=QualityCheck.SUDDEN_CHANGE)
    assert flag.week_start == week(2)
    assert flag.value == pytest.approx(0.2)
    assert got(pupils[0], "attendance_rate", weeks=3)[2] == pytest.approx(0.2)


def test_values_outside_their_range_are_flagged_and_not_fed(build: Callable[..., Built]) -> None:
    school = SchoolFactory()
    pupil = StudentFactory(date_of_birth=dt.date(1980, 3, 1))  # a typo: 45 years old in grade 7
    EnrollmentFactory(student=pupil, school=school, entry_date=dt.date(2026, 1, 1))
    got = build(until=dt.date(2026, 1, 10))
    assert got(pupil, "over_age", weeks=2) == [None, None]
    assert got(pupil, "grade_level", weeks=2) == [7, 7]
    flags = DataQualityFlag.objects.filter(check_code=QualityCheck.OUT_OF_RANGE)
    assert [(f.week_start, f.detail["columns"]) for f in flags.order_by("week_start")] == [
        (dt.date(2025, 12, 28), ["over_age"]),
        (week(1), ["over_age"]),
    ]


def test_every_enrolled_student_gets_every_week(build: Callable[..., Built]) -> None:
    school = SchoolFactory()
    early, late = StudentFactory(), StudentFactory()
    EnrollmentFactory(student=early, school=school, entry_date=dt.date(2026, 1, 1))
    EnrollmentFactory(student=late, school=school, entry_date=dt.date(2026, 1, 20))
    build(until=dt.date(2026, 2, 7))
    counts = {s.pk: WeeklyFeature.objects.filter(student=s).count() for s in (early, late)}
    assert counts == {early.pk: 6, late.pk: 3}


def test_the_build_command(build: Callable[..., Built]) -> None:
    school = SchoolFactory(eiin="123456")
    pupil = StudentFactory()
    EnrollmentFactory(student=pupil, school=school, entry_date=dt.date(2026, 1, 1))
    call_command("build_features", "--school", "123456")
    assert WeeklyFeature.objects.filter(student=pupil).exists()
    with pytest.raises(CommandError, match="999"):
        call_command("build_features", "--school", "999")


@pytest.mark.postgres
def test_the_store_has_a_time_index_on_week_start() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s",
            [WeeklyFeature._meta.db_table],
        )
        definitions = [row[0] for row in cursor.fetchall()]
    assert any("brin (week_start)" in d or "week_start" in d for d in definitions), definitions


def test_large_reads_are_split_into_several_queries(
    build: Callable[..., Built], monkeypatch: pytest.MonkeyPatch
) -> None:
    school = SchoolFactory()
    pupils = [StudentFactory() for _ in range(5)]
    for number, pupil in enumerate(pupils):
        EnrollmentFactory(student=pupil, school=school, entry_date=dt.date(2026, 1, 1))
        mark(pupil, school, week(1), "PPPPA" if number % 2 else "PPPPP")
    build(until=dt.date(2026, 1, 17))
    whole = students_as_of(feature_set_current(), week_start=week(2), school_ids=[school.pk])
    monkeypatch.setattr("apps.features.store.READ_STUDENTS", 2)
    split = students_as_of(feature_set_current(), week_start=week(2), school_ids=[school.pk])
    assert split.student_ids.tolist() == whole.student_ids.tolist() == sorted(p.pk for p in pupils)
    assert np.array_equal(split.values, whole.values, equal_nan=True)


@pytest.mark.redis
def test_windows_are_cached_in_redis_and_dropped_on_refresh(
    student: Student,
    school: School,
    build: Callable[..., Built],
    redis_url: str,
    settings: pytest.FixtureRequest,
    django_capture_on_commit_callbacks: Callable,
) -> None:
    import redis

    settings.CACHES = {  # type: ignore[attr-defined]
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    mark(student, school, week(1), "PPPPP")
    build(until=dt.date(2026, 1, 17))
    feature_set = feature_set_current()
    rate = feature_set.columns.index("attendance_rate")
    first = student_window(feature_set, student_id=student.pk, as_of=week(1), weeks=2)
    client = redis.Redis.from_url(redis_url)
    assert any(b"features:window" in key for key in client.keys("*"))
    assert first.values[0, -1, rate] == 1.0

    from apps.students.models import AttendanceRecord

    AttendanceRecord.objects.filter(student=student, date=week(1)).update(status="absent")
    with django_capture_on_commit_callbacks(execute=True):
        student_data_changed.send(
            sender=None,
            student_ids=[student.pk],
            since=week(1),
            until=week(1),
            kinds=[],
            source="t",
        )
    again = student_window(feature_set, student_id=student.pk, as_of=week(1), weeks=2)
    assert again.values[0, -1, rate] == pytest.approx(0.8)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_chunks_are_written_by_a_second_connection() -> None:
    school = SchoolFactory()
    pupils = [StudentFactory() for _ in range(5)]
    for pupil in pupils:
        EnrollmentFactory(student=pupil, school=school, entry_date=dt.date(2026, 1, 1))
        mark(pupil, school, week(1), "PPPAA")
    summary = features_build(academic_year=YEAR, until=dt.date(2026, 1, 17), chunk_students=2)
    assert summary.rows == 15
    assert WeeklyFeature.objects.count() == 15
    history = next(history_chunks(feature_set_current(), academic_year=YEAR))
    rate = history.columns.index("attendance_rate")
    assert history.values[:, 1, rate].tolist() == pytest.approx([0.6] * 5)


def test_a_correction_older_than_the_kept_state_recomputes_the_year(
    student: Student, school: School, build: Callable[..., Built]
) -> None:
    for k in range(1, 7):
        mark(student, school, week(k), "PPPPP")
    build(until=dt.date(2026, 2, 14))  # weeks 0-6; state kept for weeks 3-6 only
    stateless = WeeklyFeature.objects.filter(student=student, week_start__lt=week(3))
    assert {len(bytes(r.state)) for r in stateless} == {0}
    from apps.students.models import AttendanceRecord

    AttendanceRecord.objects.filter(student=student, date=week(2)).update(status="absent")
    features_refresh(student_ids=[student.pk], since=week(2), until=week(2))
    incremental = _values(student)
    WeeklyFeature.objects.all().delete()
    features_build(academic_year=YEAR, until=dt.date(2026, 2, 14))
    assert _values(student) == incremental
    assert len(incremental) == 7
