"""Pairs tables, (teacher statistic, student outcome) rows: typed columns, the declared label
rule that binarizes the outcome, and which columns are candidate statistics."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Iterable

import numpy as np

from gatekit import io
from gatekit import rule as R
from gatekit.errors import GatekitError
from gatekit.statistics import BASELINES, NOT_STATISTICS


def read_rows(table) -> tuple[str, list[dict]]:
    """(name for messages, rows) of a table file or of rows given directly."""
    if isinstance(table, (str, pathlib.Path)):
        return str(table), io.read_table(table)
    return "table", list(table)


def column(rows: list[dict], name: str, source: str) -> np.ndarray:
    if not rows:
        raise GatekitError(f"{source}: the table has no rows")
    if not any(name in r for r in rows):
        raise GatekitError(f"{source}: no column {name!r}; columns: {', '.join(rows[0])}")
    out = []
    for i, r in enumerate(rows):
        v = r.get(name)
        if isinstance(v, bool):
            raise GatekitError(f"{source}: row {i + 1} column {name!r} is not a number: {v!r}")
        try:
            out.append(np.nan if v is None or v == "" else float(v))
        except (TypeError, ValueError):
            raise GatekitError(f"{source}: row {i + 1} column {name!r} is not a number: {v!r}") from None
    return np.asarray(out)


def require_finite(arr: np.ndarray, name: str, source: str) -> None:
    bad = np.flatnonzero(~np.isfinite(arr))
    if len(bad):
        raise GatekitError(f"{source}: column {name!r} is empty or non-finite in row(s) "
                           f"{(bad[:8] + 1).tolist()}{' ...' if len(bad) > 8 else ''}")


@dataclasses.dataclass(frozen=True)
class Labels:
    """Binary labels from a declared rule, and the continuous outcome behind them."""

    labels: np.ndarray
    outcomes: np.ndarray | None
    groups: np.ndarray | None
    rule: dict

    def subset(self, keep: np.ndarray) -> "Labels":
        return Labels(self.labels[keep], None if self.outcomes is None else self.outcomes[keep],
                      None if self.groups is None else self.groups[keep], self.rule)


def make_labels(rows, *, label: str, label_above=None, label_relative=None, group=None, source="table") -> Labels:
    """Applies the declared label rule (never fitted): ``outcome > label_above``, or
    ``outcome >= label_relative x`` the best outcome of the row's group."""
    outcome = column(rows, label, source)
    groups = None
    if group is not None:
        if not any(group in r for r in rows):
            raise GatekitError(f"{source}: no column {group!r} (--group)")
        groups = np.asarray([str(r.get(group)) for r in rows])
    if label_above is not None and label_relative is not None:
        raise GatekitError("give one label rule: --label-above or --label-relative, not both")
    if label_above is None and label_relative is None:
        require_finite(outcome, label, source)
        if not np.all(np.isin(outcome, (0.0, 1.0))):
            raise GatekitError(f"{source}: column {label!r} is not 0/1; declare a label rule with "
                               f"--label-above X or --label-relative R")
        return Labels(outcome.astype(int), None, groups, {"outcome": label, "kind": "binary"})
    require_finite(outcome, label, source)
    if label_above is not None:
        x = R.check_number(label_above, "--label-above")
        return Labels((outcome > x).astype(int), outcome, groups,
                      {"outcome": label, "kind": "above", "value": x, "text": f"{label} > {x:g}"})
    r = R.check_number(label_relative, "--label-relative")
    if not 0 < r <= 1:
        raise GatekitError(f"--label-relative must be in (0, 1], got {label_relative!r}")
    if groups is None:
        raise GatekitError("--label-relative needs --group (the outcome is relative to each group's best)")
    best = {g: outcome[groups == g].max() for g in np.unique(groups)}
    cut = np.array([r * best[g] for g in groups])
    return Labels((outcome >= cut).astype(int), outcome, groups,
                  {"outcome": label, "kind": "relative", "value": r, "group": group,
                   "text": f"{label} >= {r:g} x the best {label} of the same {group}"})


