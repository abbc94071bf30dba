"""Check every row of a chunk and turn the good ones into rows for the staging table.

Validation is column-wise: each column is parsed once per distinct value
(parsing.py), references (schools, students, subjects, enrollments) are
looked up once per distinct key and cached for the whole job, and the
row-level checks are numpy comparisons over whole chunks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings

from apps.ingestion.formats import FIELDS, NATURAL_KEYS
from apps.ingestion.models import ImportKind
from apps.ingestion.parsing import Parsed, blank_column, parse_column
from apps.ingestion.problems import Problem, clip
from apps.students.models import (
    Enrollment,
    Region,
    RegionLevel,
    School,
    Student,
    Subject,
)

LOOKUP_BATCH = 5000
NAT = np.datetime64("NaT", "D")


@dataclass
class Scope:
    """Which schools the uploader may write to; None means every school."""

    school_ids: set[int] | None = None
    region_paths: list[str] | None = None
    sees_everything: bool = True


def _days(values: Iterable[Any]) -> np.ndarray:
    return np.array([NAT if v is None else np.datetime64(v, "D") for v in values], dtype="M8[D]")


def academic_years(days: np.ndarray) -> np.ndarray:
    """academic_year_of() over an array of datetime64[D]."""
    start_month, start_day = settings.EDUPULSE_ACADEMIC_YEAR_START
    years = days.astype("M8[Y]").astype(int) + 1970
    month_day = (
        (days.astype("M8[M]").astype(int) % 12 + 1) * 100
        + (days - days.astype("M8[M]")).astype(int)
        + 1
    )
    return np.where(month_day >= start_month * 100 + start_day, years, years - 1)


def year_bounds(years: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """academic_year_bounds() over an array of years, computed once per distinct year."""
    start_month, start_day = settings.EDUPULSE_ACADEMIC_YEAR_START
    distinct, inverse = np.unique(years, return_inverse=True)
    starts = np.array(
        [np.datetime64(dt.date(int(y), start_month, start_day), "D") for y in distinct],
        dtype="M8[D]",
    )
    ends = np.array(
        [np.datetime64(dt.date(int(y) + 1, start_month, start_day), "D") for y in distinct],
        dtype="M8[D]",
    ) - np.timedelta64(1, "D")
    return starts[inverse], ends[inverse]


def _key(student: np.ndarray, school: np.ndarray, year: np.ndarray) -> np.ndarray:
    # student < 2**31, school < 2**20, year offset < 2**12: one int64 per enrollment.
    return (
        (student.astype(np.int64) << 32)
        | (school.astype(np.int64) << 12)
        | (year.astype(np.int64) - 1900)
    )


class References:
    """Schools, students, subjects and enrollments, fetched once per distinct key per job."""

    def __init__(self) -> None:
        self.school_pk: dict[str, int] = dict(School.objects.values_list("eiin", "pk"))
        self.school_eiin = {pk: eiin for eiin, pk in self.school_pk.items()}
        self.subject_pk: dict[str, int] = {}
        for pk, code, name in Subject.objects.values_list("pk", "code", "name"):
            self.subject_pk[code.lower()] = pk
            self.subject_pk.setdefault(name.lower(), pk)
        self.student_pk: dict[str, int] = {}
        self._asked: set[str] = set()
        self._enrolled_students: set[int] = set()
        self._enrollments: list[tuple[int, int, int, dt.date, dt.date | None, str]] = []
        self._index: pd.Index | None = None
        self._entry = np.zeros(0, dtype="M8[D]")
        self._exit = np.zeros(0, dtype="M8[D]")

    def students(self, ids: Iterable[str]) -> dict[str, int]:
        wanted = [i for i in set(ids) if i and i not in self._asked]
        for start in range(0, len(wanted), LOOKUP_BATCH):
            batch = wanted[start : start + LOOKUP_BATCH]
            self.student_pk.update(
                Student.objects.filter(student_id__in=batch).values_list("student_id", "pk")
            )
        self._asked.update(wanted)
        return self.student_pk

    def load_enrollments(self, student_pks: Iterable[int]) -> None:
        wanted = [pk for pk in set(student_pks) if pk not in self._enrolled_students]
        if not wanted:
            return
        for start in range(0, len(wanted), LOOKUP_BATCH):
            self._enrollments.extend(
                Enrollment.objects.filter(student_id__in=wanted[start : start + LOOKUP_BATCH])
                .values_list(
                    "student_id",
                    "school_id",
                    "academic_year",
                    "entry_date",
                    "exit_date",
                    "exit_reason",
                )
                .order_by()
            )
        self._enrolled_students.update(wanted)
        rows = self._enrollments
        self._index = pd.Index(
            _key(
                np.array([r[0] for r in rows], dtype=np.int64),
                np.array([r[1] for r in rows], dtype=np.int64),
                np.array([r[2] for r in rows], dtype=np.int64),
            )
        )
        self._entry = _days(r[3] for r in rows)
        self._exit = _days(r[4] for r in rows)

    @property
    def enrollments(self) -> list[tuple[int, int, int, dt.date, dt.date | None, str]]:
        return self._enrollments

    def enrollment_spans(
        self, students: np.ndarray, schools: np.ndarray, years: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(found, entry, exit) per row for the enrollment (student, school, year)."""
        self.load_enrollments(np.unique(students).tolist())
        if self._index is None or len(self._index) == 0:
            empty = np.full(len(students), NAT, dtype="M8[D]")
            return np.zeros(len(students), dtype=bool), empty, empty
        positions = self._index.get_indexer(_key(students, schools, years))
        found = positions >= 0
        safe = np.where(found, positions, 0)
        return found, self._entry[safe], self._exit[safe]


