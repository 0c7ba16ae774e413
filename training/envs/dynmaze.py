"""Harder pure-JAX goal-conditioned environments for the depth-barrier search.

Each stays fast on a CPU (no physics engine) while changing one axis of difficulty against the
plain point maze (:mod:`training.envs.pointmaze`, position control):

* ``momentum_maze``: acceleration control with a speed cap; the point keeps its velocity, so
  it must brake at corners and to *stay* at a goal. Obs (x, y, vx, vy).
* ``car_maze``: a unicycle (throttle, steering) with momentum; moving sideways needs turning
  first, so saturated actions are rarely right. Obs (x, y, cos th, sin th, v).
* ``warped_maze``: the point maze seen through a fixed random nonlinear map (a 2 -> 16 tanh
  network, seeded); goals are given in the same warped space.
* ``arm_reach``: a 3-link planar arm under joint-acceleration control (momentum, damping);
  obs (cos q, sin q, dq, fingertip x, y), the goal is a fingertip position. No maze.

Every env has ``far_goals`` (goals at least half the largest shortest-path distance from the
start) and ``reset_with_goal`` for the far-goal evaluation of ``training.barrier``, and
``max_time_at_goal(goal)``: an upper bound on the steps at the goal (the episode minus the
travel time at top speed along the shortest path).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar
import math

import jax
import jax.numpy as jnp
import numpy as np

from training.envs.base import EnvState, HasSpaces, Spaces
from training.envs.pointmaze import MazeLayout


@dataclasses.dataclass(frozen=True)
class MomentumMaze(HasSpaces, MazeLayout):
    """Point mass under acceleration control in a maze. core = (x, y, vx, vy)."""

    maze: str = "u"
    """Layout name (a key of LAYOUTS)."""
    accel: float = 0.04
    """Velocity change per step at full action (cells per step)."""
    max_speed: float = 0.2
    """Speed cap per axis (cells per step)."""
    damping: float = 0.95
    """Fraction of the velocity kept from one step to the next."""
    episode_length: int = 150
    success_threshold: float = 0.3
    """Distance to the goal (cells) that counts as reaching it."""
    spaces: ClassVar[Spaces] = Spaces("momentum_maze", obs_dim=4, goal_dim=2, action_dim=2, goal_indices=(0, 1))

    def reset_with_goal(self, key, goal, goal_pos=None) -> EnvState:
        core = jnp.concatenate([self._start(key), jnp.zeros(2)])
        return EnvState(core=core, obs=core, goal=goal, success=self._success(core[:2], goal))

    def step(self, state: EnvState, action) -> EnvState:
        pos, vel = state.core[:2], state.core[2:]
        vel = jnp.clip(self.damping * vel + self.accel * jnp.clip(action, -1, 1), -self.max_speed, self.max_speed)
        pos, hit = self._slide(pos, vel)
        vel = jnp.where(hit, 0.0, vel)  # a wall stops that axis
        core = jnp.concatenate([pos, vel])
        return EnvState(core=core, obs=core, goal=state.goal, success=self._success(pos, state.goal))

    def describe(self) -> dict:
        return self._describe(accel=self.accel, max_speed=self.max_speed, damping=self.damping)


@dataclasses.dataclass(frozen=True)
class CarMaze(HasSpaces, MazeLayout):
    """A unicycle with momentum in a maze. core = (x, y, heading, speed); action =
    (throttle, steering). Obs (x, y, cos, sin, speed)."""

    maze: str = "u"
    """Layout name (a key of LAYOUTS)."""
    accel: float = 0.04
    """Speed change per step at full throttle (cells per step)."""
    max_speed: float = 0.2
    """Forward speed cap; reversing is capped at half of it."""
    turn_rate: float = 0.35
    """Heading change per step at full steering (radians)."""
    damping: float = 0.95
    episode_length: int = 150
    success_threshold: float = 0.3
    """Distance to the goal (cells) that counts as reaching it."""
    spaces: ClassVar[Spaces] = Spaces("car_maze", obs_dim=5, goal_dim=2, action_dim=2, goal_indices=(0, 1))

    def _obs(self, core):
        return jnp.stack([core[0], core[1], jnp.cos(core[2]), jnp.sin(core[2]), core[3]])

    def reset_with_goal(self, key, goal, goal_pos=None) -> EnvState:
        k1, k2 = jax.random.split(key)
        core = jnp.concatenate([self._start(k1), jax.random.uniform(k2, (1,), minval=-math.pi, maxval=math.pi),
                                jnp.zeros(1)])
        return EnvState(core=core, obs=self._obs(core), goal=goal, success=self._success(core[:2], goal))

    def step(self, state: EnvState, action) -> EnvState:
        a = jnp.clip(action, -1, 1)
        x, y, th, v = state.core
        v = jnp.clip(self.damping * v + self.accel * a[0], -self.max_speed / 2, self.max_speed)
        th = th + self.turn_rate * a[1]
        pos, hit = self._slide(jnp.stack([x, y]), v * jnp.stack([jnp.cos(th), jnp.sin(th)]))
        v = jnp.where(jnp.any(hit), 0.0, v)
        core = jnp.concatenate([pos, jnp.stack([th, v])])
        return EnvState(core=core, obs=self._obs(core), goal=state.goal, success=self._success(pos, state.goal))

    def describe(self) -> dict:
        return self._describe(accel=self.accel, max_speed=self.max_speed, turn_rate=self.turn_rate)


@dataclasses.dataclass(frozen=True)
class WarpedMaze(HasSpaces, MazeLayout):
    """The point maze observed through a fixed random map R^2 -> R^16 (tanh network, seeded)."""

    maze: str = "u"
    step_size: float = 0.2
    """Largest move per step (cells), as in the point maze."""
    features: int = 16
    """Width of the observation the fixed random map produces."""
    map_seed: int = 0
    episode_length: int = 100
    success_threshold: float = 0.3

    @property
    def spaces(self) -> Spaces:
        """Observation and goal are the ``features``-wide warped position."""
        return Spaces("warped_maze", obs_dim=self.features, goal_dim=self.features, action_dim=2,
                      goal_indices=tuple(range(self.features)))

    @property
    def top_speed(self) -> float:
        return self.step_size

    def _weights(self):
        rng = np.random.default_rng(self.map_seed)
        w1 = rng.normal(0, 1.5, (2, 32)).astype(np.float32)
        b1 = rng.uniform(-3, 3, 32).astype(np.float32)
        w2 = rng.normal(0, 1 / math.sqrt(32), (32, self.features)).astype(np.float32)
        return w1, b1, w2

    def goal_of_pos(self, pos):
        w1, b1, w2 = self._weights()
        return jnp.tanh(jnp.tanh(pos @ w1 + b1) @ w2 * 2.0)

    def reset_with_goal(self, key, goal, goal_pos) -> EnvState:
        pos = self._start(key)
        return EnvState(core=(pos, goal_pos), obs=self.goal_of_pos(pos), goal=goal,
                        success=self._success(pos, goal_pos))

    def step(self, state: EnvState, action) -> EnvState:
        pos, gpos = state.core
        pos, _ = self._slide(pos, self.step_size * jnp.clip(action, -1, 1))
        return EnvState(core=(pos, gpos), obs=self.goal_of_pos(pos), goal=state.goal, success=self._success(pos, gpos))

    def describe(self) -> dict:
        return self._describe(step_size=self.step_size, features=self.features, map_seed=self.map_seed)


@dataclasses.dataclass(frozen=True)
class ArmReach(HasSpaces):
    """A 3-link planar arm (links 1.0, 0.8, 0.6) under joint-acceleration control.

    core = (q [3], dq [3]); obs = (cos q, sin q, dq, fingertip x, y); goal = fingertip (x, y).
    Starts folded at q = (0, 2.4, -2.4) (fingertip near the base); goals uniform in the
    reachable annulus."""

    accel: float = 0.05
    """Joint-rate change per step at full action (radians per step)."""
    max_rate: float = 0.15
    """Joint-rate cap (radians per step)."""
    damping: float = 0.9
    """Fraction of the joint rates kept from one step to the next."""
    episode_length: int = 100
    success_threshold: float = 0.2
    """Fingertip distance to the goal that counts as reaching it."""
    spaces: ClassVar[Spaces] = Spaces("arm_reach", obs_dim=11, goal_dim=2, action_dim=3, goal_indices=(9, 10))
    links: tuple[float, ...] = (1.0, 0.8, 0.6)

    @property
    def top_speed(self) -> float:
        return self.max_rate * sum(self.links)

    def tip(self, q):
        ang = jnp.cumsum(q)
        lengths = jnp.asarray(self.links)
        return jnp.stack([jnp.sum(lengths * jnp.cos(ang)), jnp.sum(lengths * jnp.sin(ang))])

    def _obs(self, core):
        q, dq = core[:3], core[3:]
        return jnp.concatenate([jnp.cos(q), jnp.sin(q), dq, self.tip(q)])

    def _q0(self):
        return jnp.asarray([0.0, 2.4, -2.4])

    def _success(self, q, goal):
        return (jnp.linalg.norm(self.tip(q) - goal) < self.success_threshold).astype(jnp.float32)

    def reset_with_goal(self, key, goal, goal_pos=None) -> EnvState:
        q = self._q0() + jax.random.uniform(key, (3,), minval=-0.05, maxval=0.05)
        core = jnp.concatenate([q, jnp.zeros(3)])
        return EnvState(core=core, obs=self._obs(core), goal=goal, success=self._success(q, goal))

    def _sample_goal(self, key, rmin):
        k1, k2 = jax.random.split(key)
        r = jnp.sqrt(jax.random.uniform(k1, (), minval=rmin**2, maxval=(sum(self.links) * 0.95) ** 2))
        a = jax.random.uniform(k2, (), minval=-math.pi, maxval=math.pi)
        return r * jnp.stack([jnp.cos(a), jnp.sin(a)])

    def reset(self, key) -> EnvState:
        k1, k2 = jax.random.split(key)
        return self.reset_with_goal(k1, self._sample_goal(k2, 0.3))

    def far_goals(self, key, n):
        """Goals at least half the largest start-to-goal distance from the start fingertip."""
        start = np.asarray(self.tip(self._q0()))
        dmax = sum(self.links) * 0.95 + np.linalg.norm(start)
        goals = []
        k = key
        while len(goals) < n:
            k, sub = jax.random.split(k)
            cand = np.asarray(jax.vmap(lambda kk: self._sample_goal(kk, 0.3))(jax.random.split(sub, 4 * n)))
            goals += [g for g in cand if np.linalg.norm(g - start) >= dmax / 2]
        g = jnp.asarray(np.stack(goals[:n]))
        return g, g

    def max_time_at_goal(self, goal) -> np.ndarray:
        start = np.asarray(self.tip(self._q0()))
        d = np.linalg.norm(np.asarray(goal).reshape(-1, 2) - start, axis=1)
        travel = np.maximum(d - self.success_threshold, 0) / self.top_speed
        return np.maximum(self.episode_length - np.ceil(travel), 0)

    def step(self, state: EnvState, action) -> EnvState:
        q, dq = state.core[:3], state.core[3:]
        dq = jnp.clip(self.damping * dq + self.accel * jnp.clip(action, -1, 1), -self.max_rate, self.max_rate)
        q = q + dq
        core = jnp.concatenate([q, dq])
        return EnvState(core=core, obs=self._obs(core), goal=state.goal, success=self._success(q, state.goal))

    def describe(self) -> dict:
        return {"name": self.name, "episode_length": self.episode_length, "links": list(self.links),
                "accel": self.accel, "max_rate": self.max_rate, "success_threshold": self.success_threshold}
