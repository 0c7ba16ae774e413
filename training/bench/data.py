"""One task of the gate benchmark, read off its run folders into the dataset format
(:mod:`gatekit.io.dataset`, ``gatekit-benchmark/1``).

Everything comes from the runs themselves: the teachers' score tables (every statistic, every
epoch), their recorded eval, their epoch wall times (``meta.wall_time`` differences: measured in
the training process, under the load it trained under), the teacher's outputs on the task's fixed
probe at each benchmarked checkpoint, and every student's outcome after every epoch.

The task's probe: ``PROBE_ROWS`` rows of the (obs, action, future goal) sample of the first
teacher's (``base``, seed 0) final checkpoint, drawn with a fixed seed; representations are kept on
its first ``REPR_ROWS`` rows (float16), which keeps a task near 2-3 MB.
"""

from __future__ import annotations

import pathlib
import subprocess
import time
from typing import Callable

import numpy as np

from gatekit import io as gio
from gatekit.errors import GatekitError

PROBE_ROWS = 256
REPR_ROWS = 64
PROBE_SEED = 0


def _epoch_seconds(wall: np.ndarray) -> np.ndarray:
    """Cumulative wall times at each checkpoint -> seconds of each epoch."""
    return np.diff(np.concatenate([[0.0], wall]))


def _metas(path: pathlib.Path) -> tuple[list[int], list[dict]]:
    run = gio.read_run(path)
    steps = gio.list_checkpoints(run)[0]
    return steps, [gio.load_checkpoint(run, s, items=("meta",)).meta for s in steps]


