"""Typed, frozen training configuration, validated once before anything is traced."""

from __future__ import annotations

import dataclasses
from typing import Any

from gatekit.networks import Architecture, CRLNetConfig


TEACHER_TRANSFORMS = ("clamp_log_std", "scale_mu")


def parse_teacher_transform(spec: str) -> dict[str, float]:
    """``"clamp_log_std=-3,scale_mu=2"`` -> {"clamp_log_std": -3.0, "scale_mu": 2.0}; ValueError otherwise."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        name, sep, value = part.partition("=")
        if not sep or name not in TEACHER_TRANSFORMS:
            raise ValueError(f"teacher_transform {part!r}: expected NAME=VALUE with NAME in {TEACHER_TRANSFORMS}")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"teacher_transform {part!r}: {value!r} is not a number") from None
    return out


@dataclasses.dataclass(frozen=True)
class TrainConfig(Architecture):
    """CRL teacher / distilled student settings. Sizes are counts, never placeholders. The
    network's fields (depth, width, rep_dim, energy, activation, block_size) and their defaults
    are :class:`gatekit.networks.Architecture`'s."""

    env: str = "pointmaze"
    """Environment name: one of :func:`training.envs.names` (the registry)."""
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    """Extra env arguments as (name, value) pairs, e.g. (("maze", "u"),)."""
    tau: float = 1.0
    """InfoNCE temperature: logits = f / tau."""
    lr: float = 3e-4
    batch_size: int = 256
    num_envs: int = 32
    """Parallel environments; one iteration collects one episode from each."""
    epochs: int = 10
    iterations_per_epoch: int = 4
    updates_per_iteration: int = 64
    """SGD steps after each collection (update-to-data ratio)."""
    buffer_episodes: int = 1024
    discount: float = 0.99
    """Hindsight goal sampling: P(future offset k) ~ discount^k."""
    logsumexp_penalty: float = 0.1
    target_entropy_scale: float = 0.5
    """SAC target entropy = -scale * action_dim."""
    eval_episodes: int = 64
    sample_size: int = 1024
    """Transitions of each epoch's rollouts saved with its checkpoint."""
    seed: int = 0
    # distillation (students only)
    lambda_pi: float = 1.0
    lambda_pi_end: float | None = None
    """If set, lambda_pi anneals linearly to this value over the distillation epochs."""
    distill_start_epoch: int = 0
    """Epochs before this one train without the teacher (late activation)."""
    devices: int = 1
    """Data-parallel devices: envs and batch split over a 1-D mesh, params replicated,
    gradients averaged by XLA's SPMD partitioner (same results as 1 device, same global batch)."""
    teacher_transform: str = ""
    """Causal-dissociation control: change the teacher's outputs before distilling, e.g.
    ``clamp_log_std=-3`` (a confident-looking teacher) or ``scale_mu=3`` (saturated-looking
    means); comma-separated; empty = none."""

    def env_args(self) -> dict:
        return dict(self.env_kwargs)

    def validate(self, episode_length: int | None = None) -> "TrainConfig":
        """Raises ValueError naming the field for impossible settings."""
        self.check_architecture(ValueError, prefix="")
        positive = ["batch_size", "num_envs", "epochs",
                    "iterations_per_epoch", "updates_per_iteration", "buffer_episodes", "eval_episodes",
                    "sample_size"]
        for name in positive:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("tau", "lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.discount < 1:
            raise ValueError(f"discount must be in (0, 1), got {self.discount}")
        if self.buffer_episodes % self.num_envs:
            raise ValueError(
                f"buffer_episodes={self.buffer_episodes} must be a multiple of num_envs={self.num_envs}"
            )
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (InfoNCE needs negatives)")
        if episode_length is not None and self.batch_size > self.num_envs * (episode_length - 1):
            raise ValueError(
                f"batch_size={self.batch_size} exceeds the transitions of the first collection "
                f"({self.num_envs} envs x {episode_length - 1} steps); lower batch_size or raise num_envs"
            )
        if self.lambda_pi < 0 or (self.lambda_pi_end is not None and self.lambda_pi_end < 0):
            raise ValueError("lambda_pi and lambda_pi_end must be >= 0")
        parse_teacher_transform(self.teacher_transform)
        if not isinstance(self.devices, int) or self.devices < 1:
            raise ValueError(f"devices must be a positive integer, got {self.devices!r}")
        for name in ("num_envs", "batch_size", "eval_episodes"):
            if getattr(self, name) % self.devices:
                raise ValueError(f"{name}={getattr(self, name)} must be a multiple of devices={self.devices}")
        if not 0 <= self.distill_start_epoch < self.epochs:
            raise ValueError(f"distill_start_epoch must be in [0, epochs), got {self.distill_start_epoch}")
        return self

    def shared(self) -> "TrainConfig":
        """This config with its run-specific fields (:data:`RUN_SPECIFIC`) reset: runs whose
        ``shared()`` configs are equal have the same shapes and can train as one vmapped program."""
        return dataclasses.replace(self, **RUN_SPECIFIC)

    def lambda_at(self, epoch: int) -> float:
        """Distillation weight for a 0-based epoch (0 before distill_start_epoch)."""
        if epoch < self.distill_start_epoch:
            return 0.0
        if self.lambda_pi_end is None:
            return self.lambda_pi
        span = max(self.epochs - 1 - self.distill_start_epoch, 1)
        frac = (epoch - self.distill_start_epoch) / span
        return self.lambda_pi + frac * (self.lambda_pi_end - self.lambda_pi)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["env_kwargs"] = dict(self.env_kwargs)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["env_kwargs"] = tuple(sorted(dict(d.get("env_kwargs") or {}).items()))
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})

    def net_config(self, env) -> CRLNetConfig:
        """The ``crl`` network config of this run on ``env`` (its sizes from the env)."""
        return CRLNetConfig(obs_dim=env.obs_dim, goal_dim=env.goal_dim, action_dim=env.action_dim,
                            goal_indices=tuple(env.goal_indices), **self.architecture())


# Named settings for one flag (``python -m training teacher --preset NAME``); explicit options win.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The paper's Ant Big Maze sizes (Xu, Park, Buch; JaxGCRL defaults for batch and
    # representation): teacher depth 8 x 256, student depth 4 x 512, 512 envs, batch 256,
    # repr 64, lambda_pi 1; 1000-step episodes, so one iteration = 512k env steps and
    # 98 iterations ~ 50M env steps (as 49 epochs of 2 iterations). Needs a GPU.
    "paper-antbigmaze": {
        "common": {"env": "ant_maze", "env_kwargs": (("maze", "big"),), "num_envs": 512, "batch_size": 256,
                   "rep_dim": 64, "iterations_per_epoch": 2, "updates_per_iteration": 512,
                   "buffer_episodes": 1024, "epochs": 49, "eval_episodes": 256, "sample_size": 4096},
        "teacher": {"depth": 8, "width": 256},
        "student": {"depth": 4, "width": 512, "lambda_pi": 1.0},
    },
}


RUN_SPECIFIC = {"seed": 0, "lambda_pi": 0.0, "lambda_pi_end": None, "distill_start_epoch": 0}
"""The fields that differ between runs of one program (the loop takes them per run), with the
values :meth:`TrainConfig.shared` resets them to."""


def preset(name: str, role: str) -> dict[str, Any]:
    """The TrainConfig fields of a named preset for ``role`` ("teacher" or "student")."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return {**PRESETS[name]["common"], **PRESETS[name][role]}
