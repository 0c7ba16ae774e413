"""The gate benchmark: does a rule for "which teacher checkpoint to distill from" hold on tasks and
configs it was not fitted on?  ``python -m training gatebench --out DIR`` (resumable, shardable).

Declared grid (fixed before any run; issue 18):

* **Tasks** (teacher budget, student outcome):
  ``pointmaze`` maze u (20 epochs; the student's eval success over 256 episodes),
  ``car_maze`` maze u (60 epochs, the budget where depth 8 learns it; far-goal time at goal),
  ``momentum_maze`` maze u (30 epochs; far-goal time at goal),
  ``arm_reach`` (30 epochs; far-goal time at goal). One epoch = 4 iterations x 32 envs.
* **Configs** per task: ``base`` (depth 8, width 64, tau 1), ``w256`` (width 256), ``tau2``
  (InfoNCE temperature 2). 3 teacher seeds each: 36 teachers.
* **Checkpoints**: 8 per teacher, evenly spaced over training, first and last included.
* **Students**: 3 seeds per checkpoint; depth 4 at the width with as many parameters as the
  base depth-8 teacher, lambda_pi 1, tau 1; 8 epochs x 3 iterations (the sweep's 24 iterations),
  the same for every config of a task; one checkpoint per epoch, so the student's checkpoints at
  epoch 1 and 2 are its **pilots** at 12.5% and 25% of the student budget (a student run for 1
  epoch is exactly the first epoch of a longer one: no schedule depends on the total). A
  no-teacher baseline (3 seeds) with the same budget per task.
* **Table**: ``DIR/pairs.csv``, one row per (task, config, teacher seed, checkpoint): step,
  ``fraction`` of the teacher's budget, every gatekit statistic of the checkpoint, the teacher's
  own recorded eval success, the teacher's far-goal time at goal (far-goal tasks),
  ``student_outcome`` (mean), ``student_std``, ``student_outcome_s{k}``, and the pilots
  ``pilot1_s{k}`` / ``pilot2_s{k}`` (outcome of student k at epoch 1 / 2).
  ``DIR/teachers.csv``: each teacher's recorded eval success per epoch (the plateau evidence).

The decisions and rules scored on it are declared in :mod:`gatekit.transfer`.

Record (added after the runs, not a change to the grid): the base config on all four tasks and
tau2 on pointmaze and arm_reach were trained with the critic's all-pairs distances computed by
broadcasting; every run after 2026-11-30 uses one matmul for them (the same values to float32
rounding, a different float32 trajectory, like another seed would be). The last 9 runs (width 256
on car_maze, momentum_maze, arm_reach; 2026-12-01) were trained in a directory seeded with the
committed tables (the earlier runs' folders were gone): their students' epoch timings, the only
ones left on disk, replaced the earlier ones for those three tasks in the pilots' cost (1.3-1.4 s
against 4.7-6.4 s per epoch measured under other load), pointmaze kept its recorded timing.

The dataset (issue 31; declared 2026-12-04 before any of its runs): every run of the grid is
read into ``examples/results/gatebench/data/{task}.npz`` (:mod:`gatekit.io.dataset`,
:mod:`training.benchdata`) as each task finishes, and committed; ``gatebench`` skips a task whose
file holds every teacher asked for. The 36 runs above are **retrained** for it (their checkpoints
were gone; the committed ``pairs.csv`` kept students at epochs 1, 2 and 8 only and no teacher
outputs). Retrained, by task: see ``RETRAINED`` below (filled in as each task is committed).

New task groups (declared 2026-12-04, before their first run; same 3 configs x 3 teacher seeds,
8 checkpoints, 3 student seeds and student budget rule as above):

* ``pointmaze_medium``: the point maze on the ``medium`` layout (episode length 200); outcome:
  far-goal time at goal (near goals are easy for any student there);
* ``momentum_medium``: the momentum maze on ``medium`` (episode length 200); far-goal time at goal;
* ``reacher``: Brax reacher (2-link arm, physics by Brax ``generalized``); outcome: the student's
  eval time at goal after its final epoch (``eval_time_at_goal``; reacher has no far-goal split).

**Budget rule** (each new task, declared before its probe): the base config (depth 8, width 64,
tau 1) with teacher seed 0 is trained for ``PROBE_EPOCHS`` epochs (the probe, which is not one of
the benchmark's teachers); with ``m_e`` the mean of its recorded eval success over epochs
``e-4..e``, the budget is the first epoch where ``m_e >= 0.95 x max(m)``, rounded up to a multiple
of 10, at least 20 (:func:`probe_budget`). Where ``max(m) < 0.2`` the base teacher has not learnt
the task within the probe and the task is dropped, with its curve as the record. The probe curves
are the evidence: ``examples/results/gatebench/probes.csv``. ``warped_maze`` stays out of the
benchmark and every fit (an independent check).

Probes (2026-12-04, the evidence, ``probes.csv``): ``reacher`` reached eval success 1.0 from
epoch 23 and stayed there to 40: budget **30**. ``momentum_medium`` rose to about 0.7 by epoch 33
and stayed between 0.61 and 0.81 to epoch 60: budget **50**. ``pointmaze_medium`` was still
rising at the end of its 60-epoch probe (mean 0.72 over epochs 41-50, 0.87 over 51-60): by the
declared rule its budget is **60**, the probe's length, so its teachers stop before a plateau (a
limit of this task, kept as declared rather than extended after looking).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import sys
import time
from typing import Callable

import numpy as np

from gatekit import io as gio
from gatekit.errors import GatekitError
from training import barrier, envs
from training.calibrate import student_jobs
from training.config import TrainConfig
from training.many import Job, run_jobs, shard_of
from training.sweep import pick


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    candidate: barrier.Candidate
    student_eval_episodes: int = 64


TASKS = {t.name: t for t in (
    Task("pointmaze", barrier.Candidate("pointmaze_u", "pointmaze", (("maze", "u"),), epochs=20,
                                        outcome="eval_success"), student_eval_episodes=256),
    Task("car_maze", barrier.CANDIDATES["car_u_long"]),
    Task("momentum_maze", barrier.CANDIDATES["momentum_u"]),
    Task("arm_reach", barrier.CANDIDATES["arm_reach"]),
)}
CONFIGS: dict[str, dict] = {"base": {}, "w256": {"width": 256}, "tau2": {"tau": 2.0}}

NEW_TASKS = {  # declared before their probes (module docstring); a budget is fixed by probe_budget
    "pointmaze_medium": barrier.Candidate("pointmaze_medium", "pointmaze", (("episode_length", 200), ("maze", "medium")),
                                          epochs=0, axis="point maze, medium layout"),
    "momentum_medium": barrier.Candidate("momentum_medium", "momentum_maze",
                                         (("episode_length", 200), ("maze", "medium")), epochs=0,
                                         axis="momentum in a longer maze"),
    "reacher": barrier.Candidate("reacher", "reacher", (), epochs=0, axis="Brax reacher: a 2-link arm",
                                 outcome="eval_time_at_goal"),
}
PROBE_EPOCHS = {"pointmaze_medium": 60, "momentum_medium": 60, "reacher": 40}
BUDGETS = {"reacher": 30, "pointmaze_medium": 60, "momentum_medium": 50}
"""The new tasks' budgets by the declared rule, from their probes (2026-12-04,
``examples/results/gatebench/probes.csv``; module docstring)."""
TASKS.update({name: Task(name, dataclasses.replace(NEW_TASKS[name], epochs=BUDGETS[name])) for name in BUDGETS})
RETRAINED: dict[str, str] = {"pointmaze": "2026-12-04 (all 27 teachers, 648 students, 3 baselines; 56 min on this "
                                          "2-vCPU machine with other work on it)",
                             "arm_reach": "2026-12-04 (all 27 teachers, 648 students, 3 baselines; about 2 h wall on this "
                                          "2-vCPU machine shared with the session's tests)"}
"""Tasks retrained for the dataset, with the date their data was committed (issue 31)."""
TEACHER_SEEDS = (0, 1, 2)
CHECKPOINTS = 8
STUDENT_SEEDS = 3
STUDENT_EPOCHS, STUDENT_ITERATIONS = 8, 3
PILOT_EPOCHS = (1, 2)


def probe_budget(eval_success, *, window: int = 5, of_max: float = 0.95, step: int = 10, least: int = 20,
                 learnt: float = 0.2) -> int | None:
    """The declared budget rule (module docstring) on a probe's eval success per epoch: the first
    epoch whose trailing ``window``-epoch mean reaches ``of_max`` x the largest such mean, rounded
    up to a multiple of ``step``, at least ``least``; None where the largest mean is below ``learnt``.

    >>> probe_budget([0.0] * 10 + [0.5] * 10 + [1.0] * 40)
    30
    """
    s = np.asarray(eval_success, dtype=float)
    if s.size < window:
        raise GatekitError(f"a probe of {s.size} epochs is shorter than the {window}-epoch window")
    m = np.convolve(s, np.ones(window) / window, mode="valid")  # m[i]: mean of epochs i..i+window-1
    if m.max() < learnt:
        return None
    first = int(np.flatnonzero(m >= of_max * m.max())[0]) + window  # 1-based epoch ending that window
    return max(least, int(math.ceil(first / step) * step))


def probe(name: str, out, *, progress=None) -> dict:
    """Trains (or reuses) a new task's probe teacher and returns its eval curve and budget."""
    cand = NEW_TASKS[name]
    cfg = dataclasses.replace(cand.config(8, cand.width, 0), epochs=PROBE_EPOCHS[name])
    path = pathlib.Path(out) / "probes" / name
    run_jobs([Job(cfg, path)], progress=progress)
    run = gio.read_run(path)
    metas = [gio.load_checkpoint(run, s, items=("meta",)).meta for s in gio.list_checkpoints(run)[0]]
    curve = [float(m["eval"]["success"]) for m in metas]
    return {"task": name, "curve": curve, "budget": probe_budget(curve),
            "seconds": float(metas[-1]["wall_time"])}


