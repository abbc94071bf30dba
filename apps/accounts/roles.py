"""What each role may do, as Django permission codenames ("app_label.codename").

Codenames of apps that are not installed yet are skipped, so later apps only
add lines here.
"""

from apps.accounts.models import Role

_VIEW_SCHOOL_DATA = [
    "students.view_region",
    "students.view_school",
    "students.view_student",
    "students.view_enrollment",
    "students.view_attendancerecord",
    "students.view_graderecord",
    "students.view_disciplineincident",
    "students.view_subject",
    "students.view_holiday",
]

_EDIT_SCHOOL_DATA = [
    f"students.{action}_{model}"
    for model in (
        "region",
        "school",
        "student",
        "enrollment",
        "attendancerecord",
        "graderecord",
        "disciplineincident",
        "subject",
        "holiday",
        "staffscope",
    )
    for action in ("add", "change", "delete", "view")
]

# Data managers upload files and read every job in their scope; jobs are a
# record, so nobody changes or deletes them by hand.
_IMPORT_DATA = [
    "ingestion.add_importjob",
    "ingestion.view_importjob",
    "ingestion.view_importproblem",
    "students.view_dataqualityflag",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.ADMINISTRATOR: ["*"],
    Role.DATA_MANAGER: _EDIT_SCHOOL_DATA + _IMPORT_DATA,
    Role.COUNSELOR: _VIEW_SCHOOL_DATA,
    Role.ANALYST: _VIEW_SCHOOL_DATA,
}
