"""The racing engine: a strategy asks, a trainer answers, an executor runs the jobs.

    from gatekit.racing import LastK, CommandTrainer, race
    res = race("runs/t0", out="runs/t0_race", strategy=LastK(k=3),
               trainer=CommandTrainer("python distill.py --teacher {checkpoint} --seed {seed} "
                                      "--epochs {epochs} --out {out}"),
               executor=None)        # any concurrent.futures.Executor: threads, processes, Dask, submitit
    res["pick"], res["kept"], res["verdict"], res["cost"]

Each job trains one student and writes one result file, atomically:
``OUT/results/step{S}_s{K}_e{E}.json`` (the outcome, or the error). The strategy decides only from
which result files exist (:func:`drive`), so a race killed at any point resumes without training
a finished student again, can be sharded over machines that share OUT, and replays offline. The
folder belongs to one race: ``OUT/race-settings.json`` records the teacher and every setting, and
a race with other settings is refused there; ``OUT/.race.lock`` keeps a second writer out.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import time
from typing import Any, Callable, Mapping, Sequence

from gatekit.errors import GatekitError
from gatekit.racing.base import Measurement, Results, Strategy
from gatekit.racing.verdict import how_sure

RESULTS = "results"
SETTINGS = "race-settings.json"
LOCK = ".race.lock"
RACE_JSON = "race.json"
MAX_ROUNDS = 1000


def drive(strategy: Strategy, steps: Sequence[int], results: dict, measure: Callable[[list[Measurement]], Mapping]):
    """Ask ``strategy`` what it needs given ``results``, ``measure`` the missing measurements (a
    batch: ``{measurement: outcome or None}``), add them, and ask again until nothing is missing.
    The one loop a live race and a replay share. Returns ``results``."""
    for _ in range(MAX_ROUNDS):
        missing = [m for m in strategy.needs(steps, results) if m not in results]
        if not missing:
            return results
        got = measure(missing)
        results.update({m: got.get(m) for m in missing})
    raise GatekitError(f"{strategy.text}: still asking after {MAX_ROUNDS} rounds")


def replay(strategy: Strategy, steps: Sequence[int], trainer) -> tuple[int | None, dict]:
    """The strategy's pick (an index into ``steps``) and its results when ``trainer`` (a
    :class:`gatekit.racing.trainers.ReplayTrainer`) answers every measurement: what the benchmark
    scores, through the same :func:`drive` a live race runs."""

    def measure(batch):
        out = {}
        for m in batch:
            try:
                out[m] = trainer.train(f"run@{m.step}", m.seed, m.epochs, None)
            except GatekitError:
                out[m] = None
        return out

    results = drive(strategy, steps, {}, measure)
    return strategy.pick(steps, results), results


def result_path(out: pathlib.Path, m: Measurement) -> pathlib.Path:
    return pathlib.Path(out) / RESULTS / f"{m.name}_e{m.epochs}.json"


def run_job(trainer, checkpoint: str, m: Measurement, student_dir: str, result_file: str) -> dict:
    """One job (module-level, so any executor can pickle it): train one student, write its result
    file atomically, return the record. A failed student is a record with ``error``, never an
    exception: one bad candidate never stops the others."""
    from gatekit.io import to_jsonable, write_text

    t0 = time.time()
    record: dict[str, Any] = {"step": m.step, "seed": m.seed, "epochs": m.epochs, "checkpoint": checkpoint,
                              "student": student_dir}
    try:
        record["outcome"] = float(trainer.train(checkpoint, m.seed, m.epochs, pathlib.Path(student_dir)))
        if not math.isfinite(record["outcome"]):
            raise GatekitError(f"{student_dir}: the outcome is {record['outcome']}")
        record["fingerprint"] = student_fingerprint(student_dir)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - any failure of the user's trainer is this student's, reported
        record["outcome"] = None
        record["error"] = str(e) if isinstance(e, GatekitError) else f"{type(e).__name__}: {e}"
    record["seconds"] = time.time() - t0
    write_text(result_file, json.dumps(to_jsonable(record), indent=1) + "\n")
    return record


def student_fingerprint(folder) -> str | None:
    """sha256 over a student folder's files (paths, sizes, contents), or None when there is none:
    recorded with each result, so a student changed since it was measured is never reused."""
    import hashlib

    from gatekit.io.cache import fingerprint

    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return None
    return hashlib.sha256(json.dumps(fingerprint(folder)).encode()).hexdigest()


def stale(out: pathlib.Path, done: Mapping[Measurement, dict]) -> list[Measurement]:
    """Results whose student folder changed since they were recorded (its newest result only: a
    halving rung's earlier results stand, its folder was continued on purpose)."""
    newest: dict[tuple[int, int], Measurement] = {}
    for m in done:
        if (m.step, m.seed) not in newest or m.epochs > newest[(m.step, m.seed)].epochs:
            newest[(m.step, m.seed)] = m
    bad = []
    for m in newest.values():
        rec = done[m]
        if rec.get("outcome") is not None and rec.get("fingerprint") is not None \
                and student_fingerprint(pathlib.Path(out) / m.name) != rec["fingerprint"]:
            bad.append(m)
    return bad


def read_results(out: pathlib.Path) -> dict[Measurement, dict]:
    """Every result file a race left in ``out`` (a damaged one is ignored: that student trains
    again)."""
    folder = pathlib.Path(out) / RESULTS
    found = {}
    if not folder.is_dir():
        return found
    for p in sorted(folder.glob("step*_s*_e*.json")):
        try:
            rec = json.loads(p.read_text(encoding="utf-8"))
            if not all(isinstance(rec[k], int) and not isinstance(rec[k], bool) for k in ("step", "seed", "epochs")):
                continue
            m = Measurement(rec["step"], rec["seed"], rec["epochs"])
            o = rec.get("outcome")
            if o is not None and (isinstance(o, bool) or not isinstance(o, (int, float)) or not math.isfinite(o)):
                continue
        except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError, UnicodeDecodeError):
            continue
        if result_path(out, m) == p:
            found[m] = rec
    return found


