"""ScoreTable: one row per scored checkpoint, with what was skipped and the settings used."""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Any, Iterator, Sequence

import numpy as np

from gatekit import io
from gatekit.errors import GatekitError, Problem
from gatekit.statistics import DEFAULT_DISPLAY, ID_COLUMNS


@dataclasses.dataclass
class ScoreTable:
    """One row per scored checkpoint, plus what was skipped and the settings used."""

    rows: list[dict]
    problems: list[Problem] = dataclasses.field(default_factory=list)
    settings: dict = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        cols: dict[str, None] = dict.fromkeys(c for c in ID_COLUMNS if any(c in r for r in self.rows))
        for r in self.rows:
            cols.update(dict.fromkeys(r))
        return list(cols)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.rows)

    def __getitem__(self, i):
        """``table[0]`` -> a row dict; ``table[1:3]`` -> a ScoreTable of those rows;
        ``table["sa_rank"]`` -> that column as a float array."""
        if isinstance(i, str):
            return self.column(i)
        if isinstance(i, slice):
            return ScoreTable(rows=self.rows[i], problems=self.problems, settings=self.settings, notes=self.notes)
        return self.rows[i]

    def __repr__(self) -> str:
        runs = len({r.get("run_path") or r.get("run") for r in self.rows})
        return (f"<ScoreTable: {len(self.rows)} checkpoint(s) of {runs} run(s), {len(self.columns)} columns, "
                f"{len(self.problems)} skipped>")

    def _repr_html_(self) -> str:
        """A notebook view of the display columns."""
        import html

        cols = [c for c in DEFAULT_DISPLAY if c in self.columns]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>"
                       for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p>{html.escape(repr(self))}</p>"

    @classmethod
    def read(cls, path) -> "ScoreTable":
        """Loads a table written by :meth:`to_csv` / :meth:`to_json` (or ``gatekit score --csv/--json``)."""
        import json

        path = pathlib.Path(path)
        rows = io.read_table(path)
        settings, problems = {}, []
        if path.suffix.lower() == ".json":
            doc = json.loads(path.read_text(encoding="utf-8-sig"))
            if isinstance(doc, dict):
                settings = doc.get("settings") or {}
                problems = [Problem(**p) for p in doc.get("problems") or [] if isinstance(p, dict)
                            and set(p) == {"path", "reason"}]
        return cls(rows=rows, problems=problems, settings=settings)

    def column(self, name: str) -> np.ndarray:
        """A column as a float array (missing cells are NaN)."""
        if not any(name in r for r in self.rows):
            raise GatekitError(f"no column {name!r}; columns: {', '.join(self.columns)}")
        return np.array([np.nan if r.get(name) is None else r[name] for r in self.rows], dtype=float)

    def to_csv(self, path=None) -> str:
        """CSV text; also written to ``path`` when given."""
        if path is not None:
            io.write_table(self.rows, path, self.columns)
        return io.table_text(self.rows, "csv", self.columns)

    def to_json(self, path=None) -> str:
        """JSON text ``{"settings", "problems", "rows"}``; also written to ``path`` when given."""
        import json

        doc = {
            "settings": self.settings,
            "problems": [dataclasses.asdict(p) for p in self.problems],
            "rows": json.loads(io.table_text(self.rows, "json", self.columns)),
        }
        text = json.dumps(io.to_jsonable(doc), indent=1) + "\n"
        if path is not None:
            io.write_text(path, text)
        return text

    def to_pandas(self):
        """A pandas DataFrame (pandas is optional)."""
        try:
            import pandas as pd
        except ImportError:
            raise GatekitError("to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame(self.rows, columns=self.columns)

    def format(self, columns: Sequence[str] | None = None, max_rows: int | None = None) -> str:
        """A fixed-width text table for the terminal."""
        if not columns:
            columns = [c for c in DEFAULT_DISPLAY if c in self.columns]
            if len({r.get("role") or "teacher" for r in self.rows}) > 1:  # teachers and students: say which
                columns.insert(1, "role")
        columns = list(columns)
        rows = self.rows if max_rows is None else self.rows[:max_rows]
        cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
        cells = [list(col) for col in zip(*[_align_decimals([row[i] for row in cells]) for i in range(len(columns))])] \
            if cells else []
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
        if max_rows is not None and len(self.rows) > max_rows:
            lines.append(f"... {len(self.rows) - max_rows} more rows")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    """4 significant digits in fixed point (so decimals can be aligned); scientific only for very
    large or very small magnitudes."""
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.4g}"
        decimals = 3 if v == 0 else max(0, 3 - int(math.floor(math.log10(abs(v)))))
        return f"{v:.{decimals}f}"
    return str(v)


def _align_decimals(col: list[str]) -> list[str]:
    """Pads a column of numbers on the right so their decimal points line up."""
    def frac(v):
        if "e" in v or not v.replace(".", "", 1).lstrip("-").isdigit():
            return None
        return len(v.split(".")[1]) + 1 if "." in v else 0

    fracs = [frac(v) for v in col]
    width = max((f for f in fracs if f is not None), default=0)
    return [v + " " * (width - f) if f is not None else v for v, f in zip(col, fracs)]
