"""What can be wrong with a file or a row, in words a data manager understands.

A problem is stored as a code plus parameters; the message is rendered when
it is read, in the reader's language. Every message is a whole sentence with
named placeholders so that the Bengali translation can reorder them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import override

MESSAGES: dict[str, Promise] = {
    # The file as a whole
    "empty_file": _("The file is empty."),
    "header_only": _("The file has a header row but no data rows."),
    "missing_column": _("The required column “%(field)s” is missing."),
    "duplicate_column": _("Columns “%(first)s” and “%(second)s” both mean “%(field)s”."),
    "not_csv_or_xlsx": _("This is not a CSV file or an Excel (.xlsx) workbook."),
    "old_excel": _("Old Excel (.xls) files are not supported: save it as .xlsx or CSV."),
    "unknown_encoding": _(
        "The text is not in a known encoding (UTF-8, UTF-16 or Windows-1252): save it as UTF-8."
    ),
    "damaged_xlsx": _("The workbook is damaged or incomplete (%(detail)s)."),
    "zip_bomb": _(
        "The workbook would unpack to %(size)s MB, more than the %(limit)s MB allowed: "
        "it is not an ordinary spreadsheet."
    ),
    "unknown_sheet": _("The workbook has no sheet called “%(sheet)s” (it has: %(sheets)s)."),
    "bad_csv": _("The file cannot be read as CSV: %(detail)s"),
    "too_large": _("The file is %(size)s MB; uploads are limited to %(limit)s MB."),
    "truncated_upload": _(
        "The upload is incomplete: its checksum does not match the one sent with it."
    ),
    "not_allowed_kind": _("Only administrators may import %(kind)s."),
    "worker_lost": _("The worker stopped during the import; nothing was written. Restart the job."),
    "internal_error": _("The import failed unexpectedly (%(detail)s); nothing was written."),
    # One row
    "missing_value": _("A value is required."),
    "too_long": _("The value has %(length)s characters; at most %(limit)s are allowed."),
    "too_few_columns": _("The row has fewer columns than the header; the file may be cut off."),
    "not_a_number": _("This is not a number."),
    "not_a_whole_number": _("This is not a whole number."),
    "not_a_date": _("This is not a date (use YYYY-MM-DD, DD/MM/YYYY or DD-MM-YYYY)."),
    "not_a_boolean": _("Use true or false (or yes/no)."),
    "not_allowed": _("This value is not allowed; use one of: %(allowed)s."),
    "below_minimum": _("The value must be at least %(minimum)s."),
    "above_maximum": _("The value must be at most %(maximum)s."),
    "future_date": _("The date is in the future."),
    "outside_academic_year": _("The date is outside academic year %(year)s."),
    "unknown_school": _("No school has EIIN “%(eiin)s”."),
    "school_out_of_scope": _("You may not import data for school %(eiin)s."),
    "unknown_student": _("No student has the identifier “%(student_id)s”."),
    "student_out_of_scope": _("Student %(student_id)s is not at a school you may import for."),
    "unknown_subject": _("No subject has the code “%(subject)s”."),
    "unknown_region": _("No upazila “%(upazila)s” was found in district “%(district)s”."),
    "not_enrolled": _("Student %(student_id)s is not enrolled at school %(eiin)s on %(date)s."),
    "not_enrolled_year": _("Student %(student_id)s has no enrollment in academic year %(year)s."),
    "no_enrollment": _(
        "Student %(student_id)s has no enrollment at school %(eiin)s in academic year %(year)s."
    ),
    "score_above_max": _("The score %(score)s is above the maximum score %(max_score)s."),
    "exit_before_entry": _("The exit date is before the entry date %(entry_date)s."),
    "exit_needs_reason": _("An exit date needs an exit reason, and a reason needs a date."),
    "duplicate_row": _("This row repeats the record on line %(first_line)s."),
    "already_enrolled": _(
        "Student %(student_id)s is already enrolled at school %(eiin)s in %(year)s; "
        "import the exit from that school first."
    ),
    "two_open_enrollments": _(
        "Student %(student_id)s has two open enrollments in %(year)s in this file."
    ),
    # Warnings (the job still runs)
    "windows_1252": _(
        "The file is not UTF-8; it was read as Windows-1252. Check that names look right."
    ),
    "ignored_column": _("The column “%(column)s” is not used and was ignored."),
    "same_file": _("This file was already imported as job #%(job)s; rows already stored are kept."),
}

FILE_LEVEL_CODES = frozenset(
    {
        "empty_file",
        "header_only",
        "missing_column",
        "duplicate_column",
        "not_csv_or_xlsx",
        "old_excel",
        "unknown_encoding",
        "damaged_xlsx",
        "zip_bomb",
        "unknown_sheet",
        "bad_csv",
        "too_large",
        "truncated_upload",
        "not_allowed_kind",
    }
)

VALUE_LIMIT = 200  # characters of an offending value kept in the report


def render_message(code: str, params: dict[str, Any]) -> str:
    template = MESSAGES.get(code)
    if template is None:
        return code
    try:
        return str(template) % params if params else str(template)
    except (KeyError, TypeError, ValueError):
        return str(template)


def render_message_in(language: str, code: str, params: dict[str, Any]) -> str:
    with override(language):
        return render_message(code, params)


class FileRejected(Exception):
    """The file as a whole cannot be imported; nothing was read into the database."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass
class Problem:
    code: str
    line: int | None = None
    column: str = ""
    value: str = ""
    sheet: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def clip(value: object) -> str:
    text = "" if value is None else str(value)
    if len(text) > VALUE_LIMIT:
        return text[: VALUE_LIMIT - 1] + "…"
    return text
