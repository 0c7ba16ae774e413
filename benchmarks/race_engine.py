"""What the racing engine costs, and how executors compare, as ratios measured in one run.

    python benchmarks/race_engine.py [--jobs 200] [--workers 2]

1. **Overhead per job**: a race of ``--jobs`` students whose trainer does nothing (a callable that
   returns at once), in this process: the engine's own cost per student (the strategy's bookkeeping,
   one atomic result file, the lock and the settings record), against the seconds of one real
   student: the toy student of ``examples/own_trainer`` measured below, and the quick start's
   student (26 s on the 2-core machine: its race.json, 78 s for 3).
2. **Executors**: the same race (``examples/own_trainer``'s teacher, last 4 checkpoints x 2 seeds =
   8 students of its ``distill.py``, a process each, through ``--student-cmd``) with threads in
   this process (``--workers``), a Dask LocalCluster with ``--workers`` workers, and submitit's
   local executor; wall time of each over the threads', and whether the picks agree.

Writes ``benchmarks/results/race_engine_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICKSTART_STUDENT_S = 78.0 / 3  # examples/quickstart.py on the 2-core CI-like machine, 2026-12-06


def _noop(checkpoint, seed, epochs, out):
    return 0.5


def overhead(jobs: int, tmp: pathlib.Path) -> float:
    from gatekit.racing import CallableTrainer, LastK, race

    t0 = time.perf_counter()
    race("bench", out=tmp / "noop", strategy=LastK(k=jobs, epochs=1), trainer=CallableTrainer(_noop),
         steps=list(range(1, jobs + 1)), teacher_seconds=1.0)
    return (time.perf_counter() - t0) / jobs


def executors(workers: int, tmp: pathlib.Path) -> dict:
    from gatekit import api

    subprocess.run([sys.executable, str(ROOT / "examples/own_trainer/make_teacher.py"), "--out", str(tmp / "ckpts")],
                   check=True, capture_output=True)
    subprocess.run([sys.executable, "-c", "from gatekit.cli import main; main()", "import", "jaxgcrl",
                    str(tmp / "ckpts"), "--out", str(tmp / "teacher")], check=True, capture_output=True)
    cmd = (f"{sys.executable} {ROOT / 'examples/own_trainer/distill.py'} --teacher {{checkpoint}} --seed {{seed}} "
           f"--epochs {{epochs}} --out {{out}}")
    out = {}
    for name, opts in (("threads", None), ("dask", None), ("slurm", {"cluster": "local"})):
        t0 = time.perf_counter()
        res = api.race(tmp / "teacher", out=tmp / f"race_{name}", last=4, seeds=2, student_epochs=4,
                       student_cmd=cmd, executor=name, workers=workers, executor_options=opts)
        wall = time.perf_counter() - t0
        out[name] = {"wall_s": wall, "pick": res["pick"], "student_s": res["cost"]["student_seconds"] / 8,
                     "students": [c["students"] for c in res["candidates"]]}
        print(f"{name}: {wall:.1f} s wall, pick {res['pick']}", flush=True)
    base = out["threads"]
    for name, r in out.items():
        r["wall_over_threads"] = r["wall_s"] / base["wall_s"]
        r["same_pick_as_threads"] = r["pick"] == base["pick"]
        r["same_students_as_threads"] = r["students"] == base["students"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        per_job = overhead(args.jobs, tmp)
        print(f"engine overhead per job: {per_job * 1000:.1f} ms", flush=True)
        ex = executors(args.workers, tmp)
    toy = ex["threads"]["student_s"]
    res = {"machine": f"{os.cpu_count()} CPU cores", "date": time.strftime("%Y-%m-%d"),
           "overhead_per_job_s": per_job, "toy_student_s": toy, "quickstart_student_s": QUICKSTART_STUDENT_S,
           "overhead_over_toy_student": per_job / toy, "overhead_over_quickstart_student": per_job / QUICKSTART_STUDENT_S,
           "executors": ex}
    path = ROOT / "benchmarks" / "results" / "race_engine_cpu.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    print(f"overhead: {per_job / toy:.2%} of a toy student ({toy:.1f} s), {per_job / QUICKSTART_STUDENT_S:.3%} of "
          f"the quick start's ({QUICKSTART_STUDENT_S:.0f} s)")
    for name, r in ex.items():
        print(f"{name}: wall {r['wall_over_threads']:.2f} x threads, same pick {r['same_pick_as_threads']}, "
              f"same students {r['same_students_as_threads']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
