"""The gate sweep as library code: teachers x checkpoints -> distilled students -> ``pairs.csv``.

    spec = SweepSpec(candidate="car_u")          # any training.barrier candidate
    result = run_sweep(spec, "runs/sweep_car")   # reuses finished runs
    gatekit.fit(result["pairs"], metric="all", label=..., group="teacher_seed")

Outcome per student: the candidate's measure (``Candidate.outcome``; every candidate uses far-goal
time at goal of the student's final checkpoint, :mod:`training.outcomes`). Every
student of a sweep (distilled or not) gets the same budget; the no-teacher baseline too.
``python -m training sweep CANDIDATE --out DIR`` runs it from the shell.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import time
from typing import Callable

import numpy as np

from gatekit import io as gio
from training import barrier, calibrate, envs, outcomes
from training.config import TrainConfig
from training.many import Job, run_jobs, shard_of
from training.runs import run_finished


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    candidate: str
    teacher_seeds: tuple[int, ...] = (0, 1, 2)
    checkpoints: int = 7
    student_seeds: int = 2
    student_depth: int = 4
    student_width: int | None = None  # None: the equal-parameter wide depth-4 width
    student_epochs: int = 6
    tau: float = 1.0
    teacher_transform: str = ""
    teacher_epochs: int | None = None  # None: the candidate's budget


def _say(progress, msg):
    if progress:
        progress(msg)


def pick(steps: list[int], k: int) -> list[int]:
    """k checkpoints evenly spaced over training, first and last included."""
    idx = np.unique(np.round(np.linspace(0, len(steps) - 1, min(k, len(steps)))).astype(int))
    return [steps[i] for i in idx]


def teacher_config(spec: SweepSpec, seed: int) -> TrainConfig:
    cand = barrier.CANDIDATES[spec.candidate]
    return dataclasses.replace(cand.config(8, cand.width, seed), tau=spec.tau,
                               epochs=spec.teacher_epochs or cand.epochs)


def teacher_path(spec: SweepSpec, out: pathlib.Path, seed: int) -> pathlib.Path:
    return pathlib.Path(out) / "teachers" / f"tau{spec.tau:g}_seed{seed}"


def teacher_runs(spec: SweepSpec, out: pathlib.Path, progress=None, *, shard=(0, 1), **parallel) -> list[pathlib.Path]:
    """Trains (or reuses) this shard's teachers (teacher seed number i goes to shard i mod N);
    returns every teacher's path."""
    jobs = [Job(teacher_config(spec, s), teacher_path(spec, out, s)) for s in spec.teacher_seeds]
    run_jobs(shard_of(jobs, shard), progress=progress, **parallel)
    return [j.path for j in jobs]


def student_config(spec: SweepSpec, seed: int):
    cand = barrier.CANDIDATES[spec.candidate]
    width = spec.student_width
    if width is None:
        env = envs.make(cand.env, **dict(cand.env_kwargs))
        width = barrier.matched_width(env, spec.student_depth, barrier.param_count(env, 8, cand.width))
    return dataclasses.replace(cand.config(spec.student_depth, width, seed), epochs=spec.student_epochs,
                               lambda_pi=1.0, tau=spec.tau, teacher_transform=spec.teacher_transform)


def _tag(spec: SweepSpec) -> str:
    return f"_{spec.teacher_transform.replace('=', '').replace(',', '_')}" if spec.teacher_transform else ""


def _student_jobs(spec: SweepSpec, out: pathlib.Path, teacher: str | None, name: str) -> list[Job]:
    return calibrate.student_jobs(teacher, student_config(spec, 0), out / "students", name, spec.student_seeds)


def students(spec: SweepSpec, out: pathlib.Path, teacher: str | None, name: str, **parallel) -> list[float]:
    """The sweep's students of one teacher checkpoint (None: the no-teacher baseline) and their
    outcomes, measured as the candidate names (:mod:`training.outcomes`)."""
    cand = barrier.CANDIDATES[spec.candidate]
    jobs = _student_jobs(spec, out, teacher, name)
    run_jobs(jobs, **parallel)
    return [outcomes.measure(cand.outcome)(j.path) for j in jobs]


def _plan(spec: SweepSpec, out: pathlib.Path, teachers: list[pathlib.Path], table) -> list[tuple]:
    """(teacher path, score row, its student jobs) for every picked checkpoint, in table order."""
    plan = []
    for path in teachers:
        mine = [r for r in table.rows if r["run_path"] == str(pathlib.Path(path).resolve())]
        steps = pick([r["step"] for r in mine], spec.checkpoints)
        plan += [(path, r, _student_jobs(spec, out, f"{path}@{r['step']}", f"{pathlib.Path(path).name}@{r['step']}"
                                         f"{_tag(spec)}")) for r in mine if r["step"] in steps]
    return plan


def _baseline_jobs(spec: SweepSpec, out: pathlib.Path) -> list[Job]:
    return _student_jobs(dataclasses.replace(spec, teacher_transform=""), out, None, "baseline")


