"""Issue 11: the candidate envs behave (walls, momentum, far goals) and the barrier verdict
applies the pre-registered criteria."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from training import barrier, envs
from training.envs.pointmaze import LAYOUTS, cell_distances

CANDIDATE_ENVS = [("pointmaze", {"maze": "big", "episode_length": 250}), ("momentum_maze", {}), ("car_maze", {}),
                  ("warped_maze", {}), ("arm_reach", {})]


@pytest.mark.parametrize("name,kw", CANDIDATE_ENVS)
def test_candidate_env_interface_and_far_goals(name, kw):
    env = envs.make(name, **kw)
    s = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 16))
    assert s.obs.shape == (16, env.obs_dim) and s.goal.shape == (16, env.goal_dim)
    step = jax.jit(jax.vmap(env.step))
    for _ in range(20):
        s = step(s, jnp.ones((16, env.action_dim)))
    assert np.all(np.isfinite(np.asarray(s.obs)))
    assert set(np.unique(np.asarray(s.success)).tolist()) <= {0.0, 1.0}
    # achieved goal = obs[goal_indices] (what hindsight relabelling uses)
    goals, pos = env.far_goals(jax.random.PRNGKey(1), 32)
    assert goals.shape == (32, env.goal_dim)
    best = env.max_time_at_goal(np.asarray(pos))
    assert np.all((best >= 0) & (best <= env.episode_length))
    s0 = jax.vmap(env.reset_with_goal)(jax.random.split(jax.random.PRNGKey(2), 32), goals, pos)
    assert float(s0.success.mean()) == 0.0  # far goals are never reached at the start


def test_far_goals_are_far_in_the_maze():
    env = envs.make("pointmaze", maze="big")
    dist = cell_distances(LAYOUTS["big"])
    _, pos = env.far_goals(jax.random.PRNGKey(0), 200)
    d = [dist[(int(y), int(x))] for x, y in np.asarray(pos)]
    assert min(d) >= max(dist.values()) / 2


def test_momentum_must_brake_and_walls_stop_it():
    env = envs.make("momentum_maze", maze="open")
    s = env.reset(jax.random.PRNGKey(0))
    speeds = []
    for _ in range(10):
        s = env.step(s, jnp.array([1.0, 0.0]))
        speeds.append(float(s.core[2]))
    assert speeds[3] > 0.1  # it kept accelerating
    assert max(speeds) <= env.max_speed + 1e-6 and speeds[-1] == pytest.approx(env.max_speed)  # up to the cap
    s2 = env.step(s, jnp.array([0.0, 0.0]))
    assert float(s2.core[2]) > 0  # no action: it keeps moving (momentum)
    for _ in range(50):
        s = env.step(s, jnp.array([1.0, 0.0]))
    assert 3.5 < float(s.core[0]) < 4.0 and float(s.core[2]) == 0.0  # the east wall stopped it
    assert not bool(env._is_wall(s.core[:2]))  # never inside a wall


def test_warped_goals_live_in_the_warped_space():
    env = envs.make("warped_maze")
    s = env.reset(jax.random.PRNGKey(3))
    np.testing.assert_allclose(np.asarray(env.goal_of_pos(s.core[1])), np.asarray(s.goal), atol=1e-6)
    np.testing.assert_allclose(np.asarray(env.goal_of_pos(s.core[0])), np.asarray(s.obs), atol=1e-6)


def test_verdict_applies_the_declared_criteria():
    def runs(d8, d4, d4w, best=100.0):
        out = []
        for depth, width, v in ((8, 64, d8), (4, 64, d4), (4, 90, d4w)):
            out += [{"depth": depth, "width": width, "seed": s, "far_time_at_goal": v, "max_time_at_goal": best}
                    for s in (0, 1)]
        return out

    assert barrier.verdict(runs(60, 5, 5), 64, 90)["pass"]
    assert not barrier.verdict(runs(40, 1, 1), 64, 90)["pass"]  # d8 below 50% of the best
    assert not barrier.verdict(runs(60, 5, 7), 64, 90)["pass"]  # the wide d4 above 0.1 x d8
    v = barrier.verdict(runs(60, 30, 40), 64, 90)
    assert v["d8_learns"] and not v["d4_fails"]


def test_matched_width_has_equal_parameters():
    env = envs.make("arm_reach")
    p8 = barrier.param_count(env, 8, 64)
    w = barrier.matched_width(env, 4, p8)
    assert abs(barrier.param_count(env, 4, w) - p8) / p8 < 0.02 and w > 64
