"""A 2-D point maze in pure JAX: the built-in, CPU-fast goal-conditioned environment.

The agent is a point at continuous (x, y) in a grid maze of unit cells; an action in
[-1, 1]^2 moves it by ``step_size * action``, axis by axis, and a move into a wall cell is
cancelled on that axis (the point slides along walls). Starts are in the ``R`` cell, goals
uniform in the ``G`` cells. Layouts follow JaxGCRL's maze conventions (U maze, big maze),
scaled down to a point mass so that a teacher trains in minutes on 2 CPU cores; larger
layouts need longer horizons and, as in the paper, benefit from depth.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import ClassVar
import math

import jax
import jax.numpy as jnp
import numpy as np

from training.envs.base import EnvState, HasSpaces, Spaces

LAYOUTS = {
    "open": [
        "#####",
        "#RGG#",
        "#GGG#",
        "#GGG#",
        "#####",
    ],
    "u": [
        "#####",
        "#RGG#",
        "###G#",
        "#GGG#",
        "#####",
    ],
    "medium": [
        "########",
        "#RG##GG#",
        "#GG#GGG#",
        "##GGG###",
        "#GG#GGG#",
        "#G#GG#G#",
        "#GGG#GG#",
        "########",
    ],
    "big": [
        "############",
        "#RGG#GGGGG##",
        "#G#GGG#G#GG#",
        "#G#G#GGG#GG#",
        "#GGG#GG#GGG#",
        "###GG##GG#G#",
        "#GGG#GG#GGG#",
        "#G#GG#GGG#G#",
        "#GGGG#G#GGG#",
        "############",
    ],
}


def cell_distances(layout: list[str]) -> dict[tuple[int, int], int]:
    """BFS distance (in cells, 4-neighbour moves) from the start cell ``R`` to every free cell."""
    grid = [list(r) for r in layout]
    start = next((i, j) for i, r in enumerate(grid) for j, c in enumerate(r) if c == "R")
    dist = {start: 0}
    queue = collections.deque([start])
    while queue:
        i, j = queue.popleft()
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            n = (i + di, j + dj)
            if grid[n[0]][n[1]] != "#" and n not in dist:
                dist[n] = dist[(i, j)] + 1
                queue.append(n)
    return dist



class MazeLayout:
    """Layout, walls, goal sampling, far goals and the axis-by-axis slide shared by every maze env
    (cell units; ``maze`` names a layout in :data:`LAYOUTS`)."""

    maze: str

    @property
    def grid(self) -> np.ndarray:
        return np.array([[c == "#" for c in row] for row in LAYOUTS[self.maze]])

    def _cells(self, chars: str) -> np.ndarray:
        rows = LAYOUTS[self.maze]
        return np.array([(j + 0.5, i + 0.5) for i, r in enumerate(rows) for j, c in enumerate(r) if c in chars],
                        np.float32)

    def _far_cells(self) -> tuple[np.ndarray, np.ndarray]:
        dist = cell_distances(LAYOUTS[self.maze])
        far = max(dist.values()) / 2
        cells = [(j + 0.5, i + 0.5, d) for (i, j), d in dist.items() if d >= far and LAYOUTS[self.maze][i][j] == "G"]
        arr = np.array(cells, np.float32)
        return arr[:, :2], arr[:, 2]

    def _is_wall(self, pos: jax.Array) -> jax.Array:
        grid = jnp.asarray(self.grid)
        j = jnp.clip(jnp.floor(pos[0]).astype(jnp.int32), 0, grid.shape[1] - 1)
        i = jnp.clip(jnp.floor(pos[1]).astype(jnp.int32), 0, grid.shape[0] - 1)
        return grid[i, j]

    def _start(self, key) -> jax.Array:
        return jnp.asarray(self._cells("R")[0]) + jax.random.uniform(key, (2,), minval=-0.1, maxval=0.1)

    def _goal_pos(self, key) -> jax.Array:
        k_cell, k_off = jax.random.split(key)
        goals = jnp.asarray(self._cells("G"))
        return goals[jax.random.randint(k_cell, (), 0, goals.shape[0])] + jax.random.uniform(
            k_off, (2,), minval=-0.3, maxval=0.3)

    @property
    def top_speed(self) -> float:
        """Distance per step at full speed (for ``max_time_at_goal``)."""
        return self.max_speed

    def reset(self, key) -> EnvState:
        k1, k2 = jax.random.split(key)
        gpos = self._goal_pos(k2)
        return self.reset_with_goal(k1, self.goal_of_pos(gpos), gpos)

    def far_goals(self, key, n: int) -> tuple[jax.Array, jax.Array]:
        """``n`` goals in cells at least half the largest BFS distance from the start:
        (goals [n, goal_dim], their positions [n, 2])."""
        cells, _ = self._far_cells()
        k_cell, k_off = jax.random.split(key)
        idx = jax.random.randint(k_cell, (n,), 0, len(cells))
        pos = jnp.asarray(cells)[idx] + jax.random.uniform(k_off, (n, 2), minval=-0.3, maxval=0.3)
        return jax.vmap(self.goal_of_pos)(pos), pos

    def goal_of_pos(self, pos: jax.Array) -> jax.Array:
        return pos

    def max_time_at_goal(self, goal_pos: np.ndarray) -> np.ndarray:
        """Upper bound on steps at the goal: episode minus BFS path length / top speed."""
        dist = cell_distances(LAYOUTS[self.maze])
        out = []
        for x, y in np.asarray(goal_pos).reshape(-1, 2):
            d = dist.get((int(y), int(x)), 0)
            travel = max(d - self.success_threshold, 0.0) / self.top_speed
            out.append(max(self.episode_length - math.ceil(travel), 0))
        return np.asarray(out, float)

    def _success(self, pos, goal_pos):
        return (jnp.linalg.norm(pos - goal_pos) < self.success_threshold).astype(jnp.float32)

    def _slide(self, pos, delta):
        """Axis-by-axis move; a move into a wall is cancelled on that axis. Returns (pos, hit)."""
        hx = self._is_wall(pos.at[0].add(delta[0]))
        x = jnp.where(hx, pos, pos.at[0].add(delta[0]))
        hy = self._is_wall(x.at[1].add(delta[1]))
        y = jnp.where(hy, x, x.at[1].add(delta[1]))
        return y, jnp.stack([hx, hy])

    def _describe(self, **extra) -> dict:
        return {"name": self.name, "maze": self.maze, "episode_length": self.episode_length,
                "success_threshold": self.success_threshold, "layout": LAYOUTS[self.maze], **extra}


@dataclasses.dataclass(frozen=True)
class PointMaze(HasSpaces, MazeLayout):
    """Point-mass maze. Obs = goal space = (x, y) in cell units."""

    maze: str = "u"
    step_size: float = 0.2
    """Largest move per step (cells); below 0.5 so no step can jump a wall."""
    episode_length: int = 100
    success_threshold: float = 0.3
    """Distance to the goal (cells) that counts as reaching it."""
    start_noise: float = 0.1
    """Uniform jitter of the start position (cells)."""
    spaces: ClassVar[Spaces] = Spaces("pointmaze", obs_dim=2, goal_dim=2, action_dim=2, goal_indices=(0, 1))

    def __post_init__(self):
        if self.maze not in LAYOUTS:
            raise ValueError(f"unknown maze {self.maze!r}; choose from {tuple(LAYOUTS)}")
        if not 0 < self.step_size < 0.5:
            raise ValueError(f"step_size must be in (0, 0.5) so a step cannot jump a wall, got {self.step_size}")
        if self.episode_length < 2:
            raise ValueError(f"episode_length must be >= 2, got {self.episode_length}")

    def describe(self) -> dict:
        return {
            "name": self.name, "maze": self.maze, "step_size": self.step_size,
            "episode_length": self.episode_length, "success_threshold": self.success_threshold,
            "layout": LAYOUTS[self.maze],
        }

    def reset(self, key: jax.Array) -> EnvState:
        k_start, k_cell, k_off = jax.random.split(key, 3)
        start = jnp.asarray(self._cells("R")[0]) + jax.random.uniform(
            k_start, (2,), minval=-self.start_noise, maxval=self.start_noise
        )
        goals = jnp.asarray(self._cells("G"))
        goal = goals[jax.random.randint(k_cell, (), 0, goals.shape[0])]
        goal = goal + jax.random.uniform(k_off, (2,), minval=-0.3, maxval=0.3)
        return EnvState(core=start, obs=start, goal=goal, success=self._success(start, goal))

    # -- far-goal evaluation (training.barrier) ------------------------------------------------
    @property
    def top_speed(self) -> float:
        return self.step_size

    def reset_with_goal(self, key, goal, goal_pos=None) -> EnvState:
        start = jnp.asarray(self._cells("R")[0]) + jax.random.uniform(
            key, (2,), minval=-self.start_noise, maxval=self.start_noise)
        return EnvState(core=start, obs=start, goal=goal, success=self._success(start, goal))

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        y, _ = self._slide(state.core, self.step_size * jnp.clip(action, -1.0, 1.0))
        return EnvState(core=y, obs=y, goal=state.goal, success=self._success(y, state.goal))
