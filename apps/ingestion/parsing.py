"""Turn text cells into typed values, one distinct value at a time.

A column of a million rows has a few thousand distinct values (students,
dates, statuses), so each column is factorised and only its distinct values
are parsed; the result is spread back over the rows with the codes. This is
what makes validation vectorised without a regex per row.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from apps.ingestion.formats import Field, normalise

BENGALI_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d %b %Y", "%d-%b-%Y")
EXCEL_EPOCH = dt.date(1899, 12, 30)
TRUE = {"true", "t", "yes", "y", "1", "হ্যাঁ", "হা"}
FALSE = {"false", "f", "no", "n", "0", "না", ""}


@dataclass
class Parsed:
    """A column: codes per row into `values`/`errors`, one entry per distinct cell text."""

    codes: np.ndarray
    texts: list[str]
    values: list[Any]
    errors: list[tuple[str, dict[str, Any]] | None]

    def rows(self) -> np.ndarray:
        return np.asarray(self.values, dtype=object)[self.codes]

    def error_rows(self) -> np.ndarray:
        bad = np.fromiter((e is not None for e in self.errors), dtype=bool, count=len(self.errors))
        return bad[self.codes] if len(self.codes) else np.zeros(0, dtype=bool)


def parse_date(text: str) -> dt.date | None:
    text = text.translate(BENGALI_DIGITS)
    if len(text) >= 10 and text[4] == "-" and text[10:11] in ("", " ", "T"):
        text = text[:10]  # "2026-03-01 00:00:00" from a spreadsheet's text cell
    for pattern in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, pattern).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    if text.isdigit() and 20000 < int(text) < 80000:
        return EXCEL_EPOCH + dt.timedelta(days=int(text))  # an Excel serial number
    return None


def _number(text: str) -> float | None:
    text = text.translate(BENGALI_DIGITS).replace(",", "")
    try:
        number = float(text)
    except ValueError:
        return None
    if not np.isfinite(number):
        return None
    return number


def parse_one(spec: Field, raw: str) -> tuple[Any, tuple[str, dict[str, Any]] | None]:
    text = raw.strip()
    if text == "":
        if spec.blank:
            return None, None
        return None, ("missing_value", {})
    if len(text) > spec.max_length:
        # Checked before anything else touches the text: a 50 MB cell costs one len().
        return None, ("too_long", {"length": len(text), "limit": spec.max_length})
    text = unicodedata.normalize("NFC", text)
    if spec.type == "text":
        return text, None
    if spec.type == "choice":
        value = spec.choices.get(normalise(text))
        if value is None:
            allowed = ", ".join(sorted(set(spec.choices.values())))
            return None, ("not_allowed", {"allowed": allowed})
        return value, None
    if spec.type == "bool":
        key = text.lower()
        if key in TRUE:
            return True, None
        if key in FALSE:
            return False, None
        return None, ("not_a_boolean", {})
    if spec.type == "date":
        day = parse_date(text)
        if day is None or not 1900 <= day.year <= 2100:
            return None, ("not_a_date", {})
        return day, None
    number = _number(text)
    if number is None:
        return None, ("not_a_number", {})
    if spec.type == "int":
        if not number.is_integer():
            return None, ("not_a_whole_number", {})
        number = int(number)
    else:
        number = round(number, 2)
    if spec.minimum is not None and number < spec.minimum:
        return None, ("below_minimum", {"minimum": _plain(spec.minimum)})
    if spec.maximum is not None and number > spec.maximum:
        return None, ("above_maximum", {"maximum": _plain(spec.maximum)})
    return number, None


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def parse_column(spec: Field, column: pd.Series) -> Parsed:
    # With the sentinel pandas skips a separate pass looking for missing
    # values (a CSV read as text has none); a spreadsheet's empty cells, if
    # any, become one more distinct value.
    codes, uniques = pd.factorize(column.to_numpy(dtype=object), use_na_sentinel=True)
    texts = [str(u) for u in uniques]
    if len(codes) and codes.min() < 0:
        codes = np.where(codes < 0, len(texts), codes)
        texts.append("")
    values: list[Any] = []
    errors: list[tuple[str, dict[str, Any]] | None] = []
    for text in texts:
        value, error = parse_one(spec, text)
        values.append(value)
        errors.append(error)
    return Parsed(np.asarray(codes), texts, values, errors)


def blank_column(length: int) -> Parsed:
    """An optional column the file does not have: every row is empty."""
    return Parsed(np.zeros(length, dtype=np.intp), [""], [None], [None])