def teacher_config(task: Task, config: str, seed: int) -> TrainConfig:
    cand = task.candidate
    return dataclasses.replace(cand.config(8, cand.width, seed), **CONFIGS[config])


def student_config(task: Task) -> TrainConfig:
    cand = task.candidate
    env = envs.make(cand.env, **dict(cand.env_kwargs))
    width = barrier.matched_width(env, 4, barrier.param_count(env, 8, cand.width))
    return dataclasses.replace(cand.config(4, width, 0), epochs=STUDENT_EPOCHS, iterations_per_epoch=STUDENT_ITERATIONS,
                               lambda_pi=1.0, eval_episodes=task.student_eval_episodes)


def teacher_path(out: pathlib.Path, task: str, config: str, seed: int) -> pathlib.Path:
    return pathlib.Path(out) / task / config / f"seed{seed}"


def _students(out, task: Task, teacher: str | None, name: str) -> list[Job]:
    return student_jobs(teacher, student_config(task), pathlib.Path(out) / task.name / "students", name, STUDENT_SEEDS)


DATA_DIR = pathlib.Path(__file__).resolve().parents[1] / "examples" / "results" / "gatebench" / "data"
"""Where the dataset lives in this repository (one ``{task}.npz`` per finished task, committed
as each task finishes): what ``gatebench`` resumes from on a machine without the run folders."""


