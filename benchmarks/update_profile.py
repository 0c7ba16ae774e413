"""Where one student update's time goes, at the quick start's student size (issue: one run faster).

    python benchmarks/update_profile.py [--reps 3]

Times, per SGD update and each jitted on its own over a scan of ``--updates`` steps (so dispatch
is amortized as in training): buffer sampling, the critic's forward + backward (encoders and
InfoNCE logits), the frozen teacher's policy, the actor's forward +
backward, the Adam updates, and the whole fused update; then per epoch the host side of a
checkpoint (online statistics, the Orbax save) and the eval rollouts. Each piece's FLOPs come from
XLA's cost analysis, its rate is compared with this machine's float32 matmul rate (a 1024^3
matmul). Writes benchmarks/results/update_profile_<backend>.json; prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import tempfile
import time


def _timed(fn, *args, reps: int) -> float:
    import jax

    jax.block_until_ready(fn(*args))  # compile and warm up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def _flops(fn, *args) -> float | None:
    try:
        cost = fn.lower(*args).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost.get("flops", 0.0)) or None
    except Exception:  # noqa: BLE001 - not every backend reports costs
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--updates", type=int, default=64, help="updates per scan (one collection's worth)")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp

    from training import buffer as rb
    from training import envs, losses
    from training.calibrate import POINTMAZE_STUDENT, POINTMAZE_TEACHER
    from training.trainer import Trainer

    cfg = POINTMAZE_STUDENT
    env = envs.make(cfg.env, **cfg.env_args())
    teacher_tr = Trainer(dataclasses.replace(POINTMAZE_TEACHER), env)
    tr = Trainer(cfg, env, teacher_tr.nets)
    state = tr.init_state(jax.random.PRNGKey(0))
    teacher_actor = teacher_tr.init_state(jax.random.PRNGKey(1)).params["actor"]
    buf = tr.init_buffer()
    for i in range(4):
        obs, act, goal, _ = tr.collect(state.params["actor"], jax.random.PRNGKey(10 + i), num=cfg.num_envs,
                                       deterministic=False)
        buf = rb.insert(buf, obs, act, goal)
    lam = jnp.float32(1.0)
    U, reps = args.updates, args.reps
    keys = jax.random.split(jax.random.PRNGKey(2), U)
    gi = tuple(env.goal_indices)

    def sample(k):
        return tr.split_batch(rb.sample(buf, k, cfg.batch_size, discount=cfg.discount, goal_indices=gi))

    batch = sample(keys[0])
    p = state.params
    critic = {k: p[k] for k in ("sa_encoder", "goal_encoder")}

    def c_loss(cp, b):
        return losses.critic_loss(cp["sa_encoder"], cp["goal_encoder"], tr.nets, b, tau=cfg.tau,
                                  logsumexp_penalty=cfg.logsumexp_penalty)[0]

    teacher = tr.teacher_nets.policy(teacher_actor, batch["obs"], batch["future_goal"])

    def a_loss(apar, b, k):
        return losses.actor_loss(apar, critic, jnp.float32(0.1), tr.nets, b, k, tau=cfg.tau,
                                 teacher=jax.lax.stop_gradient(teacher), lambda_pi=lam)[0]

    c_grads = jax.grad(c_loss)(critic, batch)
    a_grads = jax.grad(a_loss)(p["actor"], batch, keys[0])

    def scan(body):
        return jax.jit(lambda ks: jax.lax.scan(lambda c, k: (c, body(k)), 0.0, ks)[1])

    def total(tree):
        return jax.tree.reduce(lambda a, b: a + b.sum(), tree, 0.0)

    # Every piece draws its own batch (so XLA cannot hoist it out of the loop); the sampling
    # time is measured alone and subtracted from the others.
    bodies = {
        "buffer sampling": lambda k: total(sample(k)),
        "critic fwd+bwd (encoders, InfoNCE)": lambda k: total(jax.grad(c_loss)(critic, sample(k))),
        "teacher policy (frozen)": lambda k: total(tr.teacher_nets.policy(teacher_actor, sample(k)["obs"],
                                                                          sample(k)["future_goal"])),
        "actor fwd+bwd (incl. critic on its actions)": lambda k: total(jax.grad(a_loss)(p["actor"], sample(k), k)),
        "Adam (critic + actor)": lambda k: total(sample(k)) + total(
            (tr.opt.update(jax.tree.map(lambda g: g * k[0].astype(jnp.float32), c_grads), state.critic_opt, critic)[0],
             tr.opt.update(jax.tree.map(lambda g: g * k[0].astype(jnp.float32), a_grads), state.actor_opt,
                           p["actor"])[0])),
    }
    pieces = {name: scan(body) for name, body in bodies.items()}
    whole = jax.jit(lambda st, ks: total(jax.lax.scan(lambda s, k: (tr.sgd_step(s, buf, k, lam, teacher_actor)[0], 0.0),
                                                      st, ks)[0].params))
    one_step = jax.jit(lambda st, k: total(tr.sgd_step(st, buf, k, lam, teacher_actor)[0].params))
    rows = []
    t_whole = _timed(whole, state, keys, reps=reps) / U
    f_whole = _flops(one_step, state, keys[0])  # FLOPs of one update (not of the scan)
    t_sample = _timed(pieces["buffer sampling"], keys, reps=reps) / U
    for name, fn in pieces.items():
        t = _timed(fn, keys, reps=reps) / U
        f = _flops(jax.jit(bodies[name]), keys[0])
        if name != "buffer sampling":  # its own batch draw is not its cost
            t = max(t - t_sample * (2 if name.startswith("teacher") else 1), 0.0)
        rows.append({"piece": name, "ms_per_update": 1e3 * t, "share_of_update": t / t_whole,
                     "gflops_per_update": f / 1e9 if f else None,
                     "gflop_per_s": f / t / 1e9 if f and t > 0 else None})
    rows.append({"piece": "whole update (fused)", "ms_per_update": 1e3 * t_whole, "share_of_update": 1.0,
                 "gflops_per_update": f_whole / 1e9 if f_whole else None,
                 "gflop_per_s": f_whole / t_whole / 1e9 if f_whole else None})
    # the machine's matmul rate
    a = jnp.ones((1024, 1024), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    t_mm = _timed(mm, a, reps=reps)
    peak = 2 * 1024 ** 3 / t_mm / 1e9
    # host side of an epoch: online statistics of a checkpoint, its save, the eval rollouts
    from gatekit import io as gio
    from gatekit.statistics import checkpoint_statistics

    sample_rows = tr.checkpoint_sample(buf, jax.random.PRNGKey(3), recent=cfg.iterations_per_epoch * cfg.num_envs)
    host_params = jax.device_get(state.params)
    t_stats = _timed(lambda: checkpoint_statistics(tr.nets, host_params, host_params, sample_rows, tau=cfg.tau) and
                     jnp.zeros(()), reps=reps)
    with tempfile.TemporaryDirectory() as d:
        w = gio.RunWriter(pathlib.Path(d) / "r", config={"family": "crl", "net": tr.net_cfg.to_dict(), "role": "student"},
                          async_save=False, extra_items=("trainer",))
        t0 = time.perf_counter()
        for i in range(reps):
            w.save(1000 + i, params=state.params, meta={"epoch": i}, sample=sample_rows, extra={"trainer": state})
        t_save = (time.perf_counter() - t0) / reps
        w.close()
    tr.evaluate(state.params["actor"], jax.random.PRNGKey(4))  # compile
    t0 = time.perf_counter()
    for i in range(reps):
        tr.evaluate(state.params["actor"], jax.random.PRNGKey(5 + i))
    t_eval = (time.perf_counter() - t0) / reps
    per_epoch = cfg.iterations_per_epoch * cfg.updates_per_iteration
    epoch = {"sgd_s": per_epoch * t_whole, "statistics_s": t_stats, "save_s (synchronous)": t_save, "eval_s": t_eval}
    result = {"config": "quick start student (pointmaze u, depth 4 x 64, batch %d)" % cfg.batch_size,
              "backend": jax.default_backend(), "matmul_gflop_per_s": peak, "pieces": rows, "epoch_host": epoch,
              "command": "python benchmarks/update_profile.py"}
    out = pathlib.Path(__file__).parent / "results" / f"update_profile_{jax.default_backend()}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"matmul rate {peak:.1f} GFLOP/s (float32, 1024^3)")
    print(f"{'piece':38s} {'ms/update':>9s} {'share':>6s} {'MFLOP':>8s} {'GFLOP/s':>8s} {'of matmul':>9s}")
    for r in rows:
        g = r["gflop_per_s"]
        print(f"{r['piece']:38s} {r['ms_per_update']:9.3f} {r['share_of_update']:6.2f} "
              f"{(r['gflops_per_update'] or 0) * 1e3:8.2f} {g or 0:8.2f} {(g or 0) / peak:9.2f}")
    print("per epoch: " + ", ".join(f"{k} {v:.2f}" for k, v in epoch.items() if v is not None))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