def defined(rows, name, source) -> tuple[np.ndarray, np.ndarray, str | None]:
    """A statistic's values where it is defined. Empty cells (e.g. ``*_prev`` at a run's first
    checkpoint, which has no previous one) are dropped with a note; NaN/inf is an error."""
    values = column(rows, name, source)
    keep = np.array([r.get(name) is not None and r.get(name) != "" for r in rows])
    require_finite(values[keep], name, source)
    note = None
    if not keep.all():
        note = f"{int((~keep).sum())} row(s) without a {name} value (not defined there) were left out"
    return values[keep], keep, note


def baseline_name(rows, baseline, source) -> str | None:
    if baseline is None:
        return None
    if baseline != "auto":
        if not any(baseline in r for r in rows):
            raise GatekitError(f"{source}: no baseline column {baseline!r}")
        return baseline
    return next((c for c in BASELINES if any(c in r for r in rows)), None)


def numeric_columns(rows: list[dict], exclude: Iterable[str] = ()) -> list[str]:
    """Columns whose every cell is a finite number (candidates for a gate statistic)."""
    skip = set(exclude) | NOT_STATISTICS
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    out = []
    for c in cols:
        if c in skip or c.startswith("student"):
            continue
        vals = [r.get(c) for r in rows if r.get(c) is not None and r.get(c) != ""]
        if len(vals) >= len(rows) / 2 and len(set(vals)) > 1 and \
                all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in vals):
            out.append(c)
    return out



def _key(row: dict, source: str, i: int) -> tuple[str, int]:
    run = row.get("run_path") or row.get("run")
    step = row.get("step")
    if run in (None, "") or isinstance(step, bool) or not isinstance(step, (int, float)) or step != int(step):
        raise GatekitError(f"{source} row {i + 1}: needs a run (or run_path) and an integer step, "
                           f"got run={run!r} step={step!r}")
    return str(run), int(step)


def join(score_rows: list[dict], student_rows: list[dict], *, scores: str = "scores",
         students: str = "students") -> tuple[list[dict], list[str]]:
    """Teacher score rows joined with student-outcome rows on (run, step): a run matches by its
    ``run_path`` or its ``run`` name. Returns the joined rows (score columns, then the student
    columns not already present) and one message per student row that matched no checkpoint.
    Ambiguity is refused, naming the rows: two score rows for one checkpoint, or a student row
    whose run name matches checkpoints of two different runs (``A/t0`` and ``B/t0``: give the
    ``run_path``)."""
    index: dict[tuple[str, int], list[tuple[int, dict]]] = {}
    seen: dict[tuple[str, int], int] = {}
    for i, r in enumerate(score_rows):
        ident = (str(r.get("run_path") or r.get("run")), _key(r, scores, i)[1])
        if ident in seen:
            raise GatekitError(f"{scores}: rows {seen[ident] + 1} and {i + 1} are the same checkpoint "
                               f"{ident[0]}@{ident[1]}; keep one")
        seen[ident] = i
        for name in {r.get("run_path"), r.get("run")} - {None, ""}:
            index.setdefault((str(name), ident[1]), []).append((i, r))
    joined, unmatched = [], []
    for i, s in enumerate(student_rows):
        key = _key(s, students, i)
        matches = index.get(key, [])
        if len(matches) > 1:
            where = ", ".join(str(m.get("run_path") or m.get("run")) for _, m in matches)
            raise GatekitError(f"{students} row {i + 1}: run {key[0]!r} at step {key[1]} matches {len(matches)} "
                               f"checkpoints of {scores} ({where}); name the run by its run_path")
        teacher = matches[0][1] if matches else None
        if teacher is None:
            unmatched.append(f"{students} row {i + 1}: no scored checkpoint {key[0]}@{key[1]} in {scores}")
            continue
        joined.append({**teacher, **{k: v for k, v in s.items() if k not in teacher}})
    if not joined:
        raise GatekitError(f"{students}: no row matches a checkpoint of {scores} on (run, step)")
    return joined, unmatched
