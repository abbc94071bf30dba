"""The dropout label, case by case, against answers worked out by hand.

Academic year 2020 runs 1 January to 31 December (EDUPULSE_ACADEMIC_YEAR_START=01-01).
The prediction week starts Sunday 2020-03-01, so the cutoff is Saturday 2020-03-07.
"""

import datetime as dt

import pytest

from apps.predictions.labels import Stint, dropout_label, horizon_for

D = dt.date
CUTOFF = D(2020, 3, 7)
YEAR_END = D(2020, 12, 31)
AFTER = D(2021, 2, 1)  # a "today" after the horizon
DURING = D(2020, 6, 1)  # a "today" before the horizon


def stint(entry: dt.date, exit_date: dt.date | None = None, reason: str = "") -> Stint:
    return Stint(
        academic_year=entry.year, entry_date=entry, exit_date=exit_date, exit_reason=reason
    )


def label(stints: list[Stint], today: dt.date = AFTER, horizon: dt.date = YEAR_END) -> int | None:
    return dropout_label(stints, cutoff=CUTOFF, horizon=horizon, today=today)


def test_the_default_horizon_is_the_end_of_the_academic_year() -> None:
    assert horizon_for(CUTOFF, academic_year=2020, horizon_days=0) == YEAR_END


def test_a_horizon_in_days_counts_from_the_cutoff() -> None:
    assert horizon_for(CUTOFF, academic_year=2020, horizon_days=30) == D(2020, 4, 6)


def test_a_dropout_after_the_prediction_week_is_positive() -> None:
    assert label([stint(D(2020, 1, 5), D(2020, 9, 10), "dropped_out")]) == 1


def test_a_dropout_already_recorded_is_positive_even_before_the_horizon_passes() -> None:
    assert label([stint(D(2020, 1, 5), D(2020, 5, 10), "dropped_out")], today=DURING) == 1


def test_a_dropout_on_the_last_day_of_the_horizon_counts() -> None:
    assert label([stint(D(2020, 1, 5), YEAR_END, "dropped_out")]) == 1


def test_a_dropout_after_a_short_horizon_is_negative() -> None:
    stints = [stint(D(2020, 1, 5), D(2020, 9, 10), "dropped_out")]
    assert label(stints, horizon=D(2020, 4, 6)) == 0


def test_a_student_who_left_on_or_before_the_cutoff_is_not_a_sample() -> None:
    # Already gone when the prediction is made: nothing to predict.
    assert label([stint(D(2020, 1, 5), CUTOFF, "dropped_out")]) is None
    assert label([stint(D(2020, 1, 5), D(2020, 2, 20), "dropped_out")]) is None


def test_a_student_not_yet_enrolled_at_the_cutoff_is_not_a_sample() -> None:
    assert label([stint(D(2020, 4, 1))]) is None


def test_still_enrolled_after_the_horizon_passed_is_negative() -> None:
    assert label([stint(D(2020, 1, 5))], today=AFTER) == 0


def test_still_enrolled_before_the_horizon_passed_is_unknown() -> None:
    assert label([stint(D(2020, 1, 5))], today=DURING) is None


def test_the_horizon_day_itself_has_not_passed() -> None:
    assert label([stint(D(2020, 1, 5))], today=YEAR_END) is None
    assert label([stint(D(2020, 1, 5))], today=YEAR_END + dt.timedelta(days=1)) == 0


def test_a_transfer_out_of_the_district_is_not_a_dropout() -> None:
    assert label([stint(D(2020, 1, 5), D(2020, 6, 1), "transferred")], today=DURING) is None
    assert label([stint(D(2020, 1, 5), D(2020, 6, 1), "transferred")]) == 0


def test_a_transfer_inside_the_district_followed_by_a_dropout_is_positive() -> None:
    stints = [
        stint(D(2020, 1, 5), D(2020, 5, 3), "transferred"),
        stint(D(2020, 5, 3), D(2020, 10, 1), "dropped_out"),
    ]
    assert label(stints) == 1


def test_a_transfer_inside_the_district_and_staying_is_negative_once_the_year_is_over() -> None:
    stints = [stint(D(2020, 1, 5), D(2020, 5, 3), "transferred"), stint(D(2020, 5, 3))]
    assert label(stints) == 0
    assert label(stints, today=DURING) is None


def test_a_transfer_on_the_cutoff_day_keeps_the_student_in_the_sample() -> None:
    stints = [
        stint(D(2020, 1, 5), CUTOFF, "transferred"),
        stint(CUTOFF, D(2020, 8, 1), "dropped_out"),
    ]
    assert label(stints) == 1


def test_graduation_is_not_a_dropout() -> None:
    assert label([stint(D(2020, 1, 5), D(2020, 12, 10), "graduated")]) == 0


def test_other_exits_are_negative_and_deaths_are_unknown() -> None:
    assert label([stint(D(2020, 1, 5), D(2020, 7, 1), "other")]) == 0
    assert label([stint(D(2020, 1, 5), D(2020, 7, 1), "deceased")]) is None


def test_an_open_enrollment_ends_with_its_academic_year() -> None:
    # A long horizon reaches into 2021; the 2020 enrollment (never closed) does not
    # cover it and no 2021 enrollment follows: enrollments cannot tell, so unknown.
    stints = [stint(D(2020, 1, 5))]
    assert label(stints, horizon=D(2021, 3, 7), today=D(2021, 6, 1)) is None
    # With a 2021 enrollment that is still open at the horizon, it is a negative.
    stints.append(stint(D(2021, 1, 3)))
    assert label(stints, horizon=D(2021, 3, 7), today=D(2021, 6, 1)) == 0


def test_a_dropout_in_the_next_year_within_a_long_horizon_is_positive() -> None:
    stints = [stint(D(2020, 1, 5)), stint(D(2021, 1, 3), D(2021, 2, 10), "dropped_out")]
    assert label(stints, horizon=D(2021, 3, 7), today=D(2021, 6, 1)) == 1


@pytest.mark.parametrize("reason", ["transferred", "graduated", "other"])
def test_leaving_after_the_horizon_is_negative(reason: str) -> None:
    assert label([stint(D(2020, 1, 5), D(2020, 9, 1), reason)], horizon=D(2020, 6, 30)) == 0


def test_a_window_that_ends_before_it_starts_is_not_a_sample() -> None:
    assert label([stint(D(2020, 1, 5))], horizon=CUTOFF) is None
