"""The gate benchmark's analysis: the dataset (:mod:`training.bench.grid`) as pairs rows, every
declared rule (:mod:`training.bench.methods`) scored leave-one-task-out with its cost, the table
(``results.md``), the plot, and the presets' records (:func:`ship`, :func:`ship_records`).

Reads nothing but the dataset (``examples/results/gatebench/data``) or an older pairs table.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
import os
import pathlib
import re
import sys
import time

import numpy as np

from gatekit import io as gio
from gatekit.errors import GatekitError
from training.bench import catalog, grid, methods, races


def rows_from_task(bt) -> list[dict]:
    """A dataset task as pairs rows (one per teacher checkpoint: the checkpoint's columns, its
    ``fraction`` of the budget, the students' final outcome per seed and mean, the pilots
    ``pilot{e}_s{k}`` = student k after epoch e, the no-teacher baseline's final mean)."""
    names = [str(c) for c in bt.columns]
    vals, steps, fraction = bt.at_checkpoints(bt.values), bt.checkpoint_step, bt.fraction
    derived = bt.arrays.get("derived")
    dnames = [str(c) for c in bt.arrays.get("derived_columns", [])]
    wall = bt.at_checkpoints(np.cumsum(bt.epoch_seconds, axis=1))
    far = bt.meta.get("outcome") == "far_time_at_goal"
    dist = teacher_action_distances(bt.arrays["teacher_mu"]) if "teacher_mu" in bt.arrays else None
    rows = []
    for t, (c, s) in enumerate(bt.teachers):
        for k in range(steps.shape[1]):
            final = bt.student[t, k, :, -1].astype(float)
            row = {"task": bt.name, "config": c, "teacher_seed": s, "step": int(steps[t, k]),
                   "fraction": float(fraction[t, k]), "wall_time": float(wall[t, k])}
            row.update({n: None if not np.isfinite(v) else float(v) for n, v in zip(names, vals[t, k])})
            if derived is not None:  # computed on the task's fixed probe: these replace the sample-based ones
                row.update({n: None if not np.isfinite(v) else float(v) for n, v in zip(dnames, derived[t, k])})
            row["teacher_eval_success"] = row.get("eval_success")
            if dist is not None:  # the GP race's kernel (races.GPRace)
                row.update({f"action_dist_c{j}": float(v) for j, v in enumerate(dist[t, k])})
            if far:
                row["teacher_far_time_at_goal"] = float(bt.teacher_outcome[t, k])
            row.update(student_outcome=float(final.mean()),
                       student_std=float(final.std(ddof=1)) if final.size > 1 else 0.0,
                       baseline_outcome=float(bt.baseline[:, -1].mean()))
            row.update({f"student_outcome_s{j}": float(v) for j, v in enumerate(final)})
            for e in grid.PILOT_EPOCHS:
                if e < bt.student.shape[-1]:
                    row.update({f"pilot{e}_s{j}": float(v) for j, v in enumerate(bt.student[t, k, :, e - 1])})
            for e in range(1, bt.student.shape[-1] + 1):  # the full curves (successive halving reads them)
                row.update({f"student_e{e}_s{j}": float(v) for j, v in enumerate(bt.student[t, k, :, e - 1])})
            rows.append(row)
    return rows


def teacher_action_distances(mu: np.ndarray) -> np.ndarray:
    """[T, C, C]: for each teacher, the mean over the probe of |tanh(mu_i) - tanh(mu_j)| (L2 over
    action dimensions) between its benchmarked checkpoints; ``mu`` [T, C, P, A] policy means."""
    from gatekit.metrics import action_distances

    return np.stack([action_distances(x) for x in np.asarray(mu, np.float32)])


def collect(out, data=grid.DATA_DIR) -> list[dict]:
    """``out/pairs.csv`` and ``out/teachers.csv`` (each teacher's recorded eval per epoch, the
    plateau evidence) from every task in the dataset; returns the pairs rows."""
    out = pathlib.Path(out)
    if not pathlib.Path(data).is_dir() or not any(pathlib.Path(data).glob("*.npz")):
        return []
    tasks = gio.read_benchmark(data)
    rows = [r for bt in tasks.values() for r in rows_from_task(bt)]
    curves = []
    for bt in tasks.values():
        ev = bt.column("eval_success")
        curves += [{"task": bt.name, "config": c, "teacher_seed": s, "epoch": e + 1, "eval_success": float(v)}
                   for t, (c, s) in enumerate(bt.teachers) for e, v in enumerate(ev[t])]
    gio.write_table(rows, out / "pairs.csv")
    gio.write_table(curves, out / "teachers.csv")
    return rows


def plot(out) -> pathlib.Path:
    """``DIR/students.png``: per task, the students' mean outcome against the teacher checkpoint's
    fraction of its budget, one line per teacher run (colour: config), the no-teacher baseline
    dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = pathlib.Path(out)
    rows = gio.read_table(out / "pairs.csv")
    tasks = [t for t in grid.TASKS if any(r["task"] == t for r in rows)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.4), squeeze=False)
    colours = dict(zip(grid.CONFIGS, ("C0", "C1", "C2")))
    for ax, t in zip(axes[0], tasks):
        mine = [r for r in rows if r["task"] == t]
        for c, s in sorted({(r["config"], r["teacher_seed"]) for r in mine}):
            rs = sorted((r for r in mine if (r["config"], r["teacher_seed"]) == (c, s)), key=lambda r: r["step"])
            ax.plot([r["fraction"] for r in rs], [r["student_outcome"] for r in rs], "o-", ms=3, color=colours.get(c),
                    label=f"{c}" if s == grid.TEACHER_SEEDS[0] else None)
        ax.axhline(mine[0]["baseline_outcome"], color="k", ls="--", lw=1, label="no teacher")
        ax.set(title=t, xlabel="teacher checkpoint (fraction of its budget)",
               ylabel=f"student {grid.TASKS[t].candidate.outcome} (mean of {grid.STUDENT_SEEDS})", xlim=(0, 1.02))
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "students.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


FLOOR = 0.1
"""Regret (%) below which the frontier plot draws a point at the floor (its axis is logarithmic)."""
FRONTIER_KINDS = {"baseline": ("k", "s"), "statistic": ("C0", "o"), "model": ("C0", "D"), "pilot": ("C1", "^"),
                  "measured": ("C2", "v")}


TARGETS = {"choose_success": 0.75, "choose_regret": 0.04, "choose_cost": 0.15, "zero_cost_regret_cut": 0.30}
"""Issue 32's targets for choosing, held out by task: >= 0.75 right with mean regret <= 4% at
<= 0.15 of a teacher in extra work; a zero-cost rule with mean regret >= 30% below the final
checkpoint's. The frontier plot draws both, so a miss shows by how much."""


def _runnable(r: dict) -> bool:
    """A rule a user can run as declared: not one statistic's row, picked after seeing every
    held-out result (only "best statistic", chosen inside each fold, counts)."""
    return r["kind"] != "statistic" or r["method"].startswith(("best statistic", "paper rule"))


def plot_frontier(out) -> pathlib.Path:
    """``out/frontier.png``: every rule's held-out *choose* mean regret (lower is better; 95%
    bootstrap interval over tasks) against its extra cost (share of one teacher's training), from
    ``out/results.json``; the ceiling (the best of the other full students) as a dashed line;
    issue 32's targets (:data:`TARGETS`) as a shaded box (regret and cost) and a tick at cost 0 (the
    zero-cost target). The runnable rules no other runnable rule beats on both axes are numbered
    and named in a key beside the plot; single statistics' rows are drawn faint and never named
    (picking one after seeing them is fitting on the test tasks). Rules without a cost are left
    out and named in the caption."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = pathlib.Path(out)
    rep = json.loads((out / "results.json").read_text())
    rows = [r for r in rep["results"] if r["group"] == "task" and r["decision"] == "choose"]
    shown = [r for r in rows if r.get("cost") is not None and np.isfinite(r["regret"])]
    fig, ax = plt.subplots(figsize=(11, 5.2))
    for kind, (colour, marker) in FRONTIER_KINDS.items():
        for faint in (True, False):
            mine = [r for r in shown if r["kind"] == kind and _runnable(r) != faint]
            if not mine:
                continue
            x = np.array([r["cost"] for r in mine])
            y = np.maximum(np.array([r["regret"] for r in mine]) * 100, FLOOR)
            lo = np.array([max(r["regret_ci"][0] * 100, FLOOR) if np.all(np.isfinite(r["regret_ci"])) else v
                           for r, v in zip(mine, y)])
            hi = np.array([r["regret_ci"][1] * 100 if np.all(np.isfinite(r["regret_ci"])) else v
                           for r, v in zip(mine, y)])
            ci = np.array([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
            ax.errorbar(x, y, yerr=None if faint else ci, fmt=marker, color=colour, ms=3 if faint else 5, lw=0.8,
                        capsize=2, alpha=0.3 if faint else 1.0,
                        label=f"{kind}: one statistic each (not runnable as declared)" if faint else kind)
    named = [r for r in shown if _runnable(r)]
    frontier = [r for r in named if not any(o["cost"] <= r["cost"] and o["regret"] <= r["regret"] and
                                            (o["cost"] < r["cost"] or o["regret"] < r["regret"]) for o in named)]
    tied: dict[tuple, list[str]] = {}
    for r in frontier:  # rules at the same point are named together
        tied.setdefault((round(r["cost"], 3), round(r["regret"], 4)), []).append(r["method"])
    key = []
    for i, ((cost, regret), names) in enumerate(sorted(tied.items()), 1):  # numbered; names in the key
        ax.annotate(str(i), (cost, max(regret * 100, FLOOR)), fontsize=8, fontweight="bold",
                    textcoords="offset points", xytext=(-14, 2) if cost < 0.005 else (6, 4))
        res = next(r for r in frontier if r["method"] == names[0])
        key.append(textwrap.fill(f"{i}: {' = '.join(names)} (right on {res['success']:.2f}, regret "
                                 f"{regret:.1%}, cost {cost:.2f})", 46, subsequent_indent="    "))
    final = next((r for r in rows if r["method"] == "final checkpoint"), None)
    t = TARGETS
    lows = [max(r["regret_ci"][0] * 100, FLOOR) for r in shown if np.all(np.isfinite(r["regret_ci"]))]
    bottom = 0.7 * min([t["choose_regret"] * 100, *lows, *([rep["ceiling"]["choose"]["regret"] * 100]
                                                            if rep.get("ceiling", {}).get("choose") else [])])
    ax.set_ylim(bottom=max(bottom, FLOOR * 0.7))
    ax.fill_between([0, t["choose_cost"]], max(bottom, FLOOR * 0.7), t["choose_regret"] * 100, color="C2",
                    alpha=0.12, lw=0,
                    label=f"target: regret <= {t['choose_regret']:.0%} at cost <= {t['choose_cost']:.2f} "
                          f"(and >= {t['choose_success']:.2f} right)")
    if final:
        goal = final["regret"] * (1 - t["zero_cost_regret_cut"]) * 100
        ax.plot([0], [goal], marker="_", ms=22, mew=2, color="C3", ls="none",
                label=f"zero-cost target: regret {t['zero_cost_regret_cut']:.0%} below the final checkpoint's "
                      f"({goal:.1f}%)")
    ceil = rep.get("ceiling", {}).get("choose")
    if ceil:
        ax.axhline(ceil["regret"] * 100, color="grey", ls="--", lw=1,
                   label=f"ceiling: best of {ceil['uses']} full students at every checkpoint")
    ax.set(xlabel="extra cost (share of one teacher's training)", ylabel=f"mean regret when choosing, %\n(log scale, lower is better; < {FLOOR}% drawn at {FLOOR}%)")
    ax.set_title(textwrap.fill(f"Choosing a checkpoint, held out by task ({len(rep['tasks'])} tasks: "
                               f"{', '.join(rep['tasks'])}; {rep['n_runs']} teacher runs); bars: 95% interval over "
                               f"tasks", 110), fontsize=9)
    ax.set_yscale("log")
    ax.set_xlim(left=-0.02)
    ax.legend(fontsize=6.5, loc="upper right")
    fig.text(0.70, 0.93, "runnable rules no other beats on both axes:\n\n" + "\n".join(key), fontsize=7, va="top",
             family="monospace")
    left = sorted({r["method"] for r in rows} - {r["method"] for r in shown})
    if left:
        fig.text(0.01, 0.005, f"not shown (no cost): {', '.join(left)}", fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 0.69, 1))
    path = out / "frontier.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main_cli(out, quiet: bool = False, **kw) -> dict:
    """``python -m training gatebench``: trains what the dataset lacks (:func:`grid.run`), writes the
    pairs table from the dataset and, with >= 2 tasks, the analysis and the plot."""
    say = (lambda m: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True))  # noqa: E731
    res = grid.run(out, progress=say, **kw)
    rows = collect(out, kw.get("data", grid.DATA_DIR))
    say(f"{len(rows)} pairs rows in {pathlib.Path(out) / 'pairs.csv'} ({res['minutes']:.1f} min this call)")
    if len({r["task"] for r in rows}) >= 2:
        analyze(out, kw.get("data", grid.DATA_DIR))
        plot(out)
        plot_frontier(out)
        print((pathlib.Path(out) / "results.md").read_text())
    return {**res, "rows": len(rows)}


def costs(tasks: dict) -> dict:
    """Per task, from the dataset's timings (measured in the training processes): a teacher's
    training seconds (the sum of its epochs), a student epoch's seconds (steady state: after the
    first, compiling epoch), the first epoch's extra, and gatekit's scoring seconds per checkpoint."""
    res = {}
    for name, bt in sorted(tasks.items()):
        secs = np.concatenate([bt.student_seconds.reshape(-1, bt.student_seconds.shape[-1]), bt.baseline_seconds])
        steady = float(np.mean(secs[:, 1:])) if secs.shape[1] > 1 else float(np.mean(secs))
        res[name] = {"teacher_seconds": float(np.mean(bt.epoch_seconds.sum(axis=1))),
                     "student_epoch_seconds": steady, "student_first_epoch_extra": float(np.mean(secs[:, 0]) - steady),
                     "student_epochs": int(secs.shape[1]),
                     "score_seconds_per_checkpoint": float(np.nanmean(bt.column("score_seconds")))}
    return res


def method_cost(method: dict, task_costs: dict, picks: list) -> float | None:
    """A rule's extra work as a share of one teacher's training, from what the rule declares
    (:class:`training.bench.methods.Method`: ``uses`` student seeds of ``student_epochs`` epochs, at its
    last ``students_at`` checkpoints or at each checkpoint it looked at, i.e. online up to its
    stop, else all 8). A full-budget student is one the user trains anyway, so one is not extra.
    Zero-cost statistics: scoring each checkpoint looked at; step / fraction baselines: none.
    ``picks``: (task, checkpoints looked at, checkpoints with students or None, student epochs a
    race trained per seed or None) per run."""
    shares = []
    for task, looked, students_at, epochs_used in picks:
        c = task_costs[task]
        if epochs_used is not None:  # a race (successive halving): the student epochs it trained per seed
            epochs = method["uses"] * epochs_used - c["student_epochs"]
            shares.append(max(epochs, 0) * c["student_epoch_seconds"] / c["teacher_seconds"])
        elif method["kind"] in ("pilot", "measured"):
            epochs = method["uses"] * method["student_epochs"] * min(students_at or looked, looked)
            if method["student_epochs"] >= c["student_epochs"]:
                epochs -= c["student_epochs"]
            shares.append(max(epochs, 0) * c["student_epoch_seconds"] / c["teacher_seconds"])
        elif method["kind"] in ("statistic", "model"):
            shares.append(looked * c["score_seconds_per_checkpoint"] / c["teacher_seconds"])
        else:
            shares.append(0.0)
    return float(np.mean(shares)) if shares else None


def analyze(out, data=grid.DATA_DIR, progress=None) -> dict:
    """Scores every declared rule on the dataset alone (:func:`training.bench.catalog.report`:
    leave-one-task-out, and leave-one-config-out where there are >= 2 configs), with each rule's
    cost; writes ``out/pairs.csv``, ``out/results.json`` and ``out/results.md``."""
    out = pathlib.Path(out)
    tasks = gio.read_benchmark(data)
    rows = collect(out, data)
    check_pairs(rows, str(data))
    return analyze_rows(rows, costs(tasks), out, progress=progress)


COST_KEYS = ("teacher_seconds", "student_epoch_seconds", "score_seconds_per_checkpoint")


def recorded_costs(path: pathlib.Path, read_text) -> dict:
    """The per-task timings an older table's ``results.json`` recorded, checked: GatekitError
    naming the file for anything but {task: {teacher_seconds, student_epoch_seconds, ...}} with
    finite positive seconds."""
    try:
        doc = json.loads(read_text(path))
    except (ValueError, RecursionError) as e:
        raise GatekitError(f"{path}: not a results file (not valid JSON: {str(e)[:100]})") from None
    costs = doc.get("costs") if isinstance(doc, dict) else None
    if not isinstance(costs, dict) or not costs:
        raise GatekitError(f"{path}: no 'costs' (per task: {', '.join(COST_KEYS)}) to price the rules with")
    for task, c in costs.items():
        if not isinstance(c, dict):
            raise GatekitError(f"{path}: costs[{task!r}] is {type(c).__name__}, not an object")
        for k in COST_KEYS:
            v = c.get(k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0) \
                    or (k == "teacher_seconds" and v <= 0):
                raise GatekitError(f"{path}: costs[{task!r}][{k!r}] is {v!r}; expected seconds (a finite number "
                                   f"{'> 0' if k == 'teacher_seconds' else '>= 0'})")
    return costs


def check_curves(rows: list[dict], where: str) -> None:
    """teachers.csv: every row has task, config, an integer epoch >= 1 and an eval_success number."""
    for i, r in enumerate(rows):
        bad = [k for k in ("task", "config") if not isinstance(r.get(k), str) or not r.get(k)]
        e, v = r.get("epoch"), r.get("eval_success")
        if bad or isinstance(e, bool) or not isinstance(e, int) or e < 1 or isinstance(v, bool) \
                or not isinstance(v, (int, float)):
            raise GatekitError(f"{where}: row {i + 2} needs task, config, an epoch >= 1 and an eval_success number; "
                               f"got {dict(list(r.items())[:5])!r:.200}")


def analyze_table(pairs, out, *, progress=None) -> dict:
    """:func:`analyze_rows` on an older pairs table (``pairs.csv``; its teachers' timings from the
    ``results.json`` beside it, its eval curves from the ``teachers.csv`` beside it): how the
    committed 36-run table was re-judged."""
    pairs, out = pathlib.Path(pairs), pathlib.Path(out)
    from gatekit.io.files import read_text

    recorded = recorded_costs(pairs.parent / "results.json", read_text)
    if (pairs.parent / "teachers.csv").exists() and pairs.parent.resolve() != out.resolve():
        curves = gio.read_table(pairs.parent / "teachers.csv")
        check_curves(curves, str(pairs.parent / "teachers.csv"))
        gio.write_table(curves, out / "teachers.csv")
    task_costs = {k: {"student_epochs": grid.STUDENT_EPOCHS, **v} for k, v in recorded.items()}
    rows = gio.read_table(pairs)
    check_pairs(rows, str(pairs), tasks=set(grid.TASKS), configs=set(grid.CONFIGS))
    unknown = sorted({r["task"] for r in rows} - set(task_costs))
    if unknown:
        raise GatekitError(f"{pairs.parent / 'results.json'}: no recorded costs for task(s) {', '.join(unknown)}")
    if pairs.resolve() != (out / "pairs.csv").resolve():
        gio.write_table(rows, out / "pairs.csv")
    return analyze_rows(rows, task_costs, out, progress=progress)


def check_pairs(rows: list[dict], source: str, *, tasks=None, configs=None) -> None:
    """Refuses an ambiguous or damaged pairs table before any rule is scored, naming the rows
    (1-based, as in the file): a missing key column, a step that is not an integer, a duplicated
    (task, config, teacher_seed, step), a non-finite student outcome, or (with ``tasks`` /
    ``configs``) a task or config the grid does not declare."""
    keys = ("task", "config", "teacher_seed", "step", "student_outcome")
    if not rows:
        raise GatekitError(f"{source}: no rows")
    missing = [k for k in keys if k not in rows[0]]
    if missing:
        raise GatekitError(f"{source}: no column(s) {', '.join(missing)}")
    seen: dict[tuple, int] = {}
    for i, r in enumerate(rows, start=1):
        step = r.get("step")
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not float(step).is_integer():
            raise GatekitError(f"{source}: row {i}: step is {step!r}, not an integer")
        key = tuple(r.get(k) for k in keys[:4])
        if key in seen:
            raise GatekitError(f"{source}: rows {seen[key]} and {i} are the same checkpoint {key}")
        seen[key] = i
        outcomes = {c: v for c, v in r.items() if c == "student_outcome" or c.startswith("student_outcome_s")}
        bad = [c for c, v in outcomes.items()
               if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v)]
        if bad:
            raise GatekitError(f"{source}: row {i}: {', '.join(bad)} is not a finite number")
        for name, known in (("task", tasks), ("config", configs)):
            if known is not None and r.get(name) not in known:
                raise GatekitError(f"{source}: row {i}: {name} {r.get(name)!r} is not one the grid declares "
                                   f"({', '.join(sorted(known))})")


def analyze_rows(rows: list[dict], task_costs: dict, out, *, progress=None) -> dict:
    """:func:`analyze` on pairs rows and per-task costs (e.g. an older table with its recorded
    costs); writes ``out/results.json`` and ``out/results.md``."""
    from gatekit import statistics

    out = pathlib.Path(out)
    online = [n for n in statistics.METRIC_NAMES if statistics.timing(n) == "online"]
    t0 = time.time()
    rep = catalog.report(rows, online, progress=progress, full_epochs=grid.STUDENT_EPOCHS)
    for res in rep["results"]:
        looked = [(run[0], grid.CHECKPOINTS if x["pick_fraction"] is None or res["decision"] == "choose"
                   else _looked(rows, run, x["pick_fraction"]), x["students_at"], x.get("epochs_used"))
                  for x in res["runs"] for run in [x["run"]]]
        res["cost"] = method_cost(res, task_costs, looked)
    rep.update(costs=task_costs, seconds=time.time() - t0, rules=_declared_rules(), plateau=plateau_evidence(out))
    if any(c.startswith("student_outcome_s") for c in rows[0]):
        runs = methods.teacher_runs(rows)
        rep["race_verdicts"] = {name: races.race_verdicts(runs, k, n) for name, (k, n) in races.VERDICT_RACES.items()}
    gio.write_text(out / "results.json", json.dumps(gio.to_jsonable(rep), indent=1) + "\n")
    gio.write_text(out / "results.md", markdown(rep))
    return rep


def plateau_evidence(out) -> dict:
    """Per task and config: the teachers' mean recorded eval success over the last quarter of
    their epochs and over the quarter before it (a plateau: about equal), from teachers.csv."""
    path = pathlib.Path(out) / "teachers.csv"
    if not path.exists():
        return {}
    rows, res = gio.read_table(path), {}
    for key in sorted({(r["task"], r["config"]) for r in rows}):
        mine = [r for r in rows if (r["task"], r["config"]) == key]
        n = max(r["epoch"] for r in mine)
        q = max(1, n // 4)
        last = [r["eval_success"] for r in mine if r["epoch"] > n - q]
        before = [r["eval_success"] for r in mine if n - 2 * q < r["epoch"] <= n - q]
        res["/".join(key)] = {"epochs": n, "last_quarter": float(np.mean(last)), "quarter_before": float(np.mean(before))}
    return res


def _looked(rows, run, fraction) -> int:
    fr = sorted(r["fraction"] for r in rows if (r["task"], r["config"], r["teacher_seed"]) == tuple(run))
    return 1 + sum(f < fraction - 1e-12 for f in fr)


def _declared_rules() -> dict:
    return {"stop": f"fires before the final checkpoint and student(pick) >= {methods.STOP_FRACTION} x "
                    f"student(final), or does not fire and no earlier checkpoint qualifies",
            "choose": f"student(pick) >= {methods.CHOOSE_FRACTION} x the best checkpoint's student; no pick = final",
            "fitted_inside_folds": "column (for 'best'), form, direction, threshold, patience in (1, 2)"}


SUMMARY_METHODS = ("final checkpoint", "training step", "fraction of budget", "teacher eval (any form)",
                   "best statistic", "best statistic (scale-free)", "logistic (scale-free)", "pilot 12.5%, 1 student",
                   "pilot 25%, 1 student", "pilot 25%, 3 students")
"""The rows the README shows (every method is in results.md)."""


def _ci(r: dict, key: str, fmt: str = "{:.2f}") -> str:
    lo, hi = r.get(f"{key}_ci", (None, None))
    value = fmt.format(r[key])
    if lo is None or not np.isfinite(lo):
        return value
    return f"{value} [{fmt.format(lo)}, {fmt.format(hi)}]"


def markdown(rep: dict, group: str = "task", only: tuple[str, ...] | None = None) -> str:
    """The leave-one-``group``-out table: one row per method (``only``: these), choose and stop
    side by side, each pick judged by student seeds the rule did not read (:mod:`gatekit.judge`),
    success and mean regret with 95% bootstrap intervals over ``group``s, and the noise ceiling."""
    res = {(r["method"], r["decision"]): r for r in rep["results"] if r["group"] == group}
    methods = [m for m in dict.fromkeys(m for m, _ in res) if only is None or m in only]
    tasks = rep["tasks"] if group == "task" else rep["configs"]
    head = (f"| rule | kind | choose: success | choose: mean regret | choose by {group} ({', '.join(tasks)}) | "
            f"stop: success | stop: saved | extra cost: choose / stop (share of a teacher) |")
    lines = [head, "|" + "---|" * 8]
    pct = "{:.1%}"
    for m in methods:
        s, c = res.get((m, "stop")), res.get((m, "choose"))
        if not c:
            continue
        per = " / ".join(f"{c['per_group'][t]['success']:.2f}" for t in tasks if t in c["per_group"])
        cost = "-" if c.get("cost") is None else f"{c['cost']:.2f}"
        cost += "" if not s or s.get("cost") is None else f" / {s['cost']:.2f}"
        if m.startswith("teacher eval"):
            cost = "eval rollouts at every checkpoint"
        stop = (_ci(s, "success"), f"{s['saved']:.2f}") if s else ("-", "-")
        lines.append(f"| {m} | {c['kind']} | {_ci(c, 'success')} | {_ci(c, 'regret', pct)} | {per} | {stop[0]} | "
                     f"{stop[1]} | {cost} |")
    ceil = rep.get("ceiling", {})
    if ceil.get("choose"):
        cc, cs = ceil["choose"], ceil.get("stop", {})
        lines.append(f"| ceiling: the best of {cc['uses']} full students at every checkpoint | oracle | {_ci(cc, 'success')} | "
                     f"{_ci(cc, 'regret', pct)} | | {_ci(cs, 'success') if cs else '-'} | "
                     f"{cs.get('saved', 0):.2f} | all |")
    nf = rep["noise_floor"]
    lines.append("")
    for k, v in rep.get("plateau", {}).items():
        lines.append(f"Teacher eval success, {k} ({v['epochs']} epochs): last quarter {v['last_quarter']:.2f}, "
                     f"quarter before {v['quarter_before']:.2f}.  ")
    lines.append(f"Every pick is judged by one student seed the rule did not read, averaged over the seeds; "
                 f"intervals: 95% bootstrap over {len(tasks)} {group}s (few groups: read them as rough). "
                 f"Students' seed-to-seed std / best mean: {nf['stop']['relative_seed_std']:.2f}. "
                 f"{rep['n_runs']} teacher runs.")
    if rep.get("race_verdicts") and group == "task":
        lines += ["", "How far a race's verdict can be trusted (`gatekit race` replayed on every run and "
                  "seed split, judged by a seed it did not read; training/bench/races.py: race_verdicts):", "",
                  "| race | verdict | share of races | right | mean regret |", "|---|---|---|---|---|"]
        for name, v in rep["race_verdicts"].items():
            for kind in ("clear", "within noise"):
                x = v[kind]
                if x["n"]:
                    lines.append(f"| {name} | {kind} | {x['share']:.2f} ({x['n']}) | {_ci(x, 'success')} | "
                                 f"{_ci(x, 'regret', pct)} |")
    return "\n".join(lines) + "\n"


DEFAULT_BASELINES = ("final checkpoint", "training step", "fraction of budget")
"""What the shipped rule must beat, held out by task, to be the default for a decision."""


def _default_text(held: dict) -> str:
    uses = {"choose": "select", "stop": "the hook, watch and --stop-at-gate"}
    best = {d: max(held["baselines"][d].items(), key=lambda kv: kv[1]) for d in uses}
    gain = held.get("beats_final_regret")
    parts = []
    for d in uses:
        if d == "choose" and gain:
            level = f"{100 * gain.get('level', 0.95):.1f}%"
            by = f"{gain['gain']:.1%} [{gain['gain_ci'][0]:.2%}, {gain['gain_ci'][1]:.1%}] ({level}, paired over task groups)"
            parts.append(f"It is the default for choose (select): it beats the final checkpoint's regret by {by}"
                         if held["default_for"][d] else
                         f"It is NOT the default for choose (select; the final checkpoint is): its regret gain over "
                         f"the final checkpoint, {by}, is not above 0")
        else:
            parts.append(f"It is the default for {d} ({uses[d]})" if held["default_for"][d] else
                         f"It is NOT the default for {d} ({uses[d]}): {best[d][0]} did as well or better ({best[d][1]:.0%})")
    return "; ".join(parts[:1] + [p[0].lower() + p[1:] for p in parts[1:]]) + " (README, 'Choosing a rule')."


ZERO_COST = ("best statistic", "best statistic (scale-free)")
"""The zero-cost methods a shipped rule can come from (a column chosen inside each fold)."""


REPO_PRESETS = pathlib.Path(__file__).resolve().parents[2] / "gatekit" / "presets"
"""The presets' folder of this checkout (``--ship`` writes there, never into an installed package)."""


