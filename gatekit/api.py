"""The Python API, the facade the CLI calls: score, select, fit, plot. Which gate applies is
:mod:`gatekit.resolve`."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Iterable, Mapping, Sequence

import numpy as np

from gatekit import fitting, io, selection
from gatekit import rule as R
from gatekit.errors import GatekitError
from gatekit.fitting import FitResult
from gatekit.io.gates import Gate
from gatekit.scoretable import ScoreTable
from gatekit.resolve import (DEFAULT_GATE, FINAL_GATE, PAPER_GATE, default_metric, is_table,  # noqa: F401
                             resolve_gate, scores_run_folders, single_env, sources_env)
from gatekit.scoring import score
from gatekit.pairs import (baseline_name, column, defined, make_labels, numeric_columns, read_rows,
                           require_finite)
from gatekit.statistics import REGISTRY, timing

def load_scores(sources: Sequence, *, problems: list | None = None, notes: list | None = None,
                **score_kwargs) -> list[dict]:
    """Rows from score tables (CSV/JSON files) and/or run directories (scored now). Checkpoints
    and runs that scoring skipped are appended to ``problems``, and scoring's notes to ``notes``,
    when lists are given."""
    rows: list[dict] = []
    runs = [s for s in sources if not is_table(s)]
    for s in sources:
        if is_table(s):
            rows += io.read_table(s)
    if runs:
        table = score(runs, **score_kwargs)
        rows += table.rows
        if problems is not None:
            problems += table.problems
        if notes is not None:
            notes += table.notes
    return rows


def _rows(sources, score_kwargs: dict, problems: list, notes: list | None = None) -> list[dict]:
    """Rows of a ScoreTable or row dicts as given; run dirs / score tables scored or read (what
    scoring skipped goes into ``problems``, its notes into ``notes``)."""
    if isinstance(sources, ScoreTable):
        problems += sources.problems
        if notes is not None:
            notes += sources.notes
    if isinstance(sources, (str, pathlib.Path)):
        sources = [sources]
    sources = list(sources)
    if sources and isinstance(sources[0], (str, pathlib.Path)):
        return load_scores(sources, problems=problems, notes=notes, **score_kwargs)
    return sources


def select(
    sources: ScoreTable | Iterable[Mapping] | Sequence[str | pathlib.Path],
    *,
    gate: Gate | str | pathlib.Path | None = None,
    threshold: float | None = None,
    metric: str | None = None,
    direction: str = "below",
    patience: int | None = None,
    role: str = "teacher",
    mode: str | None = None,
    **score_kwargs,
) -> selection.Selection:
    """Recommends the teacher checkpoint: from a ScoreTable, rows, or run dirs / score tables.

    ``gate`` is a :class:`Gate`, a ``gatekit-gate/1`` file or a preset name (``paper``,
    ``pointmaze``); ``threshold``/``metric``/``direction`` make a one-off rule instead (a bare
    ``threshold``: the paper's |tanh mu| rule). With neither, the default answer
    (:func:`gatekit.resolve.resolve_gate`): the zero-cost rule with the best held-out record for
    choosing (``auto`` where it beats the final checkpoint, else ``final``), with that record and
    what measuring would buy. A gate given explicitly is resolved (and checked) before any scoring.
    """
    R.check_direction(role, selection.ROLES, what="role")
    given = gate is not None or threshold is not None
    g = resolve_gate(gate, threshold=threshold, metric=metric, direction=direction, patience=patience,
                     mode=mode, check_known=scores_run_folders(sources)) if given else None
    problems: list = []
    if role == "teacher" and scores_run_folders(sources):  # score only the runs it will consider
        score_kwargs = {**score_kwargs, "roles": ("teacher",)}
    notes: list = []
    rows = _rows(sources, score_kwargs, problems, notes)
    if g is None:
        g = resolve_gate(None, patience=patience, default_env=single_env(rows))
    sel = selection.select(rows, gate=g, role=role)
    unverified = [n for n in notes if "carry no checksums" in n]  # the answer rests on files nobody can verify
    return dataclasses.replace(sel, skipped=[str(p) for p in problems], warnings=[*sel.warnings, *unverified])


def fit(
    table: str | pathlib.Path | Sequence[Mapping],
    *,
    label: str,
    metric: str | None = None,
    label_above: float | None = None,
    label_relative: float | None = None,
    group: str | None = None,
    direction: str = "below",
    fixed_threshold: float | None = None,
    baseline: str | None = "auto",
    n_boot: int = 2000,
    rng: int = 0,
) -> FitResult:
    """Fits the gate from a table of (teacher metric, student outcome) rows.

    The label rule is declared: ``label`` is a 0/1 column, or a continuous outcome binarized as
    ``outcome > label_above`` or ``outcome >= label_relative x`` its group's best. ``group``
    (teacher seed) enables the cluster bootstrap and out-of-fold (leave-one-group-out)
    validation, where ``direction="auto"`` is chosen inside each fold. ``baseline`` (default: the
    table's ``step``, else ``env_steps`` or ``epoch``) is fitted the same way and compared.
    """
    if fixed_threshold is not None:
        R.check_number(fixed_threshold, "fixed threshold")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise GatekitError(f"--n-boot must be an integer >= 0, got {n_boot!r}")
    source, rows = read_rows(table)
    lab = make_labels(rows, label=label, label_above=label_above, label_relative=label_relative, group=group,
                      source=source)
    metric = metric or default_metric(single_env(rows))
    values, keep, note = defined(rows, metric, source)
    lab = lab.subset(keep)
    base_name = baseline_name(rows, baseline, source)
    base = None
    if base_name is not None and lab.groups is not None:
        base = column(rows, base_name, source)[keep]
        require_finite(base, base_name, source)
    result = fitting.fit_threshold(
        values, lab.labels, direction=direction, groups=lab.groups, outcomes=lab.outcomes,
        fixed_threshold=fixed_threshold, baseline=base, baseline_name=base_name or "step", metric=metric,
        n_boot=n_boot, rng=rng,
    )
    return dataclasses.replace(result, label_rule=lab.rule, warnings=result.warnings + ([note] if note else []))


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
    source, rows = read_rows(table)
    lab = make_labels(rows, label=label, label_above=label_above, label_relative=label_relative, group=group,
                      source=source)
    names = list(metrics) if metrics else numeric_columns(rows, exclude=(label, group))
    base_name = baseline_name(rows, baseline, source)
    if base_name and base_name not in names:
        names.append(base_name)
    out = []
    for name in names:
        try:
            values, keep, _ = defined(rows, name, source)
            sub = lab.subset(keep)
            r = fitting.fit_threshold(values, sub.labels, direction="auto", groups=sub.groups, outcomes=sub.outcomes,
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
    return [s.name for s in REGISTRY if s.timing == "online" and any(r.get(s.name) is not None for r in rows)]


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
    """Nested out-of-fold selection of the gate statistic (:func:`gatekit.fitting.select_statistic`)
    among ``candidates`` (default: gatekit's zero-cost online statistics), beside the step
    baseline fitted out of fold the same way."""
    source, rows = read_rows(table)
    lab = make_labels(rows, label=label, label_above=label_above, label_relative=label_relative, group=group,
                      source=source)
    names = list(candidates) if candidates else online_candidates(rows)
    cols = {n: column(rows, n, source) for n in names}
    result = fitting.select_statistic(cols, lab.labels, lab.groups)
    base_name = baseline_name(rows, baseline, source)
    if base_name:
        b = column(rows, base_name, source)
        require_finite(b, base_name, source)
        result["baseline"] = {"metric": base_name, **fitting.leave_one_group_out(b, lab.labels, lab.groups,
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


def save_gate(result: FitResult, path, *, table=None, patience: int = 1, name: str | None = None,
              description: str = "", env: str | None = None) -> Gate:
    """Writes the fitted rule as a ``gatekit-gate/1`` file, recording the table it came from."""
    fitted_on = {"n": result.n, "groups": result.n_groups}
    if isinstance(table, (str, pathlib.Path)):
        fitted_on.update(file=pathlib.Path(table).name, sha256=io.sha256_file(table))
    g = Gate.from_fit(result, patience=patience, name=name, description=description, env=env,
                               fitted_on=fitted_on)
    io.write_gate(g, path)
    return g


def plot(
    sources: ScoreTable | Iterable[Mapping] | Sequence[str | pathlib.Path],
    out,
    *,
    metric: str | None = None,
    threshold: float | None = None,
    x: str = "step",
    gate: Gate | str | pathlib.Path | None = None,
    role: str = "teacher",
    selected: selection.Selection | None = None,
    problems: list | None = None,
    **score_kwargs,
) -> pathlib.Path:
    """Metric vs step, one line per run (teachers by default; ``role="any"`` for all).

    ``sources``: a ScoreTable or rows, or run dirs / score tables (scored or read now). A
    threshold line is drawn only when asked for: ``threshold``, or ``gate`` (then the metric
    defaults to the gate's, the passing side is shaded and the selected checkpoint is starred;
    pass ``selected``, the :func:`select` answer already in hand, to avoid selecting again).
    What scoring skipped is appended to ``problems`` when a list is given.
    """
    from gatekit import plotting

    if gate is not None and threshold is not None:
        raise GatekitError("give either --gate or --threshold, not both")
    if threshold is not None:
        R.check_number(threshold, "--threshold")
    g = resolve_gate(gate) if gate is not None else None
    if metric is None and g is None and scores_run_folders(sources):  # known before any scoring
        metric = default_metric(sources_env(sources))
    rows = selection.rows_with_role(_rows(sources, score_kwargs, problems if problems is not None else []), role)
    metric = metric or (g.metric if g else default_metric(single_env(rows)))
    star, passes = None, None
    if g is not None:
        if g.metric != metric:
            raise GatekitError(f"--gate is on {g.metric!r} but --metric is {metric!r}")
        threshold, passes = g.threshold, g.direction
        sel = selected if selected is not None else selection.select(rows, gate=g, role="any")
        if sel.ready:
            star = (sel.run_path, sel.step) if x == "step" else None
        if g.transform != "raw":  # the threshold is on the transformed values: plot those
            rows, metric = transformed_rows(rows, g), g.reads
    thresholds = {"threshold" if g is None else f"gate ({g.name or 'rule'})": threshold} if threshold is not None else None
    return plotting.plot_metric_vs_step(rows, out, metric=metric, thresholds=thresholds, x=x, passes=passes,
                                        selected=star, selected_note=held_note(g))


def held_note(g: Gate | None) -> str:
    """Why the star is where it is: the gate's patience (the pick is where it has held that long)."""
    return f" (the gate held {g.patience} checkpoints in a row)" if g is not None and g.patience > 1 else ""


def transformed_rows(rows: list, gate: Gate) -> list[dict]:
    """Rows with column :attr:`Gate.reads` (e.g. ``ratio_first(m)``): the values the gate's rule
    reads, run by run (:func:`gatekit.selection.gate_values`, the computation ``select`` makes)."""
    by_run: dict[str, list[dict]] = {}
    for r in rows:
        by_run.setdefault(str(r.get("run_path") or r.get("run")), []).append(dict(r))
    out = []
    for rs in by_run.values():
        rs.sort(key=lambda r: r["step"])
        vals, _ = selection.gate_values(gate, [r.get(gate.metric) for r in rs], guard=False)
        out += [{**r, gate.reads: float(v) if np.isfinite(v) else None} for r, v in zip(rs, vals)]
    return out


def race(run, *, out, strategy: str = "last", last: int | None = None, seeds: int | None = None,
         student_epochs: int = 8, rungs: Sequence[int] | None = None, student_cmd: str | None = None,
         outcome_file: str = "outcome.json", outcome_key: str = "outcome", timeout: float | None = None,
         trainer=None, depth: int | None = None, width: int | None = None, sets: Mapping | None = None,
         outcome: str = "eval_success", executor="threads", workers: int | None = None,
         executor_options: Mapping | None = None, progress=None, students: int | None = None) -> dict:
    """Measure which checkpoint of ``run`` to distill from: race students under ``strategy`` (a
    name in :data:`gatekit.racing.STRATEGIES` or a :class:`gatekit.racing.Strategy`), trained by
    ``trainer`` (any object with ``train(checkpoint, seed, epochs, out)``), else ``student_cmd``
    (a command template: :class:`gatekit.racing.CommandTrainer`), else this project's trainer
    (``depth``, ``width``, ``sets``, ``outcome`` describe its student), run through ``executor``
    (a name in :data:`gatekit.racing.EXECUTORS`, or any ``concurrent.futures.Executor``). Every
    option is checked before any student trains. Returns race.json (also written under ``out``)."""
    from gatekit import racing

    if isinstance(strategy, str):
        strategy = racing.make_strategy(strategy, k=last, seeds=seeds, epochs=student_epochs,
                                        rungs=None if rungs is None else tuple(rungs), n=students)
    if isinstance(strategy, racing.GPRace) and not strategy.distances:  # its kernel, from the run's checkpoints
        import dataclasses

        from gatekit import io as gio
        from gatekit.scoring import action_distances

        steps = strategy.candidates(gio.list_checkpoints(gio.read_run(run))[0])
        if progress:
            progress(f"GP race: the teacher's action distances between its last {len(steps)} checkpoints")
        d = action_distances(run, steps)
        strategy = dataclasses.replace(strategy, distances=tuple(map(tuple, d.tolist())))
    if trainer is None and student_cmd is not None:
        trainer = racing.CommandTrainer(student_cmd, outcome_file=outcome_file, outcome_key=outcome_key,
                                        timeout=timeout)
    elif trainer is None:
        trainer = racing.builtin_trainer(run, student_epochs=student_epochs, depth=depth, width=width,
                                         sets=dict(sets or {}), outcome=outcome)
    elif student_cmd is not None:
        raise GatekitError("give a trainer or --student-cmd, not both")
    per_epoch = getattr(trainer, "seconds_per_epoch", lambda: None)()
    settings = {"seed_base": racing.trainers.SEED_BASE}
    if not isinstance(executor, str):
        return racing.race(run, out=out, strategy=strategy, trainer=trainer, executor=executor, progress=progress,
                           seconds_per_epoch=per_epoch, settings=settings)
    with racing.make_executor(executor, workers=workers, folder=pathlib.Path(out) / "submitit",
                              options=executor_options) as ex:
        return racing.race(run, out=out, strategy=strategy, trainer=trainer, executor=ex, progress=progress,
                           seconds_per_epoch=per_epoch, settings=settings)
