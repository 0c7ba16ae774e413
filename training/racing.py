"""Race students from a run's last checkpoints and keep the best: the measured answer.

    from training import race
    res = race("runs/t0", out="runs/t0_race")          # full students on the last 3 checkpoints
    res["pick"], res["kept"]                           # the checkpoint, and the student to keep
    res["gap"], res["noise"], res["verdict"]            # how sure: the top two's gap vs the seed noise

On the gate benchmark's dataset (7 tasks, 63 teacher runs), held out by task and judged by
student seeds a rule did not read, one full-budget student on each of the last 3 checkpoints
chose right on 0.67 of teacher runs (mean regret 6.7%) against 0.58 (10.7%) for the final
checkpoint, for 2 extra students (the third is the one you keep; about 0.15 of a teacher's
training); the last 6 (``last=6``, the K fitted in 6 of 7 folds) on 0.74 (4.9%) for about 0.35.
On the 36-run table that suggested "last 3" it had scored 0.81 (3.7%). ``python -m training race
RUN --out DIR`` runs it; finished students are reused, so an interrupted race continues where it
stopped.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Callable

import numpy as np

from gatekit import io as gio
from gatekit.errors import GatekitError
from training import outcomes
from training.config import TrainConfig
from training.many import Job, run_jobs
from training.pilot import default_student, teacher_settings

RELATIVE_SEED_STD = 0.09
"""The students' seed-to-seed std as a share of the best checkpoint's mean, measured on the gate
benchmark's dataset (63 teacher runs, 7 tasks: 0.089; the 36-run table gave 0.07): the noise a
one-seed race is judged against."""


def how_sure(means, students, seeds: int) -> tuple[float | None, float, str, str]:
    """(gap, noise, where the noise comes from, verdict) of a race: the gap between the top two
    candidates' means against the noise of that gap. ``noise`` is the std of one candidate's mean
    (the students' own seed-to-seed std / sqrt(seeds) with 2 or more seeds, else
    :data:`RELATIVE_SEED_STD` x the best mean); the gap of two such means has std sqrt(2) x
    ``noise``, and the race is "clear" only when the gap is more than twice that."""
    means = np.asarray(means, np.float64)
    top = np.sort(means)[::-1]
    gap = float(top[0] - top[1]) if len(top) > 1 else None
    if seeds > 1:
        noise = float(np.mean([np.std(x, ddof=1) for x in students]) / np.sqrt(seeds))
        noise_from = f"the students' own seed-to-seed std / sqrt({seeds})"
    else:
        noise = RELATIVE_SEED_STD * float(max(top[0], 0.0))
        noise_from = f"the benchmark's seed-to-seed std ({RELATIVE_SEED_STD:.0%} of the best mean)"
    bar = 2 * np.sqrt(2) * noise
    if gap is None:
        verdict = "one candidate: nothing to compare"
    elif gap > bar:
        verdict = (f"clear: the best leads the next by {gap:.3g}, more than twice the noise of a gap between two "
                   f"candidates ({bar / 2:.3g}; one candidate's noise {noise:.3g})")
    else:
        verdict = (f"within noise: the best leads the next by {gap:.3g}, less than twice the noise of a gap between "
                   f"two candidates ({bar / 2:.3g}; one candidate's noise {noise:.3g}); the top candidates are about "
                   f"equal (either is a good teacher; more seeds would separate them)")
    return gap, noise, noise_from, verdict


def race(teacher, *, out, last: int = 3, seeds: int = 1, student_epochs: int = 8,
         student_cfg: TrainConfig | None = None, outcome: str = "eval_success", budget: float | None = None,
         progress: Callable[[str], None] | None = None, **parallel) -> dict:
    """Full-budget students (``student_cfg``, default :func:`training.pilot.default_student`;
    ``seeds`` per candidate, the same seeds at every candidate) from ``teacher``'s ``last``
    checkpoints, measured (a :mod:`training.outcomes` measure); the pick is the best mean (ties:
    the later checkpoint), and its first student is the one to keep. Writes ``out/race.json``.

    ``budget``: the most extra work, as a share of the teacher's training time, beyond the one
    student you keep. The final checkpoint's students train first (the answer when nothing more
    fits); their measured time says how many of the ``last`` candidates fit (:func:`afforded`)."""
    run = gio.read_run(teacher)
    saved = gio.list_checkpoints(run)[0]
    if not saved:
        raise GatekitError(f"{teacher}: no checkpoints to race")
    if last < 1 or seeds < 1:
        raise GatekitError(f"--last and --seeds must be >= 1, got {last} and {seeds}")
    measure = outcomes.measure(outcome)
    cfg = student_cfg or default_student(teacher_settings(run, teacher), student_epochs)
    out = pathlib.Path(out)
    steps = saved[-last:]
    jobs = {s: [Job(dataclasses.replace(cfg, seed=1000 + k), out / f"step{s}_s{k}", f"{teacher}@{s}")
                for k in range(seeds)] for s in steps}
    t0 = time.time()
    teacher_s = float(gio.load_checkpoint(run, saved[-1], items=("meta",)).meta.get("wall_time") or 0.0)
    if budget is not None:
        if not (isinstance(budget, (int, float)) and np.isfinite(budget) and budget >= 0):
            raise GatekitError(f"--budget must be a share of the teacher's training >= 0 (e.g. 0.15), got {budget!r}")
        if teacher_s <= 0:
            raise GatekitError(f"{teacher}: its final checkpoint records no training time (meta wall_time), so a "
                               f"--budget cannot be converted into students; give --last instead")
        run_jobs(jobs[steps[-1]], progress=progress, **parallel)  # the final checkpoint's: the answer if nothing fits
        student_s = float(np.mean([_train_seconds(j.path) for j in jobs[steps[-1]]]))
        k = afforded(budget, teacher_s, student_s, seeds, len(steps))
        if progress:
            progress(f"budget {budget:g} of the teacher's training ({teacher_s:.0f} s): a student takes {student_s:.0f} s, "
                     f"so {k} of the last {len(steps)} checkpoint(s) can be raced")
        steps = steps[-k:]
        jobs = {s: jobs[s] for s in steps}
    run_jobs([j for js in jobs.values() for j in js], progress=progress, **parallel)
    results = [{"step": int(s), "students": [measure(j.path) for j in js], "path": str(js[0].path)}
               for s, js in jobs.items()]
    means = np.array([float(np.mean(r["students"])) for r in results])
    for r, m in zip(results, means):
        r["mean"] = float(m)
    order = sorted(range(len(results)), key=lambda i: (means[i], i), reverse=True)
    best = results[order[0]]
    gap, noise, noise_from, verdict = how_sure(means, [r["students"] for r in results], seeds)
    record = _record(len(results), seeds)
    verdict += calibration(verdict, record)
    final_s = teacher_s
    student_s = [_train_seconds(j.path) for js in jobs.values() for j in js]
    extra = float(sum(student_s) - np.mean(student_s)) if student_s else 0.0  # one student is the one kept
    res = {"teacher": str(teacher), "pick": best["step"], "kept": best["path"], "candidates": results,
           "gap": gap, "noise": noise, "noise_from": noise_from, "verdict": verdict, "outcome": outcome,
           "seeds": seeds, "student_epochs": cfg.epochs, "seconds": time.time() - t0, "budget": budget,
           "extra_share_of_teacher": extra / final_s if final_s > 0 else None, "record": record}
    gio.write_text(out / "race.json", json.dumps(gio.to_jsonable(res), indent=1) + "\n")
    return res


def afforded(budget: float, teacher_seconds: float, student_seconds: float, seeds: int, most: int) -> int:
    """How many candidates (the last ``k`` checkpoints, ``seeds`` students each) fit in ``budget``
    x ``teacher_seconds`` of extra work, the one student kept not counted: the largest ``k <=
    most`` with ``(k * seeds - 1) * student_seconds <= budget * teacher_seconds``, at least 1."""
    if student_seconds <= 0:
        return most
    k = int((budget * teacher_seconds / student_seconds + 1) // seeds)
    return max(1, min(most, k))


def _train_seconds(path) -> float:
    run = gio.read_run(path)
    steps = gio.list_checkpoints(run)[0]
    return float(gio.load_checkpoint(run, steps[-1], items=("meta",)).meta.get("wall_time") or 0.0) if steps else 0.0


def _record(last: int, seeds: int) -> dict | None:
    """What a race of this shape held up to on the gate benchmark's dataset (the ``final``
    preset's ``race`` records, written by ``training.bench.analysis.race_records``): the held-out
    choose record of racing the last ``last`` checkpoints, and ``verdicts``: how often such races
    with ``seeds`` seeds whose verdict was "clear" or "within noise" picked right (None where the
    benchmark has no such race)."""
    if "final" not in gio.preset_names():
        return None
    rec = ((gio.read_gate("final").validation or {}).get("race") or {}).get(str(last))
    if not isinstance(rec, dict):
        return None
    return {**{k: v for k, v in rec.items() if k != "verdicts"}, "verdicts": (rec.get("verdicts") or {}).get(str(seeds))}


def calibration(verdict: str, record: dict | None) -> str:
    """What the benchmark's replayed races say a verdict like this one is worth (appended to it):
    how often races of the same shape with the same verdict picked right, against the other
    verdict; empty without a record."""
    verdicts = (record or {}).get("verdicts")
    if not isinstance(verdicts, dict):
        return ""
    kind = "clear" if verdict.startswith("clear") else "within noise"
    other = "within noise" if kind == "clear" else "clear"
    mine, theirs = verdicts.get(kind) or {}, verdicts.get(other) or {}
    if not mine.get("n"):
        return ""
    text = (f". On the gate benchmark's dataset, races like this one (last {record['last']}, same seeds) that were "
            f"{kind} picked right on {mine['success']:.0%} of held-out runs ({mine['n']} races)")
    if theirs.get("n"):
        text += f", those {other} on {theirs['success']:.0%} ({theirs['n']})"
    if kind == "clear" and theirs.get("n") and mine["success"] <= theirs["success"]:
        text += ": with this many seeds a large lead does not make the pick surer"
    return text
