"""The dropout label, from enrollments alone.

A sample is a student at a prediction week; the *cutoff* is the last day of that
week (the model sees data up to and including it). The label answers: did the
student drop out after the cutoff and no later than the *horizon*?

* 1: an enrollment of the student ended ``dropped_out`` in (cutoff, horizon].
* 0: the horizon has passed and the student did not drop out in the window: still
  enrolled at the horizon, or left in the window through a transfer out of the
  district, graduation or another non-dropout exit.
* None (unknown, never used for training or evaluation):
  - the student was not enrolled at the cutoff (nothing to predict);
  - no dropout yet, but the horizon is today or later (only dropouts are known
    before the window closes);
  - died in the window (the outcome we predict was never observable);
  - not enrolled at the horizon with no exit in the window: the academic year ended
    and no next enrollment follows (with a horizon past the year's end), which
    enrollments alone cannot tell apart from a quiet dropout.

An enrollment with no exit date is open only until the end of its own academic
year: enrollments of finished years are not closed when the next year starts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from apps.students.models import ExitReason
from apps.students.services import academic_year_bounds

# Left the window this way: known not to have dropped out.
NOT_DROPOUT_EXITS = frozenset({ExitReason.TRANSFERRED, ExitReason.GRADUATED, ExitReason.OTHER})


@dataclass(frozen=True)
class Stint:
    """One enrollment, reduced to what the label needs."""

    academic_year: int
    entry_date: dt.date
    exit_date: dt.date | None
    exit_reason: str

    @property
    def end(self) -> dt.date:
        """The last day the student is enrolled (inclusive)."""
        if self.exit_date is not None:
            return self.exit_date
        return academic_year_bounds(self.academic_year)[1]

    def covers(self, day: dt.date) -> bool:
        # Enrolled on `day` and not leaving that day: an exit dated on the cutoff
        # means the student is already gone when the prediction is made.
        if self.exit_date is not None:
            return self.entry_date <= day < self.exit_date
        return self.entry_date <= day <= self.end


def horizon_for(cutoff: dt.date, *, academic_year: int, horizon_days: int) -> dt.date:
    """The last day of the label window: cutoff + days, or the end of the academic year."""
    if horizon_days > 0:
        return cutoff + dt.timedelta(days=horizon_days)
    return academic_year_bounds(academic_year)[1]


def dropout_label(
    stints: Sequence[Stint], *, cutoff: dt.date, horizon: dt.date, today: dt.date
) -> int | None:
    if horizon <= cutoff or not any(s.covers(cutoff) for s in stints):
        return None
    if any(
        s.exit_reason == ExitReason.DROPPED_OUT
        and s.exit_date is not None
        and cutoff < s.exit_date <= horizon
        for s in stints
    ):
        return 1
    if any(s.covers(horizon) for s in stints):
        # Still enrolled at the horizon: a negative only once the horizon is over.
        return 0 if horizon < today else None
    exits = sorted(
        (s for s in stints if s.exit_date is not None and cutoff < s.exit_date <= horizon),
        key=lambda s: s.exit_date or cutoff,
    )
    if not exits or exits[-1].exit_reason not in NOT_DROPOUT_EXITS:
        return None
    # Until the horizon passes, a transfer may still be followed by an enrollment
    # (the receiving school records it late) that ends in a dropout.
    return 0 if horizon < today else None
