"""Names shared by the network families and the metrics, with no heavy import: what a family's
``apply`` returns, the critic energies, and the JaxGCRL family's net keys. ``gatekit.networks``
and ``gatekit.jaxgcrl`` both build on this module, so neither imports the other's module body."""

from __future__ import annotations

from typing import Any, NamedTuple

ENERGIES = ("neg_l2_sq", "neg_l2", "dot")
"""Critic energies f(x, y): -|x - y|^2, -|x - y|, x.y."""

JAXGCRL_NET_KEYS = ("obs_dim", "goal_dim", "action_dim", "h_dim", "n_hidden", "skip_connections", "use_ln",
                    "use_relu", "repr_dim", "energy")
"""The ``net`` keys of the ``jaxgcrl`` family (a JaxGCRL CRL agent's architecture)."""


class Outputs(NamedTuple):
    """What every family returns. Shapes: [N, action_dim] x2, [N, rep_dim] x2."""

    mu: Any
    log_std: Any
    sa_repr: Any
    goal_repr: Any