def run_sweep(spec: SweepSpec, out, *, progress: Callable[[str], None] | None = None,
              teachers: list[pathlib.Path] | None = None, shard: tuple[int, int] = (0, 1),
              workers: int | None = None, max_parallel: int | None = None) -> dict:
    """Trains (or reuses) the teachers, the students of ``spec.checkpoints`` checkpoints each and
    the no-teacher baseline; writes ``pairs.csv`` (every gatekit statistic of the teacher
    checkpoint, teacher far-goal time at goal, ``student_outcome`` mean and per seed).

    ``shard=(I, N)`` trains only shard I's share (teacher seed number i and its students go to
    shard i mod N; the baseline to shard 0), so N processes or machines fill one ``out`` folder;
    the pairs table is written by whichever shard finds every run finished (see :func:`merge`).
    """
    import gatekit

    out, parallel = pathlib.Path(out), dict(workers=workers, max_parallel=max_parallel)
    t0 = time.time()
    if teachers is None:
        teachers = teacher_runs(spec, out, progress, shard=shard, **parallel)
    mine = [pathlib.Path(p) for p in shard_of(list(teachers), shard) if gio.list_checkpoints(gio.read_run(p))[0]]
    jobs = _baseline_jobs(spec, out) if shard[0] == 0 else []
    table = gatekit.score(mine) if mine else None
    if mine:
        jobs += [j for _, _, js in _plan(spec, out, mine, table) for j in js]
    run_jobs(jobs, progress=progress, **parallel)
    _say(progress, f"  shard {shard[0]}/{shard[1]}: {len(mine)} teacher(s), {len(jobs)} student run(s) "
                   f"[{time.time() - t0:.0f}s]")
    every = len(mine) == len(teachers)  # one shard: its table already covers every teacher
    res = merge(spec, out, teachers, progress=progress, table=table if every else None)
    return {**res, "minutes": (time.time() - t0) / 60}


def merge(spec: SweepSpec, out, teachers: list[pathlib.Path], *, progress=None, table=None) -> dict:
    """Builds ``pairs.csv`` once every teacher and student of the sweep has finished; otherwise
    writes nothing and returns the runs still missing (``{"missing": [...]}``). ``table``: the
    teachers' scores when the caller has them already (not scored again)."""
    import gatekit

    out = pathlib.Path(out)
    cand = barrier.CANDIDATES[spec.candidate]
    missing = [str(p) for p in teachers if not (pathlib.Path(p) / gio.RUN_JSON).exists()
               or not gio.list_checkpoints(gio.read_run(p))[0]]
    present = [p for p in teachers if str(p) not in missing]
    if present and table is None:
        table = gatekit.score(present)
    plan = _plan(spec, out, present, table) if present else []
    student = [j for _, _, js in plan for j in js] + _baseline_jobs(spec, out)
    missing += [str(j.path) for j in student if not run_finished(j.path, j.cfg.epochs)]
    if missing:
        _say(progress, f"  not merged yet: {len(missing)} run(s) missing, e.g. {missing[0]}")
        return {"pairs": None, "rows": None, "baseline": None, "missing": missing}
    measure = outcomes.measure(cand.outcome)
    baseline = [measure(j.path) for j in _baseline_jobs(spec, out)]
    _say(progress, f"  no-teacher baseline (same budget): {np.mean(baseline):.1f} {baseline}")
    rows = []
    for path, r, jobs in plan:
        vals = [measure(j.path) for j in jobs]
        teacher_far = barrier.far_goal_eval(path, step=r["step"])
        rows.append({"teacher_seed": r["seed"], **r, "teacher_far_time_at_goal": teacher_far["far_time_at_goal"],
                     "max_time_at_goal": teacher_far["max_time_at_goal"], "student_outcome": float(np.mean(vals)),
                     **{f"student_outcome_s{k}": v for k, v in enumerate(vals)}})
        _say(progress, f"  {pathlib.Path(path).name}@{r['step']} (epoch {r['epoch']}): teacher "
                       f"{teacher_far['far_time_at_goal']:.1f}  student {np.mean(vals):.1f}")
    out.mkdir(parents=True, exist_ok=True)
    pairs = gio.write_table(rows, out / f"pairs{_tag(spec)}.csv")
    return {"pairs": str(pairs), "rows": rows, "baseline": baseline, "missing": []}


def gate_epoch(rows: list[dict], cut: float, key: str = "student_outcome", *, inclusive: bool = False) -> int | None:
    """First teacher epoch from which every later checkpoint's student clears ``cut`` (``> cut``,
    or ``>= cut`` with ``inclusive``): a sustained crossing, so one lucky student does not count."""
    rs = sorted(rows, key=lambda r: r["epoch"])
    clears = (lambda v: v >= cut) if inclusive else (lambda v: v > cut)
    for i, r in enumerate(rs):
        if all(clears(x[key]) for x in rs[i:]):
            return int(r["epoch"])
    return None


def label_final_fraction(rows: list[dict], fraction: float) -> float:
    """The declared label cut: ``fraction`` x the mean student of the teachers' final checkpoints."""
    final = {}
    for r in rows:
        if r["teacher_seed"] not in final or r["step"] > final[r["teacher_seed"]]["step"]:
            final[r["teacher_seed"]] = r
    return fraction * float(np.mean([r["student_outcome"] for r in final.values()]))


def main_cli(candidate: str, out: pathlib.Path, *, shard=(0, 1), workers=None, max_parallel=None, quiet: bool = False,
             **kw) -> dict:
    """What ``python -m training sweep`` runs: the sweep (this shard's share), then, once every
    shard's runs are finished, the pairs table and the out-of-fold ranking."""
    import gatekit

    progress = (lambda m: None) if quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    res = run_sweep(SweepSpec(candidate=candidate, **kw), out, progress=progress, shard=shard, workers=workers,
                    max_parallel=max_parallel)
    if res["rows"] is None:
        print(f"shard {shard[0]}/{shard[1]} done; {len(res['missing'])} run(s) of other shards still missing: "
              f"rerun any shard (or --shard 0/1) once they finish to build {out}/pairs.csv")
        return res
    cut = label_final_fraction(res["rows"], 0.5)
    ranking = gatekit.fit_all(res["rows"], label="student_outcome", label_above=cut, group="teacher_seed")
    print(gatekit.api.format_fit_all(ranking))
    return res
