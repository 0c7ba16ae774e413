"""training.envs.dynmaze directly: the dynamics envs' physics on hand-checkable steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from training import envs


def test_momentum_maze_accelerates_caps_speed_and_damps():
    env = envs.make("momentum_maze")
    s = env.reset(jax.random.PRNGKey(0))
    assert s.obs.shape == (4,) and np.allclose(s.core[2:], 0.0)
    s1 = env.step(s, jnp.array([1.0, 0.0]))
    assert float(s1.core[2]) == pytest.approx(env.accel) and float(s1.core[3]) == 0.0
    for _ in range(100):  # full throttle: the speed stays at the cap (or 0 where a wall stopped it)
        s1 = env.step(s1, jnp.array([1.0, 1.0]))
        assert float(jnp.max(jnp.abs(s1.core[2:]))) <= env.max_speed + 1e-6
    coast = env.step(env.step(s, jnp.array([1.0, 0.0])), jnp.zeros(2))
    assert float(coast.core[2]) == pytest.approx(env.damping * env.accel)


@pytest.mark.parametrize("name", ["momentum_maze", "car_maze", "arm_reach"])
def test_dynamics_envs_are_deterministic_and_finite(name):
    env = envs.make(name)
    step = jax.jit(env.step)
    a = jnp.full((env.action_dim,), 0.5)
    runs = []
    for _ in range(2):
        s = env.reset(jax.random.PRNGKey(3))
        for _ in range(20):
            s = step(s, a)
        runs.append(np.asarray(s.obs))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.isfinite(runs[0]).all() and runs[0].shape == (env.obs_dim,)