def committed(data, task: str, configs) -> bool:
    """Whether ``DATA/{task}.npz`` holds every teacher of ``configs`` (then nothing is retrained)."""
    path = pathlib.Path(data) / f"{task}.npz"
    if not path.is_file():
        return False
    have = set(gio.read_benchmark_task(path).teachers)
    return all((c, s) in have for c in configs for s in TEACHER_SEEDS)


def run_task(task: Task, configs, out, *, data=DATA_DIR, shard=(0, 1), progress: Callable[[str], None] | None = None,
             **parallel) -> bool:
    """Trains (or reuses) one task's teachers and students (this shard's share: teacher number i
    and its students go to shard i mod N, the baseline to shard 0); once every run of the task is
    finished (one shard, or the last of them rerun as 0/1), reads them into ``DATA/{task}.npz``
    (:mod:`training.benchdata`). Returns whether the task's data was written."""
    import gatekit
    from training import benchdata

    say = progress or (lambda _m: None)
    out = pathlib.Path(out)
    teachers = [(c, s, Job(teacher_config(task, c, s), teacher_path(out, task.name, c, s)))
                for c in configs for s in TEACHER_SEEDS]
    mine = shard_of(teachers, shard)
    say(f"{task.name}: {len(mine)} teacher(s) of {len(teachers)}")
    run_jobs([j for _, _, j in mine], progress=say, **parallel)
    table = gatekit.score([j.path for _, _, j in mine])
    plan = []
    for c, s, j in mine:
        steps = pick(sorted(r["step"] for r in table.rows if r["run_path"] == str(j.path.resolve())), CHECKPOINTS)
        plan.append((c, s, j, steps, [_students(out, task, f"{j.path}@{x}", f"{c}_seed{s}@{x}") for x in steps]))
    base = _students(out, task, None, "baseline")
    jobs = (base if shard[0] == 0 else []) + [x for *_, per in plan for js in per for x in js]
    say(f"{task.name}: {len(jobs)} student run(s)")
    run_jobs(jobs, progress=say, **parallel)
    if shard != (0, 1):
        return False
    say(f"{task.name}: reading the runs into the dataset")
    meta, arrays = benchdata.build_task(task, configs, out, plan, base, progress=say)
    gio.write_benchmark_task(pathlib.Path(data) / f"{task.name}.npz", meta, arrays)
    return True


