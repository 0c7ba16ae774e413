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
from training import barrier, calibrate, envs
from training.runs import train_or_reuse


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


def _say(progress, msg):
    if progress:
        progress(msg)


def pick(steps: list[int], k: int) -> list[int]:
    """k checkpoints evenly spaced over training, first and last included."""
    idx = np.unique(np.round(np.linspace(0, len(steps) - 1, min(k, len(steps)))).astype(int))
    return [steps[i] for i in idx]


def teacher_runs(spec: SweepSpec, out: pathlib.Path, progress=None) -> list[pathlib.Path]:
    cand = barrier.CANDIDATES[spec.candidate]
    paths = []
    for seed in spec.teacher_seeds:
        cfg = dataclasses.replace(cand.config(8, cand.width, seed), tau=spec.tau)
        path = out / "teachers" / f"tau{spec.tau:g}_seed{seed}"
        t0 = time.time()
        train_or_reuse(cfg, path)
        _say(progress, f"  teacher tau={spec.tau:g} seed {seed} [{time.time() - t0:.0f}s]")
        paths.append(path)
    return paths


def student_config(spec: SweepSpec, seed: int):
    cand = barrier.CANDIDATES[spec.candidate]
    width = spec.student_width
    if width is None:
        env = envs.make(cand.env, **dict(cand.env_kwargs))
        width = barrier.matched_width(env, spec.student_depth, barrier.param_count(env, 8, cand.width))
    return dataclasses.replace(cand.config(spec.student_depth, width, seed), epochs=spec.student_epochs,
                               lambda_pi=1.0, tau=spec.tau, teacher_transform=spec.teacher_transform)


def students(spec: SweepSpec, out: pathlib.Path, teacher: str | None, name: str) -> list[float]:
    """The sweep's students of one teacher checkpoint (None: the no-teacher baseline) and their
    outcomes, measured as the candidate names (:mod:`training.outcomes`)."""
    cand = barrier.CANDIDATES[spec.candidate]
    return calibrate.student_outcomes(teacher, student_config(spec, 0), out / "students", name, spec.student_seeds,
                                      cand.outcome)


def run_sweep(spec: SweepSpec, out, *, progress: Callable[[str], None] | None = None,
              teachers: list[pathlib.Path] | None = None) -> dict:
    """Trains (or reuses) the teachers, the students of ``spec.checkpoints`` checkpoints each and
    the no-teacher baseline; writes ``pairs.csv`` (every gatekit statistic of the teacher
    checkpoint, teacher far-goal time at goal, ``student_outcome`` mean and per seed)."""
    import gatekit

    out = pathlib.Path(out)
    t0 = time.time()
    teachers = teachers or teacher_runs(spec, out, progress)
    tag = f"_{spec.teacher_transform.replace('=', '').replace(',', '_')}" if spec.teacher_transform else ""
    baseline = students(dataclasses.replace(spec, teacher_transform=""), out, None, "baseline")
    _say(progress, f"  no-teacher baseline (same budget): {np.mean(baseline):.1f} {baseline}")
    table = gatekit.score(teachers)
    rows = []
    for path in teachers:
        steps = pick([r["step"] for r in table.rows if r["run_path"] == str(path.resolve())], spec.checkpoints)
        for r in (r for r in table.rows if r["run_path"] == str(path.resolve()) and r["step"] in steps):
            vals = students(spec, out, f"{path}@{r['step']}", f"{path.name}@{r['step']}{tag}")
            teacher_far = barrier.far_goal_eval(path, step=r["step"])
            rows.append({"teacher_seed": r["seed"], **r, "teacher_far_time_at_goal": teacher_far["far_time_at_goal"],
                         "max_time_at_goal": teacher_far["max_time_at_goal"],
                         "student_outcome": float(np.mean(vals)),
                         **{f"student_outcome_s{k}": v for k, v in enumerate(vals)}})
            _say(progress, f"  {path.name}@{r['step']} (epoch {r['epoch']}): teacher {teacher_far['far_time_at_goal']:.1f}"
                           f"  student {np.mean(vals):.1f}  [{time.time() - t0:.0f}s]")
    out.mkdir(parents=True, exist_ok=True)
    pairs = gio.write_table(rows, out / f"pairs{tag}.csv")
    return {"pairs": str(pairs), "rows": rows, "baseline": baseline, "minutes": (time.time() - t0) / 60}


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


def main_cli(candidate: str, out: pathlib.Path, **kw) -> dict:
    """What ``python -m training sweep`` runs: the sweep, then the out-of-fold ranking."""
    import gatekit

    progress = (lambda m: print(m, file=sys.stderr, flush=True))
    res = run_sweep(SweepSpec(candidate=candidate, **kw), out, progress=progress)
    cut = label_final_fraction(res["rows"], 0.5)
    ranking = gatekit.fit_all(res["rows"], label="student_outcome", label_above=cut, group="teacher_seed")
    print(gatekit.api.format_fit_all(ranking))
    return res
