"""CRL teacher and distilled-student training, writing ``gatekit-run/1`` runs.

One jitted ``training_epoch`` per epoch (``lax.scan`` over iterations; each iteration collects one
episode per env and runs ``updates_per_iteration`` SGD steps, itself a ``lax.scan``); the host
loop around it evaluates, saves an Orbax checkpoint, and asks the gate hook whether to stop.

Resume: the newest complete checkpoint holds the whole training state (item ``trainer``); the
replay buffer is not checkpointed (as in JaxGCRL) and is refilled by one collection on resume.
Epoch keys are ``fold_in(seed key, epoch)``, so a resumed run draws the same keys it would have.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from gatekit import io as gio
from gatekit import networks
from gatekit.errors import GatekitError
from gatekit.hooks import GateHook
from training import buffer as rb
from training import envs, loop, losses
from training.config import TrainConfig, parse_teacher_transform
from training.recording import TRAINER_ITEM, check_gate_column, finish
from training.teacher import load_teacher



@struct.dataclass
class TrainingState:
    params: dict  # {"actor", "sa_encoder", "goal_encoder"}
    log_alpha: jax.Array
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    updates: jax.Array  # int32 SGD steps taken


class Trainer:
    """Holds the static pieces (env, networks, optimizer) and the jitted functions.

    Nothing run-specific (seed, epochs, lambda schedule, teacher parameters) is closed over:
    those are arguments, so one Trainer (and one compilation) serves every run with the same
    shapes; see :func:`get_trainer`.
    """

    def __init__(self, cfg: TrainConfig, env, teacher_nets: networks.CRLNetworks | None = None):
        self.cfg = cfg
        self.env = env
        self.teacher_nets = teacher_nets
        self.net_cfg = cfg.net_config(env)
        self.nets = networks.build("crl", self.net_cfg.to_dict())
        self.opt = optax.adam(cfg.lr)
        self.mesh = None
        if cfg.devices > 1:
            from jax.sharding import NamedSharding, PartitionSpec

            if len(jax.devices()) < cfg.devices:
                raise GatekitError(f"devices={cfg.devices} but JAX sees {len(jax.devices())} "
                                   f"({jax.devices()[0].platform}); on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N")
            self.mesh = jax.make_mesh((cfg.devices,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
            self.data_sharding = NamedSharding(self.mesh, PartitionSpec("data"))
            self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.target_entropy = -cfg.target_entropy_scale * env.action_dim
        self.compiled = False  # set once training_epoch has run (and been compiled) in this process
        self.first_call = threading.Lock()  # threads of one process trace and compile it once
        self.training_epoch = jax.jit(self.epoch_fn)
        self.collect = jax.jit(self.collect_fn, static_argnames=("num", "deterministic"))
        self.sample = jax.jit(rb.sample, static_argnames=("batch_size", "discount", "goal_indices", "recent"))
        self.policy = jax.jit(self.nets.policy)
        # One program (compiled once, kept by the persistent cache) instead of dozens of eager
        # ops, each compiled on its own the first time: ~3 s of every process's first run.
        self.init_state = jax.jit(self._init_state)

    # -- state --------------------------------------------------------------------------------
    def _init_state(self, key: jax.Array) -> TrainingState:
        params = self.nets.init(key)
        critic = {k: params[k] for k in ("sa_encoder", "goal_encoder")}
        log_alpha = jnp.zeros((), jnp.float32)
        return TrainingState(
            params=params, log_alpha=log_alpha, actor_opt=self.opt.init(params["actor"]),
            critic_opt=self.opt.init(critic), alpha_opt=self.opt.init(log_alpha),
            updates=jnp.zeros((), jnp.int32),
        )

    def init_buffer(self) -> rb.Buffer:
        c, e = self.cfg, self.env
        return rb.init(c.buffer_episodes, e.episode_length, e.obs_dim, e.action_dim, e.goal_dim)

    # -- data parallel ------------------------------------------------------------------------
    def split_batch(self, tree):
        """Inside jit: shard the leading (env / batch) axis over the mesh (no-op on 1 device)."""
        if self.mesh is None:
            return tree
        return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, self.data_sharding) if x.ndim else x, tree)

    def place(self, state: TrainingState, buf: rb.Buffer) -> tuple[TrainingState, rb.Buffer]:
        """Outside jit: params and optimizer replicated, buffer episodes split over the mesh."""
        if self.mesh is None:
            return state, buf
        state = jax.device_put(state, self.replicated)
        buf = jax.tree.map(lambda x: jax.device_put(x, self.data_sharding if x.ndim else self.replicated), buf)
        return state, buf

    # -- acting -------------------------------------------------------------------------------
    def collect_fn(self, actor_params, key, *, num: int, deterministic: bool):
        """Runs ``num`` fresh episodes. Returns obs [E, L, o], action [E, L, a], goal [E, g],
        success [E, L]."""
        k_reset, k_act = jax.random.split(key)
        state = self.split_batch(jax.vmap(self.env.reset)(jax.random.split(k_reset, num)))

        def step(s, k):
            mu, log_std = self.nets.policy(actor_params, s.obs, s.goal)
            if deterministic:
                action = jnp.tanh(mu)
            else:
                action, _ = losses.tanh_gaussian_sample(mu, log_std, k)
            nxt = jax.vmap(self.env.step)(s, action)
            return nxt, (s.obs, action, nxt.success)

        keys = jax.random.split(k_act, self.env.episode_length)
        _, (obs, action, success) = jax.lax.scan(step, state, keys)
        swap = lambda x: jnp.swapaxes(x, 0, 1)
        return swap(obs), swap(action), state.goal, swap(success)

    # -- learning -----------------------------------------------------------------------------
    def sgd_step(self, state: TrainingState, buf: rb.Buffer, key, lam, teacher_actor):
        cfg = self.cfg
        k_batch, k_actor = jax.random.split(key)
        batch = self.split_batch(rb.sample(buf, k_batch, cfg.batch_size, discount=cfg.discount,
                                      goal_indices=tuple(self.env.goal_indices)))
        p = state.params
        critic = {k: p[k] for k in ("sa_encoder", "goal_encoder")}

        def c_loss(cp):
            return losses.critic_loss(cp["sa_encoder"], cp["goal_encoder"], self.nets, batch,
                                      tau=cfg.tau, logsumexp_penalty=cfg.logsumexp_penalty)

        (_, c_metrics), c_grads = jax.value_and_grad(c_loss, has_aux=True)(critic)
        c_updates, critic_opt = self.opt.update(c_grads, state.critic_opt, critic)
        critic = optax.apply_updates(critic, c_updates)

        teacher = None
        if teacher_actor is not None:
            t_mu, t_log_std = self.teacher_nets.policy(teacher_actor, batch["obs"], batch["future_goal"])
            tf = parse_teacher_transform(cfg.teacher_transform)
            if "scale_mu" in tf:
                t_mu = t_mu * tf["scale_mu"]
            if "clamp_log_std" in tf:
                t_log_std = jnp.full_like(t_log_std, tf["clamp_log_std"])
            teacher = jax.lax.stop_gradient((t_mu, t_log_std))
        alpha = jnp.exp(state.log_alpha)

        def a_loss(ap):
            return losses.actor_loss(ap, critic, alpha, self.nets, batch, k_actor, tau=cfg.tau,
                                     teacher=teacher, lambda_pi=lam)

        (_, a_metrics), a_grads = jax.value_and_grad(a_loss, has_aux=True)(p["actor"])
        a_updates, actor_opt = self.opt.update(a_grads, state.actor_opt, p["actor"])
        actor = optax.apply_updates(p["actor"], a_updates)

        al_grad = jax.grad(losses.alpha_loss)(state.log_alpha, a_metrics["log_prob"], self.target_entropy)
        al_updates, alpha_opt = self.opt.update(al_grad, state.alpha_opt, state.log_alpha)
        log_alpha = optax.apply_updates(state.log_alpha, al_updates)

        new = state.replace(params={"actor": actor, **critic}, log_alpha=log_alpha, actor_opt=actor_opt,
                            critic_opt=critic_opt, alpha_opt=alpha_opt, updates=state.updates + 1)
        return new, {**c_metrics, **a_metrics, "alpha": alpha}

    def epoch_fn(self, state: TrainingState, buf: rb.Buffer, key, lam, teacher_actor):
        """One epoch (unjitted; :attr:`training_epoch` is it jitted, :mod:`training.loop` vmaps it)."""
        cfg = self.cfg

        def iteration(carry, k):
            st, b = carry
            k_col, k_sgd = jax.random.split(k)
            obs, action, goal, success = self.collect_fn(st.params["actor"], k_col, num=cfg.num_envs, deterministic=False)
            b = rb.insert(b, obs, action, goal)

            def sgd(c, kk):
                return self.sgd_step(c, b, kk, lam, teacher_actor)

            st, metrics = jax.lax.scan(sgd, st, jax.random.split(k_sgd, cfg.updates_per_iteration))
            metrics = jax.tree.map(jnp.mean, metrics)
            metrics["rollout_success"] = jnp.mean(jnp.max(success, axis=1))
            return (st, b), metrics

        (state, buf), metrics = jax.lax.scan(iteration, (state, buf), jax.random.split(key, cfg.iterations_per_epoch))
        return state, buf, jax.tree.map(jnp.mean, metrics)

    def evaluate(self, actor_params, key) -> dict[str, float]:
        """Deterministic (tanh mu) episodes on fresh goals: success = reached the goal at any
        step; time_at_goal = steps at the goal per episode (JaxGCRL's eval metric)."""
        from training.loop import eval_metrics

        return eval_metrics(self.collect(actor_params, key, num=self.cfg.eval_episodes, deterministic=True)[3])

    def checkpoint_sample(self, buf: rb.Buffer, key, recent: int) -> dict[str, np.ndarray]:
        batch = self.sample(buf, key, batch_size=self.cfg.sample_size, discount=self.cfg.discount,
                            goal_indices=tuple(self.env.goal_indices), recent=recent)
        return {k: np.asarray(v) for k, v in batch.items()}


_TRAINERS: dict[tuple, Trainer] = {}
_TRAINERS_LOCK = threading.Lock()


def get_trainer(cfg: TrainConfig, env, teacher_nets: networks.CRLNetworks | None) -> Trainer:
    """A cached Trainer: runs that differ only in seed, epochs or distillation schedule (or in
    the teacher's parameters) share compiled functions."""
    key = (dataclasses.replace(cfg.shared(), epochs=1), env, id(teacher_nets) if teacher_nets else None)
    with _TRAINERS_LOCK:
        if key not in _TRAINERS:
            _TRAINERS[key] = Trainer(cfg, env, teacher_nets)
        return _TRAINERS[key]


def _restore_newest(writer: gio.RunWriter, target: TrainingState, say) -> tuple[TrainingState, dict] | None:
    """The newest complete checkpoint that has both meta and trainer state; older ones are
    tried when the newest is damaged (each fallback is reported)."""
    steps = writer.steps()
    for step in reversed(steps):
        try:
            meta = gio.load_checkpoint(writer.run, step, items=("meta",)).meta
            state = writer.restore_extra(step, TRAINER_ITEM, target)
            int(meta["epoch"]), int(meta["env_steps"])
        except (GatekitError, KeyError, TypeError, ValueError) as e:
            say(f"resume: step {step} is unusable ({e}); trying the previous one")
            continue
        if step != steps[-1]:
            say(f"resume: continuing from step {step}; later steps will be overwritten")
            for later in steps[steps.index(step) + 1:]:
                writer.delete(later)
        return state, meta
    if steps:
        raise GatekitError(f"{writer.path}: no checkpoint with trainer state to resume from (steps {steps})")
    return None


# --------------------------------------------------------------------------------------------
# The host loop
# --------------------------------------------------------------------------------------------


def build_env(cfg: TrainConfig):
    """The run's env, built once, with ``cfg`` validated against it (ValueError naming the field):
    the edge every entry point goes through (the CLI, :func:`train`, ``train_many``)."""
    env = envs.make(cfg.env, **cfg.env_args())
    cfg.validate(env.episode_length)
    return env


def train(
    cfg: TrainConfig,
    run_dir,
    *,
    env=None,
    teacher: str | None = None,
    hook: GateHook | None = None,
    resume: bool = False,
    progress: Callable[[str], None] | None = print,
    async_save: bool = True,
    tensorboard: str | None = None,
) -> dict:
    """Trains a CRL teacher (or, with ``teacher=RUN_DIR[@STEP]``, a distilled student).

    Writes one checkpoint per epoch to ``run_dir``. ``env``: the env :func:`build_env` made for
    ``cfg`` (built here when not given). With ``hook``, stops once the gate holds
    (the hook's count is saved in each checkpoint and restored on resume).

    Every checkpoint also gets a line in ``run_dir/metrics.jsonl``; with ``tensorboard=DIR``,
    its statistics go to TensorBoard event files there too (:mod:`gatekit.io.logs`).

    Returns a summary: epochs run, env steps, final eval, whether the gate stopped the run,
    env steps per second and wall time.
    """
    env = env if env is not None else build_env(cfg)
    teacher_obj = load_teacher(teacher, env) if teacher else None
    trainer = get_trainer(cfg, env, teacher_obj.nets if teacher_obj else None)
    if hook is not None:  # before any folder is written or any epoch is trained
        check_gate_column(hook.metric, trainer, teacher_obj.actor_params if teacher_obj else None)
    writer = gio.RunWriter(run_dir, config=loop.run_config(cfg, trainer, hook, teacher_obj), resume=resume,
                           async_save=async_save, extra_items=(TRAINER_ITEM,))
    board = None
    try:
        board = gio.TensorBoardLog(tensorboard) if tensorboard else None
        say = progress or (lambda _msg: None)
        k_init, k_loop = jax.random.split(jax.random.PRNGKey(cfg.seed))
        state = trainer.init_state(k_init)
        run = loop.Run(cfg, writer, k_loop, teacher=teacher_obj, hook=hook, say=say, tensorboard=board)
        if resume:
            restored = _restore_newest(writer, state, say)
            if restored is not None:
                state, meta = restored
                run.start_epoch, run.env_steps = int(meta["epoch"]), int(meta["env_steps"])
                run.wall_offset = float(meta.get("wall_time", 0.0))
                run.refill_steps = int(meta.get("refill_env_steps", 0))
                run.prev_params = jax.device_get(state.params)
                if hook is not None and meta.get("gate"):
                    hook.load_state_dict(meta["gate"])
                    planned = meta.get("planned_epochs")
                    if hook.stopped and cfg.epochs > run.start_epoch and planned != cfg.epochs:
                        # resumed with another budget: the stop was decided under the old one (its
                        # budget_fraction, its horizon); count again from here under the new one
                        say(f"the gate held at step {hook.stopped_step} when {planned or 'fewer'} epochs were planned; "
                            f"with {cfg.epochs} planned it is counted again from epoch {run.start_epoch + 1}")
                        hook.stopped_step, hook.count = None, 0
                say(f"resumed {writer.path} at epoch {run.start_epoch} ({run.env_steps:,} env steps)")
        t_start = time.perf_counter()
        buf = loop.init_run(trainer, k_loop, state, run.start_epoch)
        state, buf = trainer.place(state, buf)
        loop.count_prefill(run, trainer)
        if hook is not None and hook.stopped:
            say(f"gate already held at step {hook.stopped_step}; nothing to do")
        loop.run_loop(trainer, [run], state, buf, teacher_obj.actor_params if teacher_obj else None,
                      t_start=t_start, batched=False)
        summary = {"stopped_at_gate": hook.stopped if hook else False, "epochs_run": run.epochs_run}
        epochs_done = run.start_epoch + run.epochs_run
        return finish(writer, summary, env_steps=run.env_steps, epochs_done=epochs_done, hook=hook,
                      wall_time=time.perf_counter() - t_start)
    except BaseException:
        writer.abandon()  # the save under way finishes; a failed or interrupted run never blocks its --resume
        raise
    finally:
        if board is not None:
            board.close()