"""A synthetic district with realistic dropout precursors, generated with numpy.

Everything is drawn from one seeded Generator in a fixed order, so the same
(seed, as-of date, sizes) always gives the same district. The generative
assumptions are documented in docs/demo-data.md; keep the two in step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from apps.students.catalogue import SUBJECTS
from apps.students.demo.names import (
    ASSESSMENTS,
    FEMALE_FIRST,
    GUARDIAN_FIRST,
    HINDU_LAST,
    MALE_FIRST,
    MUSLIM_FEMALE_LAST,
    MUSLIM_MALE_LAST,
    SCHOOL_KINDS,
    holidays_for_year,
)

WEEKDAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Attendance by month: cold waves in January, the boro harvest and heat in
# April-May, the monsoon in June-August, the aman harvest in November.
MONTH_FACTOR = np.array([0.955, 0.99, 1.0, 0.965, 0.95, 0.94, 0.93, 0.94, 0.98, 1.0, 0.96, 0.97])
# Dropouts cluster after the half-yearly exams and before the annual exams.
MONTH_DROPOUT_WEIGHT = np.array([0.5, 0.7, 0.8, 0.9, 1.0, 1.4, 1.6, 1.2, 1.0, 1.1, 1.3, 0.4])


@dataclass(frozen=True)
class DemoConfig:
    schools: int = 12
    students: int = 6000
    years: int = 2
    seed: int = 7
    as_of: dt.date = dt.date(2026, 9, 30)
    district: str = "Kurigram"
    school_days: tuple[str, ...] = ("sun", "mon", "tue", "wed", "thu")


@dataclass
class DemoDistrict:
    district: str
    schools: pd.DataFrame
    students: pd.DataFrame
    enrollments: pd.DataFrame
    attendance: pd.DataFrame
    grades: pd.DataFrame
    incidents: pd.DataFrame
    holidays: pd.DataFrame


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def school_days(year: int, until: dt.date, weekdays: tuple[str, ...]) -> np.ndarray:
    holidays = {day for day, _name, _bn in holidays_for_year(year)}
    days = pd.date_range(dt.date(year, 1, 1), min(until, dt.date(year, 12, 31)), freq="D")
    keep = [WEEKDAY_NAMES[day.weekday()] in weekdays and day.date() not in holidays for day in days]
    return days[np.array(keep, dtype=bool)].values.astype("datetime64[D]")


def _pick(rng: np.random.Generator, table: list[tuple[str, str]], n: int) -> tuple[list, list]:
    idx = rng.integers(0, len(table), n)
    return [table[i][0] for i in idx], [table[i][1] for i in idx]


def _make_schools(
    rng: np.random.Generator, config: DemoConfig, upazilas: pd.DataFrame
) -> pd.DataFrame:
    rows = []
    eiins = rng.choice(np.arange(100000, 140000), size=config.schools, replace=False)
    for i in range(config.schools):
        upazila = upazilas.iloc[i % len(upazilas)]
        kind, name, name_bn = SCHOOL_KINDS[(i // len(upazilas) + i) % len(SCHOOL_KINDS)]
        rows.append(
            {
                "eiin": str(eiins[i]),
                "name": name.format(place=upazila["name"]),
                "name_bn": name_bn.format(place_bn=upazila["bn_name"]),
                "school_type": kind,
                "district": config.district,
                "upazila": upazila["name"],
                "girls_only": "Girls" in name,
                # Some schools simply keep children better than others.
                "effect": float(rng.normal(0, 0.35)),
            }
        )
    return pd.DataFrame(rows)


def _make_students(
    rng: np.random.Generator, n: int, first_year: int, grades: np.ndarray, id_offset: int
) -> pd.DataFrame:
    female = rng.random(n) < 0.51
    hindu = rng.random(n) < 0.09
    first_f, first_f_bn = _pick(rng, FEMALE_FIRST, n)
    first_m, first_m_bn = _pick(rng, MALE_FIRST, n)
    last_fm, last_fm_bn = _pick(rng, MUSLIM_FEMALE_LAST, n)
    last_mm, last_mm_bn = _pick(rng, MUSLIM_MALE_LAST, n)
    last_h, last_h_bn = _pick(rng, HINDU_LAST, n)
    guardian, guardian_bn = _pick(rng, GUARDIAN_FIRST, n)
    first = np.where(female, first_f, first_m)
    first_bn = np.where(female, first_f_bn, first_m_bn)
    last = np.where(hindu, last_h, np.where(female, last_fm, last_mm))
    last_bn = np.where(hindu, last_h_bn, np.where(female, last_fm_bn, last_mm_bn))
    poor = rng.random(n) < 0.45
    over_age = np.where(rng.random(n) < np.where(poor, 0.38, 0.2), rng.integers(1, 4, n), 0)
    birth_year = first_year - (grades + 5) - over_age
    birth = pd.to_datetime([f"{y}-01-01" for y in birth_year]) + pd.to_timedelta(
        rng.integers(0, 365, n), unit="D"
    )
    return pd.DataFrame(
        {
            "student_id": [f"KUR-{id_offset + i:06d}" for i in range(n)],
            "name": [f"{a} {b}" for a, b in zip(first, last, strict=True)],
            "name_bn": [f"{a} {b}" for a, b in zip(first_bn, last_bn, strict=True)],
            "gender": np.where(female, "female", "male"),
            "date_of_birth": birth.date,
            "guardian_name": [f"{g} {b}" for g, b in zip(guardian, last, strict=True)],
            "guardian_name_bn": [f"{g} {b}" for g, b in zip(guardian_bn, last_bn, strict=True)],
            "guardian_phone": [
                f"01{rng.integers(3, 10)}{rng.integers(0, 10**8):08d}" for _ in range(n)
            ],
            "stipend_recipient": (poor & (rng.random(n) < 0.75))
            | (female & (rng.random(n) < 0.25)),
            "has_disability": rng.random(n) < 0.03,
            "poor": poor,
            "over_age": over_age,
            "ability": rng.normal(0, 1, n),
            "base_attendance": rng.normal(0, 1, n),
        }
    )


def generate_district(config: DemoConfig, upazilas: pd.DataFrame) -> DemoDistrict:
    """`upazilas`: the demo district's upazilas (columns name, bn_name)."""
    rng = np.random.default_rng(config.seed)
    last_year = config.as_of.year
    first_year = last_year - config.years + 1
    schools = _make_schools(rng, config, upazilas)
    n_schools = len(schools)

    grade_weights = np.array([0.23, 0.215, 0.2, 0.185, 0.17])
    grades = rng.choice(np.arange(6, 11), size=config.students, p=grade_weights)
    students = _make_students(rng, config.students, first_year, grades, 1)
    students["grade"] = grades
    students["school"] = rng.integers(0, n_schools, config.students)
    students["section"] = rng.choice(["A", "B", "C"], config.students)
    # Girls' schools take only girls: move boys drawn there to a neighbour.
    girls_only = schools["girls_only"].to_numpy()
    boys_in_girls = girls_only[students["school"]] & (students["gender"] == "male")
    students.loc[boys_in_girls, "school"] = (students.loc[boys_in_girls, "school"] + 1) % n_schools
    students["active"] = True
    students["entry_date"] = dt.date(first_year, 1, 1)

    enrollments, attendance, grade_rows, incidents = [], [], [], []
    for year in range(first_year, last_year + 1):
        if year > first_year:
            entrants = _make_students(
                rng,
                int(config.students * 0.22),
                year,
                np.full(int(config.students * 0.22), 6),
                len(students) + 1,
            )
            entrants["grade"] = 6
            entrants["school"] = rng.integers(0, n_schools, len(entrants))
            boys = girls_only[entrants["school"]] & (entrants["gender"] == "male")
            entrants.loc[boys, "school"] = (entrants.loc[boys, "school"] + 1) % n_schools
            entrants["section"] = rng.choice(["A", "B", "C"], len(entrants))
            entrants["active"] = True
            students = pd.concat([students, entrants], ignore_index=True)
        if len(school_days(year, config.as_of, config.school_days)) == 0:
            continue  # an as-of date before the year's first school day
        year_result = _simulate_year(rng, config, year, students, schools)
        enrollments.append(year_result["enrollments"])
        attendance.append(year_result["attendance"])
        grade_rows.append(year_result["grades"])
        incidents.append(year_result["incidents"])
        students = year_result["students"]

    holidays = pd.DataFrame(
        [
            {"date": day, "name": name, "name_bn": name_bn}
            for year in range(first_year, last_year + 1)
            for day, name, name_bn in holidays_for_year(year)
        ]
    )
    public_students = students.drop(
        columns=[
            "poor",
            "ability",
            "base_attendance",
            "grade",
            "school",
            "section",
            "active",
            "entry_date",
        ]
    )
    return DemoDistrict(
        district=config.district,
        schools=schools.drop(columns=["effect", "girls_only"]),
        students=public_students,
        enrollments=pd.concat(enrollments, ignore_index=True),
        attendance=pd.concat(attendance, ignore_index=True),
        grades=pd.concat(grade_rows, ignore_index=True),
        incidents=pd.concat(incidents, ignore_index=True),
        holidays=holidays,
    )


