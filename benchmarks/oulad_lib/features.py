"""Map the Open University Learning Analytics Dataset (OULAD) onto EduPulse's model inputs.

One example is one module registration seen at a prediction week K: everything the
model gets is dated before day 7K (the cutoff), and the registration must still be
active at the cutoff. The same builder serves training (many K per registration) and
scoring (one K), so the two can never drift apart.

Sequence steps: step 0 is everything before the module starts (day < 0: early VLE
activity and banked submissions), step w + 1 is course week w (days 7w .. 7w + 6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

KEY = ["code_module", "code_presentation", "id_student"]

SEQ_FEATURES = [
    "vle_clicks_log",  # log1p of clicks in the week; NaN where the presentation has no VLE log
    "vle_active_days",  # days with any click in the week (0..7; the pre-start step can exceed 7)
    "vle_cum_clicks_log",  # log1p of all clicks so far
    "vle_days_since_active",  # days from the step's last day back to the last click, capped
    # Submission counts are relative to the module: count / mean count of the
    # presentation's students still registered at the same prediction week (1 =
    # average). Modules set from 2 to 10+ assessments by a given week, so a raw count
    # says more about the module's calendar than about the student.
    "submitted_count",  # assessments handed in during the week (any due date), relative
    "submitted_score",  # mean score share of what was handed in during the week
    "due_count",  # assessments due during the week
    "due_score",  # mean score share of the week's due assessments that were handed in
    "due_missing",  # assessments due during the week not handed in by the cutoff
    "due_late",  # assessments due during the week handed in after their due day
    "cum_weighted_score",  # weighted score share over everything due so far, missing = 0
    "cum_missing_share",  # share of everything due so far that is missing
    "cum_submitted_count",  # assessments handed in so far, relative to the cohort
    # Percentile (0-1) among the presentation's students still registered at the same
    # prediction week: modules differ tenfold in clicks and in how hard their marking
    # is, and a rank is what carries over to a module the model never saw.
    "rank_vle_clicks",
    "rank_vle_cum_clicks",
    "rank_cum_weighted_score",
    "rank_cum_submitted",
    "week_index",  # step number / 40: where in the (school-year-long) course the step lies
]

# (rank feature, raw feature it ranks)
_RANKED = [
    ("rank_vle_clicks", "vle_clicks_log"),
    ("rank_vle_cum_clicks", "vle_cum_clicks_log"),
    ("rank_cum_weighted_score", "cum_weighted_score"),
    ("rank_cum_submitted", "cum_submitted_count"),
]

# Count features expressed relative to the cohort (see SEQ_FEATURES).
_RELATIVE = ["submitted_count", "cum_submitted_count"]
RELATIVE_COUNTS = True

STATIC_NUM_FEATURES = [
    "num_of_prev_attempts",
    "studied_credits_log",
    "date_registration",
    "days_registered",  # cutoff day minus registration day
    "prediction_week",
    "has_vle",  # the presentation has a VLE log before the cutoff
    "imd_rank",  # ordinal versions of the banded categoricals, so unseen combinations
    "age_rank",  # still carry their order
    "education_rank",
    # The state at the cutoff, repeated from the last step: the fusion layer reads it
    # directly, a path that extrapolates more gently than the GRU's saturating state.
    "now_cum_weighted_score",
    "now_cum_missing_share",
    "now_cum_submitted_count",
    "now_vle_cum_clicks_log",
    "now_vle_days_since_active",
    "now_rank_vle_cum_clicks",
    "now_rank_cum_weighted_score",
    "now_rank_cum_submitted",
]

STATIC_CAT_FEATURES = [
    "code_module",
    "semester",  # "B" (February start) or "J" (October start), from code_presentation
    "gender",
    "region",
    "highest_education",
    "imd_band",
    "age_band",
    "disability",
]

_IMD_ORDER = [
    "0-10%",
    "10-20",
    "10-20%",
    "20-30%",
    "30-40%",
    "40-50%",
    "50-60%",
    "60-70%",
    "70-80%",
    "80-90%",
    "90-100%",
]
_AGE_ORDER = {"0-35": 0.0, "35-55": 1.0, "55<=": 2.0}
_EDU_ORDER = {
    "No Formal quals": 0.0,
    "Lower Than A Level": 1.0,
    "A Level or Equivalent": 2.0,
    "HE Qualification": 3.0,
    "Post Graduate Qualification": 4.0,
}
# Cap for "days since last click": past two months the exact gap says nothing more.
_MAX_GAP_DAYS = 60.0
# Daily clicks before this day are folded into it; the 2013 logs start at day -23.
_FIRST_DAY = -35
PRE_START_STEPS = 1


@dataclass
class OuladTables:
    """The OULAD tables of one directory, keyed by registration index (row of `regs`)."""

    regs: (
        pd.DataFrame
    )  # studentInfo + studentRegistration + module length, one row per registration
    submissions: pd.DataFrame  # studentAssessment joined to assessments, with column `reg`
    assessments: pd.DataFrame  # assessments with column `pres` (index into `presentations`)
    clicks: pd.DataFrame  # daily clicks with columns reg, date, sum_click
    presentations: list[tuple[str, str]] = field(default_factory=list)

    @property
    def has_outcomes(self) -> bool:
        return "final_result" in self.regs and self.regs["final_result"].notna().any()


def _read_clicks(path: Path) -> pd.DataFrame:
    # The 2013 folder ships a daily roll-up; the official table (studentVle.csv, one row
    # per resource per day) carries the same columns plus id_site, so either is accepted.
    for name in (
        "studentVle_daily.csv.gz",
        "studentVle_daily.csv",
        "studentVle.csv.gz",
        "studentVle.csv",
    ):
        candidate = path / name
        if candidate.exists():
            frame = pd.read_csv(candidate, usecols=[*KEY, "date", "sum_click"])
            return frame.groupby([*KEY, "date"], as_index=False)["sum_click"].sum()
    return pd.DataFrame({**{k: [] for k in KEY}, "date": [], "sum_click": []})


def load_tables(path: str | Path) -> OuladTables:
    """Read one OULAD-layout directory; tolerate a missing final_result and a missing VLE log."""
    path = Path(path)
    info = pd.read_csv(path / "studentInfo.csv")
    registration = pd.read_csv(path / "studentRegistration.csv")
    courses = pd.read_csv(path / "courses.csv")
    assessments = pd.read_csv(path / "assessments.csv")
    student_assessment = pd.read_csv(path / "studentAssessment.csv")

    regs = info.merge(registration, on=KEY, how="left").merge(
        courses, on=["code_module", "code_presentation"], how="left"
    )
    # A presentation missing from courses.csv still gets scored; 268 days is the longest 2013 run.
    regs["module_presentation_length"] = regs["module_presentation_length"].fillna(268.0)
    if "final_result" not in regs:
        regs["final_result"] = np.nan
    regs = regs.reset_index(drop=True)
    regs["reg"] = np.arange(len(regs))

    presentations = sorted(
        {(m, p) for m, p in zip(regs["code_module"], regs["code_presentation"], strict=True)}
    )
    pres_index = {mp: i for i, mp in enumerate(presentations)}
    regs["pres"] = [
        pres_index[(m, p)]
        for m, p in zip(regs["code_module"], regs["code_presentation"], strict=True)
    ]

    assessments = assessments.copy()
    assessments["pres"] = [
        pres_index.get((m, p), -1)
        for m, p in zip(assessments["code_module"], assessments["code_presentation"], strict=True)
    ]
    assessments = assessments[assessments["pres"] >= 0]
    # The exam's due day is often blank: it sits at the end of the module.
    length = dict(zip(regs["pres"], regs["module_presentation_length"], strict=False))
    assessments["date"] = assessments["date"].fillna(assessments["pres"].map(length))
    assessments["weight"] = assessments["weight"].fillna(0.0)

    submissions = student_assessment.merge(
        assessments[
            ["id_assessment", "code_module", "code_presentation", "date", "weight", "pres"]
        ],
        on="id_assessment",
        how="inner",
    ).merge(regs[[*KEY, "reg"]], on=KEY, how="inner")
    submissions = submissions.rename(columns={"date": "due"})
    submissions["share"] = submissions["score"] / 100.0

    clicks = _read_clicks(path).merge(regs[[*KEY, "reg"]], on=KEY, how="inner")
    return OuladTables(
        regs=regs,
        submissions=submissions[
            ["reg", "id_assessment", "due", "weight", "date_submitted", "share"]
        ],
        assessments=assessments[["id_assessment", "pres", "date", "weight", "assessment_type"]],
        clicks=clicks[["reg", "date", "sum_click"]],
        presentations=presentations,
    )


@dataclass
class Vocabulary:
    """Category -> index per static categorical column; index 0 is "unknown"."""

    columns: dict[str, dict[str, int]]

    @classmethod
    def fit(cls, regs: pd.DataFrame) -> Vocabulary:
        frame = static_category_frame(regs)
        columns = {}
        for name in STATIC_CAT_FEATURES:
            values = sorted(frame[name].dropna().astype(str).unique())
            columns[name] = {v: i + 1 for i, v in enumerate(values)}
        return cls(columns=columns)

    def cardinalities(self) -> list[int]:
        return [len(self.columns[name]) + 1 for name in STATIC_CAT_FEATURES]

    def encode(self, regs: pd.DataFrame) -> np.ndarray:
        frame = static_category_frame(regs)
        out = np.zeros((len(regs), len(STATIC_CAT_FEATURES)), dtype=np.int64)
        for j, name in enumerate(STATIC_CAT_FEATURES):
            mapping = self.columns[name]
            out[:, j] = [mapping.get(str(v), 0) if isinstance(v, str) else 0 for v in frame[name]]
        return out


def static_category_frame(regs: pd.DataFrame) -> pd.DataFrame:
    frame = regs[[c for c in STATIC_CAT_FEATURES if c in regs]].copy()
    frame["semester"] = regs["code_presentation"].astype(str).str[-1:]
    for name in STATIC_CAT_FEATURES:
        if name not in frame:
            frame[name] = np.nan
    return frame


def eligible_mask(regs: pd.DataFrame, week: int) -> np.ndarray:
    """Still registered at day 7K: registered before it and not unregistered before it."""
    cutoff = 7 * week
    registered = regs["date_registration"].isna() | (regs["date_registration"] < cutoff)
    active = regs["date_unregistration"].isna() | (regs["date_unregistration"] >= cutoff)
    return (registered & active).to_numpy()


def _step_of_day(days: np.ndarray) -> np.ndarray:
    return np.where(days < 0, 0, np.floor_divide(np.maximum(days, 0), 7) + PRE_START_STEPS).astype(
        np.int64
    )


class OuladFeatureBuilder:
    """Builds EduPulse arrays for any set of (registration, prediction week) pairs of one directory.

    Daily click matrices are built once, so building the many weeks used for training
    costs little more than building one.
    """

    def __init__(self, tables: OuladTables, max_week: int) -> None:
        self.tables = tables
        self.max_week = max_week
        n = len(tables.regs)
        self.n_days = 7 * max_week - _FIRST_DAY
        clicks = tables.clicks
        clicks = clicks[clicks["date"] < 7 * max_week]
        day = np.maximum(clicks["date"].to_numpy(dtype=np.int64), _FIRST_DAY) - _FIRST_DAY
        self.daily = np.zeros((n, self.n_days), dtype=np.float32)
        np.add.at(self.daily, (clicks["reg"].to_numpy(), day), clicks["sum_click"].to_numpy())
        # Last day (index) with a click up to each day, for the inactivity-gap feature.
        days_idx = np.arange(self.n_days, dtype=np.float32)
        stamped = np.where(self.daily > 0, days_idx[None, :], -np.inf).astype(np.float32)
        self.last_active = np.maximum.accumulate(stamped, axis=1)
        # Per presentation: the days that have any click at all (the log's coverage).
        pres = tables.regs["pres"].to_numpy()
        self.n_pres = len(tables.presentations)
        self.pres_day_any = np.zeros((self.n_pres, self.n_days), dtype=bool)
        np.logical_or.at(self.pres_day_any, pres, self.daily > 0)
        self.pres = pres

    def _vle_coverage_end(self, cutoff: int) -> np.ndarray:
        """Last day (absolute) each presentation's log covers before the cutoff; -inf if none.

        Derived from data before the cutoff only: a log that stops early (BBB 2013J ends at
        day 132) makes later weeks missing rather than "zero clicks".
        """
        limit = cutoff - _FIRST_DAY
        window = self.pres_day_any[:, :limit]
        any_day = window.any(axis=1)
        last = window.shape[1] - 1 - np.argmax(window[:, ::-1], axis=1)
        return np.where(any_day, last + _FIRST_DAY, -np.inf)

    def build(self, regs_idx: np.ndarray, weeks: np.ndarray, labels: np.ndarray | None) -> dict:
        """Arrays for the given registrations at the given weeks (parallel arrays)."""
        regs_idx = np.asarray(regs_idx, dtype=np.int64)
        weeks = np.asarray(weeks, dtype=np.int64)
        n = len(regs_idx)
        max_steps = int(weeks.max()) + PRE_START_STEPS if n else PRE_START_STEPS
        seq = np.full((n, max_steps, len(SEQ_FEATURES)), np.nan, dtype=np.float32)
        static_num = np.zeros((n, len(STATIC_NUM_FEATURES)), dtype=np.float32)
        for week in np.unique(weeks):
            rows = np.flatnonzero(weeks == week)
            # Ranks compare a student with the whole cohort still registered at that week,
            # whichever subset was asked for, so one student scores the same alone or not.
            cohort = np.union1d(
                np.flatnonzero(eligible_mask(self.tables.regs, int(week))), regs_idx[rows]
            )
            seq_w, static_w = self._build_week(cohort, int(week))
            pos = np.searchsorted(cohort, regs_idx[rows])
            seq[rows, : seq_w.shape[1]] = seq_w[pos]
            static_num[rows] = static_w[pos]
        return {
            "seq": seq,
            "lengths": (weeks + PRE_START_STEPS).astype(np.int64),
            "static_num": static_num,
            "static_cat": np.zeros((n, len(STATIC_CAT_FEATURES)), dtype=np.int64),
            "labels": (
                np.asarray(labels, dtype=np.float32)
                if labels is not None
                else np.full(n, np.nan, dtype=np.float32)
            ),
        }

    def _build_week(self, regs_idx: np.ndarray, week: int) -> tuple[np.ndarray, np.ndarray]:
        tables = self.tables
        cutoff = 7 * week
        steps = week + PRE_START_STEPS
        n = len(regs_idx)
        f = {name: i for i, name in enumerate(SEQ_FEATURES)}
        seq = np.full((n, steps, len(SEQ_FEATURES)), np.nan, dtype=np.float32)
        regs = tables.regs.iloc[regs_idx]

        # Step boundaries in absolute days: step 0 is [_FIRST_DAY, 0), step s is [7(s-1), 7s).
        starts = np.array([_FIRST_DAY] + [7 * s for s in range(week)], dtype=np.int64)
        ends = np.array([0] + [7 * (s + 1) for s in range(week)], dtype=np.int64)

        # --- VLE ---
        daily = self.daily[regs_idx]
        coverage_end = self._vle_coverage_end(cutoff)[self.pres[regs_idx]]
        cum = np.cumsum(daily, axis=1)
        for s in range(steps):
            a, b = starts[s] - _FIRST_DAY, ends[s] - _FIRST_DAY
            covered = coverage_end >= starts[s]
            block = daily[:, a:b]
            seq[:, s, f["vle_clicks_log"]] = np.where(covered, np.log1p(block.sum(axis=1)), np.nan)
            seq[:, s, f["vle_active_days"]] = np.where(covered, (block > 0).sum(axis=1), np.nan)
            seq[:, s, f["vle_cum_clicks_log"]] = np.where(covered, np.log1p(cum[:, b - 1]), np.nan)
            last = self.last_active[regs_idx, b - 1]
            gap = np.where(np.isfinite(last), (b - 1) - last, _MAX_GAP_DAYS)
            seq[:, s, f["vle_days_since_active"]] = np.where(
                covered, np.minimum(gap, _MAX_GAP_DAYS), np.nan
            )

        # --- submissions handed in before the cutoff, placed at the week they were handed in ---
        pos = np.full(len(tables.regs), -1, dtype=np.int64)
        pos[regs_idx] = np.arange(n)
        subs = tables.submissions
        subs = subs[(subs["date_submitted"] < cutoff) & (pos[subs["reg"].to_numpy()] >= 0)]
        row = pos[subs["reg"].to_numpy()]
        sub_step = _step_of_day(subs["date_submitted"].to_numpy())
        count = np.zeros((n, steps), dtype=np.float32)
        np.add.at(count, (row, sub_step), 1.0)
        share = subs["share"].to_numpy(dtype=np.float64)
        has_share = ~np.isnan(share)
        score_sum = np.zeros((n, steps))
        score_n = np.zeros((n, steps))
        np.add.at(score_sum, (row[has_share], sub_step[has_share]), share[has_share])
        np.add.at(score_n, (row[has_share], sub_step[has_share]), 1.0)
        seq[:, :, f["submitted_count"]] = count
        with np.errstate(invalid="ignore", divide="ignore"):
            seq[:, :, f["submitted_score"]] = np.where(score_n > 0, score_sum / score_n, np.nan)

        # --- assessments due before the cutoff, placed at their due week ---
        assess = tables.assessments
        assess = assess[assess["date"] < cutoff]
        pres_of_row = self.pres[regs_idx]
        due_count = np.zeros((n, steps))
        due_score_sum = np.zeros((n, steps))
        due_score_n = np.zeros((n, steps))
        due_missing = np.zeros((n, steps))
        due_late = np.zeros((n, steps))
        w_due = np.zeros((n, steps))
        w_got = np.zeros((n, steps))
        u_due = np.zeros((n, steps))
        u_got = np.zeros((n, steps))
        members = pd.DataFrame({"row": np.arange(n), "pres": pres_of_row})
        grid = members.merge(assess[["id_assessment", "pres", "date", "weight"]], on="pres")
        handed_in = pd.DataFrame(
            {
                "row": row,
                "id_assessment": subs["id_assessment"].to_numpy(),
                "sub_day": subs["date_submitted"].to_numpy(dtype=np.float64),
                "sub_share": share,
            }
        ).drop_duplicates(["row", "id_assessment"])
        grid = grid.merge(handed_in, on=["row", "id_assessment"], how="left")
        g_row = grid["row"].to_numpy()
        g_step = _step_of_day(grid["date"].to_numpy())
        got = grid["sub_day"].notna().to_numpy()
        sub_share = grid["sub_share"].to_numpy(dtype=np.float64)
        scored = got & ~np.isnan(sub_share)
        earned = np.where(scored, sub_share, 0.0)
        weight = grid["weight"].to_numpy(dtype=np.float64)
        late = got & (grid["sub_day"].to_numpy(dtype=np.float64) > grid["date"].to_numpy())
        np.add.at(due_count, (g_row, g_step), 1.0)
        np.add.at(due_missing, (g_row, g_step), (~got).astype(np.float64))
        np.add.at(due_late, (g_row, g_step), late.astype(np.float64))
        np.add.at(due_score_sum, (g_row[scored], g_step[scored]), sub_share[scored])
        np.add.at(due_score_n, (g_row[scored], g_step[scored]), 1.0)
        np.add.at(w_due, (g_row, g_step), weight)
        np.add.at(w_got, (g_row, g_step), weight * earned)
        np.add.at(u_due, (g_row, g_step), 1.0)
        np.add.at(u_got, (g_row, g_step), earned)
        seq[:, :, f["due_count"]] = due_count
        with np.errstate(invalid="ignore", divide="ignore"):
            seq[:, :, f["due_score"]] = np.where(
                due_score_n > 0, due_score_sum / due_score_n, np.nan
            )
            seq[:, :, f["due_missing"]] = due_missing
            seq[:, :, f["due_late"]] = due_late
            cw_due, cw_got = np.cumsum(w_due, axis=1), np.cumsum(w_got, axis=1)
            cu_due, cu_got = np.cumsum(u_due, axis=1), np.cumsum(u_got, axis=1)
            # Zero-weight assessments (GGG's TMAs) still say something: fall back to the plain mean.
            cum_score = np.where(cw_due > 0, cw_got / cw_due, cu_got / cu_due)
            seq[:, :, f["cum_weighted_score"]] = np.where(cu_due > 0, cum_score, np.nan)
            seq[:, :, f["cum_missing_share"]] = np.where(
                cu_due > 0, np.cumsum(due_missing, axis=1) / cu_due, np.nan
            )
        seq[:, :, f["cum_submitted_count"]] = np.cumsum(count, axis=1)
        seq[:, :, f["week_index"]] = np.arange(steps, dtype=np.float32)[None, :] / 40.0
        self._add_ranks(seq, pres_of_row, f)
        if RELATIVE_COUNTS:
            self._relative_to_cohort(seq, pres_of_row, f)

        # --- static, including what depends on the prediction week ---
        g = {name: i for i, name in enumerate(STATIC_NUM_FEATURES)}
        static = np.zeros((n, len(STATIC_NUM_FEATURES)), dtype=np.float32)
        reg_day = regs["date_registration"].to_numpy(dtype=np.float64)
        static[:, g["num_of_prev_attempts"]] = regs["num_of_prev_attempts"].to_numpy()
        static[:, g["studied_credits_log"]] = np.log1p(regs["studied_credits"].to_numpy())
        static[:, g["date_registration"]] = reg_day
        static[:, g["days_registered"]] = cutoff - reg_day
        static[:, g["prediction_week"]] = week
        static[:, g["has_vle"]] = np.isfinite(coverage_end).astype(np.float32)
        static[:, g["imd_rank"]] = [_imd_rank(v) for v in regs["imd_band"]]
        static[:, g["age_rank"]] = [_AGE_ORDER.get(v, np.nan) for v in regs["age_band"]]
        for name in STATIC_NUM_FEATURES:
            if name.startswith("now_"):
                static[:, g[name]] = _last_observed(seq[:, :, f[name[4:]]])
        static[:, g["education_rank"]] = [
            _EDU_ORDER.get(v, np.nan) for v in regs["highest_education"]
        ]
        return seq, static

    @staticmethod
    def _add_ranks(seq: np.ndarray, pres_of_row: np.ndarray, f: dict[str, int]) -> None:
        """Fill the rank_* features: percentile within presentation, per step."""
        for pres in np.unique(pres_of_row):
            rows = np.flatnonzero(pres_of_row == pres)
            for rank_name, raw_name in _RANKED:
                values = seq[rows, :, f[raw_name]]
                ranks = rankdata(values, axis=0, nan_policy="omit")
                count = (~np.isnan(values)).sum(axis=0, keepdims=True)
                with np.errstate(invalid="ignore", divide="ignore"):
                    seq[rows, :, f[rank_name]] = (ranks - 0.5) / count

    @staticmethod
    def _relative_to_cohort(seq: np.ndarray, pres_of_row: np.ndarray, f: dict[str, int]) -> None:
        """Divide the count features by the presentation cohort's mean at each step."""
        for pres in np.unique(pres_of_row):
            rows = np.flatnonzero(pres_of_row == pres)
            for name in _RELATIVE:
                values = seq[rows, :, f[name]]
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean = np.nanmean(values, axis=0, keepdims=True)
                    # A step where nobody in the cohort handed anything in: all equal (1).
                    seq[rows, :, f[name]] = np.where(mean > 0, values / mean, 1.0)


