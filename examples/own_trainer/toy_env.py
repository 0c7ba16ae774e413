"""A 2-D goal-reaching task shared by the example's teacher and student scripts (your own env
goes here): a point starts anywhere in [-1, 1]^2, moves by 0.1 x action per step, and succeeds
when it comes within 0.1 of its goal within 40 steps."""

import jax
import jax.numpy as jnp

STEPS, SPEED, REACH = 40, 0.1, 0.1


def sample(key, n):
    """n (state, goal) pairs, uniform in [-1, 1]^2."""
    k1, k2 = jax.random.split(key)
    return jax.random.uniform(k1, (n, 2), minval=-1, maxval=1), jax.random.uniform(k2, (n, 2), minval=-1, maxval=1)


def expert(state, goal):
    """The action a perfect policy takes (what a good teacher's tanh(mean) approaches)."""
    return jnp.clip((goal - state) / SPEED, -1.0, 1.0)


def success(policy, key, n=256):
    """Share of n episodes in which ``policy(state, goal) -> action in [-1, 1]^2`` reaches the goal."""
    state, goal = sample(key, n)
    reached = jnp.zeros(n, bool)
    for _ in range(STEPS):
        state = state + SPEED * jnp.clip(policy(state, goal), -1, 1)
        reached |= jnp.linalg.norm(state - goal, axis=-1) < REACH
    return float(reached.mean())
