"""The host side of every epoch of the loop (:mod:`training.loop`): the checkpoint's online
statistics, the gate hook, the save, the progress line, the run's summary, and the check that a
gate names a column the trainer writes."""

from __future__ import annotations

from typing import Any

import sys

import jax
import jax.numpy as jnp

from gatekit import io as gio
from gatekit.errors import GatekitError
from gatekit.hooks import GateHook
from gatekit.progress import advance
from gatekit.statistics import checkpoint_row, checkpoint_statistics

TRAINER_ITEM = "trainer"
"""The checkpoint item holding the whole training state (exact resume)."""


EVAL_COLUMNS = ("eval_success", "eval_time_at_goal")
RECORDED_TRAIN = ("action_magnitude_batch", "lambda_pi", "env_steps_per_second", "updates_per_second")
"""Train metrics :func:`record_epoch` adds to those of the jitted epoch."""


def check_gate_column(metric: str, trainer, teacher_actor) -> None:
    """GatekitError unless ``metric`` is a column of this trainer's checkpoint rows (the online
    statistics, step-like columns, ``eval_*``, ``train_*``): checked before the first epoch."""
    from gatekit.statistics import BASELINES, REGISTRY

    columns = {s.name for s in REGISTRY if s.timing == "online"} | set(BASELINES) | {"wall_time", *EVAL_COLUMNS}
    if metric.startswith("train_"):  # the epoch's metric names, from its shapes (traced, not run)
        state = jax.eval_shape(trainer.init_state, jax.random.PRNGKey(0))
        shapes = jax.eval_shape(trainer.epoch_fn, state, trainer.init_buffer(), jax.random.PRNGKey(0),
                                jnp.float32(0.0), teacher_actor)
        columns |= {f"train_{k}" for k in (*shapes[2], *RECORDED_TRAIN)}
    if metric not in columns:
        near = sorted(c for c in columns if c.startswith(metric.split("_")[0]))[:8] or sorted(columns)[:8]
        raise GatekitError(f"gate metric {metric!r} is not a column this trainer writes (e.g. {', '.join(near)})")


def record_epoch(cfg, trainer, writer: gio.RunWriter, state, metrics: dict,
                 ev: dict, sample: dict, prev_params, *, hook: GateHook | None, epoch: int, env_steps: int,
                 wall: float, refill_steps: int, t_train: float, lam, say, tensorboard=None) -> tuple[Any, bool]:
    """After one epoch of one run: its online statistics, the gate hook, the checkpoint and the
    progress line, and the checkpoint's line of ``metrics.jsonl`` (and TensorBoard scalars with
    ``tensorboard``, a :class:`gatekit.io.TensorBoardLog`). Returns (this checkpoint's host params, for the next drift statistics; whether
    the gate held). Shared by :func:`train` and :func:`training.many.train_many`."""
    per_epoch = cfg.iterations_per_epoch * cfg.num_envs * trainer.env.episode_length
    params_host = jax.device_get(state.params)
    # What a gate hook may use at save time: the online statistics of this checkpoint, in the
    # row layout `gatekit score` and `gatekit watch` use (gatekit.statistics).
    from gatekit.statistics import STUDENT_COLUMNS

    # the student-side scores cost ~0.3 s a checkpoint: computed here only for a hook that reads one
    online = checkpoint_statistics(trainer.nets, params_host, prev_params, sample, tau=cfg.tau,
                                   student_side=hook is not None and hook.metric in STUDENT_COLUMNS)
    am = online["action_magnitude"]
    metrics.update(action_magnitude_batch=metrics.pop("action_magnitude"), action_magnitude=am,
                   lambda_pi=float(lam), env_steps_per_second=per_epoch / t_train,
                   updates_per_second=cfg.iterations_per_epoch * cfg.updates_per_iteration / t_train)
    meta = {"epoch": epoch + 1, "env_steps": env_steps, "updates": int(state.updates), "wall_time": wall,
            "refill_env_steps": refill_steps, "train": metrics, "eval": ev, "online": online,
            "action_magnitude": am, "planned_epochs": cfg.epochs}
    stop = hook.update(env_steps, checkpoint_row(env_steps, meta, online, planned_epochs=cfg.epochs)) if hook else False
    meta["gate"] = hook.state_dict() if hook else None
    if hook is not None and hook.note and hook.held_at_start == env_steps:  # once, at the first checkpoint
        (say or (lambda m: print(m, file=sys.stderr)))(f"note: {hook.note}")
    writer.save(env_steps, params=state.params, meta=meta, sample=sample, extra={TRAINER_ITEM: state})
    record = {"step": env_steps, "epoch": epoch + 1, "env_steps": env_steps, "wall_time": wall,
              "train": metrics, "eval": ev, "online": online}
    gio.append_metrics(writer.path, record)  # the plain log, one line per checkpoint
    if tensorboard is not None:
        tensorboard.scalars(env_steps, {k: record[k] for k in ("train", "eval", "online")})
    advance(say, epoch + 1, cfg.epochs, unit="epoch",
            info=f"env_steps {env_steps:,}  {metrics['env_steps_per_second']:,.0f} env-steps/s  "
                 f"success {ev['success']:.2f}  time_at_goal {ev['time_at_goal']:.1f}  |tanh mu| {am:.3f}  "
                 f"infonce {metrics['infonce']:.3f}  [{t_train:.1f}s]" + ("  gate held: stopping" if stop else ""))
    return params_host, stop


def finish(writer: gio.RunWriter, summary: dict, *, env_steps: int, epochs_done: int, hook: GateHook | None,
           wall_time: float) -> dict:
    """Closes the writer (waiting for async saves) and completes a run's summary from its last
    checkpoint: final eval, final action magnitude, env steps per second."""
    writer.close()
    summary.update(run_dir=str(writer.path), env_steps=env_steps, epochs_done=epochs_done,
                   stopped_at_gate=hook.stopped if hook else False, wall_time=wall_time)
    steps = gio.list_checkpoints(writer.run)[0]
    if steps:
        last = gio.load_checkpoint(writer.run, steps[-1], items=("meta",)).meta
        summary.update(final_eval=last["eval"], final_action_magnitude=last["action_magnitude"],
                       env_steps_per_second=last["train"]["env_steps_per_second"])
    return summary
