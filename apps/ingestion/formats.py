"""The columns each kind of file has, and the header spellings districts use for them.

docs/data-formats.md documents the same tables for people; keep them in step.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from apps.ingestion.models import ImportKind
from apps.students.models import (
    AttendanceStatus,
    ExitReason,
    Gender,
    IncidentCategory,
    SchoolType,
)

FieldType = Literal["text", "int", "decimal", "date", "bool", "choice"]


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType = "text"
    required: bool = True  # the column must be in the file
    blank: bool = False  # a cell may be empty
    max_length: int = 200
    minimum: float | None = None
    maximum: float | None = None
    # normalised spelling -> stored value, for "choice"
    choices: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


def _choices(values: dict[str, tuple[str, ...]]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for value, spellings in values.items():
        for spelling in (value, value.replace("_", " "), *spellings):
            mapping[normalise(spelling)] = value
    return mapping


def normalise(text: str) -> str:
    """Header or choice spelling → a comparable key: NFC, lower case, one underscore per gap."""
    text = unicodedata.normalize("NFC", str(text)).replace("\ufeff", "").strip().lower()
    return re.sub(r"[\s\-_./()#:]+", "_", text).strip("_")


STUDENT_ID = Field(
    "student_id",
    max_length=32,
    aliases=(
        "student id",
        "student no",
        "student number",
        "id",
        "roll id",
        "learner id",
        "শিক্ষার্থী আইডি",
        "শিক্ষার্থীর আইডি",
        "আইডি",
    ),
)
EIIN = Field(
    "eiin",
    max_length=12,
    aliases=("eiin no", "eiin number", "school code", "school id", "school eiin", "ইআইআইএন"),
)
ACADEMIC_YEAR = Field(
    "academic_year",
    "int",
    minimum=1990,
    maximum=2100,
    aliases=("year", "session", "school year", "শিক্ষাবর্ষ", "সাল"),
)

ATTENDANCE_STATUS = _choices(
    {
        AttendanceStatus.PRESENT: ("p", "1", "yes", "উপস্থিত", "present"),
        AttendanceStatus.ABSENT: ("a", "0", "no", "অনুপস্থিত"),
        AttendanceStatus.EXCUSED: ("e", "excused absence", "leave", "ছুটি"),
        AttendanceStatus.LATE: ("l", "দেরি", "বিলম্ব"),
    }
)

FIELDS: dict[str, list[Field]] = {
    ImportKind.SCHOOLS: [
        EIIN,
        Field("name", aliases=("school name", "school", "নাম", "বিদ্যালয়ের নাম")),
        Field("name_bn", required=False, blank=True, aliases=("name bengali", "bangla name")),
        Field(
            "school_type",
            "choice",
            choices=_choices(
                {
                    SchoolType.GOVERNMENT: ("govt", "সরকারি"),
                    SchoolType.NON_GOVERNMENT: ("non govt", "private", "বেসরকারি"),
                    SchoolType.MADRASAH: ("madrasa", "মাদ্রাসা"),
                    SchoolType.TECHNICAL: ("vocational", "technical and vocational"),
                    SchoolType.NGO: ("ngo run",),
                }
            ),
            aliases=("type", "management", "ধরন"),
        ),
        Field("district", aliases=("zila", "জেলা")),
        Field("upazila", aliases=("thana", "upazilla", "উপজেলা")),
    ],
    ImportKind.ROSTER: [
        STUDENT_ID,
        Field("name", aliases=("student name", "full name", "নাম", "শিক্ষার্থীর নাম")),
        Field("name_bn", required=False, blank=True, aliases=("name bengali", "bangla name")),
        Field(
            "gender",
            "choice",
            choices=_choices(
                {
                    Gender.FEMALE: ("f", "girl", "মেয়ে", "ছাত্রী", "নারী"),
                    Gender.MALE: ("m", "boy", "ছেলে", "ছাত্র", "পুরুষ"),
                    Gender.OTHER: ("o", "অন্যান্য"),
                }
            ),
            aliases=("sex", "লিঙ্গ"),
        ),
        Field(
            "date_of_birth",
            "date",
            required=False,
            blank=True,
            aliases=("dob", "birth date", "birthdate", "জন্ম তারিখ"),
        ),
        Field(
            "guardian_name",
            required=False,
            blank=True,
            aliases=("guardian", "parent name", "অভিভাবকের নাম"),
        ),
        Field(
            "guardian_phone",
            required=False,
            blank=True,
            max_length=20,
            aliases=("phone", "mobile", "guardian mobile", "মোবাইল"),
        ),
        Field(
            "stipend_recipient",
            "bool",
            required=False,
            blank=True,
            aliases=("stipend", "উপবৃত্তি"),
        ),
        Field("has_disability", "bool", required=False, blank=True, aliases=("disability",)),
        EIIN,
        ACADEMIC_YEAR,
        Field(
            "grade_level",
            "int",
            minimum=1,
            maximum=12,
            aliases=("grade", "class", "শ্রেণি", "শ্রেণী"),
        ),
        Field("section", required=False, blank=True, max_length=20, aliases=("শাখা",)),
        Field("entry_date", "date", aliases=("admission date", "enrolled on", "ভর্তির তারিখ")),
        Field("exit_date", "date", required=False, blank=True, aliases=("left on",)),
        Field(
            "exit_reason",
            "choice",
            required=False,
            blank=True,
            choices=_choices(
                {
                    ExitReason.DROPPED_OUT: ("dropout", "dropped", "ঝরে পড়েছে"),
                    ExitReason.TRANSFERRED: ("transfer", "tc"),
                    ExitReason.GRADUATED: ("passed", "completed"),
                    ExitReason.DECEASED: ("died",),
                    ExitReason.OTHER: (),
                }
            ),
        ),
    ],
    ImportKind.EXITS: [
        STUDENT_ID,
        EIIN,
        ACADEMIC_YEAR,
        Field("exit_date", "date", aliases=("date", "left on", "date left")),
        Field(
            "exit_reason",
            "choice",
            choices=_choices(
                {
                    ExitReason.DROPPED_OUT: ("dropout", "dropped", "ঝরে পড়েছে"),
                    ExitReason.TRANSFERRED: ("transfer", "tc"),
                    ExitReason.GRADUATED: ("passed", "completed"),
                    ExitReason.DECEASED: ("died",),
                    ExitReason.OTHER: (),
                }
            ),
            aliases=("reason",),
        ),
    ],
    ImportKind.ATTENDANCE: [
        STUDENT_ID,
        EIIN,
        Field("date", "date", aliases=("day", "attendance date", "তারিখ")),
        Field(
            "status",
            "choice",
            choices=ATTENDANCE_STATUS,
            aliases=("attendance", "present", "উপস্থিতি", "অবস্থা"),
        ),
    ],
    ImportKind.GRADES: [
        STUDENT_ID,
        ACADEMIC_YEAR,
        Field("term", max_length=30, aliases=("exam term", "semester", "পর্ব")),
        Field("subject", max_length=20, aliases=("subject code", "course", "বিষয়")),
        Field(
            "assessment",
            required=False,
            max_length=60,
            aliases=("exam", "assessment name", "পরীক্ষা"),
        ),
        Field("assessment_date", "date", aliases=("exam date", "date", "পরীক্ষার তারিখ")),
        Field(
            "score",
            "decimal",
            blank=True,
            minimum=0,
            maximum=9999,
            aliases=("marks", "mark", "obtained", "marks obtained", "নম্বর", "প্রাপ্ত নম্বর"),
        ),
        Field(
            "max_score",
            "decimal",
            minimum=0.01,
            maximum=9999,
            aliases=("full marks", "out of", "total marks", "পূর্ণমান", "পূর্ণ নম্বর"),
        ),
    ],
    ImportKind.INCIDENTS: [
        STUDENT_ID,
        EIIN,
        Field("date", "date", aliases=("incident date", "তারিখ")),
        Field(
            "category",
            "choice",
            choices=_choices(
                {
                    IncidentCategory.TRUANCY: ("bunking",),
                    IncidentCategory.DISRUPTION: ("classroom disruption",),
                    IncidentCategory.FIGHTING: ("fight", "মারামারি"),
                    IncidentCategory.BULLYING: ("bully",),
                    IncidentCategory.CHEATING: ("copying",),
                    IncidentCategory.SUBSTANCE: ("substance use", "drugs"),
                    IncidentCategory.VANDALISM: (),
                    IncidentCategory.OTHER: (),
                }
            ),
            aliases=("type", "incident", "ধরন"),
        ),
        Field("severity", "int", minimum=1, maximum=3, aliases=("level", "গুরুত্ব")),
        Field("action_taken", required=False, blank=True, aliases=("action", "ব্যবস্থা")),
        Field(
            "days_suspended",
            "int",
            required=False,
            blank=True,
            minimum=0,
            maximum=365,
            aliases=("suspension days", "suspended days"),
        ),
    ],
    ImportKind.HOLIDAYS: [
        Field("date", "date", aliases=("holiday date", "তারিখ")),
        Field("name", max_length=100, aliases=("holiday", "occasion", "নাম", "ছুটির নাম")),
        Field("name_bn", required=False, blank=True, max_length=100, aliases=("name bengali",)),
    ],
}

# Columns that identify a record: two rows with the same values are duplicates.
NATURAL_KEYS: dict[str, list[str]] = {
    ImportKind.SCHOOLS: ["eiin"],
    ImportKind.ROSTER: ["student_id", "eiin", "academic_year"],
    ImportKind.EXITS: ["student_id", "eiin", "academic_year"],
    ImportKind.ATTENDANCE: ["student_id", "date"],
    ImportKind.GRADES: ["student_id", "academic_year", "term", "subject", "assessment"],
    ImportKind.INCIDENTS: ["student_id", "date", "category"],
    ImportKind.HOLIDAYS: ["date"],
}

# File-name stems that a directory backfill recognises, per kind.
FILE_NAME_HINTS: dict[str, tuple[str, ...]] = {
    ImportKind.SCHOOLS: ("school",),
    ImportKind.ROSTER: ("roster", "student", "enrol"),
    ImportKind.EXITS: ("exit", "dropout", "leaver"),
    ImportKind.ATTENDANCE: ("attendance",),
    ImportKind.GRADES: ("grade", "mark", "result"),
    ImportKind.INCIDENTS: ("incident", "discipline"),
    ImportKind.HOLIDAYS: ("holiday",),
}
