"""The functional goal-conditioned env interface every trainer env implements.

Single-env functions, vmapped by the trainer::

    state = env.reset(key)               # EnvState(core, obs, goal, success)
    state = env.step(state, action)      # action in [-1, 1]^action_dim

``obs[goal_indices]`` is the achieved goal, so hindsight relabelling takes future goals from
future observations. Episodes have a fixed length (``episode_length``); success means
``||obs[goal_indices] - goal|| < success_threshold``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol

import jax
from flax import struct


@struct.dataclass
class EnvState:
    core: Any  # env-specific physics state (a position, a Brax State)
    obs: jax.Array  # [obs_dim]
    goal: jax.Array  # [goal_dim] commanded goal
    success: jax.Array  # [] float32, 1.0 when at the goal


class GoalEnv(Protocol):
    name: str
    obs_dim: int
    goal_dim: int
    action_dim: int
    goal_indices: tuple[int, ...]
    episode_length: int
    success_threshold: float

    def reset(self, key: jax.Array) -> EnvState: ...

    def step(self, state: EnvState, action: jax.Array) -> EnvState: ...

    def describe(self) -> dict: ...


@dataclasses.dataclass(frozen=True)
class Spaces:
    """An env's fixed interface: its name, the observation, goal and action widths, and where the
    achieved goal sits in the observation."""

    name: str
    obs_dim: int
    goal_dim: int
    action_dim: int
    goal_indices: tuple[int, ...]


class HasSpaces:
    """Mixin: the :class:`GoalEnv` attributes ``name``, ``obs_dim``, ``goal_dim``, ``action_dim``
    and ``goal_indices``, read from the env's ``spaces`` (a class constant, or a property where
    the sizes depend on the env's settings)."""

    spaces: ClassVar[Spaces]

    def __getattr__(self, attr: str):
        # only reached for attributes the env does not have itself
        if attr in _SPACE_FIELDS:
            return getattr(self.spaces, attr)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")


_SPACE_FIELDS = frozenset(f.name for f in dataclasses.fields(Spaces))
