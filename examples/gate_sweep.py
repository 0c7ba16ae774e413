"""Reproduce the convergence gate end to end with this project's own stack.

1. Train 3 teacher seeds of a deep CRL network on the built-in point maze; keep one Orbax
   checkpoint per epoch.
2. From >= 7 checkpoints per seed, distill a shallower student (``student_seeds`` per mode), and
   train baseline students with no teacher.
3. Score every teacher checkpoint with ``gatekit.score`` and fit the gate with ``gatekit.fit``.
   Declared before the run: label = student_success >= 0.8 x the best student_success of the same
   teacher seed; primary hypothesis = the paper's rule, action_magnitude "below" (fixed 0.63
   evaluated too); everything out of fold by teacher seed against the training-step baseline;
   every other statistic ranked out of fold beside it (direction chosen per fold).
4. Temperature experiment in small: teachers at tau in {0.5, 1.0, 2.0}; where does the gate fall?

Writes to ``--out``: ``pairs.csv`` (one row per teacher checkpoint: seed, epoch, step, every gatekit
metric, teacher eval, student success), ``results.json``, ``student_vs_epoch.png`` (a),
``student_vs_action_magnitude.png`` (b), ``roc.png`` (c), ``tau_gate.png``.

    python examples/gate_sweep.py --quick --out runs/gate_quick     # < 20 min on 2 CPU cores
    python examples/gate_sweep.py --out runs/gate_full              # meant for a GPU machine
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import shutil
import time

import numpy as np

import gatekit
from gatekit import io as gio
from gatekit import plotting
from training import TrainConfig, train
from training import sweep
from training.sweep import pick


@dataclasses.dataclass(frozen=True)
class Sweep:
    maze: str = "medium"
    seeds: int = 3
    teacher_depth: int = 8
    student_depth: int = 4
    width: int = 64
    teacher_epochs: int = 16
    checkpoints: int = 7
    student_epochs: int = 5
    student_seeds: int = 1
    taus: tuple[float, ...] = (0.5, 1.0, 2.0)
    tau_checkpoints: int = 4
    num_envs: int = 32
    iterations_per_epoch: int = 4
    updates_per_iteration: int = 64
    eval_episodes: int = 128


QUICK = Sweep()
TINY = Sweep(maze="u", seeds=2, teacher_depth=4, width=16, teacher_epochs=3, checkpoints=3, student_epochs=1,
             taus=(0.5, 1.0, 2.0), tau_checkpoints=2, num_envs=16, iterations_per_epoch=1, updates_per_iteration=8,
             eval_episodes=16)
FULL = Sweep(maze="big", teacher_epochs=40, checkpoints=10, student_epochs=12, student_seeds=3, width=256,
             tau_checkpoints=8, num_envs=256, eval_episodes=256)


def base_config(s: Sweep, **kw) -> TrainConfig:
    small = s.num_envs < 32
    return TrainConfig(
        env="pointmaze", env_kwargs=(("maze", s.maze),), width=s.width, rep_dim=32, num_envs=s.num_envs,
        iterations_per_epoch=s.iterations_per_epoch, updates_per_iteration=s.updates_per_iteration,
        eval_episodes=s.eval_episodes, buffer_episodes=s.num_envs * 16,
        batch_size=64 if small else 256, sample_size=256 if small else 1024, **kw,
    )


def student_success(run_dir: pathlib.Path) -> float:
    """Mean eval success of a student's last two epochs (less noise than the last alone)."""
    run = gio.read_run(run_dir)
    steps = gio.list_checkpoints(run)[0][-2:]
    return float(np.mean([gio.load_checkpoint(run, st, items=("meta",)).meta["eval"]["success"] for st in steps]))


def run_teacher(s: Sweep, out: pathlib.Path, seed: int, tau: float, log) -> pathlib.Path:
    path = out / "teachers" / f"tau{tau:g}_seed{seed}"
    if not (path / "run.json").exists():
        t0 = time.time()
        train(base_config(s, depth=s.teacher_depth, epochs=s.teacher_epochs, tau=tau, seed=seed), path, progress=None)
        log(f"  teacher tau={tau:g} seed={seed}: {time.time() - t0:.0f}s")
    return path


