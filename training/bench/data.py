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


def build_task(task, configs, out, plan, base, grid: dict, *,
               progress: Callable[[str], None] | None = None) -> tuple[dict, dict]:
    """(meta, arrays) of one task from its finished runs.

    ``plan``: per teacher (config, seed, teacher Job, [checkpoint steps], [[student Job] per
    checkpoint]); ``base``: the no-teacher student Jobs. ``task``: a :class:`training.bench.grid.Task`;
    ``grid``: the grid's settings recorded in the task's meta (``checkpoints``, ``student_seeds``,
    ``student_epochs``, ``student_config``, ``configs``: each config's teacher TrainConfig), given
    by :func:`training.bench.grid.run_task` (this module does not import the grid)."""
    import gatekit
    from gatekit import statistics
    from training import barrier, outcomes

    say = progress or (lambda _m: None)
    t0 = time.time()
    cand, measure = task.candidate, outcomes.measure(task.candidate.outcome)
    paths = [j.path for _, _, j, _, _ in plan]
    table = gatekit.score(paths)
    if table.problems:
        raise GatekitError(f"{task.name}: scoring problems: {table.problems}")
    columns = list(statistics.METRIC_NAMES) + sorted({k for r in table.rows for k in r if k.startswith("eval_")}) \
        + ["score_seconds"]
    probe = task_probe(paths[0])
    arrays: dict[str, list] = {k: [] for k in ("config", "teacher_seed", "epoch_step", "epoch_seconds", "values",
                                               "checkpoint", "teacher_outcome", "student", "student_seconds",
                                               "teacher_mu", "teacher_log_std", "teacher_phi", "teacher_psi")}
    for c, s, job, steps, students in plan:
        rows = sorted((r for r in table.rows if r["run_path"] == str(job.path.resolve())), key=lambda r: r["step"])
        all_steps = [r["step"] for r in rows]
        arrays["config"].append(c)
        arrays["teacher_seed"].append(s)
        arrays["epoch_step"].append(all_steps)
        arrays["epoch_seconds"].append(_epoch_seconds(np.array([float(r["wall_time"]) for r in rows])))
        arrays["values"].append([[np.nan if r.get(k) is None else float(r[k]) for k in columns] for r in rows])
        arrays["checkpoint"].append([all_steps.index(x) for x in steps])
        if cand.outcome == "far_time_at_goal":
            arrays["teacher_outcome"].append([barrier.far_goal_eval(job.path, step=x)["far_time_at_goal"]
                                              for x in steps])
        else:
            arrays["teacher_outcome"].append([measure(job.path, step=x) for x in steps])
        curves = [[student_curve(sj.path, measure, grid["student_epochs"]) for sj in js] for js in students]
        arrays["student"].append([[cv[0] for cv in per] for per in curves])
        arrays["student_seconds"].append([[cv[1] for cv in per] for per in curves])
        for k, v in teacher_outputs(job.path, steps, probe).items():
            arrays[k].append(v)
        say(f"  {task.name}/{c}/seed{s}: final students {np.mean([cv[0][-1] for cv in curves[-1]]):.3f} "
            f"[{time.time() - t0:.0f}s]")
    base_curves = [student_curve(j.path, measure, grid["student_epochs"]) for j in base]
    res = {k: np.asarray(v) for k, v in arrays.items()}
    res["epoch_step"] = res["epoch_step"].astype(np.int64)
    res["teacher_seed"] = res["teacher_seed"].astype(np.int64)
    res["checkpoint"] = res["checkpoint"].astype(np.int64)
    for k in ("epoch_seconds", "values", "teacher_outcome", "student", "student_seconds"):
        res[k] = res[k].astype(np.float32)
    res.update(columns=np.array(columns), baseline=np.array([b[0] for b in base_curves], dtype=np.float32),
               baseline_seconds=np.array([b[1] for b in base_curves], dtype=np.float32),
               probe_obs=probe["obs"], probe_action=probe["action"], probe_goal=probe["goal"])
    names, derived = student_scores(res)
    res.update(derived_columns=np.array(names), derived=derived)
    meta = {"task": task.name, "env": cand.env, "env_kwargs": dict(cand.env_kwargs), "outcome": cand.outcome,
            "teacher_epochs": cand.epochs, "configs": {c: grid["configs"][c].to_dict() for c in configs},
            "student_config": grid["student_config"].to_dict(), "checkpoints": grid["checkpoints"],
            "student_seeds": grid["student_seeds"], "student_epochs": grid["student_epochs"],
            "probe": {"rows": PROBE_ROWS, "repr_rows": REPR_ROWS, "seed": PROBE_SEED, "from": "base seed 0 final sample"},
            "made": time.strftime("%Y-%m-%d"), "commit": _commit(), "build_seconds": time.time() - t0}
    return meta, res


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
