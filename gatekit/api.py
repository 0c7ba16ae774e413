"""The Python API in one place: score, select, fit, plot (what the CLI calls)."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Iterable, Mapping, Sequence

import numpy as np

from gatekit import checkpoints as io
from gatekit import gate as gate_mod
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


def resolve_gate(gate=None, *, threshold=None, metric="action_magnitude", mode="below", patience=None,
                 default_env: str | None = None) -> gate_mod.Gate:
    """The gate to apply: a Gate, a gate file or preset name, or a one-off rule from
    ``threshold``/``metric``/``mode``. With neither, the built-in preset for ``default_env`` when
    one exists (e.g. ``pointmaze``); otherwise GatekitError asking for a gate."""
    if gate is not None and threshold is not None:
        raise GatekitError("give either a gate (--gate) or a one-off rule (--threshold), not both")
    if gate is None and threshold is None:
        if default_env and default_env in io.preset_names() and default_env != "paper":
            gate = default_env
        else:
            raise GatekitError(
                "no gate given: pass --gate FILE (fitted with `gatekit fit --save`) or a preset "
                f"({', '.join(io.preset_names())}), or a one-off rule with --threshold/--metric/--mode"
            )
    if gate is None:
        g = gate_mod.Gate(metric=metric, direction=mode, threshold=threshold, patience=patience or 1,
                          name="one-off rule", description="given on the command line; not fitted")
    elif isinstance(gate, gate_mod.Gate):
        g = gate
    else:
        g = io.read_gate(gate)
    if patience is not None and patience != g.patience:
        g = dataclasses.replace(g, patience=patience)
    return g


def _single_env(rows: list[dict]) -> str | None:
    envs = {r.get("env") for r in rows if r.get("env")}
    return envs.pop() if len(envs) == 1 else None


def select(
    sources: ScoreTable | Iterable[Mapping] | Sequence[str | pathlib.Path],
    *,
    gate: gate_mod.Gate | str | pathlib.Path | None = None,
    threshold: float | None = None,
    metric: str = "action_magnitude",
    mode: str = "below",
    patience: int | None = None,
    role: str = "teacher",
    **score_kwargs,
) -> gate_mod.Selection:
    """Recommends the teacher checkpoint: from a ScoreTable, rows, or run dirs / score tables.

    ``gate`` is a :class:`Gate`, a ``gatekit-gate/1`` file or a preset name (``paper``,
    ``pointmaze``); ``threshold``/``metric``/``mode`` make a one-off rule instead. With neither,
    the built-in gate of the runs' env is used when gatekit ships one.
    """
    if isinstance(sources, (str, pathlib.Path)):
        sources = [sources]
    sources = list(sources)
    if sources and isinstance(sources[0], (str, pathlib.Path)):
        rows = load_scores(sources, **score_kwargs)
    else:
        rows = list(sources)
    g = resolve_gate(gate, threshold=threshold, metric=metric, mode=mode, patience=patience,
                     default_env=_single_env(rows))
    return gate_mod.select(rows, gate=g, role=role)


def _column(rows: list[dict], name: str, source: str) -> np.ndarray:
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


def _missing_rows(arr: np.ndarray, name: str, source: str) -> None:
    bad = np.flatnonzero(~np.isfinite(arr))
    if len(bad):
        raise GatekitError(f"{source}: column {name!r} is empty or non-finite in row(s) "
                           f"{(bad[:8] + 1).tolist()}{' ...' if len(bad) > 8 else ''}")


BASELINE_COLUMNS = ("step", "env_steps", "epoch")
NOT_STATISTICS = {"seed", "teacher_seed", "student_seed", "wall_time", "score_seconds", "run", "role", "env",
                  "run_path", "teacher_step", "train_env_steps_per_second", "train_updates_per_second",
                  "train_lambda_pi", "refill_env_steps"}


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
    outcome = _column(rows, label, source)
    groups = None
    if group is not None:
        if not any(group in r for r in rows):
            raise GatekitError(f"{source}: no column {group!r} (--group)")
        groups = np.asarray([str(r.get(group)) for r in rows])
    if label_above is not None and label_relative is not None:
        raise GatekitError("give one label rule: --label-above or --label-relative, not both")
    if label_above is None and label_relative is None:
        _missing_rows(outcome, label, source)
        if not np.all(np.isin(outcome, (0.0, 1.0))):
            raise GatekitError(f"{source}: column {label!r} is not 0/1; declare a label rule with "
                               f"--label-above X or --label-relative R")
        return Labels(outcome.astype(int), None, groups, {"outcome": label, "kind": "binary"})
    _missing_rows(outcome, label, source)
    if label_above is not None:
        x = gate_mod._check_threshold(label_above, "--label-above")
        return Labels((outcome > x).astype(int), outcome, groups,
                      {"outcome": label, "kind": "above", "value": x, "text": f"{label} > {x:g}"})
    r = gate_mod._check_threshold(label_relative, "--label-relative")
    if not 0 < r <= 1:
        raise GatekitError(f"--label-relative must be in (0, 1], got {label_relative!r}")
    if groups is None:
        raise GatekitError("--label-relative needs --group (the outcome is relative to each group's best)")
    best = {g: outcome[groups == g].max() for g in np.unique(groups)}
    cut = np.array([r * best[g] for g in groups])
    return Labels((outcome >= cut).astype(int), outcome, groups,
                  {"outcome": label, "kind": "relative", "value": r, "group": group,
                   "text": f"{label} >= {r:g} x the best {label} of the same {group}"})


def fit(
    table: str | pathlib.Path | Sequence[Mapping],
    *,
    label: str,
    metric: str = "action_magnitude",
    label_above: float | None = None,
    label_relative: float | None = None,
    group: str | None = None,
    direction: str = "below",
    fixed_threshold: float | None = None,
    baseline: str | None = "auto",
    n_boot: int = 2000,
    rng: int = 0,
) -> gate_mod.FitResult:
    """Fits the gate from a table of (teacher metric, student outcome) rows.

    The label rule is declared: ``label`` is a 0/1 column, or a continuous outcome binarized as
    ``outcome > label_above`` or ``outcome >= label_relative x`` its group's best. ``group``
    (teacher seed) enables the cluster bootstrap and out-of-fold (leave-one-group-out)
    validation, where ``direction="auto"`` is chosen inside each fold. ``baseline`` (default: the
    table's ``step``, else ``env_steps`` or ``epoch``) is fitted the same way and compared.
    """
    source = str(table) if isinstance(table, (str, pathlib.Path)) else "table"
    rows = io.read_table(table) if isinstance(table, (str, pathlib.Path)) else list(table)
    lab = make_labels(rows, label=label, label_above=label_above, label_relative=label_relative, group=group,
                      source=source)
    values, keep, note = _defined(rows, metric, source)
    lab = lab.subset(keep)
    base_name = _baseline_name(rows, baseline, source)
    base = None
    if base_name is not None and lab.groups is not None:
        base = _column(rows, base_name, source)[keep]
        _missing_rows(base, base_name, source)
    result = gate_mod.fit_threshold(
        values, lab.labels, direction=direction, groups=lab.groups, outcomes=lab.outcomes,
        fixed_threshold=fixed_threshold, baseline=base, baseline_name=base_name or "step", metric=metric,
        n_boot=n_boot, rng=rng,
    )
    return dataclasses.replace(result, label_rule=lab.rule, warnings=result.warnings + ([note] if note else []))


def _defined(rows, name, source) -> tuple[np.ndarray, np.ndarray, str | None]:
    """A statistic's values where it is defined. Empty cells (e.g. ``*_prev`` at a run's first
    checkpoint, which has no previous one) are dropped with a note; NaN/inf is an error."""
    values = _column(rows, name, source)
    keep = np.array([r.get(name) is not None and r.get(name) != "" for r in rows])
    _missing_rows(values[keep], name, source)
    note = None
    if not keep.all():
        note = f"{int((~keep).sum())} row(s) without a {name} value (not defined there) were left out"
    return values[keep], keep, note


def _baseline_name(rows, baseline, source) -> str | None:
    if baseline is None:
        return None
    if baseline != "auto":
        if not any(baseline in r for r in rows):
            raise GatekitError(f"{source}: no baseline column {baseline!r}")
        return baseline
    return next((c for c in BASELINE_COLUMNS if any(c in r for r in rows)), None)


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


def fit_all(
    table: str | pathlib.Path | Sequence[Mapping],
    *,
    label: str,
    label_above: float | None = None,
    label_relative: float | None = None,
    group: str,
    metrics: Sequence[str] | None = None,
    baseline: str | None = "auto",
) -> list[dict]:
    """Every numeric teacher column fitted out of fold (direction chosen per fold), ranked by
    out-of-fold accuracy, then AUC. The baseline (training step) is a row like any other.

    Returns one dict per statistic: metric, timing (online / retrospective), direction (all
    data), threshold, in-sample AUC, out-of-fold accuracy and AUC, beats_baseline.
    """
    from gatekit.metrics import timing

    source = str(table) if isinstance(table, (str, pathlib.Path)) else "table"
    rows = io.read_table(table) if isinstance(table, (str, pathlib.Path)) else list(table)
    lab = make_labels(rows, label=label, label_above=label_above, label_relative=label_relative, group=group,
                      source=source)
    names = list(metrics) if metrics else numeric_columns(rows, exclude=(label, group))
    base_name = _baseline_name(rows, baseline, source)
    if base_name and base_name not in names:
        names.append(base_name)
    out = []
    for name in names:
        try:
            values, keep, _ = _defined(rows, name, source)
            sub = lab.subset(keep)
            r = gate_mod.fit_threshold(values, sub.labels, direction="auto", groups=sub.groups, outcomes=sub.outcomes,
                                       n_boot=0, metric=name)
        except GatekitError as e:
            out.append({"metric": name, "timing": timing(name), "error": str(e)})
            continue
        out.append({
            "metric": name, "timing": timing(name), "direction": r.direction, "threshold": r.threshold,
            "auc_in_sample": r.auc, "oof_accuracy": r.logo["accuracy"] if r.logo else None,
            "oof_auc": r.logo.get("auc") if r.logo else None, "spearman_rho": r.spearman_rho,
            "baseline": name == base_name, "n": r.n,
        })
    ref = next((o for o in out if o.get("baseline")), None)
    for o in out:
        if ref and o.get("oof_accuracy") is not None and ref.get("oof_accuracy") is not None and not o["baseline"]:
            o["beats_baseline"] = o["oof_accuracy"] > ref["oof_accuracy"]
        else:
            o["beats_baseline"] = None
    key = lambda o: (-(o.get("oof_accuracy") or -1), -(o.get("oof_auc") or -1))  # noqa: E731
    return sorted(out, key=key)


def online_candidates(rows: list[dict]) -> list[str]:
    """gatekit's zero-cost online statistics present in a table (policy, representation, drift)."""
    from gatekit.metrics import METRIC_NAMES, timing

    return [m for m in METRIC_NAMES if timing(m) == "online" and any(r.get(m) is not None for r in rows)]