def preset_dir() -> pathlib.Path:
    """:data:`REPO_PRESETS`, when this is a checkout of the repository (GatekitError otherwise)."""
    if not (REPO_PRESETS.parent.parent / "pyproject.toml").is_file() or not REPO_PRESETS.is_dir():
        raise GatekitError(f"{REPO_PRESETS}: not a checkout of the gatekit repository; give ship() a folder")
    return REPO_PRESETS


def data_source(data) -> str:
    """How a shipped record names the dataset it came from: its path in this checkout, else its name."""
    data = pathlib.Path(data).resolve()
    try:
        return str(data.relative_to(REPO_PRESETS.parents[1]))
    except ValueError:
        return data.name


def ship(out, presets, *, method: str | None = None, source: str | None = None) -> dict:
    """Writes the ``auto`` gate to ``presets/auto.json`` (the repository's presets: :func:`preset_dir`): the zero-cost
    method with the best leave-one-task-out *choose* success (ties: stop success, then saved),
    refitted on every task of the benchmark, with its held-out numbers in ``validation.held_out``
    and its description. The numbers are the method's, column selection included.

    Default per decision (declared 2026-12-01, before the last 9 runs of the grid were analysed;
    until then one test, on *choose* against the final checkpoint, made it the default for both):
    ``validation.held_out.default_for[decision]`` is true only where the method's
    leave-one-task-out success on that decision beats every baseline of issue 18's targets: the
    final checkpoint, the training step and the fraction of the budget. ``choose`` makes it what
    ``select`` uses with no gate; ``stop`` what the hook, ``watch`` and ``--stop-at-gate`` use.
    Since issue 43 the *choose* default is decided by declared rule 9
    (:func:`training.bench.spend.default_rule`): the method is the fold-chosen candidate that beats
    the final checkpoint's regret by a Bonferroni-corrected paired interval, else (not the default)
    the candidate by the key above."""
    from gatekit import statistics
    from gatekit.io import write_gate

    from training.bench.spend import default_rule

    out = pathlib.Path(out)
    rep = json.loads((out / "results.json").read_text())
    res = {(r["method"], r["decision"]): r for r in rep["results"] if r["group"] == "task"}
    key = lambda m: (res[(m, "choose")]["success"], res[(m, "stop")]["success"], res[(m, "stop")]["saved"])  # noqa: E731
    beat = default_rule(rep)  # the declared default rule (issue 43, rule 9): a fold-chosen rule must beat the final
    name = method or (beat["default"] if beat["default"] != methods.FINAL.name else max(ZERO_COST, key=key))
    online = [n for n in statistics.METRIC_NAMES if statistics.timing(n) == "online"]
    forms = methods.SCALE_FREE if name.endswith("(scale-free)") else methods.TRANSFORMS
    column = name.removesuffix(" (scale-free)")
    columns = [column] if column in online else online  # one statistic's rule, or the column chosen on every task
    table = out / "pairs.csv"
    runs = methods.teacher_runs(gio.read_table(table))
    rule = methods.fit_series_rule(runs, "choose", columns, forms)[0].gate
    stop, choose = res[(name, "stop")], res[(name, "choose")]
    held = {"choose": choose["success"], "choose_ci": list(choose["success_ci"]), "regret": choose["regret"],
            "regret_ci": list(choose["regret_ci"]), "stop": stop["success"], "saved": stop["saved"],
            "per_task": {t: {"choose": choose["per_group"][t]["success"], "stop": stop["per_group"][t]["success"]}
                         for t in choose["per_group"]},
            "text": f"leave-one-task-out over {len(rep['tasks'])} tasks ({', '.join(rep['tasks'])}), "
                    f"{rep['n_runs']} teacher runs; the column was chosen inside each fold",
            "noise_floor": rep["noise_floor"],
            "final_checkpoint_choose": res[("final checkpoint", "choose")]["success"]}
    held["beats_final_checkpoint"] = bool(choose["success"] > held["final_checkpoint_choose"])
    held["baselines"] = {d: {b: res[(b, d)]["success"] for b in DEFAULT_BASELINES} for d in methods.DECISIONS}
    held["default_for"] = {d: bool(res[(name, d)]["success"] > max(held["baselines"][d].values()))
                           for d in methods.DECISIONS}
    gain = beat["rules"].get(name)
    held["beats_final_regret"] = gain  # regret(final) - regret(rule), paired interval over task groups (Bonferroni)
    held["default_for"]["choose"] = bool(gain and gain["qualifies"])  # the declared rule decides choose
    values = np.concatenate([methods.transform(r.series(rule.metric), rule.transform) for r in runs])
    values = values[np.isfinite(values)]
    gate = dataclasses.replace(
                rule, name="auto",
                description=(f"The zero-cost rule of the gate benchmark whose statistic is chosen inside each fold "
                             f"({name}, fitted on training tasks only in every fold): right on {choose['success']:.0%} of held-out teacher runs when choosing "
                             f"among saved checkpoints (taking the final checkpoint: "
                             f"{held['final_checkpoint_choose']:.0%}), {stop['success']:.0%} when stopping a teacher "
                             f"online (saving {stop['saved']:.0%} of its training on average). Refitted here on all "
                             f"{len(rep['tasks'])} tasks (training/bench). "
                             + _default_text(held)),
                env=None, label_rule=_declared_rules(),
                fitted_on={"file": source or table.name, "sha256": hashlib.sha256(table.read_bytes()).hexdigest(),
                           "n": len(values),
                           "groups": len(rep["tasks"]), "range": [float(values.min()), float(values.max())]},
                validation={"held_out": held, "method": name, "measuring": measuring_buys(rep)})
    def write(stage):
        write_gate(gate, stage / "auto.json")
        return ship_records(rep, stage, f"{source or table.name} ({rep['n_runs']} teacher runs)")

    records = all_or_none(presets, write, ("auto.json", *SHIPPED_RECORDS))
    return {"method": name, "rule": gate.rule, "held_out": held, "records": records}