def run(out, *, tasks=None, configs=None, data=DATA_DIR, shard=(0, 1), progress=None, **parallel) -> dict:
    """Runs the benchmark task by task (default: every task and config) into ``DATA/{task}.npz``.
    A task whose data file already holds every teacher asked for is not trained again (resume
    from what is committed); finished run folders under ``out`` are reused. Then writes
    ``out/pairs.csv`` and ``out/teachers.csv`` from the dataset."""
    out, tasks, configs = pathlib.Path(out), tuple(tasks or TASKS), tuple(configs or CONFIGS)
    for name in list(tasks) + list(configs):
        if name not in TASKS and name not in CONFIGS:
            raise ValueError(f"unknown task or config {name!r}; tasks {sorted(TASKS)}, configs {sorted(CONFIGS)}")
    say = progress or (lambda _m: None)
    t0, done = time.time(), {}
    from training import benchdata

    for name in tasks:
        if committed(data, name, configs):
            say(f"{name}: in {pathlib.Path(data) / (name + '.npz')} already (nothing to train)")
            benchdata.add_student_scores(pathlib.Path(data) / f"{name}.npz", progress=say)
            continue
        t1 = time.time()
        if run_task(TASKS[name], configs, out, data=data, shard=shard, progress=progress, **parallel):
            done[name] = {"minutes": (time.time() - t1) / 60}
    rows = collect(out, data)
    return {"tasks": done, "rows": len(rows), "minutes": (time.time() - t0) / 60, "pairs": str(out / "pairs.csv")}


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
            if far:
                row["teacher_far_time_at_goal"] = float(bt.teacher_outcome[t, k])
            row.update(student_outcome=float(final.mean()),
                       student_std=float(final.std(ddof=1)) if final.size > 1 else 0.0,
                       baseline_outcome=float(bt.baseline[:, -1].mean()))
            row.update({f"student_outcome_s{j}": float(v) for j, v in enumerate(final)})
            for e in PILOT_EPOCHS:
                if e < bt.student.shape[-1]:
                    row.update({f"pilot{e}_s{j}": float(v) for j, v in enumerate(bt.student[t, k, :, e - 1])})
            for e in range(1, bt.student.shape[-1] + 1):  # the full curves (successive halving reads them)
                row.update({f"student_e{e}_s{j}": float(v) for j, v in enumerate(bt.student[t, k, :, e - 1])})
            rows.append(row)
    return rows


