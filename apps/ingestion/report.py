"""The error report as CSV: safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from apps.ingestion.models import ImportJob
from apps.ingestion.problems import render_message_in
from apps.ingestion.selectors import import_problems_of

HEADER = ["line", "sheet", "column", "value", "code", "message_en", "message_bn"]
# A cell starting with one of these is a formula to Excel and LibreOffice
# (=HYPERLINK(...) can exfiltrate data); a leading apostrophe makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def spreadsheet_safe(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def error_report_rows(job: ImportJob) -> Iterator[str]:
    """CSV lines (UTF-8 with BOM so Excel shows Bengali) of every stored problem."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(HEADER)
    for problem in import_problems_of(job).iterator(chunk_size=2000):
        yield writer.writerow(
            [
                problem.line or "",
                spreadsheet_safe(problem.sheet),
                spreadsheet_safe(problem.column),
                spreadsheet_safe(problem.value),
                problem.code,
                spreadsheet_safe(render_message_in("en", problem.code, problem.params)),
                spreadsheet_safe(render_message_in("bn", problem.code, problem.params)),
            ]
        )