def all_or_none(folder, write, names):
    """Calls ``write(stage)`` on a copy of ``folder``'s JSON files beside it, then renames ``names``
    from there into ``folder``: when ``write`` fails, nothing in ``folder`` has changed (``--ship``
    once left the presets half-shipped). Returns what ``write`` returned."""
    import shutil
    import tempfile

    folder = pathlib.Path(folder)
    stage = pathlib.Path(tempfile.mkdtemp(prefix=".ship-", dir=folder))
    try:
        for f in folder.glob("*.json"):
            shutil.copy2(f, stage / f.name)
        out = write(stage)
        missing = [n for n in names if not (stage / n).is_file()]
        if missing:
            raise GatekitError(f"ship: {missing} were not written; nothing in {folder} was changed")
        for n in names:
            os.replace(stage / n, folder / n)
        return out
    finally:
        shutil.rmtree(stage, ignore_errors=True)


SHIPPED_RECORDS = ("final.json", "paper.json", "budget.json")
"""The presets :func:`ship_records` rewrites beside ``auto.json``."""


RECORDED = {"final": "final checkpoint", "paper": "paper rule (action_magnitude < 0.63, nothing fitted)",
            "budget": methods.BUDGET.name}
"""Presets whose held-out record the benchmark writes (:func:`ship_records`): ``final`` is what
``select`` answers with when given no gate (the zero-cost rule with the best record for
choosing), ``paper`` what a bare ``--threshold`` applies, ``budget`` (``budget_fraction > 0.84``) what
the stopping tools use given no gate: its record is the shipped rule's, nothing fitted
(``stopped_at``: the fractions where it stopped), with the fraction-of-budget rule fitted in each
fold beside it (``fitted``); a table without the shipped rule's row gives the fitted rule's."""