def fit_nested(
    table: str | pathlib.Path | Sequence[Mapping],
    *,
    label: str,
    group: str,
    label_above: float | None = None,
    label_relative: float | None = None,
    candidates: Sequence[str] | None = None,
    baseline: str | None = "auto",
) -> dict:
    """Nested out-of-fold selection of the gate statistic (:func:`gatekit.gate.select_statistic`)
    among ``candidates`` (default: gatekit's zero-cost online statistics), beside the step
    baseline fitted out of fold the same way."""
    source = str(table) if isinstance(table, (str, pathlib.Path)) else "table"
    rows = io.read_table(table) if isinstance(table, (str, pathlib.Path)) else list(table)
    lab = make_labels(rows, label=label, label_above=label_above, label_relative=label_relative, group=group,
                      source=source)
    names = list(candidates) if candidates else online_candidates(rows)
    cols = {n: _column(rows, n, source) for n in names}
    result = gate_mod.select_statistic(cols, lab.labels, lab.groups)
    base_name = _baseline_name(rows, baseline, source)
    if base_name:
        b = _column(rows, base_name, source)
        _missing_rows(b, base_name, source)
        result["baseline"] = {"metric": base_name, **gate_mod.leave_one_group_out(b, lab.labels, lab.groups,
                                                                                  direction="auto")}
        result["beats_baseline"] = result["accuracy"] > result["baseline"]["accuracy"]
    result.update(candidates=names, label_rule=lab.rule, n_positive=int(lab.labels.sum()))
    return result