def run_student(s: Sweep, out: pathlib.Path, teacher: pathlib.Path | None, step: int | None, seed: int) -> float:
    name = f"{teacher.name}@{step}_s{seed}" if teacher else f"baseline_s{seed}"
    path = out / "students" / name
    if not (path / "run.json").exists():
        cfg = base_config(s, depth=s.student_depth, epochs=s.student_epochs, seed=100 + seed)
        train(cfg, path, teacher=f"{teacher}@{step}" if teacher else None, progress=None)
    return student_success(path)


def distill_checkpoints(s, out, teacher, steps, log) -> dict[int, float]:
    res = {}
    for st in steps:
        res[st] = float(np.mean([run_student(s, out, teacher, st, k) for k in range(s.student_seeds)]))
        log(f"    {teacher.name}@{st}: student success {res[st]:.3f}")
    return res


LABEL_RELATIVE = 0.8


def gate_epoch(rows: list[dict], cut: float) -> int | None:
    """First teacher epoch from which every later checkpoint's student reaches ``cut`` (0.8 x the
    best student of the main sweep)."""
    return sweep.gate_epoch(rows, cut, key="student_success", inclusive=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/gate_sweep"))
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="< 20 minutes on 2 CPU cores")
    mode.add_argument("--tiny", action="store_true", help="seconds-scale smoke setting (tests)")
    ap.add_argument("--maze", default=None, help="override the maze layout")
    ap.add_argument("--student-epochs", type=int, default=None, help="override the students' training epochs")
    ap.add_argument("--fresh", action="store_true", help="delete --out first (otherwise finished runs are reused)")
    ap.add_argument("--no-tau", action="store_true", help="skip the temperature experiment")
    args = ap.parse_args()
    s = TINY if args.tiny else QUICK if args.quick else FULL
    if args.maze:
        s = dataclasses.replace(s, maze=args.maze)
    if args.student_epochs:
        s = dataclasses.replace(s, student_epochs=args.student_epochs)
    out = args.out
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - t_start:6.0f}s] {msg}", flush=True)

    log(f"settings: {dataclasses.asdict(s)}")
    # 1-2. teachers and students
    log("teachers (tau = 1.0)")
    teachers = {seed: run_teacher(s, out, seed, 1.0, log) for seed in range(s.seeds)}
    log("baseline students (no teacher)")
    baseline = float(np.mean([run_student(s, out, None, None, k) for k in range(s.student_seeds)]))
    log(f"  baseline success {baseline:.3f}")
    log("distilled students")
    outcomes: dict[tuple[int, int], float] = {}
    for seed, path in teachers.items():
        steps = pick(gio.list_checkpoints(gio.read_run(path))[0], s.checkpoints)
        for st, v in distill_checkpoints(s, out, path, steps, log).items():
            outcomes[(seed, st)] = v

    # 3. score every teacher checkpoint with gatekit, join with student outcomes
    log("scoring teachers (gatekit score)")
    table = gatekit.score([teachers[k] for k in sorted(teachers)])
    rows = []
    for r in table.rows:
        seed = int(r["seed"])
        if (seed, r["step"]) in outcomes:
            rows.append({"teacher_seed": seed, "epoch": r["epoch"], "step": r["step"],
                         **{k: v for k, v in r.items() if k not in ("run_path", "seed", "role")},
                         "student_success": outcomes[(seed, r["step"])]})
    gio.write_table(rows, out / "pairs.csv")
    succ = np.array([r["student_success"] for r in rows])
    label = dict(label="student_success", label_relative=LABEL_RELATIVE, group="teacher_seed")
    cut = LABEL_RELATIVE * succ.max()
    results: dict = {"settings": dataclasses.asdict(s), "baseline_student_success": baseline,
                     "label_rule": f"student_success >= {LABEL_RELATIVE} x the best of the same teacher seed",
                     "n_conditions": len(rows)}
    log(f"fitting the gate (gatekit fit): {results['label_rule']}; primary: action_magnitude below (paper)")
    try:
        primary = gatekit.fit(rows, metric="action_magnitude", direction="below", fixed_threshold=0.63, **label)
        results["primary"] = {k: v for k, v in primary.to_dict().items() if k != "roc"}
        log("  " + primary.summary().replace("\n", "\n  "))
    except gatekit.GatekitError as e:
        primary = None
        log(f"  primary fit impossible: {e}")
    try:
        results["ranking"] = gatekit.fit_all(rows, **label)
        log("every statistic, out of fold (direction chosen per fold):\n" + gatekit.api.format_fit_all(results["ranking"]))
    except gatekit.GatekitError as e:
        log(f"  ranking impossible: {e}")

    # plots (a) (b) (c)
    by_seed = {}
    for r in rows:
        by_seed.setdefault(r["teacher_seed"], []).append(r)
    _plot_vs_epoch(by_seed, baseline, cut, out / "student_vs_epoch.png")
    am = [r["action_magnitude"] for r in rows]
    lines = {"paper's rule (< 0.63)": 0.63} if min(am) <= 0.63 <= max(am) else {}
    plotting.plot_outcome_vs_metric(am, succ, out / "student_vs_action_magnitude.png",
                                    groups=[r["teacher_seed"] for r in rows], thresholds=lines,
                                    group_label="teacher seed")
    if primary is not None:
        plotting.plot_roc(primary, out / "roc.png", title="action_magnitude (below, the paper's direction) -> student")

    # 4. temperature experiment
    if not args.no_tau:
        log("temperature experiment (teacher seed 0)")
        tau_res = {}
        for tau in s.taus:
            path = teachers[0] if tau == 1.0 else run_teacher(s, out, 0, tau, log)
            steps = pick(gio.list_checkpoints(gio.read_run(path))[0], s.tau_checkpoints)
            if tau == 1.0:
                res = {st: outcomes[(0, st)] for st in pick(sorted(st for (sd, st) in outcomes if sd == 0), s.tau_checkpoints)}
            else:
                res = distill_checkpoints(s, out, path, steps, log)
            tscore = {r["step"]: r for r in gatekit.score(path).rows}
            trows = [{"epoch": tscore[st]["epoch"], "step": st, "action_magnitude": tscore[st]["action_magnitude"],
                      "teacher_success": tscore[st].get("eval_success"), "student_success": v} for st, v in res.items()]
            tau_res[str(tau)] = {"rows": trows, "gate_epoch": gate_epoch(trows, cut)}
            log(f"  tau={tau:g}: gate epoch {tau_res[str(tau)]['gate_epoch']}")
        results["tau"] = tau_res
        _plot_tau(tau_res, out / "tau_gate.png")

    results["table"] = [{k: r[k] for k in ("teacher_seed", "epoch", "step", "action_magnitude", "eval_success",
                                           "sa_rank", "cka_sa", "student_success")} for r in rows]
    results["wall_time_s"] = time.time() - t_start
    (out / "results.json").write_text(json.dumps(gio.to_jsonable(results), indent=1) + "\n")
    print("\nseed  epoch  step      |tanh mu|  teacher_success  student_success")
    for r in results["table"]:
        print(f"{r['teacher_seed']:>4}  {r['epoch']:>5}  {r['step']:>8}  {r['action_magnitude']:9.3f}  "
              f"{r['eval_success']:15.3f}  {r['student_success']:15.3f}")
    log(f"done; wrote {out}/results.json, pairs.csv and plots")


def _plot_vs_epoch(by_seed, baseline, cut, path):
    series = {f"teacher seed {seed}": ([r["epoch"] for r in rs], [r["student_success"] for r in rs])
              for seed, rs in sorted(by_seed.items())}
    plotting.plot_lines(series, path, xlabel="teacher epoch", ylabel="student success",
                        hlines={"no-teacher baseline (same budget)": baseline}, ymin=0)


def _plot_tau(tau_res, path):
    series = {f"tau = {tau}": ([r["epoch"] for r in d["rows"]], [r["student_success"] for r in d["rows"]])
              for tau, d in tau_res.items()}
    plotting.plot_lines(series, path, xlabel="teacher epoch", ylabel="student success", ymin=0,
                        title="temperature: one teacher seed (0), one student per checkpoint")


if __name__ == "__main__":
    main()