def held_out_record(rep: dict, method: str, source: str) -> dict:
    """A method's leave-one-task-out record from an analysis (:func:`analyze`), as a gate's
    ``validation.held_out``: choose success and mean regret with their 95% intervals, stop."""
    res = {(r["method"], r["decision"]): r for r in rep["results"] if r["group"] == "task"}
    c, s = res[(method, "choose")], res.get((method, "stop"))
    return {"choose": c["success"], "choose_ci": list(c["success_ci"]), "regret": c["regret"],
            "regret_ci": list(c["regret_ci"]), "stop": s["success"] if s else None, "saved": s["saved"] if s else None,
            "per_task": {t: {"choose": v["success"], "regret": v["regret"]} for t, v in c["per_group"].items()},
            "text": f"leave-one-task-out over {len(rep['tasks'])} tasks ({', '.join(rep['tasks'])}), {rep['n_runs']} "
                    f"teacher runs, each pick judged by a student seed the rule did not read; intervals: 95% "
                    f"bootstrap over tasks",
            "source": source}


def measuring_buys(rep: dict) -> dict | None:
    """The measured rule (students trained at several checkpoints) with the lowest held-out
    choose regret: what measuring would buy over a zero-cost answer."""
    measured = [r for r in rep["results"] if r["group"] == "task" and r["decision"] == "choose"
                and r["kind"] in ("measured", "pilot")]
    if not measured:
        return None
    best = min(measured, key=lambda r: (r["regret"], r.get("cost") or 0.0))
    rule, last = fold_rule(best)
    return {"method": best["method"], "choose": best["success"], "choose_ci": list(best["success_ci"]),
            "regret": best["regret"], "regret_ci": list(best["regret_ci"]), "cost": best.get("cost"),
            "rule": rule, "last": last, "students_beyond_kept": (last - 1) if last else None,
            "command": f"gatekit race RUN --out DIR --last {last}" if last else None}