def student_curve(path: pathlib.Path, measure: Callable[..., float], epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """(outcome after each epoch, seconds of each epoch) of one student run ([epochs] each)."""
    steps, metas = _metas(path)
    if len(steps) != epochs:
        raise GatekitError(f"{path}: {len(steps)} student checkpoints, expected {epochs} (one per epoch)")
    wall = np.array([float(m["wall_time"]) for m in metas])
    return np.array([measure(path, step=s) for s in steps], dtype=np.float64), _epoch_seconds(wall)


def task_probe(teacher: pathlib.Path) -> dict[str, np.ndarray]:
    """The task's fixed probe: rows of ``teacher``'s final checkpoint sample (module docstring)."""
    from gatekit.scoring import probe_from_sample

    run = gio.read_run(teacher)
    final = gio.list_checkpoints(run)[0][-1]
    probe = probe_from_sample(gio.load_checkpoint(run, final, items=("sample",)).sample, source=str(teacher))
    idx = np.sort(np.random.default_rng(PROBE_SEED).choice(len(probe["obs"]), PROBE_ROWS, replace=False))
    return {k: np.asarray(v[idx], dtype=np.float32) for k, v in probe.items()}


def teacher_outputs(path: pathlib.Path, steps: list[int], probe: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """[C, P, a] mu / log_std and [C, R, d] phi / psi of a teacher at ``steps``, on the probe."""
    from gatekit import networks
    from gatekit.statistics import policy_on, repr_on

    run = gio.read_run(path)
    family = networks.build(run.family, run.net)
    head = {k: v[:REPR_ROWS] for k, v in probe.items()}
    out = {"teacher_mu": [], "teacher_log_std": [], "teacher_phi": [], "teacher_psi": []}
    for s in steps:
        params = gio.load_checkpoint(run, s, items=("params",)).params
        mu, log_std = policy_on(family, params, probe)
        phi, psi = repr_on(family, params, head)
        for k, v in zip(out, (mu, log_std, phi, psi)):
            out[k].append(v)
    return {k: np.asarray(v, dtype=np.float16) for k, v in out.items()}


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=pathlib.Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def part_dir(data, task: str) -> pathlib.Path:
    """Where a task's parts live until the task is merged (``DATA/parts/{task}``)."""
    return pathlib.Path(data) / "parts" / task


def teacher_part_path(parts: pathlib.Path, config: str, seed: int) -> pathlib.Path:
    return parts / f"{config}_seed{seed}.npz"


def score_columns(rows: list[dict]) -> list[str]:
    """The ``values`` columns of a task: every registry statistic, the ``eval_*`` columns, the timing."""
    from gatekit import statistics

    return list(statistics.METRIC_NAMES) + sorted({k for r in rows for k in r if k.startswith("eval_")}) \
        + ["score_seconds"]


def teacher_part(task, job, config: str, seed: int, steps: list[int], students, rows: list[dict],
                 columns: list[str], probe: dict[str, np.ndarray], student_epochs: int) -> dict[str, np.ndarray]:
    """The arrays of one teacher (``T = 1``) from its finished runs: ``rows`` its score-table rows,
    ``steps`` its benchmarked checkpoints, ``students`` its student Jobs per checkpoint."""
    from training import barrier, outcomes

    cand, measure = task.candidate, outcomes.measure(task.candidate.outcome)
    rows = sorted(rows, key=lambda r: r["step"])
    all_steps = [r["step"] for r in rows]
    if cand.outcome == "far_time_at_goal":
        teacher = [barrier.far_goal_eval(job.path, step=x)["far_time_at_goal"] for x in steps]
    else:
        teacher = [measure(job.path, step=x) for x in steps]
    curves = [[student_curve(sj.path, measure, student_epochs) for sj in js] for js in students]
    arrays = {"config": np.array([config]), "teacher_seed": np.array([seed], dtype=np.int64),
              "epoch_step": np.array([all_steps], dtype=np.int64),
              "epoch_seconds": _epoch_seconds(np.array([float(r["wall_time"]) for r in rows]))[None].astype(np.float32),
              "columns": np.array(columns),
              "values": np.array([[[np.nan if r.get(k) is None else float(r[k]) for k in columns] for r in rows]],
                                 dtype=np.float32),
              "checkpoint": np.array([[all_steps.index(x) for x in steps]], dtype=np.int64),
              "teacher_outcome": np.array([teacher], dtype=np.float32),
              "student": np.array([[[cv[0] for cv in per] for per in curves]], dtype=np.float32),
              "student_seconds": np.array([[[cv[1] for cv in per] for per in curves]], dtype=np.float32)}
    arrays.update({k: v[None] for k, v in teacher_outputs(job.path, steps, probe).items()})
    return arrays


def baseline_part(task, base, student_epochs: int) -> dict[str, np.ndarray]:
    """The no-teacher students' arrays ([S, E] outcome and epoch seconds)."""
    from training import outcomes

    curves = [student_curve(j.path, outcomes.measure(task.candidate.outcome), student_epochs) for j in base]
    return {"baseline": np.array([c[0] for c in curves], dtype=np.float32),
            "baseline_seconds": np.array([c[1] for c in curves], dtype=np.float32)}


def merge_task(task, configs, seeds, parts: pathlib.Path, grid: dict) -> tuple[dict, dict] | None:
    """(meta, arrays) of a whole task from its parts (teachers ordered config by config, seed by
    seed), with the student-side scores; None while any part is missing. ``task``: a
    :class:`training.bench.grid.Task`; ``grid``: the grid's settings recorded in the task's meta
    (``checkpoints``, ``student_seeds``, ``student_epochs``, ``student_config``, ``configs``: each
    config's teacher TrainConfig), given by the grid (this module does not import it)."""
    paths = [teacher_part_path(parts, c, s) for c in configs for s in seeds] + [parts / "baseline.npz",
                                                                                 parts / "probe.npz"]
    if not all(p.is_file() for p in paths):
        return None
    read = [gio.read_benchmark_part(p) for p in paths]
    for (meta, arrays), p, want in zip(read, paths, [(c, s) for c in configs for s in seeds]):
        got = (str(arrays["config"][0]), int(arrays["teacher_seed"][0]))
        if got != want:
            raise GatekitError(f"{p}: holds teacher {got}, its name says {want}")
    arrays = gio.merge_benchmark_parts([a for _, a in read[:-2]], read[-2][1], read[-1][1])
    names, derived = student_scores(arrays)
    arrays.update(derived_columns=np.array(names), derived=derived)
    cand = task.candidate
    meta = {"task": task.name, "env": cand.env, "env_kwargs": dict(cand.env_kwargs), "outcome": cand.outcome,
            "teacher_epochs": cand.epochs, "configs": {c: grid["configs"][c].to_dict() for c in configs},
            "student_config": grid["student_config"].to_dict(), "checkpoints": grid["checkpoints"],
            "student_seeds": grid["student_seeds"], "student_epochs": grid["student_epochs"],
            "probe": {"rows": PROBE_ROWS, "repr_rows": REPR_ROWS, "seed": PROBE_SEED, "from": "base seed 0 final sample"},
            "made": time.strftime("%Y-%m-%d"), "commit": _commit(),
            "parts": {p.name: {k: m.get(k) for k in ("made", "commit", "seconds")} for (m, _), p in zip(read, paths)},
            "wall_seconds": float(sum(m.get("seconds") or 0.0 for m, _ in read))}
    return meta, arrays


def student_scores(arrays: dict) -> tuple[list[str], np.ndarray]:
    """The student-side scores (:mod:`gatekit.studentside`) of every benchmarked checkpoint,
    from the dataset's own arrays: the teacher's policy on the task's fixed probe (float16 as
    stored), ``action_drift_prev`` against the previous *benchmarked* checkpoint. [T, C, K]."""
    from gatekit import studentside

    names = list(studentside.NAMES) + ["action_drift_prev"]
    mu, ls = arrays["teacher_mu"].astype(np.float32), arrays["teacher_log_std"].astype(np.float32)
    out = np.full(mu.shape[:2] + (len(names),), np.nan, dtype=np.float32)
    for t in range(mu.shape[0]):
        for c in range(mu.shape[1]):
            got = studentside.student_side_scores(arrays["probe_obs"], arrays["probe_goal"], mu[t, c], ls[t, c],
                                                  mu_prev=mu[t, c - 1] if c else None)
            out[t, c] = [np.nan if got[n] is None else got[n] for n in names]
    return names, out


def add_student_scores(path, *, progress: Callable[[str], None] | None = None) -> bool:
    """Adds the ``derived`` student-side scores to a committed task file that lacks them (the
    file is rewritten atomically with the same arrays and meta). Returns whether it wrote."""
    bt = gio.read_benchmark_task(path)
    if "derived" in bt.arrays:
        return False
    t0 = time.time()
    names, values = student_scores(bt.arrays)
    meta = {k: v for k, v in bt.meta.items() if k != "format"}
    meta["derived"] = {"student_scores": {"made": time.strftime("%Y-%m-%d"), "seconds": time.time() - t0,
                                          "from": "teacher_mu / teacher_log_std on the probe (float16)"}}
    gio.write_benchmark_task(path, meta, {**bt.arrays, "derived_columns": np.array(names), "derived": values})
    if progress:
        progress(f"{path}: student-side scores added ({time.time() - t0:.0f} s)")
    return True
