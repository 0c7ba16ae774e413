"""Many runs at once: runs that share shapes as one XLA program, and worker processes.

    from training.many import Job, run_jobs, train_many
    train_many([cfg_s0, cfg_s1], ["runs/s0", "runs/s1"], teachers=["runs/t@16000", "runs/t@32000"])
    run_jobs([Job(cfg, f"runs/s{k}", teacher) for k, ...])   # defaults per backend
    run_jobs(jobs, threads=2)                 # 2 runs at once in this process
    run_jobs(jobs, workers=2, max_parallel=8)  # 2 processes, 8 runs per vmapped program each

:func:`train_many` trains K runs whose configs differ only in run-specific fields (seed, lambda
schedule) and whose teachers (if any) share one network config, with the epoch function vmapped
over a leading run axis (PureJaxRL's ``jax.jit(jax.vmap(train))``): rollouts, buffers, SGD, eval
and the checkpoint sample of all K runs are one program, and a student's frozen teacher params
are part of its vmapped input, so K students of K different checkpoints compile once. Every run
still writes its own ``gatekit-run/1`` folder with the same files as :func:`training.train`, and
the same seeds give the same parameters and eval as K single runs (within float tolerance:
vmapped matmuls may sum in another order).

:func:`run_jobs` applies the train-or-reuse rule to every job, groups the rest by shape, cuts the
groups into chunks of at most ``max_parallel`` runs (one :func:`train_many` program each; a chunk
of one is a plain :func:`training.train`) and trains the chunks in threads of this process or in
worker processes (single-threaded XLA each). :func:`default_parallelism` is the measured default
per backend (``benchmarks/many_runs.py``): on a CPU, one thread per core and one run per program
(vmapping gains nothing there); on a GPU, one thread and up to 64 runs per program.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import pathlib
import time
from typing import Callable, Sequence


from gatekit.errors import GatekitError
from training.config import TrainConfig

SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


@dataclasses.dataclass(frozen=True)
class Job:
    """One run to train: its config, its folder, and its teacher (``RUN_DIR@STEP``; None: none)."""

    cfg: TrainConfig
    path: pathlib.Path
    teacher: str | None = None


def default_parallelism(n_runs: int, backend: str | None = None) -> tuple[int, int, int]:
    """(worker processes, runs per vmapped program, threads) for ``n_runs`` runs on this
    machine's JAX backend, as measured by ``benchmarks/many_runs.py``: on a CPU, this process
    with one thread per core (XLA runs outside the GIL, and threads share one import, trace and
    compile where each worker process pays its own), one run per program (vmapping gains nothing
    on a CPU); on a GPU, this process, one thread, up to 64 runs per program."""
    if backend is None:
        import jax

        backend = jax.default_backend()
    if backend == "cpu":
        return 1, 1, max(1, min(os.cpu_count() or 1, n_runs))
    return 1, 64, 1


def train_many(cfgs: Sequence[TrainConfig], run_dirs: Sequence, *, teachers: Sequence[str | None] | None = None,
               progress: Callable[[str], None] | None = None, async_save: bool = True) -> list[dict]:
    """Trains K fresh runs as one vmapped program; returns one summary per run (as ``train``).

    The configs may differ only in ``seed`` and the distillation schedule (``lambda_pi``,
    ``lambda_pi_end``, ``distill_start_epoch``); ``teachers`` are all None or all given (their
    networks sharing one config). Use :func:`run_jobs` for anything else (it groups for you).
    """
    import jax

    from gatekit import io as gio
    from training import loop
    from training.recording import TRAINER_ITEM, finish
    from training.teacher import load_teacher
    from training.trainer import build_env, get_trainer

    cfgs, run_dirs = list(cfgs), [pathlib.Path(p) for p in run_dirs]
    teachers = list(teachers) if teachers is not None else [None] * len(cfgs)
    if not cfgs or len(run_dirs) != len(cfgs) or len(teachers) != len(cfgs):
        raise GatekitError(f"train_many: {len(cfgs)} configs, {len(run_dirs)} run dirs, {len(teachers)} teachers")
    if len({c.shared() for c in cfgs}) != 1 or cfgs[0].devices != 1:
        raise GatekitError("train_many: runs must share every setting but seed and the lambda schedule, on 1 device")
    if len({t is None for t in teachers}) != 1:
        raise GatekitError("train_many: either every run has a teacher or none has")
    cfg0 = cfgs[0]
    env = build_env(cfg0)
    for c in cfgs[1:]:
        c.validate(env.episode_length)
    tobjs = [load_teacher(t, env) if t else None for t in teachers]
    if tobjs[0] is not None and len({id(t.nets) for t in tobjs}) != 1:
        raise GatekitError("train_many: the teachers have different network configs")
    trainer = get_trainer(cfg0, env, tobjs[0].nets if tobjs[0] else None)
    say = progress or (lambda _msg: None)
    writers = [gio.RunWriter(p, config=loop.run_config(c, trainer, None, t), async_save=async_save,
                             extra_items=(TRAINER_ITEM,)) for c, p, t in zip(cfgs, run_dirs, tobjs)]
    try:
        runs, states, bufs = [], [], []
        for c, w, t, p in zip(cfgs, writers, tobjs, run_dirs):  # train()'s initialisation, one run at a time
            k_init, k_loop = jax.random.split(jax.random.PRNGKey(c.seed))
            state = trainer.init_state(k_init)
            bufs.append(loop.init_run(trainer, k_loop, state))
            states.append(state)
            run = loop.Run(c, w, k_loop, teacher=t, say=lambda m, p=p: say(f"{p.name}: {m}"))
            loop.count_prefill(run, trainer)
            runs.append(run)
        teacher_actor = loop.stack([t.actor_params for t in tobjs]) if tobjs[0] else None
        t_start = time.perf_counter()
        loop.run_loop(trainer, runs, loop.stack(states), loop.stack(bufs), teacher_actor, t_start=t_start,
                      batched=True)
        return [finish(r.writer, {"epochs_run": r.epochs_run}, env_steps=r.env_steps, epochs_done=r.epochs_run,
                       hook=None, wall_time=time.perf_counter() - t_start) for r in runs]
    except BaseException:
        for w in writers:
            w.abandon()  # as train(): saves under way finish, the locks are released
        raise


# --------------------------------------------------------------------------------------------
# Jobs: train-or-reuse, chunks, worker processes
# --------------------------------------------------------------------------------------------


def _pending(jobs: Sequence[Job]) -> list[Job]:
    """The jobs that need training, after the train-or-reuse rule (:mod:`training.runs`)."""
    from training.runs import check_reusable

    return [j for j in jobs if not check_reusable(j.cfg, j.path, clear_unfinished=True)]


def chunks(jobs: Sequence[Job], max_parallel: int) -> list[list[Job]]:
    """Jobs grouped by shape (and by having a teacher), each group cut into chunks of at most
    ``max_parallel``, in a deterministic order."""
    groups: dict[tuple, list[Job]] = {}
    for j in jobs:
        groups.setdefault((j.cfg.shared(), j.teacher is None), []).append(j)
    return [g[i:i + max_parallel] for g in groups.values() for i in range(0, len(g), max_parallel)]


def train_chunk(chunk: Sequence[Job], async_save: bool = True) -> list[str]:
    """One chunk in this process: a plain ``train`` for one run, else one ``train_many``."""
    from training.trainer import train

    if len(chunk) == 1:
        j = chunk[0]
        train(j.cfg, j.path, teacher=j.teacher, progress=None, async_save=async_save)
    else:
        train_many([j.cfg for j in chunk], [j.path for j in chunk], teachers=[j.teacher for j in chunk],
                   async_save=async_save)
    return [str(j.path) for j in chunk]


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (0 <= I < N) -> (I, N): this process's share of a sweep split N ways."""
    i, sep, n = str(text).partition("/")
    try:
        shard = (int(i), int(n))
    except ValueError:
        shard = (-1, 0)
    if not sep or not 0 <= shard[0] < shard[1]:
        raise GatekitError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4 (a SLURM array index / count)")
    return shard