def _random_dates_in_year(
    rng: np.random.Generator, year: int, n: int, month_weights: np.ndarray
) -> np.ndarray:
    months = rng.choice(12, size=n, p=month_weights / month_weights.sum())
    starts = np.array([f"{year}-{m + 1:02d}-01" for m in range(12)], dtype="datetime64[D]")
    dates = starts[months] + rng.integers(0, 28, n).astype("timedelta64[D]")
    # Nothing happens before enrollments open or after the winter vacation starts.
    return np.clip(dates, np.datetime64(f"{year}-01-10", "D"), np.datetime64(f"{year}-12-15", "D"))


def _simulate_year(
    rng: np.random.Generator,
    config: DemoConfig,
    year: int,
    students: pd.DataFrame,
    schools: pd.DataFrame,
) -> dict[str, pd.DataFrame]:
    as_of = np.datetime64(config.as_of, "D")
    days = school_days(year, config.as_of, config.school_days)
    year_end = np.datetime64(f"{year}-12-31", "D")
    year_complete = as_of >= year_end
    cohort = students[students["active"]].copy()
    n = len(cohort)
    first_day = days[0]

    female = (cohort["gender"] == "female").to_numpy()
    poor = cohort["poor"].to_numpy()
    over_age = cohort["over_age"].to_numpy()
    ability = cohort["ability"].to_numpy()
    base_att = cohort["base_attendance"].to_numpy()
    grade = cohort["grade"].to_numpy()
    disability = cohort["has_disability"].to_numpy()
    school_idx = cohort["school"].to_numpy()
    school_effect = schools["effect"].to_numpy()[school_idx]

    # --- who leaves, and how ------------------------------------------------
    dropout_logit = (
        -3.55
        + 0.85 * poor
        + 0.45 * np.minimum(over_age, 3)
        + 0.75 * (female & (grade >= 8))  # early marriage
        + 0.55 * (~female & poor)  # child labour
        - 0.5 * ability
        - 0.4 * base_att
        + 0.5 * disability
        - 0.6 * school_effect
    )
    drops = rng.random(n) < _sigmoid(dropout_logit)
    drop_date = _random_dates_in_year(rng, year, n, MONTH_DROPOUT_WEIGHT)
    gradual = rng.random(n) < 0.8
    onset = drop_date - rng.integers(42, 99, n).astype("timedelta64[D]")
    depth = rng.uniform(0.45, 0.85, n)
    exit_after_drop = rng.integers(10, 31, n).astype("timedelta64[D]")
    drop_exit = np.minimum(drop_date + exit_after_drop, year_end)
    # A temporary dip that recovers: not every falling student leaves.
    dips = ~drops & (rng.random(n) < 0.1)
    dip_start = _random_dates_in_year(rng, year, n, np.ones(12))
    dip_len = rng.integers(28, 57, n).astype("timedelta64[D]")
    dip_depth = rng.uniform(0.3, 0.6, n)

    transfers = ~drops & (rng.random(n) < 0.02)
    transfer_date = _random_dates_in_year(rng, year, n, np.ones(12))
    transfer_to = (school_idx + rng.integers(1, len(schools), n)) % len(schools)
    rare_exit = ~drops & ~transfers & (rng.random(n) < 0.004)
    rare_reason = np.where(rng.random(n) < 0.15, "deceased", "other")
    rare_date = _random_dates_in_year(rng, year, n, np.ones(12))

    # --- daily attendance ---------------------------------------------------
    t = days[None, :]
    p = (
        _sigmoid(
            2.9
            + 0.6 * base_att
            + 0.25 * ability
            - 0.35 * poor
            - 0.15 * over_age
            + 0.5 * school_effect
        )[:, None]
        * MONTH_FACTOR[(days.astype("datetime64[M]").astype(int) % 12)][None, :]
    )
    span = np.maximum((drop_date - onset).astype(float), 1.0)[:, None]
    progress = np.clip((t - onset[:, None]).astype(float) / span, 0.0, 1.0)
    decline = np.where((drops & gradual)[:, None], depth[:, None] * progress, 0.0)
    in_dip = dips[:, None] & (t >= dip_start[:, None]) & (t < (dip_start + dip_len)[:, None])
    decline = np.maximum(decline, np.where(in_dip, dip_depth[:, None], 0.0))
    p = p * (1.0 - decline)
    after_drop = drops[:, None] & (t >= drop_date[:, None])
    p = np.where(after_drop, 0.02, p)
    for school in range(len(schools)):
        # A flood or strike day or two, when a whole school barely attends.
        shock_days = rng.choice(len(days), size=min(2, len(days)), replace=False)
        rows = school_idx == school
        p[np.ix_(rows, shock_days)] *= 0.25

    exit_date = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    exit_date = np.where(drops, drop_exit, exit_date)
    exit_date = np.where(rare_exit, rare_date, exit_date)
    last_day = np.where(np.isnat(exit_date), year_end, exit_date)
    enrolled = (t <= last_day[:, None]) & (t <= as_of)

    u = rng.random(p.shape)
    present = u < p
    late = present & (rng.random(p.shape) < (0.04 + 0.05 * poor)[:, None])
    excused = ~present & (rng.random(p.shape) < 0.3)
    status_code = np.where(late, 3, np.where(present, 0, np.where(excused, 2, 1)))
    at_school = np.where(
        transfers[:, None] & (t >= transfer_date[:, None]),
        transfer_to[:, None],
        school_idx[:, None],
    )
    si, di = np.nonzero(enrolled)
    statuses = np.array(["present", "absent", "excused", "late"])
    eiins = schools["eiin"].to_numpy()
    attendance = pd.DataFrame(
        {
            "student_id": cohort["student_id"].to_numpy()[si],
            "eiin": eiins[at_school[si, di]],
            "date": days[di],
            "status": statuses[status_code[si, di]],
        }
    )

    # --- assessments ----------------------------------------------------------
    grade_frames = []
    subject_effect = rng.normal(0, 0.05, len(SUBJECTS))
    for term, assessment, month, day, max_score in ASSESSMENTS:
        when = np.datetime64(dt.date(year, month, day), "D")
        if when > as_of:
            continue
        sitting = when <= last_day
        decline_then = np.where(
            drops & gradual,
            depth
            * np.clip(
                (when - onset).astype(float) / np.maximum((drop_date - onset).astype(float), 1),
                0,
                1,
            ),
            0.0,
        )
        gone = drops & (when >= drop_date)
        for s_index, (code, _name, _bn, _core) in enumerate(SUBJECTS):
            share = np.clip(
                0.58
                + 0.13 * ability
                + subject_effect[s_index]
                + 0.04 * base_att
                - 0.08 * poor
                - 0.3 * decline_then
                + rng.normal(0, 0.09, n),
                0.0,
                1.0,
            )
            missing = gone | (rng.random(n) < 0.02 + 0.6 * decline_then)
            score = np.round(share * max_score * 2) / 2
            grade_frames.append(
                pd.DataFrame(
                    {
                        "student_id": cohort["student_id"].to_numpy(),
                        "academic_year": year,
                        "term": term,
                        "subject": code,
                        "assessment": assessment,
                        "assessment_date": when,
                        "score": np.where(missing, np.nan, score),
                        "max_score": max_score,
                    }
                )[sitting]
            )
    grades = pd.concat(grade_frames, ignore_index=True)

    # --- discipline -------------------------------------------------------------
    rate = 0.1 + 0.25 * ~female + 0.15 * (over_age > 0) + 0.2 * poor + 1.1 * (drops & gradual)
    counts = rng.poisson(rate)
    incident_student = np.repeat(np.arange(n), counts)
    window_start = np.where(drops & gradual, onset, first_day)[incident_student]
    window_end = np.minimum(np.where(drops, drop_date, last_day), as_of)[incident_student]
    width = np.maximum((window_end - window_start).astype(int), 1)
    incident_date = window_start + (rng.random(len(incident_student)) * width).astype(
        "timedelta64[D]"
    )
    categories = np.array(
        [
            "truancy",
            "disruption",
            "fighting",
            "bullying",
            "cheating",
            "substance",
            "vandalism",
            "other",
        ]
    )
    category = rng.choice(
        categories, len(incident_student), p=[0.3, 0.25, 0.15, 0.08, 0.08, 0.04, 0.05, 0.05]
    )
    serious_bias = np.isin(category, ["fighting", "substance", "vandalism"])
    severity = np.clip(
        rng.integers(1, 3, len(incident_student))
        + serious_bias * rng.integers(0, 2, len(incident_student)),
        1,
        3,
    )
    suspended = np.where(
        (severity == 3) & (rng.random(len(incident_student)) < 0.5),
        rng.integers(1, 6, len(incident_student)),
        0,
    )
    actions = np.array(["", "Verbal warning", "Guardian called to school", "Suspended"])
    incidents = pd.DataFrame(
        {
            "student_id": cohort["student_id"].to_numpy()[incident_student],
            "eiin": eiins[school_idx[incident_student]],
            "date": incident_date,
            "category": category,
            "severity": severity,
            "action_taken": np.where(suspended > 0, actions[3], actions[severity]),
            "days_suspended": suspended,
        }
    )
    incidents = incidents[(incidents["date"] <= as_of) & (incidents["date"] >= first_day)]
    incidents = incidents.drop_duplicates(["student_id", "date", "category"], ignore_index=True)

    # --- enrollments and the next year's cohort ---------------------------------
    graduates = year_complete & (grade == 10) & ~drops & ~rare_exit
    reason = np.where(drops, "dropped_out", np.where(rare_exit, rare_reason, ""))
    reason = np.where(graduates, "graduated", reason)
    final_exit = np.where(graduates, days[-1], exit_date)
    visible_exit = ~np.isnat(final_exit) & (final_exit <= as_of)
    transferred_now = transfers & (transfer_date <= as_of)
    sections = cohort["section"].to_numpy()
    base = {
        "student_id": cohort["student_id"].to_numpy(),
        "academic_year": year,
        "grade_level": grade,
        "section": sections,
    }
    first_enrollment = pd.DataFrame(
        {
            **base,
            "eiin": eiins[school_idx],
            "entry_date": first_day,
            "exit_date": np.where(
                transferred_now,
                transfer_date,
                np.where(visible_exit, final_exit, np.datetime64("NaT")),
            ),
            "exit_reason": np.where(
                transferred_now, "transferred", np.where(visible_exit, reason, "")
            ),
        }
    )
    second = pd.DataFrame(
        {
            **base,
            "eiin": eiins[transfer_to],
            "entry_date": transfer_date,
            "exit_date": np.where(visible_exit, final_exit, np.datetime64("NaT")),
            "exit_reason": np.where(visible_exit, reason, ""),
        }
    )[transferred_now]
    enrollments = pd.concat([first_enrollment, second], ignore_index=True)

    nxt = students.copy()
    positions = nxt.index[nxt["active"]]
    if year_complete:
        leaving = drops | rare_exit | graduates
        repeats = rng.random(n) < (0.03 + 0.1 * (ability < -1))
        nxt.loc[positions, "active"] = ~leaving
        nxt.loc[positions, "grade"] = np.where(repeats, grade, np.minimum(grade + 1, 10))
        nxt.loc[positions, "school"] = np.where(transfers, transfer_to, school_idx)
    return {
        "students": nxt,
        "enrollments": enrollments,
        "attendance": attendance,
        "grades": grades,
        "incidents": incidents,
    }
