"""A frozen teacher for distillation: a gatekit run's checkpoint, its actor and network family."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from gatekit import networks
from gatekit.errors import GatekitError


@dataclasses.dataclass(frozen=True)
class Teacher:
    """A frozen teacher: its network family and actor parameters, and where it came from."""

    nets: networks.CRLNetworks
    actor_params: Any
    path: str
    step: int


def load_teacher(spec: str, env) -> Teacher:
    """``RUN_DIR[@STEP]`` (default: the last complete checkpoint) -> Teacher. Checks the env."""
    from gatekit.scoring import load_reference

    ckpt = load_reference(spec)
    net = ckpt.run.net
    for key, want in (("obs_dim", env.obs_dim), ("goal_dim", env.goal_dim), ("action_dim", env.action_dim)):
        if net.get(key) != want:
            raise GatekitError(f"teacher {spec}: net.{key}={net.get(key)} but env {env.name} has {want}")
    nets = networks.build(ckpt.run.family, net)
    actor = jax.tree.map(jnp.asarray, ckpt.params["actor"])
    return Teacher(nets=nets, actor_params=actor, path=str(ckpt.run.path), step=ckpt.step)