def _last_observed(values: np.ndarray) -> np.ndarray:
    observed = ~np.isnan(values)
    last = values.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)
    return np.where(observed.any(axis=1), values[np.arange(len(values)), last], np.nan)


def _imd_rank(value: object) -> float:
    if not isinstance(value, str):
        return math.nan
    # "10-20" appears without its % sign in the raw data: both spell the same band.
    normalized = "10-20%" if value == "10-20" else value
    order = [v for v in _IMD_ORDER if v != "10-20"]
    return float(order.index(normalized)) if normalized in order else math.nan


def training_pairs(
    regs: pd.DataFrame, weeks: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(registration, week, label) for every registration still active at each week.

    The label is "withdrew after the prediction point": final_result Withdrawn and
    unregistered at or after the cutoff (or with no unregistration day recorded).
    """
    reg_out, week_out, label_out = [], [], []
    withdrawn = (regs["final_result"] == "Withdrawn").to_numpy()
    # A registration without a recorded outcome cannot teach anything.
    known = regs["final_result"].notna().to_numpy()
    for week in weeks:
        idx = np.flatnonzero(eligible_mask(regs, week) & known)
        reg_out.append(idx)
        week_out.append(np.full(len(idx), week))
        label_out.append(withdrawn[idx].astype(np.float32))
    return np.concatenate(reg_out), np.concatenate(week_out), np.concatenate(label_out)


def build_arrays(
    builder: OuladFeatureBuilder,
    vocab: Vocabulary,
    regs_idx: np.ndarray,
    weeks: np.ndarray,
    labels: np.ndarray | None,
) -> dict:
    arrays = builder.build(regs_idx, weeks, labels)
    arrays["static_cat"] = vocab.encode(builder.tables.regs.iloc[regs_idx])
    return arrays
