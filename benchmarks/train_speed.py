"""CRL teacher training speed *with training*, and where the time goes.

    python benchmarks/train_speed.py --env ant_maze --maze big --envs 256 512 1024 2048   # a GPU
    python benchmarks/train_speed.py --env pointmaze --maze u --envs 32 64                # CPU smoke

For each env count: the fused training epoch (collect + SGD, as ``python -m training`` runs it)
in env-steps/s and updates/s, and a breakdown from separately jitted pieces of the same epoch:
env stepping with the policy (collect), SGD steps on a filled buffer, buffer sampling alone,
and the rest (host overhead, transfers, what fusion saves: epoch - parts, may be negative).
Writes benchmarks/results/train_speed_<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time


def _time(fn, *args, reps=2):
    import jax

    jax.block_until_ready(fn(*args))  # compile
    t0 = time.perf_counter()
    for _ in range(reps):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / reps


def measure(env_name: str, env_kwargs: dict, num_envs: int, depth: int, width: int, updates: int,
            batch: int, iterations: int) -> dict:
    import jax
    import jax.numpy as jnp

    from training import buffer as rb
    from training import envs
    from training.config import TrainConfig
    from training.trainer import Trainer

    cfg = TrainConfig(env=env_name, env_kwargs=tuple(env_kwargs.items()), depth=depth, width=width, num_envs=num_envs,
                      batch_size=batch, iterations_per_epoch=iterations, updates_per_iteration=updates,
                      buffer_episodes=num_envs * 2, rep_dim=64)
    env = envs.make(cfg.env, **cfg.env_args())
    cfg.validate(env.episode_length)
    tr = Trainer(cfg, env)
    state = tr.init_state(jax.random.PRNGKey(0))
    buf = tr.init_buffer()
    obs, act, goal, _ = tr.collect(state.params["actor"], jax.random.PRNGKey(1), num=num_envs, deterministic=False)
    buf = rb.insert(buf, obs, act, goal)
    lam = jnp.float32(0.0)
    epoch = _time(lambda k: tr.training_epoch(state, buf, k, lam, None)[2], jax.random.PRNGKey(2))
    collect = _time(lambda k: tr.collect(state.params["actor"], k, num=num_envs, deterministic=False), jax.random.PRNGKey(3))
    sgd = jax.jit(lambda st, k: jax.lax.scan(lambda c, kk: tr.sgd_step(c, buf, kk, lam, None), st,
                                             jax.random.split(k, updates))[0])
    t_sgd = _time(sgd, state, jax.random.PRNGKey(4))
    samp = jax.jit(lambda k: jax.lax.map(lambda kk: rb.sample(buf, kk, batch, discount=cfg.discount,
                                                              goal_indices=tuple(env.goal_indices))["obs"].sum(),
                                         jax.random.split(k, updates)))
    t_sample = _time(samp, jax.random.PRNGKey(5))
    env_steps = iterations * num_envs * env.episode_length
    parts = iterations * (collect + t_sgd)
    return {"env": env_name, "env_kwargs": env_kwargs, "num_envs": num_envs, "depth": depth, "width": width,
            "batch": batch, "updates_per_iteration": updates, "episode_length": env.episode_length,
            "epoch_s": epoch, "env_steps_per_s": env_steps / epoch, "updates_per_s": iterations * updates / epoch,
            "breakdown_s": {"collect": iterations * collect, "sgd (incl. sampling)": iterations * t_sgd,
                            "of which buffer sampling": iterations * t_sample, "rest (host, fusion)": epoch - parts}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="pointmaze")
    ap.add_argument("--maze", default=None)
    ap.add_argument("--envs", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--updates", type=int, default=64, help="SGD steps per collection")
    ap.add_argument("--iterations", type=int, default=1)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).parent / "results")
    args = ap.parse_args()
    import jax

    rows = []
    for n in args.envs:
        r = measure(args.env, {"maze": args.maze} if args.maze else {}, n, args.depth, args.width, args.updates,
                    args.batch, args.iterations)
        rows.append(r)
        b = r["breakdown_s"]
        print(f"{args.env} {n} envs: {r['env_steps_per_s']:,.0f} env-steps/s with training, {r['updates_per_s']:,.1f} "
              f"updates/s | epoch {r['epoch_s']:.2f}s = collect {b['collect']:.2f} + sgd {b['sgd (incl. sampling)']:.2f} "
              f"(sampling {b['of which buffer sampling']:.3f}) + rest {b['rest (host, fusion)']:.2f}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"train_speed_{jax.default_backend()}.json"
    path.write_text(json.dumps({"device": str(jax.devices()[0]), "rows": rows}, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
