"""Match a file's header row to the fields of its kind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from apps.ingestion.formats import FIELDS, Field, normalise
from apps.ingestion.problems import FileRejected


@dataclass
class HeaderMatch:
    # field name -> position of its column in the row
    positions: dict[str, int] = field(default_factory=dict)
    # header as written in the file -> field name, for the job record
    column_map: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # field -> header as written
    ignored: list[str] = field(default_factory=list)

    @property
    def present(self) -> set[str]:
        return set(self.positions)


def _lookup(kind: str) -> dict[str, Field]:
    table: dict[str, Field] = {}
    for spec in FIELDS[kind]:
        for spelling in (spec.name, *spec.aliases):
            table.setdefault(normalise(spelling), spec)
    return table


def match_header(kind: str, row: Sequence[object]) -> HeaderMatch:
    """Raise FileRejected when a required column is missing or two columns claim one field."""
    lookup = _lookup(kind)
    result = HeaderMatch()
    for position, cell in enumerate(row):
        text = "" if cell is None else str(cell).strip()
        if not text:
            continue  # an empty header cell (often the tail of a merged cell): not a column
        spec = lookup.get(normalise(text))
        if spec is None:
            result.ignored.append(text)
            continue
        if spec.name in result.positions:
            raise FileRejected(
                "duplicate_column", first=result.headers[spec.name], second=text, field=spec.name
            )
        result.positions[spec.name] = position
        result.column_map[text] = spec.name
        result.headers[spec.name] = text
    for spec in FIELDS[kind]:
        if spec.required and spec.name not in result.positions:
            raise FileRejected("missing_column", field=spec.name)
    return result


def header_score(kind: str, row: Sequence[object]) -> int:
    """How many of the kind's required fields a row names: finds the header under title rows."""
    lookup = _lookup(kind)
    names = {
        lookup[normalise(str(cell))].name
        for cell in row
        if cell is not None and normalise(str(cell)) in lookup
    }
    return sum(1 for spec in FIELDS[kind] if spec.required and spec.name in names)
