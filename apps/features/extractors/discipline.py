"""Discipline: incidents, severity-weighted incidents, suspensions, weeks since the last."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from apps.features import raw
from apps.features.extractors.base import (
    Extracted,
    Extractor,
    Grid,
    Scope,
    in_window,
    with_rows_recomputed,
)


class DisciplineExtractor(Extractor):
    name = "discipline"
    code_version = 1
    sources = ("incidents",)

    def __init__(
        self, *, severity_weights: tuple[float, float, float] = (1.0, 2.0, 4.0), cap_weeks: int = 52
    ) -> None:
        # A serious incident (fighting, substance use) says more than two minor ones.
        self.severity_weights = severity_weights
        self.cap_weeks = cap_weeks

    @property
    def columns(self) -> tuple[str, ...]:
        return ("incidents", "incident_severity", "suspension_days", "weeks_since_incident")

    def params(self) -> dict[str, Any]:
        return {"severity_weights": list(self.severity_weights), "cap_weeks": self.cap_weeks}

    def ranges(self) -> dict[str, tuple[float, float]]:
        return {
            "incidents": (0, 50),
            "incident_severity": (0, 200),
            "suspension_days": (0, 365),
            "weeks_since_incident": (0, self.cap_weeks),
        }

    def read(self, scope: Scope) -> dict[str, pd.DataFrame]:
        calendar = scope.calendar
        # An update needs the incidents from the rebuilt weeks on only (see extract).
        first = calendar.week_start(scope.first_week) if scope.resuming else calendar.start
        frame = raw.incidents(
            origin=calendar.origin_date,
            first=max(calendar.start, first),
            last=calendar.end,
            student_ids=scope.student_ids,
        )
        return {"incidents": frame}

    def extract(self, grid: Grid, state: np.ndarray | None) -> Extracted:
        incidents = grid.sources(self)["incidents"]
        if grid.previous is None:
            return in_window(grid, self._from_incidents(grid, incidents))
        # Incremental: without an incident in the rebuilt weeks, counts are 0
        # and the weeks since the last one keep counting from the week before.
        changed = np.unique(incidents["student_id"].to_numpy())
        shape = (len(grid.student_ids), grid.window_weeks)
        elapsed = np.arange(1, grid.window_weeks + 1)[None, :]
        carried = {
            "incidents": np.zeros(shape),
            "incident_severity": np.zeros(shape),
            "suspension_days": np.zeros(shape),
            "weeks_since_incident": np.minimum(
                grid.carried("weeks_since_incident") + elapsed, self.cap_weeks
            ),
        }

        def year(subgrid: Grid) -> Extracted:
            calendar = subgrid.calendar
            frame = raw.incidents(
                origin=calendar.origin_date,
                first=calendar.start,
                last=calendar.end,
                student_ids=subgrid.student_ids,
            )
            return self._from_incidents(subgrid, frame)

        return with_rows_recomputed(grid, carried, changed, year)

    def _from_incidents(self, grid: Grid, frame: pd.DataFrame) -> Extracted:
        n, w = grid.shape
        rows = grid.rows_of(frame["student_id"].to_numpy())
        weeks = np.clip(frame["day"].to_numpy() // 7, 0, w - 1)
        weights = np.asarray(self.severity_weights)[frame["severity"].to_numpy() - 1]
        count = grid.scatter_sum(rows, weeks)
        last = np.where(count > 0, np.arange(w)[None, :], -1)
        np.maximum.accumulate(last, axis=1, out=last)
        # No incident yet this year reads as the cap: a real value, not missing.
        since = np.where(last >= 0, np.arange(w)[None, :] - last, self.cap_weeks)
        return Extracted(
            values={
                "incidents": count,
                "incident_severity": grid.scatter_sum(rows, weeks, weights),
                "suspension_days": grid.scatter_sum(
                    rows, weeks, frame["days_suspended"].to_numpy(dtype=np.float64)
                ),
                "weeks_since_incident": np.minimum(since, self.cap_weeks).astype(np.float64),
            }
        )
