import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from apps.predictions.datasets import (
    EnrollmentFacts,
    SamplingOptions,
    StudentFacts,
    category_vocabulary,
    choose_prediction_weeks,
    concat_samples,
    encode_categories,
    load_samples,
    samples_from_history,
    save_samples,
    split_students,
    to_arrays,
)
from apps.predictions.labels import Stint
from tests.predictions.conftest import History, week_starts

TODAY = dt.date(2022, 1, 1)
WEEKS = week_starts(2020)  # 2019-12-29 is the first Sunday on or before 1 January


def history(n: int = 3, f: int = 2, session: np.ndarray | None = None) -> History:
    w = len(WEEKS)
    values = np.arange(n * w * f, dtype=np.float32).reshape(n, w, f)
    return History(
        feature_version="v1",
        columns=[f"c{j}" for j in range(f)],
        academic_year=2020,
        week_starts=WEEKS,
        student_ids=np.arange(1, n + 1, dtype=np.int64),
        values=values,
        in_session=np.ones((n, w), dtype=bool) if session is None else session,
    )


def facts(
    exit_date: dt.date | None = None,
    reason: str = "",
    *,
    gender: str = "female",
    region: int = 7,
    school_type: str = "government",
    grade: int = 8,
) -> StudentFacts:
    stint = Stint(2020, dt.date(2020, 1, 2), exit_date, reason)
    return StudentFacts(
        gender=gender,
        stipend=True,
        disability=False,
        date_of_birth=dt.date(2008, 1, 1),
        enrollments=(EnrollmentFacts(stint, grade, school_type, region),),
    )


def test_prediction_weeks_are_spread_between_the_first_and_last_school_weeks() -> None:
    h = history()
    options = SamplingOptions(prediction_weeks=4, min_week=3, end_margin_weeks=4)
    weeks = choose_prediction_weeks(h, options, TODAY)
    assert weeks[0] == 3 and weeks[-1] == len(WEEKS) - 5
    assert len(weeks) == 4 and weeks == sorted(weeks)


def test_a_horizon_in_days_keeps_the_last_weeks_of_the_year() -> None:
    # Its window reaches into the next year, so late weeks still have outcomes.
    options = SamplingOptions(prediction_weeks=4, min_week=3, horizon_days=90)
    assert choose_prediction_weeks(history(), options, TODAY)[-1] == len(WEEKS) - 1


def test_prediction_weeks_stop_at_the_last_complete_week_before_the_end_date() -> None:
    h = history()
    until = dt.date(2020, 3, 14)  # the week starting 2020-03-08 ends on the 14th
    weeks = choose_prediction_weeks(h, SamplingOptions(prediction_weeks=50, min_week=0), until)
    assert str(WEEKS[weeks[-1]]) == "2020-03-08"


def test_weeks_without_school_are_never_prediction_weeks() -> None:
    session = np.ones((3, len(WEEKS)), dtype=bool)
    session[:, 10:20] = False
    h = history(session=session)
    weeks = choose_prediction_weeks(h, SamplingOptions(prediction_weeks=60, min_week=0), TODAY)
    assert not set(weeks) & set(range(10, 20))


def test_a_sample_sees_nothing_after_its_prediction_week() -> None:
    h = history(n=1)
    options = SamplingOptions(prediction_weeks=3, min_week=3)
    samples = samples_from_history(h, {1: facts()}, options, today=TODAY)
    assert samples is not None
    for i in range(len(samples)):
        week = int(samples.lengths[i]) - 1
        np.testing.assert_array_equal(samples.seq[i, : week + 1], h.values[0, : week + 1])
        assert np.isnan(samples.seq[i, week + 1 :]).all()
        assert str(samples.week_starts[i]) == str(WEEKS[week])


