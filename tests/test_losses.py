"""Training losses against hand-computed values and direct formulas."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gatekit import networks
from training import buffer as rb
from training import losses


def test_infonce_diagonal_positives_hand_value():
    # logits [[2, 0], [1, 3]]: row 0: log(e^2 + e^0) - 2 ; row 1: log(e^1 + e^3) - 3
    logits = jnp.array([[2.0, 0.0], [1.0, 3.0]])
    expected = ((math.log(math.e**2 + 1) - 2) + (math.log(math.e + math.e**3) - 3)) / 2
    assert float(losses.infonce(logits)) == pytest.approx(expected, rel=1e-6)
    # perfect separation -> 0 ; uniform logits -> log(B)
    assert float(losses.infonce(jnp.eye(3) * 100.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.infonce(jnp.zeros((4, 4)))) == pytest.approx(math.log(4), rel=1e-6)


def test_energies_hand_values():
    x, y = jnp.array([[1.0, 2.0]]), jnp.array([[4.0, 6.0]])  # diff (3, 4): ||.||^2 = 25, dot = 16
    assert float(networks.energy(x, y, "neg_l2_sq")[0]) == pytest.approx(-25.0)
    assert float(networks.energy(x, y, "neg_l2")[0]) == pytest.approx(-math.sqrt(25 + 1e-6), rel=1e-6)
    assert float(networks.energy(x, y, "dot")[0]) == pytest.approx(16.0)
    # temperature divides the logits
    lg = losses.contrastive_logits(x, y, energy="neg_l2_sq", tau=0.5)
    assert float(lg[0, 0]) == pytest.approx(-50.0)


def test_distill_loss_hand_value():
    # batch of 2: row 0: (1-0)^2 + (0-0)^2 + log-std diff (0.5)^2 = 1.25 ; row 1: (2)^2 + 0 = 4 -> mean 2.625
    mu_s = jnp.array([[1.0, 0.0], [0.0, 0.0]])
    mu_t = jnp.array([[0.0, 0.0], [2.0, 0.0]])
    ls_s = jnp.array([[0.5, 0.0], [0.0, 0.0]])
    ls_t = jnp.zeros((2, 2))
    assert float(losses.distill_loss(mu_s, ls_s, mu_t, ls_t)) == pytest.approx(2.625)


def test_tanh_gaussian_log_prob_matches_direct_formula():
    key = jax.random.PRNGKey(0)
    mu = jnp.array([[0.3, -1.2], [2.0, 0.1]])
    log_std = jnp.array([[-0.5, 0.2], [-1.0, 0.0]])
    a, logp = losses.tanh_gaussian_sample(mu, log_std, key)
    u = np.arctanh(np.clip(np.asarray(a, np.float64), -1 + 1e-12, 1 - 1e-12))
    sd = np.exp(np.asarray(log_std, np.float64))
    direct = (-0.5 * ((u - mu) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi) - np.log(1 - np.tanh(u) ** 2)).sum(-1)
    np.testing.assert_allclose(np.asarray(logp), direct, rtol=1e-3, atol=1e-3)
    assert np.all(np.abs(np.asarray(a)) < 1)


def test_critic_loss_is_infonce_plus_penalty():
    net = networks.build("crl", {"obs_dim": 3, "goal_dim": 2, "action_dim": 2, "goal_indices": [0, 1],
                                 "depth": 4, "width": 16, "rep_dim": 4})
    p = net.init(jax.random.PRNGKey(1))
    k = jax.random.split(jax.random.PRNGKey(2), 3)
    batch = {"obs": jax.random.normal(k[0], (8, 3)), "action": jax.random.normal(k[1], (8, 2)),
             "future_goal": jax.random.normal(k[2], (8, 2))}
    loss, m = losses.critic_loss(p["sa_encoder"], p["goal_encoder"], net, batch, tau=0.7, logsumexp_penalty=0.1)
    phi = net.sa_repr(p["sa_encoder"], batch["obs"], batch["action"])
    psi = net.goal_repr(p["goal_encoder"], batch["future_goal"])
    logits = -((phi[:, None] - psi[None]) ** 2).sum(-1) / 0.7
    lse = jax.nn.logsumexp(logits, axis=1)
    ref = jnp.mean(lse - jnp.diagonal(logits)) + 0.1 * jnp.mean(lse**2)
    assert float(loss) == pytest.approx(float(ref), rel=1e-5)
    assert 0.0 <= float(m["contrastive_acc"]) <= 1.0


def test_buffer_future_goals_come_from_the_same_episode_later():
    # obs encodes (episode id, time): future goals must share the id and have a later time
    e, length = 4, 10
    ids = jnp.broadcast_to(jnp.arange(e)[:, None, None], (e, length, 1)).astype(jnp.float32)
    times = jnp.broadcast_to(jnp.arange(length)[None, :, None], (e, length, 1)).astype(jnp.float32)
    obs = jnp.concatenate([ids, times], -1)
    buf = rb.insert(rb.init(8, length, 2, 1, 2), obs, jnp.zeros((e, length, 1)), obs[:, 0])
    s = rb.sample(buf, jax.random.PRNGKey(0), 512, discount=0.9, goal_indices=(0, 1))
    assert np.all(s["future_goal"][:, 0] == s["obs"][:, 0])
    assert np.all(s["future_goal"][:, 1] > s["obs"][:, 1])
    gap = np.asarray(s["future_goal"][:, 1] - s["obs"][:, 1])
    assert np.mean(gap == 1) > np.mean(gap == 3)  # discount-weighted: near futures more likely
    assert int(buf.size) == 4 and int(buf.ptr) == 4
    recent = rb.sample(buf, jax.random.PRNGKey(1), 256, discount=0.9, goal_indices=(0, 1), recent=1)
    assert np.all(recent["obs"][:, 0] == 3)  # only the newest episode
