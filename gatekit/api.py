"""The Python API in one place: score, select, fit, plot (what the CLI calls)."""

from __future__ import annotations

import pathlib
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from gatekit import checkpoints as io
from gatekit import gate
from gatekit.errors import GatekitError
from gatekit.scoring import ScoreTable, score

TABLE_SUFFIXES = (".csv", ".json")


def is_table(path) -> bool:
    p = pathlib.Path(path)
    return p.is_file() and p.suffix.lower() in TABLE_SUFFIXES


def load_scores(sources: Sequence, **score_kwargs) -> list[dict]:
    """Rows from score tables (CSV/JSON files) and/or run directories (scored now)."""
    rows: list[dict] = []
    runs = [s for s in sources if not is_table(s)]
    for s in sources:
        if is_table(s):
            rows += io.read_table(s)
    if runs:
        rows += score(runs, **score_kwargs).rows
    return rows


def select(
    sources: ScoreTable | Iterable[Mapping] | Sequence[str | pathlib.Path],
    *,
    threshold: float = 0.63,
    metric: str = "action_magnitude",
    mode: str = "below",
    patience: int = 1,
    **score_kwargs,
) -> gate.Selection:
    """Recommends the teacher checkpoint: from a ScoreTable, rows, or run dirs / score tables."""
    if isinstance(sources, (str, pathlib.Path)):
        sources = [sources]
    sources = list(sources)
    if sources and isinstance(sources[0], (str, pathlib.Path)):
        rows = load_scores(sources, **score_kwargs)
    else:
        rows = list(sources)
    return gate.select(rows, threshold=threshold, metric=metric, mode=mode, patience=patience)


def _column(rows: list[dict], name: str, source: str) -> np.ndarray:
    if not rows:
        raise GatekitError(f"{source}: the table has no rows")
    if not any(name in r for r in rows):
        raise GatekitError(f"{source}: no column {name!r}; columns: {', '.join(rows[0])}")
    out = []
    for i, r in enumerate(rows):
        v = r.get(name)
        try:
            out.append(np.nan if v is None else float(v))
        except (TypeError, ValueError):
            raise GatekitError(f"{source}: row {i + 1} column {name!r} is not a number: {v!r}") from None
    return np.asarray(out)


def fit(
    table: str | pathlib.Path | Sequence[Mapping],
    *,
    label: str,
    metric: str = "action_magnitude",
    label_above: float | None = None,
    group: str | None = None,
    direction: str = "below",
    fixed_threshold: float | None = 0.63,
    n_boot: int = 2000,
    rng: int = 0,
) -> gate.FitResult:
    """Fits the gate from a table of (teacher metric, student outcome) rows.

    ``label`` is a 0/1 column, or a continuous outcome binarized as ``outcome > label_above``
    (the continuous values then feed Spearman rho). ``group`` (e.g. teacher seed) enables the
    cluster bootstrap and leave-one-group-out accuracy.
    """
    source = str(table) if isinstance(table, (str, pathlib.Path)) else "table"
    rows = io.read_table(table) if isinstance(table, (str, pathlib.Path)) else list(table)
    values = _column(rows, metric, source)
    outcome = _column(rows, label, source)
    if label_above is None:
        if not np.all(np.isin(outcome, (0.0, 1.0))):
            raise GatekitError(
                f"{source}: column {label!r} is not 0/1; pass label_above (--label-above) to binarize it"
            )
        labels, outcomes = outcome.astype(int), None
    else:
        if not np.all(np.isfinite(outcome)):
            raise GatekitError(f"{source}: column {label!r} has missing or non-finite values")
        labels, outcomes = (outcome > label_above).astype(int), outcome
    groups = None
    if group is not None:
        if not any(group in r for r in rows):
            raise GatekitError(f"{source}: no column {group!r}")
        groups = np.asarray([str(r.get(group)) for r in rows])
    return gate.fit_threshold(
        values,
        labels,
        direction=direction,
        groups=groups,
        outcomes=outcomes,
        fixed_threshold=fixed_threshold,
        n_boot=n_boot,
        rng=rng,
    )


def plot(
    sources: Sequence,
    out,
    *,
    metric: str = "action_magnitude",
    threshold: float | None = 0.63,
    x: str = "step",
    **score_kwargs,
) -> pathlib.Path:
    """Metric vs step per run (from run dirs or score tables), with the threshold line."""
    from gatekit import plotting

    rows = load_scores(list(sources), **score_kwargs)
    thresholds = {"threshold": threshold} if threshold is not None else None
    return plotting.plot_metric_vs_step(rows, out, metric=metric, thresholds=thresholds, x=x)
