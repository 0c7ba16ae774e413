"""Student-side scores: how a fresh student meets a teacher checkpoint, before any training.

Every zero-cost statistic before these read the teacher alone, and none transferred across tasks
(the gate benchmark). The anchors that predict a student's result read the *student*: GRACE
("In Good GRACEs", ICLR 2026) scores a teacher by the gradients its labels induce in a student at
initialisation; RSR by the student's likelihood of the teacher's outputs. Both were measured
across different teachers; here they are computed for every checkpoint of one run.

The student is declared once (:data:`STUDENT`): a gatekit ``crl`` actor of depth 4, width 64,
initialised with a fixed seed, the same for every checkpoint of every run of the same sizes. The
teacher's policy is read on rows (obs, goal): a run's fixed probe, else the checkpoint's own sample.
Per checkpoint (all on those rows, the paper's distillation loss
``D = mean_i ||mu_S - mu_T||^2 + ||log sig_S - log sig_T||^2``):

* ``student_distill_init``: ``D`` at the student's initialisation;
* ``student_grace``: GRACE's gradient score: per-row gradients of ``D`` at initialisation,
  randomly projected to :data:`PROJECTION_DIM` dims (fixed seed), the rows split in two halves
  ``a``, ``b``; ``(tr(S_a^-1 S_b) + tr(S_b^-1 S_a)) / (2k)`` with ``S`` the halves' gradient
  second moments (ridge ``1e-3 x`` their mean eigenvalue): near 1 when the halves' gradients
  span the same directions, large when the teacher's labels pull a student in inconsistent ways;
* ``student_grad_norm``: the mean per-row gradient norm; ``student_grad_coherence``:
  ``|mean_i g_i| / mean_i |g_i|`` in [0, 1] (1: every row pulls the same way; low: diverse);
* ``student_loglik``: the fresh student's mean log-likelihood of the teacher's pre-tanh mean
  actions, ``mean_i sum_d log N(mu_T; mu_S, sig_S)`` (RSR's reading);
* ``student_bc_residual``: ``D`` after :data:`BC_STEPS` full-batch Adam steps (lr 1e-3) of
  behaviour cloning on the rows, from the same initialisation: how much of the teacher a student
  this size fits quickly;
* ``action_drift_prev``: the teacher's own move, ``mean_i |tanh(mu_T) - tanh(mu_T_prev)|`` against
  its previous checkpoint on the same rows (None at a run's first checkpoint).

Each has scale-free forms over a run (:mod:`gatekit.transforms`). Declared before they were scored
on the benchmark (2026-12-04): the primary form of each is ``ratio_first`` (the change since the
run's first checkpoint), and the benchmark fits the direction, threshold and patience inside
each fold, as for every statistic. Pure JAX on host arrays; no environment step.
"""

from __future__ import annotations

import functools
from typing import Mapping

import numpy as np

from gatekit.errors import GatekitError

STUDENT = {"depth": 4, "width": 64, "rep_dim": 8, "block_size": 4, "activation": "swish", "seed": 0}
"""The fresh student every score is computed with (only its actor is used)."""
PROJECTION_DIM = 128
PROJECTION_SEED = 1
BC_STEPS = 200
BC_LR = 1e-3
RIDGE = 1e-3
MAX_ROWS = 256
"""Rows used (the first ones; the benchmark's probe has 256): per-row gradients cost
O(rows x student parameters)."""

NAMES = ("student_distill_init", "student_grace", "student_grad_norm", "student_grad_coherence",
         "student_loglik", "student_bc_residual")


def distill_loss(mu_s, log_std_s, mu_t, log_std_t):
    """``mean_i ||mu_S - mu_T||^2 + ||log sig_S - log sig_T||^2`` (the paper's distillation term;
    sums over action dims, mean over rows). Works on JAX and NumPy arrays."""
    return (((mu_s - mu_t) ** 2).sum(-1) + ((log_std_s - log_std_t) ** 2).sum(-1)).mean()