def _claim(out: pathlib.Path, settings: dict) -> int:
    """Take ``out`` for this race: the lock, then the recorded settings (written when new, else
    compared: a folder of another race, teacher or student is refused, never reused)."""
    from gatekit.io import to_jsonable, write_text
    from gatekit.io.writer import lock_folder

    fd = lock_folder(out, LOCK, "race")
    path = out / SETTINGS
    mine = json.loads(json.dumps(to_jsonable(settings)))
    if path.exists():
        try:
            theirs = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError, UnicodeDecodeError):
            theirs = None
        if theirs != mine:
            os.close(fd)
            theirs = theirs if isinstance(theirs, dict) else {}
            diff = sorted(k for k in set(mine) | set(theirs) if theirs.get(k) != mine.get(k))
            raise GatekitError(f"--out {out}: holds a race with other settings ({', '.join(diff[:4]) or 'unreadable'}); "
                               f"its students are not reused for this one: choose another --out")
        return fd
    stray = sorted(p.name for p in out.iterdir() if p.name not in (LOCK, "submitit"))  # submitit's logs: its executor
    if stray:
        os.close(fd)
        raise GatekitError(f"--out {out}: is not empty and holds no race ({', '.join(stray[:3])}); choose a new "
                           f"or empty folder")
    write_text(path, json.dumps(mine, indent=1) + "\n")
    return fd


def estimate(strategy: Strategy, steps: Sequence[int], seconds_per_epoch: float | None,
             teacher_seconds: float | None) -> dict:
    """What a race will cost at most, said before it starts: students, student epochs, seconds
    (when a student epoch's time is known or estimated) and the share of the teacher's training."""
    students, epochs = strategy.most(steps)
    sec = epochs * seconds_per_epoch if seconds_per_epoch else None
    return {"students": students, "student_epochs": epochs, "seconds": sec,
            "share_of_teacher": sec / teacher_seconds if sec and teacher_seconds else None}