def fold_rule(result: dict) -> tuple[str | None, int | None]:
    """(the rule most folds fitted for a method's result, its K when that rule races students
    from the last K checkpoints, as ``race --last K`` does; else None)."""
    rules = collections.Counter(v.get("rule") for v in result["per_group"].values() if v.get("rule"))
    rule = rules.most_common(1)[0][0] if rules else None
    last = re.search(r"student_outcome_mean of the last (\d+) checkpoints", rule or "")
    return rule, int(last.group(1)) if last else None


def stop_held_out_record(rep: dict, method: str, source: str) -> dict:
    """A stop method's leave-one-task-out record from an analysis, as a gate's
    ``validation.held_out``: stop success, training saved and mean regret with their 95%
    intervals, per task (with the rule fitted in that fold), and the fractions of the budget
    where it stopped the held-out runs."""
    r = next(x for x in rep["results"] if x["group"] == "task" and x["decision"] == "stop" and x["method"] == method)
    at = sorted({round(float(run["pick_fraction"]), 3) for run in r["runs"] if run.get("pick_fraction") is not None})
    return {"stop": r["success"], "stop_ci": list(r["success_ci"]), "saved": r["saved"], "saved_ci": list(r["saved_ci"]),
            "regret": r["regret"], "regret_ci": list(r["regret_ci"]),
            "per_task": {t: {"stop": v["success"], "saved": v["saved"], "regret": v["regret"], "rule": v.get("rule")}
                         for t, v in r["per_group"].items()},
            "stopped_at": at,
            "text": f"the gate benchmark's {method!r} stop rule, "
                    + ("as shipped (its threshold was read off the 36-run table's fitted rules, 4 of these groups), "
                       if "nothing fitted" in method else "") + f"leave-one-task-out over {len(rep['tasks'])} tasks "
                    f"({', '.join(rep['tasks'])}), {rep['n_runs']} teacher runs, each stop judged by a student seed "
                    f"the rule did not read; intervals: 95% bootstrap over tasks",
            "source": source}


