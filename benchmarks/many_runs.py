"""Many short runs: one after another vs threads vs worker processes vs vmapped programs, in one run.

    python benchmarks/many_runs.py --quick     # K = 16: sequential, then the fastest parallel way
    python benchmarks/many_runs.py             # the table: K in {1, 4, 16, 64} x every way

The runs are K students of the quick start's student config (depth 4, one epoch each here),
distilled from one small point-maze teacher, with seeds 1000..1000+K-1: the work of a
calibration. Each way runs in a fresh process, so every timing includes starting Python,
importing JAX and compiling (what a user waits for), twice: *cold*, with an empty persistent
compilation cache, and *warm*, the same command again with the cache the cold call filled (what
the second calibration on a machine sees; gatekit's commands keep the cache on by default):

* sequential: one process, XLA's default threading, one run after another;
* threads: one process, one thread per core taking runs in turn (the CPU default);
* workers: one process per core, each with single-threaded XLA, runs split between them;
* vmap: one process, the K runs as one vmapped program (``training.many.train_many``);
* workers x vmap / threads x vmap: one process / thread per core, each with a vmapped program of
  its share.

Peak memory is the largest resident set of one process of that way (a worker's, for workers).
The last two lines are ``parallel/sequential speedup X.XX, max |param diff| Y`` for K = 16, cold
then warm, where the parameter difference compares every run's final parameters with the
sequential way's.
Writes benchmarks/results/many_runs_<backend>.json.
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

CHILD = r"""
import dataclasses, json, pathlib, resource, sys, time
from training import calibrate
from training.many import Job, run_jobs
teacher, out, k, workers, parallel, threads = sys.argv[1], pathlib.Path(sys.argv[2]), *map(int, sys.argv[3:7])
cfg = dataclasses.replace(calibrate.POINTMAZE_STUDENT, epochs=1)
jobs = [Job(dataclasses.replace(cfg, seed=1000 + i), out / f"s{i}", teacher) for i in range(k)]
t0 = time.perf_counter()
run_jobs(jobs, workers=workers, max_parallel=parallel, threads=threads)
rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"inner_seconds": time.perf_counter() - t0, "peak_rss_mb": rss / 1024}))
"""

WAYS = {  # name -> (workers, runs per program, threads) as functions of K and the core count
    "sequential": lambda k, cores: (1, 1, 1),
    "threads": lambda k, cores: (1, 1, cores),
    "workers": lambda k, cores: (cores, 1, 1),
    "vmap": lambda k, cores: (1, k, 1),
    "workers x vmap": lambda k, cores: (cores, max(1, -(-k // cores)), 1),
    "threads x vmap": lambda k, cores: (1, max(1, -(-k // cores)), cores),
}


def _teacher(tmp: pathlib.Path) -> str:
    code = ("import dataclasses; from training import calibrate, train; "
            f"train(dataclasses.replace(calibrate.POINTMAZE_TEACHER, epochs=2), {str(tmp / 'teacher')!r}, progress=None)")
    subprocess.run([sys.executable, "-c", code], check=True, env=_env())
    from gatekit import io as gio

    run = gio.read_run(tmp / "teacher")
    return f"{run.path}@{gio.list_checkpoints(run)[0][-1]}"


def _env(cache: pathlib.Path | None = None) -> dict:
    env = dict(os.environ, GATEKIT_COMPILATION_CACHE="0", PYTHONPATH=str(ROOT))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if cache is not None:
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.2")
    return env


def run_way(teacher: str, out: pathlib.Path, k: int, workers: int, parallel: int, threads: int,
            cache: pathlib.Path) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD, teacher, str(out), str(k), str(workers), str(parallel), str(threads)],
                       capture_output=True, text=True, env=_env(cache))
    if r.returncode:
        raise RuntimeError(r.stderr[-3000:])
    return {"seconds": time.perf_counter() - t0, **json.loads(r.stdout.strip().splitlines()[-1])}


def max_param_diff(a: pathlib.Path, b: pathlib.Path, k: int) -> float:
    import jax
    import numpy as np

    from gatekit import io as gio

    worst = 0.0
    for i in range(k):
        ra, rb = gio.read_run(a / f"s{i}"), gio.read_run(b / f"s{i}")
        pa = gio.load_checkpoint(ra, gio.list_checkpoints(ra)[0][-1], items=("params",)).params
        pb = gio.load_checkpoint(rb, gio.list_checkpoints(rb)[0][-1], items=("params",)).params
        worst = max([worst] + [float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb))])
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="K = 16 only: sequential and the workers way")
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--ways", nargs="+", choices=list(WAYS), help="only these ways (sequential is always run)")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks/results")
    args = ap.parse_args()
    import jax

    backend, cores = jax.default_backend(), os.cpu_count() or 1
    ks = [16] if args.quick else args.ks
    ways = ["sequential", "threads" if backend == "cpu" else "vmap"] if args.quick else list(WAYS)
    if args.ways:
        ways = ["sequential", *[w for w in args.ways if w != "sequential"]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        teacher = _teacher(tmp)
        for k in ks:
            for way in ways:
                workers, parallel, threads = WAYS[way](k, cores)
                name = way.replace(" ", "_")
                for cache in ("cold", "warm"):
                    res = run_way(teacher, tmp / f"{name}_{k}_{cache}", k, workers, parallel, threads,
                                  tmp / f"cache_{name}_{k}")
                    res.update(way=way, k=k, cache=cache, workers=workers, runs_per_program=parallel, threads=threads)
                    if way != "sequential":
                        res["max_param_diff"] = max_param_diff(tmp / f"sequential_{k}_{cache}",
                                                               tmp / f"{name}_{k}_{cache}", k)
                    rows.append(res)
                    print(f"K={k:>3}  {way:<15} {cache}  {res['seconds']:7.1f} s  ({res['seconds'] / k:5.2f} s/run)  "
                          f"peak RSS {res['peak_rss_mb']:6.0f} MB" + (f"  max|dparam| {res['max_param_diff']:.1e}"
                                                                       if "max_param_diff" in res else ""), flush=True)
    seq = {(r["k"], r["cache"]): r["seconds"] for r in rows if r["way"] == "sequential"}
    for r in rows:
        r["speedup"] = seq[r["k"], r["cache"]] / r["seconds"]
    best = {c: max((r for r in rows if r["k"] == 16 and r["cache"] == c and r["way"] != "sequential"),
                   key=lambda r: r["speedup"]) for c in ("cold", "warm")}
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"backend": backend, "cores": cores, "device": str(jax.devices()[0]), "rows": rows,
           "best_at_16": {c: b["way"] for c, b in best.items()},
           "command": " ".join(["python", "benchmarks/many_runs.py", *sys.argv[1:]])}
    path = args.out / f"many_runs_{backend}{'_quick' if args.quick else ''}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path}")
    for c in ("cold", "warm"):
        print(f"{c} cache, K=16, {best[c]['way']}: parallel/sequential speedup {best[c]['speedup']:.2f}, "
              f"max |param diff| {best[c]['max_param_diff']:.1e}")


if __name__ == "__main__":
    main()