def format_fit_all(ranking: list[dict]) -> str:
    """The ranking of :func:`fit_all` as a text table."""
    w = max([len("metric")] + [len(o["metric"]) for o in ranking]) + 2
    head = f"{'metric':<{w}}{'timing':<15}{'dir':<7}{'threshold':>11}{'AUC(in)':>9}{'OOF acc':>9}{'OOF AUC':>9}  beats baseline"
    lines = [head]
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for o in ranking:
        if "error" in o:
            lines.append(f"{o['metric']:<{w}}{o['timing']:<15}skipped: {o['error']}")
            continue
        beats = "(baseline)" if o["baseline"] else {True: "yes", False: "no", None: "-"}[o["beats_baseline"]]
        lines.append(f"{o['metric']:<{w}}{o['timing']:<15}{o['direction']:<7}{o['threshold']:>11.4g}"
                     f"{f(o['auc_in_sample']):>9}{f(o['oof_accuracy']):>9}{f(o['oof_auc']):>9}  {beats}")
    return "\n".join(lines)


def save_gate(result: gate_mod.FitResult, path, *, table=None, patience: int = 1, name: str | None = None,
              description: str = "", env: str | None = None) -> gate_mod.Gate:
    """Writes the fitted rule as a ``gatekit-gate/1`` file, recording the table it came from."""
    fitted_on = {"n": result.n, "groups": result.n_groups}
    if isinstance(table, (str, pathlib.Path)):
        fitted_on.update(file=pathlib.Path(table).name, sha256=io.sha256_file(table))
    g = gate_mod.Gate.from_fit(result, patience=patience, name=name, description=description, env=env,
                               fitted_on=fitted_on)
    io.write_gate(g, path)
    return g


