import csv
import datetime as dt
import unicodedata
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.students.catalogue import SUBJECTS
from apps.students.models import (
    Enrollment,
    ExitReason,
    Region,
    RegionLevel,
    School,
    StaffScope,
    Student,
    Subject,
)

REGIONS_DATA_DIR = Path(__file__).resolve().parent / "data"


def academic_year_of(day: dt.date) -> int:
    """The academic year a date falls in, named by the calendar year it starts in."""
    start_month, start_day = settings.EDUPULSE_ACADEMIC_YEAR_START
    return day.year if (day.month, day.day) >= (start_month, start_day) else day.year - 1


def academic_year_bounds(year: int) -> tuple[dt.date, dt.date]:
    start_month, start_day = settings.EDUPULSE_ACADEMIC_YEAR_START
    start = dt.date(year, start_month, start_day)
    next_start = dt.date(year + 1, start_month, start_day)
    return start, next_start - dt.timedelta(days=1)


def _read_csv(name: str, data_dir: Path) -> list[dict[str, str]]:
    # NFC so that a Bengali name typed on any keyboard matches the stored one.
    with (data_dir / name).open(encoding="utf-8", newline="") as handle:
        return [
            {key: unicodedata.normalize("NFC", value) for key, value in row.items()}
            for row in csv.DictReader(handle)
        ]


@transaction.atomic
def regions_load(*, data_dir: Path = REGIONS_DATA_DIR) -> int:
    """Load or refresh the division → district → upazila tree; idempotent."""
    levels = [
        (RegionLevel.DIVISION, "divisions.csv", None),
        (RegionLevel.DISTRICT, "districts.csv", ("division_id", RegionLevel.DIVISION)),
        (RegionLevel.UPAZILA, "upazilas.csv", ("district_id", RegionLevel.DISTRICT)),
    ]
    existing = {(r.level, r.code): r for r in Region.objects.all()}
    touched = 0
    for level, file_name, parent_ref in levels:
        to_create: list[Region] = []
        to_update: list[Region] = []
        for row in _read_csv(file_name, data_dir):
            parent = None
            if parent_ref is not None:
                parent = existing[(parent_ref[1], row[parent_ref[0]])]
            path = f"{parent.path if parent else '/'}{row['id']}/"
            region = existing.get((level, row["id"]))
            if region is None:
                region = Region(level=level, code=row["id"])
                to_create.append(region)
            elif (region.name, region.name_bn, region.parent_id, region.path) == (
                row["name"],
                row["bn_name"],
                parent.pk if parent else None,
                path,
            ):
                continue
            else:
                to_update.append(region)
            region.name, region.name_bn, region.parent, region.path = (
                row["name"],
                row["bn_name"],
                parent,
                path,
            )
        Region.objects.bulk_create(to_create)
        Region.objects.bulk_update(to_update, ["name", "name_bn", "parent", "path"])
        for region in to_create:
            existing[(level, region.code)] = region
        touched += len(to_create) + len(to_update)
    return touched


@transaction.atomic
def student_enroll(
    *,
    student: Student,
    school: School,
    academic_year: int,
    grade_level: int,
    entry_date: dt.date,
    section: str = "",
) -> Enrollment:
    start, end = academic_year_bounds(academic_year)
    if not start <= entry_date <= end:
        raise ValidationError(_("The entry date is outside the academic year."))
    enrollment = Enrollment(
        student=student,
        school=school,
        academic_year=academic_year,
        grade_level=grade_level,
        section=section,
        entry_date=entry_date,
    )
    enrollment.full_clean()
    enrollment.save()
    return enrollment


@transaction.atomic
def enrollment_exit(
    *, enrollment: Enrollment, exit_date: dt.date, exit_reason: ExitReason
) -> Enrollment:
    if enrollment.exit_date is not None:
        raise ValidationError(_("This enrollment has already ended."))
    enrollment.exit_date = exit_date
    enrollment.exit_reason = exit_reason
    enrollment.full_clean()
    enrollment.save(update_fields=["exit_date", "exit_reason", "updated_at"])
    return enrollment


@transaction.atomic
def student_transfer(
    *, enrollment: Enrollment, to_school: School, transfer_date: dt.date, section: str = ""
) -> Enrollment:
    """Close the enrollment as a transfer and open the next one the same day."""
    enrollment_exit(
        enrollment=enrollment, exit_date=transfer_date, exit_reason=ExitReason.TRANSFERRED
    )
    return student_enroll(
        student=enrollment.student,
        school=to_school,
        academic_year=enrollment.academic_year,
        grade_level=enrollment.grade_level,
        entry_date=transfer_date,
        section=section,
    )


@transaction.atomic
def subjects_load() -> int:
    """Create or refresh the curriculum's subjects; idempotent."""
    changed = 0
    for code, name, name_bn, is_core in SUBJECTS:
        _subject, created = Subject.objects.update_or_create(
            code=code, defaults={"name": name, "name_bn": name_bn, "is_core": is_core}
        )
        changed += int(created)
    return changed


def staff_scope_grant(
    *, user: User, school: School | None = None, region: Region | None = None
) -> StaffScope:
    """Let `user` see one school, or every school under a region; idempotent."""
    if (school is None) == (region is None):
        raise ValidationError(_("Give either a school or a region."))
    scope, _created = StaffScope.objects.get_or_create(user=user, school=school, region=region)
    return scope
