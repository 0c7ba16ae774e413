"""What every score costs per checkpoint, in one process: the student-side scores
(:mod:`gatekit.studentside`) one by one, against the teacher-side statistics of the same checkpoint.

    python benchmarks/score_cost.py [--rows 256] [--repeats 20]

Writes ``benchmarks/results/score_cost_cpu.json`` and prints a table. Two network sizes: the
benchmark's point-maze teacher (depth 8, width 64; obs 4, goal 2, action 2) and an Ant-sized one
(depth 8, width 256; obs 29, goal 2, action 8), each on ``--rows`` probe rows (the dataset's probe
has 256; :data:`gatekit.studentside.MAX_ROWS`). Each piece is jitted on its own and timed after a
warm-up call (median of ``--repeats``); the pieces are the operations of the fused scorer
``studentside._student`` split apart, so their sum exceeds the fused call, which is what scoring
pays. Compile time (once per network size and process) is reported separately.

* ``student_distill_init`` + ``student_loglik``: one forward pass of the fresh student;
* ``student_grace`` (+ ``student_grad_norm``, ``student_grad_coherence``): per-row gradients
  (vmapped), the random projection, and the two-halves trace in NumPy;
* ``student_bc_residual``: 200 full-batch Adam steps of behaviour cloning;
* ``action_drift_prev``: NumPy on the two checkpoints' policy means;
* ``all student-side (fused)``: :func:`gatekit.studentside.student_side_scores`;
* ``teacher-side statistics``: :func:`gatekit.statistics.checkpoint_statistics` without the student
  side (policy, representation and drift statistics), and ``with``: the whole checkpoint.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics as pystats
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"pointmaze (8x64)": {"obs_dim": 4, "goal_dim": 2, "action_dim": 2, "depth": 8, "width": 64},
         "ant-sized (8x256)": {"obs_dim": 29, "goal_dim": 2, "action_dim": 8, "depth": 8, "width": 256}}


def timed(fn, repeats: int) -> tuple[float, float]:
    """(first call seconds, median of ``repeats`` later calls) of ``fn()``, results blocked on."""
    import jax

    t = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return first, pystats.median(times)


def pieces(obs, goal, mu_t, ls_t, mu_prev):
    """name -> a zero-argument callable computing that score on these rows (each jitted alone)."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax.flatten_util import ravel_pytree

    from gatekit import studentside as S

    nets, actor0, _, fused = S._student(obs.shape[1], goal.shape[1], mu_t.shape[1])
    flat0, _ = ravel_pytree(actor0)
    proj = jnp.asarray(np.random.default_rng(S.PROJECTION_SEED).standard_normal((flat0.size, S.PROJECTION_DIM))
                       / np.sqrt(S.PROJECTION_DIM), jnp.float32)
    opt = optax.adam(S.BC_LR)
    args = tuple(map(jnp.asarray, (obs, goal, mu_t, ls_t)))

    def loss(actor, o, g, m, s):
        mu, ls = nets.policy(actor, o, g)
        return S.distill_loss(mu, ls, m, s)

    @jax.jit
    def forward(o, g, m, s):
        mu, ls = nets.policy(actor0, o, g)
        return S.distill_loss(mu, ls, m, s), jnp.mean(jnp.sum(-0.5 * ((m - mu) / jnp.exp(ls)) ** 2 - ls, -1))

    @jax.jit
    def gradients(o, g, m, s):
        grads = jax.vmap(lambda *r: ravel_pytree(jax.grad(loss)(actor0, *(x[None] for x in r)))[0])(o, g, m, s)
        norms = jnp.linalg.norm(grads, axis=1)
        return grads @ proj, norms.mean(), jnp.linalg.norm(grads.mean(0)) / norms.mean()

    def grace():
        projected = np.asarray(gradients(*args)[0], np.float64)
        return S.grace_trace(projected[0::2], projected[1::2])

    @jax.jit
    def bc(o, g, m, s):
        def step(carry, _):
            actor, state = carry
            upd, state = opt.update(jax.grad(loss)(actor, o, g, m, s), state, actor)
            return (optax.apply_updates(actor, upd), state), None

        (actor, _), _ = jax.lax.scan(step, (actor0, opt.init(actor0)), None, length=S.BC_STEPS)
        return loss(actor, o, g, m, s)

    return {"student_distill_init + student_loglik (forward)": lambda: forward(*args),
            "student_grace + grad_norm + grad_coherence": grace,
            "student_bc_residual (200 Adam steps)": lambda: bc(*args),
            "action_drift_prev": lambda: S.action_drift(mu_t, mu_prev),
            "all student-side (fused, as scoring pays it)": lambda: S.student_side_scores(
                obs, goal, mu_t, ls_t, mu_prev=mu_prev)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    import jax

    from gatekit import networks
    from gatekit.statistics import checkpoint_statistics, policy_on

    out = {"rows": args.rows, "repeats": args.repeats, "devices": str(jax.devices()), "sizes": {}}
    for name, size in SIZES.items():
        net = {**size, "goal_indices": list(range(size["goal_dim"])), "rep_dim": 64}
        fam = networks.build("crl", net)
        rng = np.random.default_rng(0)
        params, prev = fam.init(jax.random.PRNGKey(0)), fam.init(jax.random.PRNGKey(1))
        n = args.rows
        sample = {"obs": rng.normal(size=(n, size["obs_dim"])).astype(np.float32),
                  "action": rng.uniform(-1, 1, (n, size["action_dim"])).astype(np.float32),
                  "goal": rng.normal(size=(n, size["goal_dim"])).astype(np.float32),
                  "future_goal": rng.normal(size=(n, size["goal_dim"])).astype(np.float32)}
        rows = {"obs": sample["obs"], "action": sample["action"], "goal": sample["future_goal"]}
        mu, ls = policy_on(fam, params, rows)
        mu_prev = policy_on(fam, prev, rows)[0]
        res = {}
        for label, fn in pieces(sample["obs"], sample["future_goal"], mu, ls, mu_prev).items():
            first, median = timed(fn, args.repeats)
            res[label] = {"seconds": median, "first_call_seconds": first}
        for label, side in (("teacher-side statistics", False), ("whole checkpoint (teacher + student side)", True)):
            first, median = timed(lambda: checkpoint_statistics(fam, params, prev, sample, student_side=side),
                                  args.repeats)
            res[label] = {"seconds": median, "first_call_seconds": first}
        out["sizes"][name] = res
        print(f"\n{name}, {n} rows: seconds per checkpoint (median of {args.repeats}; first call incl. compile)")
        for label, r in res.items():
            print(f"  {label:<50s} {r['seconds'] * 1e3:8.1f} ms   (first {r['first_call_seconds']:.2f} s)")
        whole = res["whole checkpoint (teacher + student side)"]["seconds"]
        print(f"  student side's share of a checkpoint: "
              f"{res['all student-side (fused, as scoring pays it)']['seconds'] / whole:.2f}")
    path = ROOT / "benchmarks" / "results" / "score_cost_cpu.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