def test_labels_and_statics_follow_the_enrollment() -> None:
    h = history(n=3)
    by_student = {
        1: facts(),  # stays all year
        2: facts(dt.date(2020, 6, 10), "dropped_out", gender="male", region=9),
        3: facts(dt.date(2020, 6, 10), "transferred", school_type="madrasah"),
    }
    # Week 20 starts 2020-05-17: all three are enrolled; week 30 (July): only 1.
    options = SamplingOptions(prediction_weeks=60, min_week=0)
    samples = samples_from_history(h, by_student, options, today=TODAY)
    assert samples is not None
    at_week_20 = samples.lengths == 21
    assert dict(zip(samples.student_ids[at_week_20], samples.labels[at_week_20], strict=True)) == {
        1: 0.0,
        2: 1.0,
        3: 0.0,
    }
    at_week_30 = samples.lengths == 31
    assert list(samples.student_ids[at_week_30]) == [1]
    row = np.flatnonzero(at_week_20 & (samples.student_ids == 2))[0]
    assert list(samples.raw_cat[row]) == ["male", "9", "government"]
    grade, stipend, disability, age = samples.static_num[row]
    assert (grade, stipend, disability) == (8.0, 1.0, 0.0)
    assert age == pytest.approx((dt.date(2020, 5, 23) - dt.date(2008, 1, 1)).days / 365.25)
    assert samples.groups["stipend"][row] == "yes" and samples.groups["region"][row] == "9"


def test_weeks_whose_label_window_is_still_open_are_skipped() -> None:
    h = history(n=2)
    by_student = {1: facts(), 2: facts(dt.date(2020, 6, 10), "dropped_out")}
    options = SamplingOptions(prediction_weeks=60, min_week=0)
    assert samples_from_history(h, by_student, options, today=dt.date(2020, 9, 1)) is None
    open_too = SamplingOptions(prediction_weeks=60, min_week=0, closed_windows_only=False)
    samples = samples_from_history(h, by_student, open_too, today=dt.date(2020, 9, 1))
    # Only the dropout is known before the window closes.
    assert samples is not None and set(samples.student_ids) == {2}


def test_samples_of_years_with_different_lengths_are_padded_with_missing_values() -> None:
    a = samples_from_history(history(n=1), {1: facts()}, SamplingOptions(), today=TODAY)
    assert a is not None
    b = a.subset(np.arange(len(a)))
    b.seq = b.seq[:, :40]
    b.lengths = np.minimum(b.lengths, 40)
    joined = concat_samples([b, a])
    assert joined.seq.shape[1] == a.seq.shape[1]
    assert np.isnan(joined.seq[: len(b), 40:]).all()


def test_the_split_is_by_student_and_does_not_depend_on_the_other_students() -> None:
    first = split_students(range(1, 2001), test_fraction=0.2, val_fraction=0.15)
    second = split_students(range(1000, 3001), test_fraction=0.2, val_fraction=0.15)
    assert all(first[pk] == second[pk] for pk in range(1000, 2001))
    shares = {name: list(first.values()).count(name) / 2000 for name in ("train", "val", "test")}
    assert shares["test"] == pytest.approx(0.2, abs=0.03)
    assert shares["val"] == pytest.approx(0.15, abs=0.03)


def test_unknown_categories_get_the_unknown_code() -> None:
    raw = np.array([["female", "7"], ["male", "9"]])
    vocabulary = category_vocabulary(raw)
    assert vocabulary == [["female", "male"], ["7", "9"]]
    codes = encode_categories(np.array([["male", "8"]]), vocabulary)
    assert codes.tolist() == [[1, -1]]


def test_held_out_samples_survive_a_round_trip_without_pickle(tmp_path: Path) -> None:
    samples = samples_from_history(
        history(n=2), {1: facts(), 2: facts()}, SamplingOptions(), today=TODAY
    )
    assert samples is not None
    path = tmp_path / "holdout.npz"
    save_samples(path, samples)
    back = load_samples(path)
    np.testing.assert_array_equal(back.seq, samples.seq)
    np.testing.assert_array_equal(back.raw_cat, samples.raw_cat)
    np.testing.assert_array_equal(back.week_starts, samples.week_starts)
    assert back.feature_columns == samples.feature_columns and back.feature_version == "v1"
    arrays = to_arrays(back, category_vocabulary(back.raw_cat))
    assert arrays.static_cat.shape == (len(samples), 3)
