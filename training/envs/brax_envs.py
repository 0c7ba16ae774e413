"""Goal-conditioned Brax environments: reacher, ant, ant maze.

The goal-conditioned versions follow the design of JaxGCRL (Bortkiewicz et al., "Accelerating
Goal-Conditioned RL Algorithms and Research", github.com/MichalBortkiewicz/JaxGCRL), written
here against Brax 0.14 because ``jaxgcrl`` on PyPI pins jax==0.4.25 / numpy<2:

* reacher: goal = the target's (x, y); achieved goal = fingertip (x, y); success < 0.05.
* ant: obs = qpos (15) + qvel (14) = 29, goal = torso (x, y) (indices 0, 1); success < 0.5.
* ant_maze: JaxGCRL's ant maze: its U / big layouts at its scale (4 m cells, walls 2 m tall),
  cell (row i, column j) at (x, y) = (i, j) x 4 m as in JaxGCRL's ``make_maze``, translated so
  the start cell R is at the origin; goals are the G cells' centres (JaxGCRL's
  ``possible_goals``); success < 0.5 m (its ``goal_dist``).

Ant and ant maze use the ``spring`` backend (dt 0.005 x 10 frames), as JaxGCRL and Wang et al.
do. Unlike JaxGCRL's ant maze, episodes here never terminate early (fixed length), which keeps
the replay buffer episode-aligned; an ant that flips simply stays flipped for the episode.
Brax is imported by this module only.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from training.envs.base import EnvState, HasSpaces, Spaces
from training.envs.pointmaze import LAYOUTS

ANT_MAZES = {
    "u": ["#####", "#RGG#", "###G#", "#GGG#", "#####"],
    "big": LAYOUTS["medium"],  # JaxGCRL's ant "big" maze is the point maze's "medium" layout
}


def _success(achieved, goal, threshold):
    return (jnp.linalg.norm(achieved - goal) < threshold).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class GoalReacher(HasSpaces):
    backend: str = "generalized"
    """Brax physics pipeline."""
    episode_length: int = 50
    success_threshold: float = 0.05
    """Fingertip distance to the goal that counts as reaching it."""
    spaces: ClassVar[Spaces] = Spaces("reacher", obs_dim=8, goal_dim=2, action_dim=2, goal_indices=(6, 7))

    def __post_init__(self):
        from brax.envs.reacher import Reacher

        object.__setattr__(self, "_env", Reacher(backend=self.backend))

    def describe(self) -> dict:
        return {"name": self.name, "backend": self.backend, "episode_length": self.episode_length,
                "success_threshold": self.success_threshold}

    def _obs(self, ps):
        from brax import base

        tip = ps.x.take(1).do(base.Transform.create(pos=jnp.array([0.11, 0.0, 0.0])))
        tip_vel = base.Transform.create(pos=jnp.array([0.11, 0.0, 0.0])).do(ps.xd.take(1)).vel
        theta = ps.q[:2]
        return jnp.concatenate([jnp.cos(theta), jnp.sin(theta), tip_vel[:2], tip.pos[:2]])

    def reset(self, key):
        core = self._env.reset(key)
        obs, goal = self._obs(core.pipeline_state), core.pipeline_state.q[2:4]
        return EnvState(core=core, obs=obs, goal=goal, success=_success(obs[6:8], goal, self.success_threshold))

    def step(self, state, action):
        core = self._env.step(state.core, jnp.clip(action, -1, 1))
        obs = self._obs(core.pipeline_state)
        return EnvState(core=core, obs=obs, goal=state.goal,
                        success=_success(obs[6:8], state.goal, self.success_threshold))


@dataclasses.dataclass(frozen=True)
class GoalAnt(HasSpaces):
    """Ant reaching (x, y) goals sampled uniformly in a ring around the start."""

    backend: str = "spring"
    """Brax physics pipeline."""
    episode_length: int = 1000
    success_threshold: float = 0.5
    """Torso (x, y) distance to the goal (m) that counts as reaching it."""
    goal_radius: tuple[float, float] = (2.0, 10.0)
    """Goals are sampled at a distance in this range (m) from the start."""
    spaces: ClassVar[Spaces] = Spaces("ant", obs_dim=29, goal_dim=2, action_dim=8, goal_indices=(0, 1))

    def __post_init__(self):
        object.__setattr__(self, "_env", self._make_env())

    def _make_env(self):
        from brax.envs.ant import Ant

        return Ant(backend=self.backend, exclude_current_positions_from_observation=False,
                   terminate_when_unhealthy=False)

    def describe(self) -> dict:
        return {"name": self.name, "backend": self.backend, "episode_length": self.episode_length,
                "success_threshold": self.success_threshold}

    def _sample_goal(self, key):
        k_r, k_a = jax.random.split(key)
        lo, hi = self.goal_radius
        r = jnp.sqrt(jax.random.uniform(k_r, minval=lo**2, maxval=hi**2))
        a = jax.random.uniform(k_a, maxval=2 * jnp.pi)
        return jnp.array([r * jnp.cos(a), r * jnp.sin(a)])

    def reset(self, key):
        k_env, k_goal = jax.random.split(key)
        core = self._env.reset(k_env)
        goal = self._sample_goal(k_goal)
        return EnvState(core=core, obs=core.obs, goal=goal,
                        success=_success(core.obs[:2], goal, self.success_threshold))

    def step(self, state, action):
        core = self._env.step(state.core, jnp.clip(action, -1, 1))
        return EnvState(core=core, obs=core.obs, goal=state.goal,
                        success=_success(core.obs[:2], state.goal, self.success_threshold))


def maze_xml(layout: list[str], cell: float = 4.0, height: float = 0.5) -> str:
    """Brax's ant.xml with one box geom per wall cell, placed as JaxGCRL's ``make_maze`` does
    (row i -> x, column j -> y, half-height ``height / 2 * cell``), R cell at the origin."""
    from etils import epath

    xml = (epath.resource_path("brax") / "envs/assets/ant.xml").read_text()
    (ri, rj), = [(i, j) for i, row in enumerate(layout) for j, c in enumerate(row) if c == "R"]
    walls = [
        f'<geom name="wall_{i}_{j}" type="box" pos="{(i - ri) * cell} {(j - rj) * cell} {height / 2 * cell}" '
        f'size="{cell / 2} {cell / 2} {height / 2 * cell}" rgba="0.7 0.5 0.3 1" contype="1" conaffinity="1"/>'
        for i, row in enumerate(layout) for j, c in enumerate(row) if c == "#"
    ]
    return xml.replace("<worldbody>", "<worldbody>\n    " + "\n    ".join(walls), 1)


@dataclasses.dataclass(frozen=True)
class AntMaze(GoalAnt):
    maze: str = "u"
    cell: float = 4.0
    goal_noise: float = 0.0
    """Uniform offset (m) added to the goal cell's centre; 0 = JaxGCRL's exact centres."""
    spaces: ClassVar[Spaces] = dataclasses.replace(GoalAnt.spaces, name="ant_maze")

    def _make_env(self):
        from brax.io import mjcf

        if self.maze not in ANT_MAZES:
            raise ValueError(f"unknown ant maze {self.maze!r}; choose from {tuple(ANT_MAZES)}")
        env = super()._make_env()
        sys = mjcf.loads(maze_xml(ANT_MAZES[self.maze], self.cell))
        if self.backend in ("spring", "positional"):
            sys = sys.tree_replace({"opt.timestep": 0.005})
        env.sys = sys
        return env

    def describe(self) -> dict:
        return {**super().describe(), "maze": self.maze, "cell": self.cell, "layout": ANT_MAZES[self.maze]}

    def _goal_cells(self) -> np.ndarray:
        layout = ANT_MAZES[self.maze]
        (ri, rj), = [(i, j) for i, row in enumerate(layout) for j, c in enumerate(row) if c == "R"]
        return np.array([((i - ri) * self.cell, (j - rj) * self.cell)
                         for i, row in enumerate(layout) for j, c in enumerate(row) if c == "G"], np.float32)

    def _sample_goal(self, key):
        k_c, k_o = jax.random.split(key)
        cells = jnp.asarray(self._goal_cells())
        centre = cells[jax.random.randint(k_c, (), 0, cells.shape[0])]
        return centre + jax.random.uniform(k_o, (2,), minval=-self.goal_noise, maxval=self.goal_noise)