def ship_records(rep: dict, preset_dir, source: str) -> dict:
    """Writes the ``final`` preset (the final-checkpoint rule with its record and what measuring
    would buy) and the ``paper`` preset's record into ``preset_dir``; returns the records."""
    from gatekit.io import Gate, read_gate, write_gate

    preset_dir = pathlib.Path(preset_dir)
    final = held_out_record(rep, RECORDED["final"], source)
    buys = measuring_buys(rep)
    race = race_records(rep, source)
    write_gate(Gate(metric="step", direction="above", threshold=0.999999, transform="of_final", name="final",
                    description=("The final checkpoint: the zero-cost answer with the best held-out record for "
                                 "choosing on the gate benchmark (no teacher statistic did better on tasks it was "
                                 "not fitted on). Nothing is fitted. `select` uses it when given no gate."),
                    label_rule=_declared_rules(), validation={"held_out": final, "measuring": buys, "race": race}),
               preset_dir / "final.json")
    paper = read_gate(preset_dir / "paper.json" if (preset_dir / "paper.json").exists() else "paper")
    record = held_out_record(rep, RECORDED["paper"], source)
    write_gate(dataclasses.replace(paper, validation={**(paper.validation or {}), "held_out": record}),
               preset_dir / "paper.json")
    budget = read_gate(preset_dir / "budget.json" if (preset_dir / "budget.json").exists() else "budget")
    names = {r["method"] for r in rep["results"]}
    stop = stop_held_out_record(rep, RECORDED["budget"] if RECORDED["budget"] in names else "fraction of budget", source)
    if RECORDED["budget"] in names and "fraction of budget" in names:
        fitted = stop_held_out_record(rep, "fraction of budget", source)
        stop["fitted"] = {k: fitted[k] for k in ("stop", "stop_ci", "saved", "regret", "stopped_at", "text")}
    write_gate(dataclasses.replace(budget, validation={**(budget.validation or {}), "held_out": stop}),
               preset_dir / "budget.json")
    return {"final": final, "paper": record, "budget": stop, "measuring": buys, "race": race}