def plot(
    sources: Sequence,
    out,
    *,
    metric: str | None = None,
    threshold: float | None = None,
    x: str = "step",
    gate: gate_mod.Gate | str | pathlib.Path | None = None,
    role: str = "teacher",
    **score_kwargs,
) -> pathlib.Path:
    """Metric vs step, one line per run (teachers by default; ``role="any"`` for all).

    A threshold line is drawn only when asked for: ``threshold``, or ``gate`` (then the metric
    defaults to the gate's, the passing side is shaded and the selected checkpoint is starred).
    """
    from gatekit import plotting

    rows = load_scores(list(sources), **score_kwargs)
    if role != "any":
        rows = [r for r in rows if (r.get("role") or "teacher") == role] or rows
    g = resolve_gate(gate) if gate is not None else None
    metric = metric or (g.metric if g else "action_magnitude")
    selected, passes = None, None
    if g is not None:
        if g.metric != metric:
            raise GatekitError(f"--gate is on {g.metric!r} but --metric is {metric!r}")
        threshold, passes = g.threshold, g.direction
        sel = gate_mod.select(rows, gate=g, role="any")
        if sel.ready:
            selected = (sel.run_path, sel.step) if x == "step" else None
    thresholds = {"threshold" if g is None else f"gate ({g.name or 'rule'})": threshold} if threshold is not None else None
    return plotting.plot_metric_vs_step(rows, out, metric=metric, thresholds=thresholds, x=x, passes=passes,
                                        selected=selected)