@dataclass
class ChunkResult:
    # Staging rows for the good rows, with _line; dates are datetime64 (NaT = empty).
    stage: pd.DataFrame
    keys: np.ndarray  # uint64 natural-key hash per staged row
    problems: list[Problem]
    rows: int
    rejected: int
    figures: dict[str, Any] = field(default_factory=dict)


class Validator:
    def __init__(
        self,
        *,
        kind: str,
        headers: dict[str, str],
        present: set[str],
        scope: Scope,
        sheet: str = "",
        references: References | None = None,
        today: dt.date | None = None,
    ) -> None:
        self.kind = kind
        self.headers = headers
        self.present = present
        self.scope = scope
        self.sheet = sheet
        self.refs = references or References()
        self.today = today or dt.datetime.now(dt.UTC).date()
        self.specs = {spec.name: spec for spec in FIELDS[kind]}

    # -- helpers ---------------------------------------------------------

    def _problems(
        self,
        mask: np.ndarray,
        lines: np.ndarray,
        column: str,
        values: np.ndarray | list[Any] | None,
        code: str,
        params: Callable[[int], dict[str, Any]] | list[dict[str, Any]] | None = None,
    ) -> list[Problem]:
        header = self.headers.get(column, column)
        found: list[Problem] = []
        for position in np.flatnonzero(mask):
            if callable(params):
                row_params = params(int(position))
            elif isinstance(params, list):
                row_params = params[position]
            else:
                row_params = {}
            value = "" if values is None else clip(values[position])
            found.append(
                Problem(
                    code=code,
                    line=int(lines[position]),
                    column=header,
                    value=value,
                    sheet=self.sheet,
                    params=row_params,
                )
            )
        return found

    def prefetch(self, frame: pd.DataFrame) -> None:
        """Look up the chunk's students and their enrollments ahead of validate().

        While a job loads beside its validation, the database connection is
        mostly busy loading the previous chunk; asking for a chunk's
        references in one go, before checking it, leaves validate() itself
        nothing to wait for (apps.ingestion.pipeline).
        """
        spec = self.specs.get("student_id")
        if spec is None or "student_id" not in self.present or "student_id" not in frame:
            return
        ids = [v for v in parse_column(spec, frame["student_id"]).values if v]
        known = self.refs.students(ids)
        self.refs.load_enrollments(known[i] for i in ids if i in known)

    def validate(self, frame: pd.DataFrame) -> ChunkResult:
        frame = frame.reset_index(drop=True)
        lines = frame["_line"].to_numpy(dtype=np.int64)
        columns = {
            name: parse_column(spec, frame[name])
            for name, spec in self.specs.items()
            if name in self.present
        }
        # Blank rows (a spreadsheet's empty lines, or ",,,,") are not records.
        filled = np.zeros(len(frame), dtype=bool)
        for column in columns.values():
            blank = np.array([not t.strip() for t in column.texts], dtype=bool)
            filled |= ~blank[column.codes]
        if not filled.all():
            lines = lines[filled]
            for column in columns.values():
                column.codes = column.codes[filled]
        n = len(lines)
        problems: list[Problem] = []
        bad = np.zeros(n, dtype=bool)
        truncated = frame.attrs.get("truncated_line")
        if truncated is not None:
            mask = lines == truncated
            problems += self._problems(mask, lines, "", None, "too_few_columns")
            bad |= mask

        parsed: dict[str, Parsed] = {}
        for name in self.specs:
            column = columns.get(name) or blank_column(n)
            parsed[name] = column
            errors = column.errors
            if any(e is not None for e in errors):
                row_bad = column.error_rows() & ~bad
                raw = np.asarray(column.texts, dtype=object)[column.codes]
                for position in np.flatnonzero(row_bad):
                    code, params = errors[column.codes[position]]  # type: ignore[misc]
                    problems.append(
                        Problem(
                            code=code,
                            line=int(lines[position]),
                            column=self.headers.get(name, name),
                            value=clip(raw[position]),
                            sheet=self.sheet,
                            params=params,
                        )
                    )
                bad |= column.error_rows()
        values = {name: _typed(self.specs[name].type, column) for name, column in parsed.items()}
        checker = getattr(self, f"_check_{self.kind}")
        stage, row_problems, more_bad = checker(values, lines, bad)
        problems += row_problems
        bad |= more_bad
        good = ~bad
        stage = stage[good].reset_index(drop=True)
        stage["_line"] = lines[good]
        keys = self._natural_keys(stage)
        return ChunkResult(stage, keys, problems, n, int(bad.sum()))

    def _natural_keys(self, stage: pd.DataFrame) -> np.ndarray:
        columns = STAGE_KEYS[self.kind]
        if stage.empty:
            return np.zeros(0, dtype=np.uint64)
        return pd.util.hash_pandas_object(stage[columns], index=False).to_numpy(dtype=np.uint64)

    def _schools(
        self, eiins: np.ndarray, lines: np.ndarray, bad: np.ndarray, column: str = "eiin"
    ) -> tuple[np.ndarray, list[Problem], np.ndarray]:
        codes, uniques = pd.factorize(eiins, use_na_sentinel=False)
        pks = np.array([self.refs.school_pk.get(u, -1) if u else -1 for u in uniques])
        per_row = pks[codes] if len(codes) else np.zeros(0, dtype=np.int64)
        unknown = (per_row < 0) & ~bad
        problems = self._problems(
            unknown, lines, column, eiins, "unknown_school", lambda p: {"eiin": eiins[p]}
        )
        newly_bad = unknown.copy()
        if self.scope.school_ids is not None:
            outside = ~np.isin(per_row, list(self.scope.school_ids)) & ~bad & ~unknown
            problems += self._problems(
                outside, lines, column, eiins, "school_out_of_scope", lambda p: {"eiin": eiins[p]}
            )
            newly_bad |= outside
        return per_row, problems, newly_bad

    def _students(
        self, ids: np.ndarray, lines: np.ndarray, bad: np.ndarray
    ) -> tuple[np.ndarray, list[Problem], np.ndarray]:
        codes, uniques = pd.factorize(ids, use_na_sentinel=False)
        known = self.refs.students(u for u in uniques if u)
        pks = np.array([known.get(u, -1) if u else -1 for u in uniques], dtype=np.int64)
        per_row = pks[codes] if len(codes) else np.zeros(0, dtype=np.int64)
        unknown = (per_row < 0) & ~bad
        problems = self._problems(
            unknown, lines, "student_id", ids, "unknown_student", lambda p: {"student_id": ids[p]}
        )
        return per_row, problems, unknown

    def _enrolled_on(
        self,
        students: np.ndarray,
        schools: np.ndarray,
        days: np.ndarray,
        lines: np.ndarray,
        bad: np.ndarray,
        ids: np.ndarray,
        eiins: np.ndarray,
        column: str,
        within_dates: bool = True,
    ) -> tuple[list[Problem], np.ndarray]:
        ok = ~bad
        years = np.where(ok, academic_years(days), 2000)
        found, entry, exit_ = self.refs.enrollment_spans(
            np.where(ok, students, 0), np.where(ok, schools, 0), years
        )
        inside = found
        if within_dates:
            inside = found & (days >= entry) & (np.isnat(exit_) | (days <= exit_))
        wrong = ok & ~inside

        def params(p: int) -> dict[str, Any]:
            return {"student_id": ids[p], "eiin": eiins[p], "date": str(days[p])}

        return self._problems(wrong, lines, column, days, "not_enrolled", params), wrong

    def _future(
        self, days: np.ndarray, lines: np.ndarray, bad: np.ndarray, column: str
    ) -> tuple[list[Problem], np.ndarray]:
        future = ~bad & ~np.isnat(days) & (days > np.datetime64(self.today, "D"))
        return self._problems(future, lines, column, days, "future_date"), future

    # -- kinds -----------------------------------------------------------

    def _check_attendance(
        self,
        v: dict[str, np.ndarray],
        lines: np.ndarray,
        bad: np.ndarray,
        within_dates: bool = True,
    ) -> tuple[pd.DataFrame, list[Problem], np.ndarray]:
        problems: list[Problem] = []
        schools, found, newly = self._schools(v["eiin"], lines, bad)
        problems += found
        bad = bad | newly
        students, found, newly = self._students(v["student_id"], lines, bad)
        problems += found
        bad = bad | newly
        days = v["date"]
        found, newly = self._future(days, lines, bad, "date")
        problems += found
        bad = bad | newly
        found, newly = self._enrolled_on(
            students, schools, days, lines, bad, v["student_id"], v["eiin"], "date", within_dates
        )
        problems += found
        bad = bad | newly
        stage = pd.DataFrame(
            {
                "student_id": students,
                "school_id": schools,
                "date": days,
                "status": v["status"],
            }
        )
        return stage, problems, bad

    def _check_incidents(
        self, v: dict[str, np.ndarray], lines: np.ndarray, bad: np.ndarray
    ) -> tuple[pd.DataFrame, list[Problem], np.ndarray]:
        # An incident may be recorded after the student left (a dropout's
        # last weeks are often written up late): the year is what must match.
        stage, problems, bad = self._check_attendance(
            {**v, "status": v["category"]}, lines, bad, within_dates=False
        )
        stage = stage.rename(columns={"status": "category"})
        stage["severity"] = np.nan_to_num(v["severity"]).astype(np.int64)
        stage["action_taken"] = np.where(pd.isna(v["action_taken"]), "", v["action_taken"])
        stage["days_suspended"] = np.nan_to_num(v["days_suspended"]).astype(np.int64)
        return stage, problems, bad

    def _check_grades(
        self, v: dict[str, np.ndarray], lines: np.ndarray, bad: np.ndarray
    ) -> tuple[pd.DataFrame, list[Problem], np.ndarray]:
        problems: list[Problem] = []
        students, found, newly = self._students(v["student_id"], lines, bad)
        problems += found
        bad = bad | newly
        subjects = np.array(
            [
                self.refs.subject_pk.get(str(s).lower(), -1) if s is not None else -1
                for s in v["subject"]
            ],
            dtype=np.int64,
        )
        unknown = (subjects < 0) & ~bad
        problems += self._problems(
            unknown,
            lines,
            "subject",
            v["subject"],
            "unknown_subject",
            lambda p: {"subject": v["subject"][p]},
        )
        bad = bad | unknown
        years = np.nan_to_num(v["academic_year"]).astype(np.int64)
        days = v["assessment_date"]
        ok = ~bad
        starts, ends = year_bounds(np.where(ok, years, 2000))
        outside = ok & ((days < starts) | (days > ends))
        problems += self._problems(
            outside,
            lines,
            "assessment_date",
            days,
            "outside_academic_year",
            lambda p: {"year": int(years[p])},
        )
        bad = bad | outside
        found, newly = self._future(days, lines, bad, "assessment_date")
        problems += found
        bad = bad | newly
        scores = v["score"]
        maxima = v["max_score"]
        above = ~bad & ~np.isnan(scores) & (scores > maxima)
        problems += self._problems(
            above,
            lines,
            "score",
            scores,
            "score_above_max",
            lambda p: {"score": f"{scores[p]:g}", "max_score": f"{maxima[p]:g}"},
        )
        bad = bad | above
        # Marks have no school column: the student must be enrolled that year,
        # at a school the uploader may write to.
        self.refs.load_enrollments(np.unique(students[~bad]).tolist())
        enrolled: dict[tuple[int, int], set[int]] = {}
        for student, school, year, *_rest in self.refs.enrollments:
            enrolled.setdefault((student, year), set()).add(school)
        not_enrolled = np.zeros(len(lines), dtype=bool)
        out_of_scope = np.zeros(len(lines), dtype=bool)
        for position in np.flatnonzero(~bad):
            schools = enrolled.get((int(students[position]), int(years[position])))
            if not schools:
                not_enrolled[position] = True
            elif self.scope.school_ids is not None and not schools & self.scope.school_ids:
                out_of_scope[position] = True
        problems += self._problems(
            not_enrolled,
            lines,
            "academic_year",
            years,
            "not_enrolled_year",
            lambda p: {"student_id": v["student_id"][p], "year": int(years[p])},
        )
        problems += self._problems(
            out_of_scope,
            lines,
            "student_id",
            v["student_id"],
            "student_out_of_scope",
            lambda p: {"student_id": v["student_id"][p]},
        )
        bad = bad | not_enrolled | out_of_scope
        assessment = np.array(["exam" if a is None else a for a in v["assessment"]], dtype=object)
        stage = pd.DataFrame(
            {
                "student_id": students,
                "subject_id": subjects,
                "academic_year": years,
                "term": v["term"],
                "assessment": assessment,
                "assessment_date": days,
                "score": scores,
                "max_score": maxima,
                "is_missing": np.isnan(scores),
            }
        )
        return stage, problems, bad

    def _check_roster(
        self, v: dict[str, np.ndarray], lines: np.ndarray, bad: np.ndarray
    ) -> tuple[pd.DataFrame, list[Problem], np.ndarray]:
        problems: list[Problem] = []
        schools, found, newly = self._schools(v["eiin"], lines, bad)
        problems += found
        bad = bad | newly
        years = np.nan_to_num(v["academic_year"]).astype(np.int64)
        entry = v["entry_date"]
        exit_ = v["exit_date"]
        ok = ~bad
        starts, ends = year_bounds(np.where(ok, years, 2000))
        outside = ok & ((entry < starts) | (entry > ends))
        problems += self._problems(
            outside,
            lines,
            "entry_date",
            entry,
            "outside_academic_year",
            lambda p: {"year": int(years[p])},
        )
        bad = bad | outside
        has_date = ~np.isnat(exit_)
        has_reason = np.array([r is not None for r in v["exit_reason"]], dtype=bool)
        unpaired = ~bad & (has_date != has_reason)
        problems += self._problems(unpaired, lines, "exit_date", exit_, "exit_needs_reason")
        bad = bad | unpaired
        before = ~bad & has_date & (exit_ < entry)
        problems += self._problems(
            before,
            lines,
            "exit_date",
            exit_,
            "exit_before_entry",
            lambda p: {"entry_date": str(entry[p])},
        )
        bad = bad | before
        exit_outside = ~bad & has_date & (exit_ > ends)
        problems += self._problems(
            exit_outside,
            lines,
            "exit_date",
            exit_,
            "outside_academic_year",
            lambda p: {"year": int(years[p])},
        )
        bad = bad | exit_outside
        found, newly = self._future(entry, lines, bad, "entry_date")
        problems += found
        bad = bad | newly
        # A student may be open at one school per year. Rows that close an
        # enrollment (exit given) release it, in the file or in the database.
        ids = v["student_id"]
        known = self.refs.students(i for i in ids if i)
        student_pks = np.array([known.get(i, -1) if i else -1 for i in ids], dtype=np.int64)
        self.refs.load_enrollments(student_pks[student_pks > 0].tolist())
        closed_here = {
            (ids[p], int(schools[p]), int(years[p])) for p in np.flatnonzero(~bad & has_date)
        }
        open_here: dict[tuple[str, int], int] = {}
        stored_open: dict[tuple[int, int], int] = {}
        for student, school, year, _entry, exit_date, _reason in self.refs.enrollments:
            if exit_date is None:
                stored_open[(student, year)] = school
        pk_to_id = {pk: sid for sid, pk in known.items()}
        conflict = np.zeros(len(lines), dtype=bool)
        twice = np.zeros(len(lines), dtype=bool)
        params: list[dict[str, Any]] = [{} for _ in lines]
        for position in np.flatnonzero(~bad & ~has_date):
            sid, school, year = ids[position], int(schools[position]), int(years[position])
            if (sid, year) in open_here and open_here[(sid, year)] != school:
                twice[position] = True
                params[position] = {"student_id": sid, "year": year}
                continue
            open_here[(sid, year)] = school
            other = stored_open.get((int(student_pks[position]), year))
            if other is not None and other != school and (sid, other, year) not in closed_here:
                conflict[position] = True
                params[position] = {
                    "student_id": pk_to_id.get(int(student_pks[position]), sid),
                    "eiin": self.refs.school_eiin.get(other, ""),
                    "year": year,
                }
        problems += self._problems(twice, lines, "student_id", ids, "two_open_enrollments", params)
        problems += self._problems(conflict, lines, "eiin", v["eiin"], "already_enrolled", params)
        bad = bad | twice | conflict

        def text(name: str) -> np.ndarray:
            return np.array(["" if x is None else x for x in v[name]], dtype=object)

        def flag(name: str) -> np.ndarray:
            return np.array([bool(x) for x in v[name]], dtype=bool)

        stage = pd.DataFrame(
            {
                "sid": text("student_id"),
                "name": text("name"),
                "name_bn": text("name_bn"),
                "gender": text("gender"),
                "date_of_birth": v["date_of_birth"],
                "guardian_name": text("guardian_name"),
                "guardian_phone": text("guardian_phone"),
                "stipend_recipient": flag("stipend_recipient"),
                "has_disability": flag("has_disability"),
                "school_id": schools,
                "academic_year": years,
                "grade_level": np.nan_to_num(v["grade_level"]).astype(np.int64),
                "section": text("section"),
                "entry_date": entry,
                "exit_date": exit_,
                "exit_reason": v["exit_reason"],
            }
        )
        return stage, problems, bad

    def _check_exits(
        self, v: dict[str, np.ndarray], lines: np.ndarray, bad: np.ndarray
    ) -> tuple[pd.DataFrame, list[Problem], np.ndarray]:
        problems: list[Problem] = []
        schools, found, newly = self._schools(v["eiin"], lines, bad)
        problems += found
        bad = bad | newly
        students, found, newly = self._students(v["student_id"], lines, bad)
        problems += found
        bad = bad | newly
        years = np.nan_to_num(v["academic_year"]).astype(np.int64)
        exit_ = v["exit_date"]
        ok = ~bad
        enrolled, entry, _stored_exit = self.refs.enrollment_spans(
            np.where(ok, students, 0), np.where(ok, schools, 0), np.where(ok, years, 2000)
        )
        missing = ok & ~enrolled
        problems += self._problems(
            missing,
            lines,
            "student_id",
            v["student_id"],
            "no_enrollment",
            lambda p: {
                "student_id": v["student_id"][p],
                "eiin": v["eiin"][p],
                "year": int(years[p]),
            },
        )
        bad = bad | missing
        before = ~bad & (exit_ < entry)
        problems += self._problems(
            before,
            lines,
            "exit_date",
            exit_,
            "exit_before_entry",
            lambda p: {"entry_date": str(entry[p])},
        )
        bad = bad | before
        _starts, ends = year_bounds(np.where(~bad, years, 2000))
        outside = ~bad & (exit_ > ends)
        problems += self._problems(
            outside,
            lines,
            "exit_date",
            exit_,
            "outside_academic_year",
            lambda p: {"year": int(years[p])},
        )
        bad = bad | outside
        found, newly = self._future(exit_, lines, bad, "exit_date")
        problems += found
        bad = bad | newly
        stage = pd.DataFrame(
            {
                "student_id": students,
                "school_id": schools,
                "academic_year": years,
                "exit_date": exit_,
                "exit_reason": v["exit_reason"],
            }
        )
        return stage, problems, bad

    def _check_schools(
        self, v: dict[str, np.ndarray], lines: np.ndarray, bad: np.ndarray
    ) -> tuple[pd.DataFrame, list[Problem], np.ndarray]:
        problems: list[Problem] = []
        upazilas: dict[tuple[str, str], tuple[int, str]] = {}
        for pk, name, name_bn, district, district_bn, path in Region.objects.filter(
            level=RegionLevel.UPAZILA
        ).values_list("pk", "name", "name_bn", "parent__name", "parent__name_bn", "path"):
            for d in (district, district_bn):
                for u in (name, name_bn):
                    if d and u:
                        upazilas[(d.lower(), u.lower())] = (pk, path)
        regions = np.full(len(lines), -1, dtype=np.int64)
        unknown = np.zeros(len(lines), dtype=bool)
        outside = np.zeros(len(lines), dtype=bool)
        for position in np.flatnonzero(~bad):
            hit = upazilas.get(
                (str(v["district"][position]).lower(), str(v["upazila"][position]).lower())
            )
            if hit is None:
                unknown[position] = True
                continue
            regions[position] = hit[0]
            paths = self.scope.region_paths
            if paths is not None and not any(hit[1].startswith(p) for p in paths):
                outside[position] = True
        problems += self._problems(
            unknown,
            lines,
            "upazila",
            v["upazila"],
            "unknown_region",
            lambda p: {"upazila": v["upazila"][p], "district": v["district"][p]},
        )
        problems += self._problems(
            outside,
            lines,
            "eiin",
            v["eiin"],
            "school_out_of_scope",
            lambda p: {"eiin": v["eiin"][p]},
        )
        bad = bad | unknown | outside
        stage = pd.DataFrame(
            {
                "eiin": v["eiin"],
                "name": v["name"],
                "name_bn": np.array(["" if x is None else x for x in v["name_bn"]], dtype=object),
                "school_type": v["school_type"],
                "region_id": regions,
            }
        )
        return stage, problems, bad

    def _check_holidays(
        self, v: dict[str, np.ndarray], lines: np.ndarray, bad: np.ndarray
    ) -> tuple[pd.DataFrame, list[Problem], np.ndarray]:
        stage = pd.DataFrame(
            {
                "date": v["date"],
                "name": v["name"],
                "name_bn": np.array(["" if x is None else x for x in v["name_bn"]], dtype=object),
            }
        )
        return stage, [], bad


def _typed(kind: str, column: Parsed) -> np.ndarray:
    """Per-row values: datetime64[D] for dates, float (NaN = empty) for numbers, else objects."""
    if kind == "date":
        return _days(column.values)[column.codes]
    if kind in ("int", "decimal"):
        numbers = np.array([np.nan if x is None else x for x in column.values], dtype=float)
        return numbers[column.codes]
    return np.asarray(column.values, dtype=object)[column.codes]


# Staging columns that make up the natural key (after references are resolved).
STAGE_KEYS: dict[str, list[str]] = {
    ImportKind.SCHOOLS: ["eiin"],
    ImportKind.ROSTER: ["sid", "school_id", "academic_year"],
    ImportKind.EXITS: ["student_id", "school_id", "academic_year"],
    ImportKind.ATTENDANCE: ["student_id", "date"],
    ImportKind.GRADES: ["student_id", "academic_year", "term", "subject_id", "assessment"],
    ImportKind.INCIDENTS: ["student_id", "date", "category"],
    ImportKind.HOLIDAYS: ["date"],
}
assert set(STAGE_KEYS) == set(NATURAL_KEYS)
