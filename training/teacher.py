"""A frozen teacher for distillation: a gatekit run's checkpoint, its actor and network family."""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp

from gatekit import io as gio
from gatekit import networks
from gatekit.errors import GatekitError
from gatekit.io import CHECKPOINT_DIR


@dataclasses.dataclass(frozen=True)
class Teacher:
    """A frozen teacher: its network family and actor parameters, and where it came from."""

    nets: networks.CRLNetworks
    actor_params: Any
    path: str
    step: int


def load_teacher(spec: str, env) -> Teacher:
    """``RUN_DIR[@STEP]`` (default: the last complete checkpoint) -> Teacher. Checks the env.

    The checkpoint's params and meta (checksums verified; not its sample) are read once per
    process and checkpoint: a calibration's students of one checkpoint share the read."""
    path, step = gio.parse_checkpoint_spec(spec)
    ckpt = _read_teacher(str(path.resolve()), step, _stamp(path, step))
    net = ckpt.run.net
    for key, want in (("obs_dim", env.obs_dim), ("goal_dim", env.goal_dim), ("action_dim", env.action_dim)):
        if net.get(key) != want:
            raise GatekitError(f"teacher {spec}: net.{key}={net.get(key)} but env {env.name} has {want}")
    nets = networks.build(ckpt.run.family, net)
    actor = jax.tree.map(jnp.asarray, ckpt.params["actor"])
    return Teacher(nets=nets, actor_params=actor, path=str(ckpt.run.path), step=ckpt.step)


def _stamp(path: pathlib.Path, step: int | None) -> tuple:
    """What changes when the checkpoint a spec names changes: the step folder's (or, for the
    newest step, the checkpoint folder's) modification time."""
    where = path / CHECKPOINT_DIR / (str(step) if step is not None else "")
    try:
        st = os.stat(where)
    except OSError:
        return ()
    return (st.st_mtime_ns, st.st_ino)


@functools.lru_cache(maxsize=8)
def _read_teacher(path: str, step: int | None, stamp: tuple):
    from gatekit.scoring import load_reference

    del stamp  # part of the cache key only
    return load_reference(path if step is None else f"{path}@{step}", items=("params", "meta"))
