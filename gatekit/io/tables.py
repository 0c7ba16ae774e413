"""Score and pairs tables: CSV or JSON, one row per checkpoint."""

from __future__ import annotations

import csv
import io
import json
import math
import pathlib
from typing import Any

import numpy as np

from gatekit.errors import GatekitError
from gatekit.io.files import PathLike, _atomic_write_text, read_text, to_jsonable


def write_table(rows: list[dict], path: PathLike, columns: list[str] | None = None) -> pathlib.Path:
    """Writes rows as CSV or JSON (by suffix: ``.csv`` / ``.json``)."""
    path = pathlib.Path(path)
    text = table_text(rows, _table_kind(path), columns)
    _atomic_write_text(path, text)
    return path


def table_text(rows: list[dict], kind: str, columns: list[str] | None = None) -> str:
    """Rows as CSV or JSON text (``kind`` in {"csv", "json"})."""
    columns = columns or _columns(rows)
    if kind == "json":
        return json.dumps([{c: to_jsonable(r.get(c)) for c in columns} for r in rows], indent=1) + "\n"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: _csv_cell(r.get(c)) for c in columns})
    return buf.getvalue()


def read_table(path: PathLike) -> list[dict]:
    """Reads a CSV or JSON table into a list of row dicts; numeric cells become floats."""
    path = pathlib.Path(path)
    kind = _table_kind(path)
    if not path.is_file():
        raise GatekitError(f"{path}: no such file")
    text = read_text(path)  # a byte-order mark (Excel) is not part of the first column's name
    if kind == "json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise GatekitError(f"{path}: not valid JSON ({e})") from None
        if isinstance(rows, dict) and "rows" in rows:
            rows = rows["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise GatekitError(f"{path}: expected a JSON list of objects (one per row)")
        return rows
    records = list(csv.reader(io.StringIO(text)))
    if not records or not any(records[0]):
        raise GatekitError(f"{path}: empty CSV (no header)")
    header = [h.strip() for h in records[0]]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise GatekitError(f"{path}: duplicate column name(s) {dupes}")
    if any(not h for h in header):
        raise GatekitError(f"{path}: empty column name in the header (column {header.index('') + 1})")
    rows = []
    for i, rec in enumerate(records[1:], start=2):
        if not rec:
            continue  # blank line
        if len(rec) != len(header):
            raise GatekitError(f"{path}: line {i} has {len(rec)} cells but the header has {len(header)} columns")
        rows.append({k: _parse_cell(v) for k, v in zip(header, rec)})
    return rows


def _table_kind(path: pathlib.Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise GatekitError(f"{path}: unknown table type {suffix!r} (use .csv or .json)")
    return suffix[1:]


def _columns(rows: list[dict]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    return list(cols)


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return repr(float(v)) if math.isfinite(v) else "nan"
    return v


def _parse_cell(v: str | None) -> Any:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and v.lstrip("-").isdigit() else f
