"""The running code's feature definition: extractors, parameters and columns.

Changing an extractor's output, a parameter or the columns changes the
fingerprint; bump FEATURE_VERSION with it, or the store refuses to mix the
new definition into the old version's rows (FeatureSetConflict).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache

from apps.features.extractors.attendance import AttendanceExtractor
from apps.features.extractors.base import Extractor
from apps.features.extractors.discipline import DisciplineExtractor
from apps.features.extractors.enrollment import EnrollmentExtractor
from apps.features.extractors.grades import GradesExtractor

FEATURE_VERSION = "weekly-v1"


@dataclass(frozen=True)
class Definition:
    version: str
    extractors: tuple[Extractor, ...]

    @property
    def columns(self) -> list[str]:
        return [column for extractor in self.extractors for column in extractor.columns]

    @property
    def params(self) -> dict[str, dict]:
        return {extractor.name: extractor.params() for extractor in self.extractors}

    @property
    def code_version(self) -> str:
        return ",".join(f"{e.name}={e.code_version}" for e in self.extractors)

    @property
    def ranges(self) -> dict[str, tuple[float, float]]:
        return {k: v for extractor in self.extractors for k, v in extractor.ranges().items()}

    @property
    def state_size(self) -> int:
        return sum(extractor.state_size for extractor in self.extractors)

    @property
    def fingerprint(self) -> str:
        payload = json.dumps(
            {"code": self.code_version, "params": self.params, "columns": self.columns},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


@cache
def current_definition() -> Definition:
    definition = Definition(
        version=FEATURE_VERSION,
        extractors=(
            EnrollmentExtractor(),
            AttendanceExtractor(),
            GradesExtractor(),
            DisciplineExtractor(),
        ),
    )
    # The observed mask is one BIGINT, bit i for column i.
    assert len(definition.columns) <= 63
    return definition
