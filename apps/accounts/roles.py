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

# Administrators train and promote models (they hold every permission); analysts
# and counselors read the registry and its model cards.
_VIEW_MODELS = ["predictions.view_modelversion"]
_VIEW_TRAINING = ["predictions.view_trainingrun"]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.ADMINISTRATOR: ["*"],
    Role.DATA_MANAGER: _EDIT_SCHOOL_DATA,
    Role.COUNSELOR: _VIEW_SCHOOL_DATA + _VIEW_MODELS,
    Role.ANALYST: _VIEW_SCHOOL_DATA + _VIEW_MODELS + _VIEW_TRAINING,
}
