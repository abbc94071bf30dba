"""CSV and Excel downloads of the pages' lists.

A cell that starts with =, +, - or @ (or a tab or carriage return) is read as
a formula by spreadsheet programs; a student name or a note typed as
"=HYPERLINK(...)" would run on the reader's machine. Such cells get a leading
apostrophe, in both formats, so they always open as text.
"""

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from django.http import HttpResponse
from django.utils.text import slugify

from apps.common.xlsx import xlsx_bytes

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMATS = ("csv", "xlsx")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def cell_safe(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def _csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([cell_safe(h) for h in headers])
    for row in rows:
        writer.writerow([cell_safe(v) for v in row])
    # A byte-order mark so that Excel opens Bengali text as UTF-8.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _xlsx(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    return xlsx_bytes(
        title, [cell_safe(h) for h in headers], ([cell_safe(v) for v in row] for row in rows)
    )


def export_response(
    *, name: str, fmt: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]
) -> HttpResponse:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    filename = f"{slugify(name) or 'export'}.{fmt}"
    if fmt == "csv":
        response = HttpResponse(_csv(headers, rows), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(_xlsx(name, headers, rows), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
