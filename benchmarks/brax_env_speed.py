"""Env steps per second of the goal-conditioned Brax envs (random actions, one jitted lax.scan).

    python benchmarks/brax_env_speed.py --envs 16 --steps 50            # CPU: expect tens of steps/s for ant
    python benchmarks/brax_env_speed.py --envs 256 1024 4096 --steps 100 # on a GPU machine

Prints one line per (env, num_envs). Compile time is reported separately and excluded.
"""

from __future__ import annotations

import argparse
import time

import jax

from training import envs


def measure(name: str, kwargs: dict, n: int, steps: int) -> tuple[float, float]:
    env = envs.make(name, **kwargs)
    reset = jax.jit(jax.vmap(env.reset))

    @jax.jit
    def rollout(state, key):
        def step(s, k):
            a = jax.random.uniform(k, (n, env.action_dim), minval=-1, maxval=1)
            return jax.vmap(env.step)(s, a), None

        return jax.lax.scan(step, state, jax.random.split(key, steps))[0]

    state = reset(jax.random.split(jax.random.PRNGKey(0), n))
    t0 = time.perf_counter()
    state = jax.block_until_ready(rollout(state, jax.random.PRNGKey(1)))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(rollout(state, jax.random.PRNGKey(2)))
    return n * steps / (time.perf_counter() - t0), compile_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", nargs="+", default=["pointmaze", "reacher", "ant", "ant_maze"])
    ap.add_argument("--envs", nargs="+", type=int, default=[16])
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    print(f"jax {jax.__version__} on {jax.default_backend()} ({jax.devices()[0].device_kind})")
    for name in args.env:
        kwargs = {"maze": "u"} if name == "ant_maze" else {}
        for n in args.envs:
            sps, compile_s = measure(name, kwargs, n, args.steps)
            print(f"{name:10s} envs={n:5d}: {sps:12,.0f} env-steps/s  (compile {compile_s:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