def race(run, *, out, strategy: Strategy, trainer, executor=None, progress: Callable[[str], None] | None = None,
         teacher_seconds: float | None = None, seconds_per_epoch: float | None = None, steps=None,
         settings: dict | None = None) -> dict:
    """Race students from a gatekit run's checkpoints under ``strategy``, trained by ``trainer``
    (:mod:`gatekit.racing.trainers`) through ``executor`` (any ``concurrent.futures.Executor``;
    None: one student at a time in this process). Writes ``out/race.json`` and returns it: the
    pick (``RUN@STEP``), the student to keep, every measurement, the verdict and the cost.

    ``teacher_seconds``: the teacher's training time (default: its final checkpoint's recorded
    wall time), the unit of the cost's share; ``seconds_per_epoch``: a student epoch's expected
    time for the estimate said before the race (None: unknown until the first student ends)."""
    from gatekit import io as gio
    from gatekit.io import to_jsonable, write_text

    out = pathlib.Path(out)
    if steps is None:
        r = gio.read_run(run)
        steps, _ = gio.list_checkpoints(r)
        if not steps:
            raise GatekitError(f"{run}: no complete checkpoints to race")
        if teacher_seconds is None:
            meta = gio.load_checkpoint(r, steps[-1], items=("meta",)).meta
            wt = meta.get("wall_time") if isinstance(meta, dict) else None
            teacher_seconds = float(wt) if isinstance(wt, (int, float)) and not isinstance(wt, bool) and wt > 0 else None
    steps = [int(s) for s in steps]
    say = progress or (lambda msg: None)
    plan = estimate(strategy, steps, seconds_per_epoch, teacher_seconds)
    say(_plan_line(strategy, plan))
    record = {"teacher": str(run), "teacher_path": str(pathlib.Path(run).resolve()), "steps": steps,
              **strategy.describe(), **trainer.describe(), **(settings or {})}
    fd = _claim(out, record)
    try:
        t0 = time.time()
        done = read_results(out)
        for m in stale(out, done):  # re-verified before reuse: a student changed since it was measured
            say(f"{out / m.name}: changed since its outcome was recorded; it is measured again")
            result_path(out, m).unlink(missing_ok=True)
            del done[m]
        reused = len(done)
        if reused:
            say(f"resuming: {reused} student(s) already measured in {out / RESULTS}")
        records = dict(done)

        def measure(batch):
            futures = []
            for m in batch:
                args = (trainer, f"{run}@{m.step}", m, str(out / m.name), str(result_path(out, m)))
                futures.append((m, executor.submit(run_job, *args) if executor is not None else None, args))
            got = {}
            for i, (m, fut, args) in enumerate(futures):
                try:
                    rec = fut.result() if fut is not None else run_job(*args)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as e:  # noqa: BLE001 - the worker itself died: this student failed
                    rec = {"step": m.step, "seed": m.seed, "epochs": m.epochs, "outcome": None, "seconds": None,
                           "error": f"{type(e).__name__}: {e}", "student": args[3]}
                    write_text(result_path(out, m), json.dumps(to_jsonable(rec), indent=1) + "\n")
                records[m] = rec
                got[m] = rec.get("outcome")
                o = rec.get("outcome")
                done = len(records) - reused
                left = max(plan["students"] - done, 0)  # at most: a strategy may stop early
                eta = f"; at most about {(time.time() - t0) / done * left:.0f} s left" if left and done else ""
                say(f"student {done}/{plan['students']}: {run}@{m.step} seed {m.seed} "
                    f"{m.epochs} epochs: " + (f"{o:.3g} ({rec['seconds']:.0f} s{eta})" if o is not None
                                              else f"failed ({rec.get('error')})"))
            return got

        results = drive(strategy, steps, {m: r.get("outcome") for m, r in records.items()}, measure)
        res = summarize(run, out, strategy, steps, results, records, teacher_seconds, time.time() - t0, plan)
        write_text(out / RACE_JSON, json.dumps(to_jsonable(res), indent=1) + "\n")
        return res
    finally:
        os.close(fd)


def _plan_line(strategy: Strategy, plan: dict) -> str:
    cost = f"{plan['students']} student(s), {plan['student_epochs']} student epochs"
    if plan["seconds"]:
        cost += f", about {_duration(plan['seconds'])}"
        if plan["share_of_teacher"]:
            cost += f" ({plan['share_of_teacher']:.2f} of the teacher's training)"
    else:
        cost += " (seconds unknown until the first student ends)"
    return f"race: {strategy.text}: at most {cost}"


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def summarize(run, out, strategy: Strategy, steps, results: Results, records: Mapping, teacher_seconds, seconds,
              plan) -> dict:
    """race.json: the pick, the student to keep, each candidate, the verdict, what it cost."""
    i = strategy.pick(steps, results)
    compared = strategy.compared(steps, results)
    failed = [{"step": m.step, "seed": m.seed, "epochs": m.epochs, "error": r.get("error")}
              for m, r in sorted(records.items()) if r.get("outcome") is None]
    cands = []
    for s, vals in compared.items():
        ok = [v for v in vals if v is not None]
        cands.append({"step": s, "students": vals, "mean": float(sum(ok) / len(ok)) if ok and len(ok) == len(vals)
                      else None})
    means = [c["mean"] if c["mean"] is not None else -math.inf for c in cands]
    seeds = max((len(c["students"]) for c in cands), default=1)
    sure = how_sure(means, [c["students"] for c in cands if c["mean"] is not None], seeds)
    kept = strategy.kept(steps, results)
    spent = [r.get("seconds") for r in records.values() if isinstance(r.get("seconds"), (int, float))]
    total = float(sum(spent))
    per_student = total / len(spent) if spent else None
    extra = total - per_student if per_student is not None and kept is not None else total
    res = {"teacher": str(run), "teacher_path": str(pathlib.Path(str(run)).resolve()),
           "pick": None if i is None else int(steps[i]),
           "checkpoint": None if i is None else f"{run}@{steps[i]}", "strategy": strategy.name,
           "rule": strategy.text, "settings": strategy.describe(),
           "kept": None if kept is None else str(records[kept].get("student") or pathlib.Path(out) / kept.name),
           "candidates": cands, "failed": failed, **sure, "plan": plan,
           "cost": {"students": len(records), "student_seconds": total, "wall_seconds": seconds,
                    "teacher_seconds": teacher_seconds,
                    "extra_share_of_teacher": extra / teacher_seconds if teacher_seconds else None}}
    if strategy.name == "last":
        from gatekit.racing.verdict import calibration, record

        rec = record(len(cands), getattr(strategy, "seeds", 1))
        res["record"] = rec
        res["verdict_worth"] = calibration(sure["verdict"], rec)
    if i is None:
        raise GatekitError(f"race into {out}: no candidate was measured ({len(failed)} student(s) failed; the "
                           f"errors are in {pathlib.Path(out) / RESULTS}); delete those result files to retry")
    return res
