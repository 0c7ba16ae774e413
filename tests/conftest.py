"""Shared fixtures: small *real* runs (Orbax checkpoints of real crl networks)."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# the score cache of this test session (subprocesses inherit it); never the user's own
import tempfile  # noqa: E402

os.environ.setdefault("GATEKIT_SCORE_CACHE", tempfile.mkdtemp(prefix="gatekit-score-cache-"))
os.environ.setdefault("GATEKIT_CACHE_KEY", os.path.join(tempfile.mkdtemp(prefix="gatekit-cache-key-"), "cache.key"))

import numpy as np
import pytest


NET = {
    "obs_dim": 4,
    "goal_dim": 2,
    "action_dim": 2,
    "goal_indices": [0, 1],
    "depth": 4,
    "width": 32,
    "rep_dim": 8,
    "energy": "neg_l2_sq",
    "activation": "swish",
    "block_size": 4,
}


def write_run(path, *, steps=(100, 200, 300), net=NET, seed=0, n_sample=64, magnitudes=None, **config):
    """Writes a run with random-init networks, one checkpoint per step.

    ``magnitudes`` optionally scales the actor head so that action_magnitude differs by step.
    """
    import jax

    from gatekit import networks
    from gatekit.io import RunWriter

    fam = networks.build("crl", net)
    rng = np.random.default_rng(seed)
    cfg = {"family": "crl", "net": net, "seed": seed, "role": "teacher", "train": {"tau": 1.0}, **config}
    with RunWriter(path, config=cfg, async_save=False) as w:
        for i, step in enumerate(steps):
            params = jax.tree.map(np.asarray, fam.init(jax.random.PRNGKey(seed * 1000 + i)))
            if magnitudes is not None:
                head = params["actor"]["params"]
                last = sorted(k for k in head if k.startswith("Dense"))[-1]
                head[last]["kernel"] = head[last]["kernel"] * magnitudes[i]
                head[last]["bias"] = head[last]["bias"] + 0.0
            sample = {
                "obs": rng.normal(size=(n_sample, net["obs_dim"])).astype(np.float32),
                "action": rng.uniform(-1, 1, size=(n_sample, net["action_dim"])).astype(np.float32),
                "goal": rng.normal(size=(n_sample, net["goal_dim"])).astype(np.float32),
                "future_goal": rng.normal(size=(n_sample, net["goal_dim"])).astype(np.float32),
            }
            meta = {"epoch": i + 1, "env_steps": step, "wall_time": float(i),
                    "eval": {"success": i / len(steps)}, "train": {"critic_loss": 1.0 / (i + 1)}}
            w.save(step, params=params, meta=meta, sample=sample)
    return path


@pytest.fixture
def run_dir(tmp_path):
    return write_run(tmp_path / "teacher")
