"""The one host training loop: :func:`training.train` runs it for one run, and
:func:`training.many.train_many` for K runs vmapped into one program (PureJaxRL's ``make_train``
in spirit: the per-run pieces are arguments, so one compiled epoch serves every run of a shape).

It owns what is run-specific: each run's keys (:func:`epoch_keys`, the prefill key
:data:`PREFILL_KEY`), its distillation weight per epoch, its eval metrics (:func:`eval_metrics`),
its step count, hook and checkpoint; the jitted epoch, rollout and buffer sampling are the
:class:`training.trainer.Trainer`'s. Per epoch, for each run: train, evaluate, draw the
checkpoint sample, then :func:`training.recording.record_epoch` (statistics, hook, save, log).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gatekit import interrupts
from gatekit import io as gio
from gatekit.hooks import GateHook
from gatekit.progress import phase
from training import buffer as rb
from training.recording import record_epoch
from training.teacher import Teacher

PREFILL_KEY = 10**6
"""A run's prefill collection draws ``fold_in(loop key, PREFILL_KEY + start epoch)``: never an
epoch's key, and a resumed run's refill differs from its first prefill."""


def epoch_keys(k_loop, epoch: int) -> tuple:
    """(train, eval, checkpoint sample) keys of one epoch: ``fold_in(loop key, epoch)`` split in
    three, so a resumed run draws the keys it would have."""
    return tuple(jax.random.split(jax.random.fold_in(k_loop, epoch), 3))


def eval_metrics(success) -> dict[str, float]:
    """Deterministic eval episodes' success [episodes, length] -> success (reached the goal at
    any step) and time at goal (steps at the goal per episode, JaxGCRL's eval metric)."""
    success = np.asarray(success)
    return {"success": float(success.max(axis=1).mean()), "time_at_goal": float(success.sum(axis=1).mean())}


@dataclasses.dataclass
class Run:
    """One run's host-side state in the loop."""

    cfg: Any
    writer: gio.RunWriter
    k_loop: Any
    teacher: Teacher | None = None
    hook: GateHook | None = None
    start_epoch: int = 0
    env_steps: int = 0
    wall_offset: float = 0.0
    refill_steps: int = 0
    prev_params: Any = None
    """The last saved checkpoint's host params (the online drift statistics)."""
    say: Callable[[str], None] = lambda _m: None
    tensorboard: Any = None
    epochs_run: int = 0
    stopped: bool = False

    def lam(self, epoch: int) -> float:
        return self.cfg.lambda_at(epoch) if self.teacher else 0.0


def init_run(trainer, k_loop, state, start_epoch: int = 0):
    """Loop key and initial state -> the replay buffer after one prefill collection with the
    current policy (so the first batch has data; on resume, the refill of the buffer that is
    not checkpointed)."""
    obs, action, goal, _ = trainer.collect(state.params["actor"], jax.random.fold_in(k_loop, PREFILL_KEY + start_epoch),
                                           num=trainer.cfg.num_envs, deterministic=False)
    return rb.insert(trainer.init_buffer(), obs, action, goal)


def count_prefill(run: Run, trainer) -> None:
    """A fresh run counts its prefill in its env steps; a resumed one records it apart
    (``refill_env_steps``), so its steps, and RUN@STEP addresses, equal an uninterrupted run's."""
    n = trainer.cfg.num_envs * trainer.env.episode_length
    if run.start_epoch == 0:
        run.env_steps += n
    else:
        run.refill_steps += n


def run_config(cfg, trainer, hook: GateHook | None, t: Teacher | None) -> dict:
    """A run's ``run.json`` config (what ``gatekit-run/1`` records of how it was trained)."""
    return {
        "family": "crl",
        "net": trainer.net_cfg.to_dict(),
        "env": trainer.env.describe(),
        "train": cfg.to_dict(),
        "seed": cfg.seed,
        "role": "student" if t else "teacher",
        "teacher": t.path if t else None,
        "teacher_step": t.step if t else None,
        "gate": None if hook is None else {k: v for k, v in hook.state_dict().items()
                                           if k in ("threshold", "metric", "direction", "patience", "start_step")},
        "producer": "gatekit training",
    }


@functools.lru_cache(maxsize=None)
def _vmapped(trainer):
    """The epoch, eval rollout and checkpoint sample of one Trainer, vmapped over runs."""
    cfg, env = trainer.cfg, trainer.env
    epoch = jax.jit(jax.vmap(trainer.epoch_fn))
    evaluate = jax.jit(jax.vmap(functools.partial(trainer.collect_fn, num=cfg.eval_episodes, deterministic=True)))
    sample = jax.jit(jax.vmap(functools.partial(
        rb.sample, batch_size=cfg.sample_size, discount=cfg.discount, goal_indices=tuple(env.goal_indices),
        recent=cfg.iterations_per_epoch * cfg.num_envs)))
    return epoch, evaluate, sample


def stack(values):
    """Pytrees -> one pytree with a leading run axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *values)


def run_loop(trainer, runs: Sequence[Run], state, buf, teacher_actor, *, t_start: float, batched: bool) -> None:
    """Trains ``runs`` from their start epoch to their configs' ``epochs`` (or until a hook
    stops one run alone). ``batched``: ``state``, ``buf`` and ``teacher_actor`` carry a leading
    run axis and the epoch is the vmapped program; else one run, the plain jitted functions."""
    cfg = runs[0].cfg
    per_epoch = cfg.iterations_per_epoch * cfg.num_envs * trainer.env.episode_length
    recent = cfg.iterations_per_epoch * cfg.num_envs
    start = runs[0].start_epoch
    if not trainer.compiled and start < cfg.epochs:
        phase(runs[0].say, "compiling the training epoch" + (f" of {len(runs)} runs" if batched else "")
              + " (once per process and shape; JAX's persistent cache, when on, skips it next time)")
    for epoch in range(start, cfg.epochs):
        interrupts.check()  # a Ctrl-C swallowed where it landed (see gatekit.interrupts)
        if any(r.hook is not None and r.hook.stopped for r in runs):
            break
        keys = [epoch_keys(r.k_loop, epoch) for r in runs]
        t0 = time.perf_counter()
        if batched:
            epoch_fn, eval_fn, sample_fn = _vmapped(trainer)
            k_train, k_eval, k_sample = (jnp.stack([k[j] for k in keys]) for j in range(3))
            lam = jnp.asarray([r.lam(epoch) for r in runs], jnp.float32)
            state, buf, metrics = epoch_fn(state, buf, k_train, lam, teacher_actor)
            metrics = jax.device_get(metrics)
            trainer.compiled = True
            t_train = time.perf_counter() - t0
            success = np.asarray(eval_fn(state.params["actor"], k_eval)[3])  # [K, episodes, length]
            samples = {k: np.asarray(v) for k, v in sample_fn(buf, k_sample).items()}
            per_run = [(jax.tree.map(lambda x, i=i: x[i], state), {k: float(v[i]) for k, v in metrics.items()},
                        eval_metrics(success[i]), {k: v[i] for k, v in samples.items()}, lam[i])
                       for i in range(len(runs))]
        else:
            (k_train, k_eval, k_sample), = keys
            lam = jnp.float32(runs[0].lam(epoch))
            with contextlib.nullcontext() if trainer.compiled else trainer.first_call:
                state, buf, metrics = trainer.training_epoch(state, buf, k_train, lam, teacher_actor)
                metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                trainer.compiled = True
            t_train = time.perf_counter() - t0
            ev = eval_metrics(trainer.collect(state.params["actor"], k_eval, num=cfg.eval_episodes,
                                              deterministic=True)[3])
            sample = trainer.checkpoint_sample(buf, k_sample, recent=recent)
            per_run = [(state, metrics, ev, sample, lam)]
        stop = False
        for r, (st, metrics, ev, sample, lam_r) in zip(runs, per_run):
            r.env_steps += per_epoch
            r.prev_params, held = record_epoch(
                r.cfg, trainer, r.writer, st, metrics, ev, sample, r.prev_params, hook=r.hook, epoch=epoch,
                env_steps=r.env_steps, wall=r.wall_offset + time.perf_counter() - t_start,
                refill_steps=r.refill_steps, t_train=t_train, lam=lam_r, say=r.say, tensorboard=r.tensorboard)
            r.epochs_run += 1
            r.stopped = r.stopped or held
            stop = stop or held
        if stop:
            break
