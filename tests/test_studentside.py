"""Student-side scores (gatekit.studentside) against values computed by hand on a tiny network."""

import numpy as np
import pytest

from gatekit import studentside as ss
from gatekit.errors import GatekitError


def _rows(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 4)).astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32),
            rng.normal(size=(n, 2)).astype(np.float32), (rng.normal(size=(n, 2)) * 0.3 - 1).astype(np.float32))


def test_distill_loss_and_grace_trace_by_hand():
    mu_s, ls_s = np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]])
    mu_t, ls_t = np.array([[0.0, 2.0]]), np.array([[1.0, 0.0]])
    assert ss.distill_loss(mu_s, ls_s, mu_t, ls_t) == 1 + 4 + 1
    eye = np.eye(2)
    assert ss.grace_trace(eye, eye) == pytest.approx(1.0)  # the same second moment: 1
    # S_a = I/2, S_b = 2I: (tr(4I) + tr(I/4)) / (2 x 2), no ridge
    assert ss.grace_trace(eye, 2 * eye, ridge=0.0) == pytest.approx((8 + 0.5) / 4)


def test_scores_match_a_hand_computation_on_the_declared_student():
    import jax
    import optax
    from jax.flatten_util import ravel_pytree

    obs, goal, mu_t, ls_t = _rows()
    got = ss.student_side_scores(obs, goal, mu_t, ls_t, mu_prev=mu_t + 0.1)
    nets, actor0, _, _ = ss._student(4, 2, 2)
    mu, ls = (np.asarray(x, np.float64) for x in nets.policy(actor0, obs, goal))
    assert got["student_distill_init"] == pytest.approx(((mu - mu_t) ** 2).sum(1).mean() + ((ls - ls_t) ** 2).sum(1).mean(),
                                                        rel=1e-5)
    loglik = (-0.5 * ((mu_t - mu) / np.exp(ls)) ** 2 - ls - 0.5 * np.log(2 * np.pi)).sum(1).mean()
    assert got["student_loglik"] == pytest.approx(loglik, rel=1e-5)

    def loss(actor, o, g, m, s):
        a, b = nets.policy(actor, o, g)
        return ss.distill_loss(a, b, m, s)

    grad = jax.jit(jax.grad(loss))  # one row at a time (no vmap)
    grads = np.stack([np.asarray(ravel_pytree(grad(actor0, obs[i:i + 1], goal[i:i + 1], mu_t[i:i + 1], ls_t[i:i + 1]))[0])
                      for i in range(len(obs))])
    norms = np.linalg.norm(grads, axis=1)
    assert got["student_grad_norm"] == pytest.approx(norms.mean(), rel=1e-4)
    assert got["student_grad_coherence"] == pytest.approx(np.linalg.norm(grads.mean(0)) / norms.mean(), rel=1e-4)
    actor, opt = actor0, optax.adam(ss.BC_LR)
    state = opt.init(actor)

    @jax.jit
    def step(actor, state):
        upd, state = opt.update(jax.grad(loss)(actor, obs, goal, mu_t, ls_t), state, actor)
        return optax.apply_updates(actor, upd), state

    for _ in range(ss.BC_STEPS):  # behaviour cloning, one step at a time (no scan)
        actor, state = step(actor, state)
    assert got["student_bc_residual"] == pytest.approx(float(loss(actor, obs, goal, mu_t, ls_t)), rel=1e-3)
    assert got["student_bc_residual"] < got["student_distill_init"]
    assert got["action_drift_prev"] == pytest.approx(np.linalg.norm(np.tanh(mu_t) - np.tanh(mu_t + 0.1), axis=1).mean(),
                                                     rel=1e-5)
    assert ss.student_side_scores(obs, goal, mu_t, ls_t)["action_drift_prev"] is None


def test_grace_is_invariant_to_the_projection_seed(monkeypatch):
    """Within 10% (a random projection to 128 dims preserves the trace up to JL error)."""
    obs, goal, mu_t, ls_t = _rows(256, seed=3)
    scores = []
    for seed in (1, 2, 3):
        monkeypatch.setattr(ss, "PROJECTION_SEED", seed)
        ss._student.cache_clear()
        scores.append(ss.student_side_scores(obs, goal, mu_t, ls_t)["student_grace"])
    ss._student.cache_clear()
    assert max(scores) / min(scores) < 1.10, scores


def test_bad_rows_are_refused():
    obs, goal, mu_t, ls_t = _rows(8)
    with pytest.raises(GatekitError, match=">= 4 rows"):
        ss.student_side_scores(obs[:3], goal[:3], mu_t[:3], ls_t[:3])
    bad = mu_t.copy()
    bad[0, 0] = np.nan
    with pytest.raises(GatekitError, match="non-finite"):
        ss.student_side_scores(obs, goal, bad, ls_t)
