"""What this machine's cores deliver together: N single-threaded processes against one, in one run.

    python benchmarks/core_scaling.py                        # about 5 minutes on 2 cores
    python benchmarks/core_scaling.py --seconds 3 --repeats 1

The ceiling for any "runs in parallel" speedup is what the cores give when each runs its own
single-threaded work at once. This measures it for three kinds of work, each for a fixed wall
time in 1 process and then in N (= the core count) processes started together:

* ``python``: a pure-Python integer loop (no memory traffic: ALU and front end only);
* ``numpy``: float32 matmuls the size of a student's layer (256 x 64 @ 64 x 64), one BLAS thread;
* ``jax``: a jitted forward + backward of a depth-4 x 64 MLP on a batch of 256 with its InfoNCE
  logits (the quick start student's critic), single-threaded XLA.

Each kind is measured ``--repeats`` times, alternating 1 and N processes (a shared VM's cores
vary from minute to minute: two back-to-back runs here gave 1.37x and 2.35x for the python
line). For each it prints the median aggregate throughput of N processes over one (N.NN means
perfect scaling), its range, and the per-process slowdown. On a VM whose vCPUs are SMT siblings of one physical core,
or that the host throttles, the python line is well below N. Writes
benchmarks/results/core_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV_1THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
               "JAX_PLATFORMS": "cpu"}

CHILD = r"""
import json, sys, time
kind, seconds, start_at = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
if kind == "python":
    def step():
        s = 0
        for i in range(20000):
            s += i * i
        return s
elif kind == "numpy":
    import numpy as np
    a = np.random.default_rng(0).standard_normal((256, 64), dtype=np.float32)
    w = np.random.default_rng(1).standard_normal((64, 64), dtype=np.float32) * 0.1
    def step():
        x = a
        for _ in range(16):
            x = np.tanh(x @ w)
        return x
else:
    import jax, jax.numpy as jnp
    keys = jax.random.split(jax.random.PRNGKey(0), 10)
    ws = [jax.random.normal(k, (64, 64)) * 0.1 for k in keys[:8]]
    x = jax.random.normal(keys[8], (256, 64)); y = jax.random.normal(keys[9], (256, 64))
    def loss(ws):
        def mlp(h, ws):
            for w in ws:
                h = jax.nn.swish(h @ w)
            return h
        phi, psi = mlp(x, ws[:4]), mlp(y, ws[4:])
        logits = -(jnp.sum(phi ** 2, 1)[:, None] + jnp.sum(psi ** 2, 1)[None] - 2 * phi @ psi.T)
        return -jnp.mean(jnp.diag(jax.nn.log_softmax(logits)))
    grad = jax.jit(jax.grad(loss))
    def step():
        return jax.block_until_ready(grad(ws))
    step()
while time.time() < start_at:
    time.sleep(0.001)
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < seconds:
    step(); n += 1
print(json.dumps({"steps_per_s": n / (time.perf_counter() - t0)}))
"""


def _measure(kind: str, procs: int, seconds: float) -> list[float]:
    env = {**os.environ, **ENV_1THREAD}
    start_at = time.time() + (25.0 if kind == "jax" else 3.0)  # everyone starts together
    ps = [subprocess.Popen([sys.executable, "-c", CHILD, kind, str(seconds), str(start_at)], env=env,
                           stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    outs = [p.communicate()[0] for p in ps]
    if any(p.returncode for p in ps):
        raise SystemExit(f"a {kind} child failed")
    return [json.loads(o.strip().splitlines()[-1])["steps_per_s"] for o in outs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured wall time of each child")
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for kind in ("python", "numpy", "jax"):
        tries = []
        for _ in range(args.repeats):
            one = _measure(kind, 1, args.seconds)[0]
            many = _measure(kind, args.procs, args.seconds)
            tries.append({"one_process_steps_per_s": one, "per_process_steps_per_s": many,
                          "aggregate_speedup": sum(many) / one})
        speedups = sorted(t["aggregate_speedup"] for t in tries)
        median = float(statistics.median(speedups))
        rows.append({"work": kind, "tries": tries, "aggregate_speedup": median,
                     "per_process_slowdown": args.procs / median})
        print(f"{kind:>6}: {args.procs} processes give {median:.2f}x one (median of {args.repeats}, "
              f"range {speedups[0]:.2f}-{speedups[-1]:.2f}; each {args.procs / median:.2f}x slower than alone)",
              flush=True)
    out = ROOT / "benchmarks" / "results" / "core_scaling.json"
    out.write_text(json.dumps({"procs": args.procs, "cpu_count": os.cpu_count(), "seconds": args.seconds,
                               "repeats": args.repeats, "rows": rows,
                               "command": " ".join(["python", "benchmarks/core_scaling.py", *sys.argv[1:]])},
                              indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
