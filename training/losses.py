"""CRL losses as module-level pure functions (each unit-tested against hand-computed values).

References:
  Eysenbach et al. 2022 (CRL); Oord et al. 2018 (InfoNCE); Haarnoja et al. 2018 (SAC entropy
  temperature); the distillation term is the paper's
  ``lambda_pi * E[||mu_S - mu_T||^2 + ||log sig_S - log sig_T||^2]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gatekit.networks import CRLNetworks, energy as energy_fn, pairwise_energy
from gatekit.studentside import distill_loss  # noqa: F401 - the one definition, re-exported

_LOG_2PI = jnp.log(2 * jnp.pi)


def infonce(logits: jax.Array) -> jax.Array:
    """Forward InfoNCE with positives on the diagonal. logits: [B, B] -> scalar.

    mean_i [logsumexp_j logits_ij - logits_ii].
    """
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.diagonal(logits))


def contrastive_logits(phi: jax.Array, psi: jax.Array, *, energy: str, tau: float) -> jax.Array:
    """logits_ij = f(phi_i, psi_j) / tau. [B, d], [B, d] -> [B, B]."""
    return pairwise_energy(phi, psi, energy) / tau


def critic_loss(
    sa_params, goal_params, nets: CRLNetworks, batch: dict, *, tau: float, logsumexp_penalty: float
) -> tuple[jax.Array, dict]:
    """InfoNCE over the batch (each (s, a) against every future goal), plus JaxGCRL's
    ``penalty * mean(logsumexp(logits, 1)^2)`` that keeps logits from drifting."""
    phi = nets.sa_repr(sa_params, batch["obs"], batch["action"])
    psi = nets.goal_repr(goal_params, batch["future_goal"])
    logits = contrastive_logits(phi, psi, energy=nets.energy, tau=tau)
    lse = jax.nn.logsumexp(logits, axis=1)
    loss = infonce(logits) + logsumexp_penalty * jnp.mean(lse**2)
    eye = jnp.eye(logits.shape[0], dtype=bool)
    metrics = {
        "critic_loss": loss,
        "infonce": infonce(logits),
        "contrastive_acc": jnp.mean(jnp.argmax(logits, axis=1) == jnp.arange(logits.shape[0])),
        "logits_pos": jnp.mean(jnp.diagonal(logits)),
        "logits_neg": jnp.sum(jnp.where(eye, 0.0, logits)) / (logits.size - logits.shape[0]),
    }
    return loss, metrics


def tanh_gaussian_sample(mu: jax.Array, log_std: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reparameterized sample a = tanh(mu + sigma * eps) and its log-probability.

    log pi(a) = log N(u; mu, sigma) - sum log(1 - tanh(u)^2), the latter in the stable form
    2 (log 2 - u - softplus(-2u)). Shapes: [B, A] -> [B, A], [B].
    """
    eps = jax.random.normal(key, mu.shape)
    u = mu + jnp.exp(log_std) * eps
    log_normal = jnp.sum(-0.5 * eps**2 - log_std - 0.5 * _LOG_2PI, axis=-1)
    log_det = jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)
    return jnp.tanh(u), log_normal - log_det


def actor_loss(
    actor_params,
    critic_params: dict,
    alpha: jax.Array,
    nets: CRLNetworks,
    batch: dict,
    key: jax.Array,
    *,
    tau: float,
    teacher: tuple[jax.Array, jax.Array] | None = None,
    lambda_pi: jax.Array | float = 0.0,
) -> tuple[jax.Array, dict]:
    """SAC-style actor on the contrastive critic, plus the distillation term for students.

    loss = mean(alpha * log pi(a|s,g) - f(phi(s,a), psi(g)) / tau) + lambda_pi * L_distill,
    with a ~ pi(.|s, g), g the hindsight future goal; critic parameters are not updated here.
    ``teacher`` is the frozen teacher's (mu, log_std) on the same (s, g).
    """
    mu, log_std = nets.policy(actor_params, batch["obs"], batch["future_goal"])
    action, log_prob = tanh_gaussian_sample(mu, log_std, key)
    phi = nets.sa_repr(critic_params["sa_encoder"], batch["obs"], action)
    psi = nets.goal_repr(critic_params["goal_encoder"], batch["future_goal"])
    q = energy_fn(phi, psi, nets.energy) / tau
    loss = jnp.mean(alpha * log_prob - q)
    metrics = {"actor_loss": loss, "entropy": -jnp.mean(log_prob), "q": jnp.mean(q),
               "action_magnitude": jnp.mean(jnp.abs(jnp.tanh(mu)))}
    if teacher is not None:
        d = distill_loss(mu, log_std, *teacher)
        loss = loss + lambda_pi * d
        metrics["distill_loss"] = d
    return loss, {**metrics, "log_prob": jnp.mean(log_prob)}


def alpha_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float) -> jax.Array:
    """SAC temperature loss: -log_alpha * (log pi + target_entropy), log pi held fixed."""
    return -log_alpha * (jax.lax.stop_gradient(log_prob) + target_entropy)