def shard_of(items: Sequence, shard: tuple[int, int]) -> list:
    """Item number i (in the given, deterministic order) belongs to shard i mod N."""
    i, n = shard
    return [x for k, x in enumerate(items) if k % n == i]


def run_jobs(jobs: Sequence[Job], *, workers: int | None = None, max_parallel: int | None = None,
             threads: int | None = None, progress: Callable[[str], None] | None = None) -> list[pathlib.Path]:
    """Trains every job that is not already finished; returns every job's path.

    The pending jobs are grouped into chunks of at most ``max_parallel`` runs that share shapes
    (one vmapped program each) and trained either by ``threads`` threads of this process or by
    ``workers`` worker processes (each with single-threaded XLA), not both. Defaults per backend
    (:func:`default_parallelism`); ``workers`` given alone means processes, ``workers=1`` one
    chunk after another in this process. Threads save with Orbax one at a time
    (:data:`gatekit.io.runs.ORBAX_LOCK`) and synchronously; the runs are the same either way.
    """
    say = progress or (lambda _msg: None)
    pending = _pending(jobs)
    d_workers, d_parallel, d_threads = default_parallelism(len(pending))
    max_parallel = max_parallel or d_parallel
    if workers is None and threads is None:
        workers, threads = d_workers, d_threads
    workers, threads = workers or 1, threads or 1
    if workers < 1 or max_parallel < 1 or threads < 1:
        raise GatekitError(f"workers, max_parallel and threads must be >= 1, got {workers}, {max_parallel}, {threads}")
    if workers > 1 and threads > 1:
        raise GatekitError(f"worker processes ({workers}) or threads ({threads}): choose one")
    todo = chunks(pending, max_parallel)
    total, t0, done = sum(map(len, todo)), time.time(), 0

    def report(n: int) -> None:
        nonlocal done
        done += n
        say(f"  trained {done}/{total} runs [{time.time() - t0:.0f}s]")

    if len(todo) <= 1 or max(workers, threads) == 1:
        for chunk in todo:
            report(len(train_chunk(chunk)))
    elif threads > 1:
        with concurrent.futures.ThreadPoolExecutor(min(threads, len(todo))) as pool:
            futures = [pool.submit(train_chunk, c, False) for c in todo]
            try:
                for fut in concurrent.futures.as_completed(futures):
                    report(len(fut.result()))
            except KeyboardInterrupt:  # queued runs never start; running ones stop at their next
                for fut in futures:    # epoch (interrupts.check), each finished epoch checkpointed
                    fut.cancel()
                raise
    else:
        _in_processes(todo, workers, report)
    return [pathlib.Path(j.path) for j in jobs]


def _in_processes(todo: list[list[Job]], workers: int, report: Callable[[int], None]) -> None:
    ctx = multiprocessing.get_context("spawn")
    flags = os.environ.get("XLA_FLAGS")
    # Workers inherit the environment when they start: single-threaded XLA from their first import
    # (at these sizes XLA's intra-op threads gain nothing; not pinned, so compiling still uses
    # every core), and the persistent compilation cache when the caller has it on.
    os.environ["XLA_FLAGS"] = f"{flags or ''} {SINGLE_THREAD_XLA}".strip()
    try:
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx) as pool:
            for fut in concurrent.futures.as_completed([pool.submit(train_chunk, c) for c in todo]):
                report(len(fut.result()))
    finally:
        if flags is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = flags
