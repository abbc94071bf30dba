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

# Interventions, outcomes and verdicts on predictions are the counselor's work;
# others read them. The audit trail is for administrators only.
_VIEW_FEEDBACK = [
    "feedback.view_intervention",
    "feedback.view_outcomerecord",
    "feedback.view_trainingfeedback",
]
_RECORD_FEEDBACK = [
    *_VIEW_FEEDBACK,
    "feedback.add_intervention",
    "feedback.change_intervention",
    "feedback.add_outcomerecord",
    "feedback.add_trainingfeedback",
    "feedback.change_trainingfeedback",
]

# Data managers upload files and read every job in their scope; jobs are a
# record, so nobody changes or deletes them by hand.
_IMPORT_DATA = [
    "ingestion.add_importjob",
    "ingestion.view_importjob",
    "ingestion.view_importproblem",
    "students.view_dataqualityflag",
]

# Administrators train and promote models (they hold every permission); analysts
# and counselors read the registry and its model cards.
_VIEW_MODELS = ["predictions.view_modelversion"]
_VIEW_TRAINING = ["predictions.view_trainingrun"]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.ADMINISTRATOR: ["*"],
    Role.DATA_MANAGER: [*_EDIT_SCHOOL_DATA, *_IMPORT_DATA, *_VIEW_FEEDBACK],
    Role.COUNSELOR: [*_VIEW_SCHOOL_DATA, *_RECORD_FEEDBACK, *_VIEW_MODELS],
    Role.ANALYST: [*_VIEW_SCHOOL_DATA, *_VIEW_FEEDBACK, *_VIEW_MODELS, *_VIEW_TRAINING],
}
