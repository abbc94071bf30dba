"""Read CSV and XLSX files as a stream of chunks of text cells.

Every reader yields pandas DataFrames whose columns are the kind's field
names (text, "" for an empty cell) plus ``_line``: the row's number in the
file as a person would count it (the first row is 1; in a workbook, the sheet
row). Files are streamed: a chunk of CHUNK_ROWS rows is in memory at a time.

What a file *is* is decided by its content, never by its name.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from django.conf import settings

from apps.ingestion.headers import HeaderMatch, header_score, match_header
from apps.ingestion.problems import FileRejected

CHUNK_ROWS = 200_000
HEADER_SEARCH_ROWS = 20
BLOCK = 1 << 20

UTF8_BOM = codecs.BOM_UTF8
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass
class FileInfo:
    format: str  # "csv" or "xlsx"
    size: int
    checksum: str
    encoding: str = ""
    warnings: list[str] = field(default_factory=list)


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def inspect_file(path: Path) -> FileInfo:
    """Decide the format by content, check the encoding of text, and checksum it in one pass."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8192)
    if size == 0 or not head.strip(b" \t\r\n\x00" + UTF8_BOM + b"\xff\xfe\xfe\xff"):
        raise FileRejected("empty_file")
    if head.startswith(b"PK\x03\x04"):
        _check_xlsx(path)
        return FileInfo("xlsx", size, file_checksum(path))
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRejected("old_excel")
    if head.startswith(UTF16_BOMS):
        encoding = "utf-16"
    elif head.startswith(UTF8_BOM):
        encoding = "utf-8-sig"
    elif b"\x00" in head:
        raise FileRejected("not_csv_or_xlsx")  # binary, or UTF-16 without its BOM
    else:
        encoding = "utf-8"
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(encoding)()
    decodes = True
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
            if decodes:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    decodes = False
        if decodes:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                decodes = False
    info = FileInfo("csv", size, digest.hexdigest(), encoding)
    if decodes:
        return info
    if encoding != "utf-8":
        raise FileRejected("unknown_encoding")
    # Excel on Windows still saves "CSV" as Windows-1252; it has five unused
    # bytes, so a file that decodes is at least text.
    decoder = codecs.getincrementaldecoder("cp1252")()
    try:
        with path.open("rb") as handle:
            while block := handle.read(BLOCK):
                decoder.decode(block)
    except UnicodeDecodeError:
        raise FileRejected("unknown_encoding") from None
    info.encoding = "cp1252"
    info.warnings.append("windows_1252")
    return info