def collect(out, data=DATA_DIR) -> list[dict]:
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
    tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.4), squeeze=False)
    colours = dict(zip(CONFIGS, ("C0", "C1", "C2")))
    for ax, t in zip(axes[0], tasks):
        mine = [r for r in rows if r["task"] == t]
        for c, s in sorted({(r["config"], r["teacher_seed"]) for r in mine}):
            rs = sorted((r for r in mine if (r["config"], r["teacher_seed"]) == (c, s)), key=lambda r: r["step"])
            ax.plot([r["fraction"] for r in rs], [r["student_outcome"] for r in rs], "o-", ms=3, color=colours.get(c),
                    label=f"{c}" if s == TEACHER_SEEDS[0] else None)
        ax.axhline(mine[0]["baseline_outcome"], color="k", ls="--", lw=1, label="no teacher")
        ax.set(title=t, xlabel="teacher checkpoint (fraction of its budget)",
               ylabel=f"student {TASKS[t].candidate.outcome} (mean of {STUDENT_SEEDS})", xlim=(0, 1.02))
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "students.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main_cli(out, **kw) -> dict:
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    res = run(out, progress=say, **kw)
    print(f"{res['rows']} pairs rows in {res['pairs']} ({res['minutes']:.1f} min this call)")
    rows = gio.read_table(res["pairs"]) if res["rows"] else []
    if len({r["task"] for r in rows}) >= 2:
        analyze(out, kw.get("data", DATA_DIR))
        plot(out)
        print((pathlib.Path(out) / "results.md").read_text())
    return res


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
    (:class:`gatekit.transfer.Method`: ``uses`` student seeds of ``student_epochs`` epochs, at its
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


def analyze(out, data=DATA_DIR, progress=None) -> dict:
    """Scores every declared rule on the dataset alone (:func:`gatekit.transfer.report`:
    leave-one-task-out, and leave-one-config-out where there are >= 2 configs), with each rule's
    cost; writes ``out/pairs.csv``, ``out/results.json`` and ``out/results.md``."""
    out = pathlib.Path(out)
    tasks = gio.read_benchmark(data)
    rows = collect(out, data)
    check_pairs(rows, str(data))
    return analyze_rows(rows, costs(tasks), out, progress=progress)


def analyze_table(pairs, out, *, progress=None) -> dict:
    """:func:`analyze_rows` on an older pairs table (``pairs.csv``; its teachers' timings from the
    ``results.json`` beside it, its eval curves from the ``teachers.csv`` beside it): how the
    committed 36-run table was re-judged."""
    pairs, out = pathlib.Path(pairs), pathlib.Path(out)
    from gatekit.io.files import read_text

    recorded = json.loads(read_text(pairs.parent / "results.json"))["costs"]
    if (pairs.parent / "teachers.csv").exists() and pairs.parent.resolve() != out.resolve():
        gio.write_table(gio.read_table(pairs.parent / "teachers.csv"), out / "teachers.csv")
    task_costs = {k: {"student_epochs": STUDENT_EPOCHS, **v} for k, v in recorded.items()}
    rows = gio.read_table(pairs)
    check_pairs(rows, str(pairs), tasks=set(TASKS), configs=set(CONFIGS))
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
    from gatekit import statistics, transfer

    out = pathlib.Path(out)
    online = [n for n in statistics.METRIC_NAMES if statistics.timing(n) == "online"]
    t0 = time.time()
    rep = transfer.report(rows, online, progress=progress, full_epochs=STUDENT_EPOCHS)
    for res in rep["results"]:
        looked = [(run[0], CHECKPOINTS if x["pick_fraction"] is None or res["decision"] == "choose"
                   else _looked(rows, run, x["pick_fraction"]), x["students_at"], x.get("epochs_used"))
                  for x in res["runs"] for run in [x["run"]]]
        res["cost"] = method_cost(res, task_costs, looked)
    rep.update(costs=task_costs, seconds=time.time() - t0, rules=_declared_rules(), plateau=plateau_evidence(out))
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
    from gatekit import transfer

    return {"stop": f"fires before the final checkpoint and student(pick) >= {transfer.STOP_FRACTION} x "
                    f"student(final), or does not fire and no earlier checkpoint qualifies",
            "choose": f"student(pick) >= {transfer.CHOOSE_FRACTION} x the best checkpoint's student; no pick = final",
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
    return "\n".join(lines) + "\n"


DEFAULT_BASELINES = ("final checkpoint", "training step", "fraction of budget")
"""What the shipped rule must beat, held out by task, to be the default for a decision."""


def _default_text(held: dict) -> str:
    uses = {"choose": "select", "stop": "the hook, watch and --stop-at-gate"}
    best = {d: max(held["baselines"][d].items(), key=lambda kv: kv[1]) for d in uses}
    parts = [f"It is the default for {d} ({uses[d]})" if held["default_for"][d] else
             f"It is NOT the default for {d} ({uses[d]}): {best[d][0]} did as well or better ({best[d][1]:.0%})"
             for d in uses]
    return "; ".join(parts) + " (README, 'Choosing a rule')."


ZERO_COST = ("best statistic", "best statistic (scale-free)")
"""The zero-cost methods a shipped rule can come from (a column chosen inside each fold)."""


def ship(out, path=None, *, method: str | None = None, source: str | None = None) -> dict:
    """Writes the ``auto`` gate (``gatekit/presets/auto.json`` by default): the zero-cost
    method with the best leave-one-task-out *choose* success (ties: stop success, then saved),
    refitted on every task of the benchmark, with its held-out numbers in ``validation.held_out``
    and its description. The numbers are the method's, column selection included.

    Default per decision (declared 2026-12-01, before the last 9 runs of the grid were analysed;
    until then one test, on *choose* against the final checkpoint, made it the default for both):
    ``validation.held_out.default_for[decision]`` is true only where the method's
    leave-one-task-out success on that decision beats every baseline of issue 18's targets: the
    final checkpoint, the training step and the fraction of the budget. ``choose`` makes it what
    ``select`` uses with no gate; ``stop`` what the hook, ``watch`` and ``--stop-at-gate`` use."""
    from gatekit import statistics, transfer
    from gatekit.io import PRESET_DIR, Gate, write_gate

    out = pathlib.Path(out)
    rep = json.loads((out / "results.json").read_text())
    res = {(r["method"], r["decision"]): r for r in rep["results"] if r["group"] == "task"}
    key = lambda m: (res[(m, "choose")]["success"], res[(m, "stop")]["success"], res[(m, "stop")]["saved"])  # noqa: E731
    name = method or max(ZERO_COST, key=key)
    online = [n for n in statistics.METRIC_NAMES if statistics.timing(n) == "online"]
    forms = transfer.TRANSFORMS if name == "best statistic" else transfer.SCALE_FREE
    runs = transfer.teacher_runs(gio.read_table(out / "pairs.csv"))
    rule, _ = transfer.fit_series_rule(runs, "choose", online, forms)
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
    held["baselines"] = {d: {b: res[(b, d)]["success"] for b in DEFAULT_BASELINES} for d in transfer.DECISIONS}
    held["default_for"] = {d: bool(res[(name, d)]["success"] > max(held["baselines"][d].values()))
                           for d in transfer.DECISIONS}
    values = np.concatenate([transfer.transform(r.series(rule.column), rule.form) for r in runs])
    values = values[np.isfinite(values)]
    gate = Gate(metric=rule.column, direction=rule.direction, threshold=rule.threshold, patience=rule.patience,
                transform=rule.form, name="auto",
                description=(f"The best zero-cost rule of the gate benchmark ({name}, fitted on training tasks only in "
                             f"every fold): right on {choose['success']:.0%} of held-out teacher runs when choosing "
                             f"among saved checkpoints (taking the final checkpoint: "
                             f"{held['final_checkpoint_choose']:.0%}), {stop['success']:.0%} when stopping a teacher "
                             f"online (saving {stop['saved']:.0%} of its training on average). Refitted here on all "
                             f"{len(rep['tasks'])} tasks (training/gatebench.py). "
                             + _default_text(held)),
                env=None, label_rule=_declared_rules(),
                fitted_on={"file": source or str(out / "pairs.csv"), "n": len(values),
                           "groups": len(rep["tasks"]), "range": [float(values.min()), float(values.max())]},
                validation={"held_out": held, "method": name})
    write_gate(gate, path or PRESET_DIR / "auto.json")
    records = ship_records(rep, pathlib.Path(path).parent if path else PRESET_DIR,
                           source or f"{out / 'pairs.csv'} ({rep['n_runs']} teacher runs)")
    return {"method": name, "rule": gate.rule, "held_out": held, "records": records}


RECORDED = {"final": "final checkpoint", "paper": "paper rule (action_magnitude < 0.63, nothing fitted)"}
"""Presets whose held-out record the benchmark writes (:func:`ship_records`): ``final`` is what
``select`` answers with when given no gate (the zero-cost rule with the best record for
choosing), ``paper`` what a bare ``--threshold`` applies."""


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
    return {"method": best["method"], "choose": best["success"], "choose_ci": list(best["success_ci"]),
            "regret": best["regret"], "regret_ci": list(best["regret_ci"]), "cost": best.get("cost")}


def ship_records(rep: dict, preset_dir, source: str) -> dict:
    """Writes the ``final`` preset (the final-checkpoint rule with its record and what measuring
    would buy) and the ``paper`` preset's record into ``preset_dir``; returns the records."""
    from gatekit.io import Gate, read_gate, write_gate

    preset_dir = pathlib.Path(preset_dir)
    final = held_out_record(rep, RECORDED["final"], source)
    buys = measuring_buys(rep)
    write_gate(Gate(metric="step", direction="above", threshold=0.999999, transform="of_final", name="final",
                    description=("The final checkpoint: the zero-cost answer with the best held-out record for "
                                 "choosing on the gate benchmark (no teacher statistic did better on tasks it was "
                                 "not fitted on). Nothing is fitted. `select` uses it when given no gate."),
                    label_rule=_declared_rules(), validation={"held_out": final, "measuring": buys}),
               preset_dir / "final.json")
    paper = read_gate(preset_dir / "paper.json" if (preset_dir / "paper.json").exists() else "paper")
    record = held_out_record(rep, RECORDED["paper"], source)
    write_gate(dataclasses.replace(paper, validation={**(paper.validation or {}), "held_out": record}),
               preset_dir / "paper.json")
    return {"final": final, "paper": record, "measuring": buys}
