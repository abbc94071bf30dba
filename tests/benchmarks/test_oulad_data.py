"""The OULAD benchmark's reading of a folder: the cutoff, both VLE layouts, the CLI contract.

The 2014 evaluation runs `benchmarks/oulad.py` on folders nobody here has seen, so these
tests build small OULAD-layout folders of their own (CI has no copy of the data).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import oulad  # noqa: E402
from oulad_lib.features import (  # noqa: E402
    KEY,
    OuladFeatureBuilder,
    Vocabulary,
    build_arrays,
    eligible_mask,
    load_tables,
)

LENGTH = 240


def write_oulad(
    folder: Path,
    *,
    presentation: str,
    modules: tuple[str, ...],
    per_module: int = 40,
    seed: int = 0,
    official_vle: bool = False,
) -> Path:
    """A small presentation in OULAD's layout: withdrawals, late and missing work, clicks."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    info, registration, assessments, submitted, clicks = [], [], [], [], []
    for m, module in enumerate(modules):
        due_days = [19 + 5 * m, 47, 96]
        for a, day in enumerate(due_days):
            assessments.append(
                {
                    "code_module": module,
                    "code_presentation": presentation,
                    "id_assessment": 1000 * (m + 1) + a,
                    "assessment_type": "TMA",
                    "date": day,
                    "weight": 20.0,
                }
            )
        assessments.append(
            {
                "code_module": module,
                "code_presentation": presentation,
                "id_assessment": 1000 * (m + 1) + 9,
                "assessment_type": "Exam",
                "date": None,  # the exam's day is often blank
                "weight": 100.0,
            }
        )
        for s in range(per_module):
            student = 10_000 * (m + 1) + s
            withdraws = rng.random() < 0.3
            leave = int(rng.integers(10, 120)) if withdraws else None
            registered = int(rng.integers(-60, 10))
            info.append(
                {
                    "code_module": module,
                    "code_presentation": presentation,
                    "id_student": student,
                    "gender": "MF"[s % 2],
                    "region": ["Wales", "Scotland", "London Region"][s % 3],
                    "highest_education": "A Level or Equivalent",
                    "imd_band": ["0-10%", "50-60%", None][s % 3],
                    "age_band": "0-35",
                    "num_of_prev_attempts": int(s % 4 == 0),
                    "studied_credits": 60,
                    "disability": "N",
                    "final_result": "Withdrawn" if withdraws else ("Pass" if s % 3 else "Fail"),
                }
            )
            registration.append(
                {
                    "code_module": module,
                    "code_presentation": presentation,
                    "id_student": student,
                    "date_registration": registered,
                    "date_unregistration": leave,
                }
            )
            active_until = leave if leave is not None else LENGTH
            for a, day in enumerate(due_days):
                if day < active_until and rng.random() < 0.85:
                    submitted.append(
                        {
                            "id_assessment": 1000 * (m + 1) + a,
                            "id_student": student,
                            "date_submitted": day + int(rng.integers(-5, 4)),
                            "is_banked": 0,
                            "score": float(rng.integers(20, 100)),
                        }
                    )
            for day in range(-10, active_until, 3):
                if rng.random() < 0.6:
                    clicks.append(
                        {
                            "code_module": module,
                            "code_presentation": presentation,
                            "id_student": student,
                            "date": day,
                            "sum_click": int(rng.integers(1, 40)),
                        }
                    )
    pd.DataFrame(info).to_csv(folder / "studentInfo.csv", index=False)
    pd.DataFrame(registration).to_csv(folder / "studentRegistration.csv", index=False)
    pd.DataFrame(
        {
            "code_module": list(modules),
            "code_presentation": presentation,
            "module_presentation_length": LENGTH,
        }
    ).to_csv(folder / "courses.csv", index=False)
    pd.DataFrame(assessments).to_csv(folder / "assessments.csv", index=False)
    pd.DataFrame(submitted).to_csv(folder / "studentAssessment.csv", index=False)
    pd.DataFrame(
        {"id_site": [1, 2], "code_module": modules[0], "code_presentation": presentation}
    ).to_csv(folder / "vle.csv", index=False)
    daily = pd.DataFrame(clicks)
    if official_vle:
        # One row per resource per day: each day's clicks split over two sites.
        first = daily.assign(id_site=1, sum_click=daily["sum_click"] // 2)
        second = daily.assign(id_site=2, sum_click=daily["sum_click"] - first["sum_click"])
        pd.concat([first, second]).to_csv(folder / "studentVle.csv", index=False)
    else:
        daily.to_csv(folder / "studentVle_daily.csv.gz", index=False)
    return folder


def arrays_at(folder: Path, week: int, vocab: Vocabulary | None = None) -> dict:
    tables = load_tables(folder)
    vocab = vocab or Vocabulary.fit(tables.regs)
    index = np.flatnonzero(eligible_mask(tables.regs, week))
    return build_arrays(
        OuladFeatureBuilder(tables, week), vocab, index, np.full(len(index), week), None
    )


def assert_same_arrays(a: dict, b: dict) -> None:
    for key in ("seq", "lengths", "static_num", "static_cat"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)  # NaN equals NaN here


def test_nothing_dated_from_the_cutoff_day_on_changes_the_arrays(tmp_path: Path) -> None:
    week = 6
    cutoff = 7 * week
    folder = write_oulad(tmp_path / "before", presentation="2014B", modules=("AAA", "BBB"))
    before = arrays_at(folder, week)
    later = shutil.copytree(folder, tmp_path / "later")

    clicks = pd.read_csv(later / "studentVle_daily.csv.gz")
    late_clicks = clicks["date"] >= cutoff
    clicks.loc[late_clicks, "sum_click"] *= 7
    clicks.to_csv(later / "studentVle_daily.csv.gz", index=False)
    work = pd.read_csv(later / "studentAssessment.csv")
    late_work = work["date_submitted"] >= cutoff
    work.loc[late_work, "score"] = 0.0
    work.to_csv(later / "studentAssessment.csv", index=False)
    regs = pd.read_csv(later / "studentRegistration.csv")
    regs.loc[regs["date_unregistration"] >= cutoff, "date_unregistration"] = cutoff + 1
    regs.to_csv(later / "studentRegistration.csv", index=False)
    info = pd.read_csv(later / "studentInfo.csv")
    info["final_result"] = None
    info.to_csv(later / "studentInfo.csv", index=False)

    assert late_clicks.any() and late_work.any()
    assert_same_arrays(before, arrays_at(later, week, Vocabulary.fit(load_tables(folder).regs)))


def test_a_late_click_does_change_a_later_weeks_arrays(tmp_path: Path) -> None:
    # The check above must be able to fail: the same edit is seen one week later.
    folder = write_oulad(tmp_path / "a", presentation="2014B", modules=("AAA",))
    changed = shutil.copytree(folder, tmp_path / "b")
    clicks = pd.read_csv(changed / "studentVle_daily.csv.gz")
    in_week_6 = clicks["date"].between(42, 48)  # seen from the week-7 cutoff (day 49) on
    assert in_week_6.any()
    clicks.loc[in_week_6, "sum_click"] *= 7
    clicks.to_csv(changed / "studentVle_daily.csv.gz", index=False)
    vocab = Vocabulary.fit(load_tables(folder).regs)

    assert_same_arrays(arrays_at(folder, 6, vocab), arrays_at(changed, 6, vocab))
    with pytest.raises(AssertionError):
        assert_same_arrays(arrays_at(folder, 7, vocab), arrays_at(changed, 7, vocab))


def test_the_official_per_resource_vle_log_reads_as_the_daily_roll_up(tmp_path: Path) -> None:
    daily = write_oulad(tmp_path / "daily", presentation="2014J", modules=("AAA",))
    official = write_oulad(
        tmp_path / "official", presentation="2014J", modules=("AAA",), official_vle=True
    )
    assert not (official / "studentVle_daily.csv.gz").exists()

    assert_same_arrays(arrays_at(daily, 8), arrays_at(official, 8))


def test_registrations_are_scored_while_registered_at_the_cutoff() -> None:
    # Week 4: the cutoff is day 28.
    regs = pd.DataFrame(
        {
            "date_registration": [27, 28, None, -30, -30, -30],
            "date_unregistration": [None, None, None, 27, 28, 200],
        }
    )

    assert eligible_mask(regs, 4).tolist() == [True, False, True, False, True, True]


@pytest.mark.slow
def test_the_cli_scores_an_unlabelled_folder_with_a_module_it_never_saw(tmp_path: Path) -> None:
    train = write_oulad(tmp_path / "train", presentation="2013J", modules=("AAA", "BBB"), seed=1)
    test = write_oulad(tmp_path / "test", presentation="2014B", modules=("BBB", "CCC"), seed=2)
    info = pd.read_csv(test / "studentInfo.csv").drop(columns=["final_result"])
    info.to_csv(test / "studentInfo.csv", index=False)
    out = tmp_path / "scores.csv"

    report = oulad.main(
        [
            *("--train", str(train), "--test", str(test), "--week", "5", "--out", str(out)),
            *("--epochs", "1", "--members", "2", "--hidden-size", "8", "--threads", "1"),
            *("--max-train-examples", "600"),
        ]
    )

    scores = pd.read_csv(out)
    regs = load_tables(test).regs
    eligible = regs[eligible_mask(regs, 5)][KEY]
    assert list(scores.columns) == [*KEY, "risk"]
    assert scores[KEY].to_numpy().tolist() == eligible.to_numpy().tolist()
    assert set(scores["code_module"]) == {"BBB", "CCC"}
    assert scores["risk"].between(0, 1, inclusive="neither").all()
    assert report["stack"] is not None  # two training modules: the stack is fitted
    assert "metrics" not in report  # no outcomes, nothing to measure