def _check_xlsx(path: Path) -> None:
    limit_mb = settings.EDUPULSE_XLSX_MAX_UNPACKED_MB
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise FileRejected("damaged_xlsx", detail=str(error)) from None
    names = {member.filename for member in members}
    if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
        raise FileRejected("not_csv_or_xlsx")
    # The sizes in the directory are what the archive claims; openpyxl's reads
    # are bounded by them, so a bomb is refused before anything is unpacked.
    unpacked = sum(member.file_size for member in members)
    if unpacked > limit_mb * 1024 * 1024:
        raise FileRejected("zip_bomb", size=unpacked // (1024 * 1024), limit=limit_mb)


# --- CSV ------------------------------------------------------------------


def _sample_text(path: Path, encoding: str, limit: int = 65536) -> str:
    with path.open("rb") as handle:
        raw = handle.read(limit)
    return raw.decode(encoding, errors="ignore")


def _detect_delimiter(lines: list[str]) -> str:
    best, best_score = ",", 0
    for delimiter in (",", ";", "\t", "|"):
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter) if row]
        if not counts:
            continue
        widest = max(counts)
        if widest < 2:
            continue
        # Favour the delimiter that splits most rows into the widest shape.
        score = widest * sum(1 for count in counts if count == widest)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _tail_fields(path: Path, encoding: str, delimiter: str) -> int | None:
    """Fields on the last line when the file does not end with a newline (a cut-off upload)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 65536))
        tail = handle.read()
    if encoding == "utf-16":
        text = tail.decode("utf-16-le" if tail[:2] != b"\xfe\xff" else "utf-16-be", "ignore")
    else:
        text = tail.decode(encoding, errors="ignore")
    if not text or text.endswith(("\n", "\r")):
        return None
    last = text.splitlines()[-1]
    rows = list(csv.reader([last], delimiter=delimiter))
    return len(rows[0]) if rows else 0


def read_csv(
    path: Path, info: FileInfo, kind: str, chunk_rows: int = CHUNK_ROWS
) -> tuple[HeaderMatch, Iterator[pd.DataFrame]]:
    text = _sample_text(path, info.encoding)
    csv.field_size_limit(1 << 30)
    lines = text.splitlines()[: HEADER_SEARCH_ROWS + 5]
    delimiter = _detect_delimiter(lines)
    rows = list(csv.reader(lines[:HEADER_SEARCH_ROWS], delimiter=delimiter))
    nonblank = [i for i, row in enumerate(rows) if any(cell.strip() for cell in row)]
    if not nonblank:
        raise FileRejected("empty_file")
    # The header is the row naming most required columns (title rows above it are skipped).
    header_index = max(nonblank, key=lambda i: (header_score(kind, rows[i]), -i))
    if header_score(kind, rows[header_index]) == 0:
        header_index = nonblank[0]
    header = rows[header_index]
    match = match_header(kind, header)
    tail_fields = _tail_fields(path, info.encoding, delimiter)
    truncated_tail = tail_fields is not None and tail_fields < len(header)
    positions = sorted(match.positions.items(), key=lambda item: item[1])
    names = {position: name for name, position in positions}

    def chunks() -> Iterator[pd.DataFrame]:
        try:
            reader = pd.read_csv(
                path,
                sep=delimiter,
                header=None,
                skiprows=header_index + 1,
                usecols=[position for _name, position in positions],
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                encoding=info.encoding,
                chunksize=chunk_rows,
                engine="c",
                quotechar='"',
            )
        except pd.errors.EmptyDataError:
            return  # a header and nothing under it
        first_line = header_index + 2
        pending: pd.DataFrame | None = None
        try:
            for frame in reader:
                frame = frame.rename(columns=names)
                frame["_line"] = frame.index.to_numpy() + first_line
                if pending is not None:
                    yield pending
                pending = frame
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
            raise FileRejected("bad_csv", detail=str(error)) from None
        if pending is not None:
            if truncated_tail and len(pending):
                pending.attrs["truncated_line"] = int(pending["_line"].iloc[-1])
            yield pending

    return match, chunks()


# --- XLSX -----------------------------------------------------------------


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_xlsx(
    path: Path, kind: str, sheet: str = "", chunk_rows: int = CHUNK_ROWS
) -> tuple[HeaderMatch, Iterator[pd.DataFrame], str]:
    from openpyxl import load_workbook

    try:
        # read_only streams the sheet XML; data_only gives formulas' cached values.
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError) as error:
        raise FileRejected("damaged_xlsx", detail=str(error)) from None
    if sheet:
        if sheet not in workbook.sheetnames:
            workbook.close()
            raise FileRejected("unknown_sheet", sheet=sheet, sheets=", ".join(workbook.sheetnames))
        worksheet = workbook[sheet]
    else:
        worksheet = workbook.worksheets[0]
    sheet_name = worksheet.title
    try:
        rows = worksheet.iter_rows(values_only=True)
        head: list[tuple[object, ...]] = []
        for row in rows:
            head.append(tuple(row))
            if len(head) >= HEADER_SEARCH_ROWS:
                break
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        workbook.close()
        raise FileRejected("damaged_xlsx", detail=str(error)) from None
    nonblank = [i for i, row in enumerate(head) if any(_cell_text(c).strip() for c in row)]
    if not nonblank:
        workbook.close()
        raise FileRejected("empty_file")
    header_index = max(nonblank, key=lambda i: (header_score(kind, head[i]), -i))
    if header_score(kind, head[header_index]) == 0:
        header_index = nonblank[0]
    match = match_header(kind, head[header_index])
    fields = list(match.positions.items())

    def frame_of(batch: list[tuple[object, ...]], lines: list[int]) -> pd.DataFrame:
        columns: dict[str, list[str]] = {}
        for name, position in fields:
            columns[name] = [
                _cell_text(row[position]) if position < len(row) else "" for row in batch
            ]
        frame = pd.DataFrame(columns, dtype=object)
        frame["_line"] = lines
        return frame

    def chunks() -> Iterator[pd.DataFrame]:
        batch: list[tuple[object, ...]] = []
        lines: list[int] = []
        line = header_index + 1
        try:
            for row in head[header_index + 1 :]:
                line += 1
                batch.append(row)
                lines.append(line)
            for row in rows:
                line += 1
                batch.append(tuple(row))
                lines.append(line)
                if len(batch) >= chunk_rows:
                    yield frame_of(batch, lines)
                    batch, lines = [], []
            if batch:
                yield frame_of(batch, lines)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise FileRejected("damaged_xlsx", detail=str(error)) from None
        finally:
            workbook.close()

    return match, chunks(), sheet_name


def open_chunks(
    path: Path, info: FileInfo, kind: str, sheet: str = "", chunk_rows: int = CHUNK_ROWS
) -> tuple[HeaderMatch, Iterator[pd.DataFrame], str]:
    if info.format == "xlsx":
        return read_xlsx(path, kind, sheet, chunk_rows)
    match, chunks = read_csv(path, info, kind, chunk_rows)
    return match, chunks, ""