def grace_trace(g_a: np.ndarray, g_b: np.ndarray, ridge: float = RIDGE) -> float:
    """``(tr(S_a^-1 S_b) + tr(S_b^-1 S_a)) / (2k)`` for projected per-row gradients ``g_a``
    [n_a, k], ``g_b`` [n_b, k]; ``S = g^T g / n + ridge x mean eigenvalue x I``. Exactly 1 when
    the two halves have the same second moment."""
    g_a, g_b = np.asarray(g_a, np.float64), np.asarray(g_b, np.float64)
    k = g_a.shape[1]

    def second(g):
        s = g.T @ g / len(g)
        return s + ridge * max(np.trace(s) / k, 1e-30) * np.eye(k)

    s_a, s_b = second(g_a), second(g_b)
    return float((np.trace(np.linalg.solve(s_a, s_b)) + np.trace(np.linalg.solve(s_b, s_a))) / (2 * k))


@functools.lru_cache(maxsize=16)
def _student(obs_dim: int, goal_dim: int, action_dim: int):
    """(networks, initial actor params, jitted scorer) of the declared student for these sizes."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax.flatten_util import ravel_pytree

    from gatekit import networks

    net = {"obs_dim": obs_dim, "goal_dim": goal_dim, "action_dim": action_dim,
           "goal_indices": list(range(min(goal_dim, obs_dim))) if goal_dim <= obs_dim else [0] * goal_dim,
           **{k: v for k, v in STUDENT.items() if k != "seed"}}
    if goal_dim > obs_dim:
        raise GatekitError(f"student-side scores: goal_dim {goal_dim} > obs_dim {obs_dim}")
    nets = networks.build("crl", net)
    init = jax.jit(lambda key: nets.actor.init(key, jnp.zeros((1, obs_dim + goal_dim), jnp.float32)))
    actor0 = init(jax.random.PRNGKey(STUDENT["seed"]))  # the actor only, as one program
    flat0, unravel = ravel_pytree(actor0)
    proj = jnp.asarray(projection(flat0.size))
    opt = optax.adam(BC_LR)

    def loss(actor, obs, goal, mu_t, ls_t):
        mu, ls = nets.policy(actor, obs, goal)
        return distill_loss(mu, ls, mu_t, ls_t)

    @jax.jit
    def scored(actor0, proj, obs, goal, mu_t, ls_t):  # arguments, not closed-over constants: XLA copies those
        mu, ls = nets.policy(actor0, obs, goal)
        d0 = distill_loss(mu, ls, mu_t, ls_t)
        loglik = jnp.mean(jnp.sum(-0.5 * ((mu_t - mu) / jnp.exp(ls)) ** 2 - ls - 0.5 * jnp.log(2 * jnp.pi), -1))

        def row_grad(o, g, m, s):
            grad = jax.grad(loss)(actor0, o[None], g[None], m[None], s[None])
            return ravel_pytree(grad)[0]

        # per-row gradients a chunk of rows at a time: [chunk, P] at once, never [n, P] (a 64x64x3
        # image observation makes P ~ 800k: all 256 rows at once peaked at 4.5-4.9 GB)
        n = obs.shape[0]
        chunk = _chunk_rows(n, flat0.size)
        pad = -n % chunk
        rows = [jnp.concatenate([x, jnp.zeros((pad, *x.shape[1:]), x.dtype)]) for x in (obs, goal, mu_t, ls_t)]
        live = jnp.arange(n + pad) < n

        def per_chunk(carry, xs):
            o, g, m, s, ok = xs
            grads = jax.vmap(row_grad)(o, g, m, s) * ok[:, None]  # [chunk, P]; padding rows are zero
            return carry + grads.sum(0), (jnp.linalg.norm(grads, axis=1), grads @ proj)

        chunks = [x.reshape(-1, chunk, *x.shape[1:]) for x in (*rows, live)]
        total, (norms, projected) = jax.lax.scan(per_chunk, jnp.zeros_like(flat0), tuple(chunks))
        norms, projected = norms.reshape(-1)[:n], projected.reshape(-1, proj.shape[1])[:n]  # [n], [n, k]
        coherence = jnp.linalg.norm(total / n) / jnp.maximum(norms.mean(), 1e-30)

        def bc(carry, _):
            actor, state = carry
            g = jax.grad(loss)(actor, obs, goal, mu_t, ls_t)
            upd, state = opt.update(g, state, actor)
            return (optax.apply_updates(actor, upd), state), None

        (actor, _), _ = jax.lax.scan(bc, (actor0, opt.init(actor0)), None, length=BC_STEPS)
        return d0, loglik, norms.mean(), coherence, projected, loss(actor, obs, goal, mu_t, ls_t)

    def score(obs, goal, mu_t, ls_t):
        return scored(actor0, proj, obs, goal, mu_t, ls_t)

    return nets, actor0, unravel, score


def projection(params: int, block: int = 1 << 14) -> np.ndarray:
    """The fixed random projection [params, PROJECTION_DIM] (float32), drawn a block of rows at a
    time: the same numbers as one float64 draw, without its float64 copies (0.8 GB each for a
    64x64x3 image observation)."""
    rng = np.random.default_rng(PROJECTION_SEED)
    out = np.empty((params, PROJECTION_DIM), np.float32)
    for i in range(0, params, block):
        out[i:i + block] = rng.standard_normal((min(block, params - i), PROJECTION_DIM)) / np.sqrt(PROJECTION_DIM)
    return out


GRADIENT_BYTES = 64 << 20
"""The most per-row gradient memory computed at once (rows x student parameters x 4 bytes)."""


def _chunk_rows(n: int, params: int) -> int:
    """Rows per chunk of per-row gradients: as many as fit :data:`GRADIENT_BYTES`, at least 1."""
    return int(max(1, min(n, GRADIENT_BYTES // max(1, 4 * params))))


def student_side_scores(obs, goal, mu_t, log_std_t, *, mu_prev=None) -> dict[str, float | None]:
    """Every student-side score (module docstring) of one teacher checkpoint whose policy on rows
    (``obs`` [n, o], ``goal`` [n, g]) is (``mu_t``, ``log_std_t``) [n, a]; ``mu_prev``: the
    previous checkpoint's ``mu`` on the same rows (for ``action_drift_prev``). Uses the first
    :data:`MAX_ROWS` rows; needs >= 4."""
    import jax.numpy as jnp

    arrays = [np.asarray(x, np.float32)[:MAX_ROWS] for x in (obs, goal, mu_t, log_std_t)]
    obs, goal, mu_t, log_std_t = arrays
    n = len(obs)
    if n < 4 or any(len(x) != n or x.ndim != 2 for x in arrays):
        raise GatekitError(f"student-side scores need >= 4 rows of [n, d] arrays, got shapes {[x.shape for x in arrays]}")
    if not all(np.isfinite(x).all() for x in arrays):
        raise GatekitError("student-side scores: non-finite inputs")
    _, _, _, score = _student(obs.shape[1], goal.shape[1], mu_t.shape[1])
    d0, loglik, gnorm, coherence, projected, residual = score(*map(jnp.asarray, arrays))
    projected = np.asarray(projected, np.float64)
    out = {"student_distill_init": float(d0), "student_grace": grace_trace(projected[0::2], projected[1::2]),
           "student_grad_norm": float(gnorm), "student_grad_coherence": float(coherence),
           "student_loglik": float(loglik), "student_bc_residual": float(residual)}
    out["action_drift_prev"] = action_drift(mu_t, mu_prev)
    return out


def action_drift(mu_t, mu_prev) -> float | None:
    """``mean_i |tanh(mu_T) - tanh(mu_prev)|`` (L2 over action dims) on the same rows; None
    without a previous checkpoint."""
    if mu_prev is None:
        return None
    mu_t, mu_prev = np.asarray(mu_t, np.float64), np.asarray(mu_prev, np.float64)[: len(mu_t)]
    if mu_prev.shape != mu_t.shape:
        raise GatekitError(f"action_drift_prev: shapes {mu_t.shape} and {mu_prev.shape} differ")
    return float(np.linalg.norm(np.tanh(mu_t) - np.tanh(mu_prev), axis=-1).mean())


def from_outputs(rows: Mapping[str, np.ndarray], mu, log_std, mu_prev=None) -> dict:
    """:func:`student_side_scores` on rows ``{"obs", "goal"}`` and the teacher's outputs there."""
    return student_side_scores(rows["obs"], rows["goal"], mu, log_std, mu_prev=mu_prev)
