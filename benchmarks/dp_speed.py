"""Data-parallel speedup: the same training epoch on 1 and N devices (same global batch).

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python benchmarks/dp_speed.py --devices 2   # fake CPU devices
    python benchmarks/dp_speed.py --devices 8                                                     # a multi-GPU host

Fake CPU devices share the same cores, so on a CPU this measures the partitioning overhead (or
the gain from XLA running the shards' ops on separate threads), not a real scale-out.
"""

from __future__ import annotations

import argparse
import time


def epoch_time(devices: int, num_envs: int, epochs: int = 2) -> float:
    import jax
    import jax.numpy as jnp

    from training import buffer as rb
    from training import envs
    from training.config import TrainConfig
    from training.trainer import Trainer

    cfg = TrainConfig(env="pointmaze", env_kwargs=(("maze", "u"),), depth=8, width=64, rep_dim=32, num_envs=num_envs,
                      iterations_per_epoch=4, updates_per_iteration=64, devices=devices,
                      buffer_episodes=num_envs * 16)
    env = envs.make(cfg.env, **cfg.env_args())
    tr = Trainer(cfg, env)
    state = tr.init_state(jax.random.PRNGKey(0))
    buf = tr.init_buffer()
    obs, act, goal, _ = tr.collect(state.params["actor"], jax.random.PRNGKey(1), num=num_envs, deterministic=False)
    state, buf = tr.place(state, rb.insert(buf, obs, act, goal))
    lam = jnp.float32(0.0)
    state, buf, m = tr.training_epoch(state, buf, jax.random.PRNGKey(2), lam, None)  # compile
    jax.block_until_ready(m)
    t0 = time.perf_counter()
    for e in range(epochs):
        state, buf, m = tr.training_epoch(state, buf, jax.random.PRNGKey(3 + e), lam, None)
    jax.block_until_ready(m)
    return (time.perf_counter() - t0) / epochs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=2)
    ap.add_argument("--envs", type=int, default=32)
    args = ap.parse_args()
    import jax

    one = epoch_time(1, args.envs)
    many = epoch_time(args.devices, args.envs)
    print(f"{jax.devices()[0].platform} x{len(jax.devices())}: epoch {one:.2f}s on 1 device, {many:.2f}s on "
          f"{args.devices}: speedup {one / many:.2f}x")


if __name__ == "__main__":
    main()
