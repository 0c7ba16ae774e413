"""A replay buffer of whole episodes, held on device, with hindsight future-goal sampling.

Episodes have a fixed length L, so the buffer is three arrays ``obs [C, L, obs_dim]``,
``action [C, L, act_dim]``, ``goal [C, goal_dim]`` filled as a ring, ``num_envs`` episodes
at a time. A sampled transition (episode e, time t < L-1) gets its positive goal from a future
time j > t of the same episode with probability proportional to gamma^(j - t), as in CRL.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Buffer:
    obs: jax.Array  # [C, L, obs_dim]
    action: jax.Array  # [C, L, act_dim]
    goal: jax.Array  # [C, goal_dim]
    ptr: jax.Array  # [] int32, next episode slot
    size: jax.Array  # [] int32, filled episodes


def init(capacity: int, length: int, obs_dim: int, act_dim: int, goal_dim: int) -> Buffer:
    z = lambda *s: jnp.zeros(s, jnp.float32)
    return Buffer(z(capacity, length, obs_dim), z(capacity, length, act_dim), z(capacity, goal_dim),
                  jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def insert(buf: Buffer, obs: jax.Array, action: jax.Array, goal: jax.Array) -> Buffer:
    """Adds E episodes: obs [E, L, o], action [E, L, a], goal [E, g]. Capacity % E == 0."""
    e = obs.shape[0]
    cap = buf.obs.shape[0]
    ptr = buf.ptr
    return buf.replace(
        obs=jax.lax.dynamic_update_slice_in_dim(buf.obs, obs, ptr, axis=0),
        action=jax.lax.dynamic_update_slice_in_dim(buf.action, action, ptr, axis=0),
        goal=jax.lax.dynamic_update_slice_in_dim(buf.goal, goal, ptr, axis=0),
        ptr=(ptr + e) % cap,
        size=jnp.minimum(buf.size + e, cap),
    )


def sample(
    buf: Buffer, key: jax.Array, batch_size: int, *, discount: float, goal_indices: tuple[int, ...],
    recent: int | None = None,
) -> dict[str, jax.Array]:
    """Samples transitions with hindsight future goals.

    Returns obs [B, o], action [B, a], goal [B, g] (the episode's commanded goal) and
    future_goal [B, g]. ``recent`` restricts sampling to the newest ``recent`` episodes.
    """
    k_ep, k_t, k_f = jax.random.split(key, 3)
    cap, length = buf.obs.shape[:2]
    pool = buf.size if recent is None else jnp.minimum(buf.size, recent)
    back = jax.random.randint(k_ep, (batch_size,), 0, jnp.maximum(pool, 1))
    ep = (buf.ptr - 1 - back) % cap
    t = jax.random.randint(k_t, (batch_size,), 0, length - 1)
    offsets = jnp.arange(1, length)  # candidate future offsets 1 .. L-1
    logits = offsets[None, :] * jnp.log(discount)
    logits = jnp.where(t[:, None] + offsets[None, :] <= length - 1, logits, -jnp.inf)
    j = t + 1 + jax.random.categorical(k_f, logits, axis=-1)
    idx = jnp.asarray(goal_indices)
    return {
        "obs": buf.obs[ep, t],
        "action": buf.action[ep, t],
        "goal": buf.goal[ep],
        "future_goal": buf.obs[ep, j][:, idx],
    }