RACE_METHODS = ("1 full student, last 3", "1 full student, last K (K fitted)")
"""The measured rules ``python -m training race`` runs (``--last 3``, the default, and the K the
folds fitted), whose records :func:`race_records` gives it."""


def race_records(rep: dict, source: str) -> dict:
    """What ``python -m training race`` can say on record, keyed by ``--last``: each race rule's
    held-out choose record (the fitted-K rule under the K most folds chose) and, keyed by
    ``--seeds``, how often races of that shape whose verdict was "clear" or "within noise" picked
    right (``results.json``'s ``race_verdicts``, :func:`training.bench.races.race_verdicts`)."""
    out: dict = {}
    verdicts = rep.get("race_verdicts") or {}
    for method in RACE_METHODS:
        r = next((x for x in rep["results"] if x["group"] == "task" and x["decision"] == "choose"
                  and x["method"] == method), None)
        if r is None:
            continue
        k = fold_rule(r)[1]
        if k is None:
            continue
        out[str(k)] = {"method": method, "last": k, "choose": r["success"], "choose_ci": list(r["success_ci"]),
                       "regret": r["regret"], "regret_ci": list(r["regret_ci"]), "cost": r.get("cost"),
                       "source": source,
                       "verdicts": {str(v["seeds"]): {kind: v[kind] for kind in ("clear", "within noise")}
                                    for v in verdicts.values() if v["k"] == k}}
    return out
