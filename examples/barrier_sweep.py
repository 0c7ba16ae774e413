"""The gate sweep redone on the depth-barrier search's best candidate (issue: a task where the gate
can exist). Everything below is declared before the run:

* Candidate: the one from examples/results/depth_barrier/results.json that passes; if none passes,
  the one with the largest d8 / max(d4, d4 wide) ratio among those where d8 learns (>= 50% of the
  best achievable). A negative result on it still means something: it is the task where depth
  mattered most.
* Teachers: depth 8, width 64, the candidate's budget, seeds 0, 1, 2. Checkpoints: 7 evenly
  spaced over training, first and last included.
* Students: depth 4 at the equal-parameter width (the paper's wider student), 6 epochs,
  lambda_pi = 1, 2 seeds per checkpoint; the no-teacher baseline gets the same budget (2 seeds).
* Outcome: student far-goal time at goal (training.barrier.far_goal_eval), mean over its seeds.
* Label: student >= 0.5 x the mean student of the three teachers' final checkpoints.
* Primary hypothesis: the paper's rule, action_magnitude "below" (0.63 evaluated as a fixed rule
  too); every other statistic ranked beside it; all out of fold by teacher seed (direction
  chosen per fold for the ranking), against the training-step baseline.
* Temperature (reduced for CPU time, stated): tau in {0.5, 2.0}, teacher seed 0 only, 4
  checkpoints, 1 student seed each; tau 1.0 from the main sweep's seed 0. Gate epoch: the first
  epoch from which every later checkpoint's student clears the label cut.
  Follow-up (run after the declared one, same cut and grid, to reach the 3 seeds the issue
  asked for): ``--tau-seeds 3``; tau 1.0 uses the main sweep's epochs 1, 11, 20, 30 (2 students).
* Causal-dissociation control: distill from each seed's second checkpoint (an unconverged
  teacher) with its log-std clamped to -3 (``--teacher-transform clamp_log_std=-3``): if the gate
  were about the teacher *looking* converged, these students would jump; the paper's stay at 0.

    python examples/barrier_sweep.py [--candidate NAME] [--out runs/barrier_sweep]

Writes examples/results/barrier_sweep/{pairs.csv, results.json, student_vs_epoch.png}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import time

import numpy as np

import gatekit
from gatekit import io as gio
from gatekit import plotting
from training import sweep

ROOT = pathlib.Path(__file__).resolve().parent.parent
BARRIER = ROOT / "examples/results/depth_barrier/results.json"


def best_candidate() -> str:
    cands = json.loads(BARRIER.read_text())["candidates"]
    passing = [n for n, c in cands.items() if c["pass"]]
    if passing:
        return passing[0]
    ratio = {n: c["mean_d8"] / max(c["mean_d4"], c["mean_d4_wide"], 1e-9) for n, c in cands.items()}
    learns = [n for n, c in cands.items() if c["d8_learns"]] or list(cands)
    return max(learns, key=ratio.get)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidate", default=None)
    ap.add_argument("--out", type=pathlib.Path, default=None, help="default: runs/barrier_sweep/CANDIDATE")
    ap.add_argument("--results", type=pathlib.Path, default=ROOT / "examples/results/barrier_sweep")
    ap.add_argument("--no-tau", action="store_true")
    ap.add_argument("--tau-seeds", type=int, default=1, help="teacher seeds for the temperature runs (declared: 1)")
    args = ap.parse_args()
    t0 = time.time()
    name = args.candidate or best_candidate()
    args.out = args.out or pathlib.Path("runs/barrier_sweep") / name
    say = lambda m: print(f"[{time.time() - t0:5.0f}s] {m}", flush=True)  # noqa: E731
    say(f"candidate: {name}")
    spec = sweep.SweepSpec(candidate=name)
    res = sweep.run_sweep(spec, args.out, progress=say)
    rows = res["rows"]
    cut = sweep.label_final_fraction(rows, 0.5)
    label = dict(label="student_outcome", label_above=cut, group="teacher_seed")
    out: dict = {"candidate": name, "spec": dataclasses.asdict(spec), "label_cut": cut,
                 "label_rule": "student_outcome > 0.5 x mean student of the final checkpoints",
                 "baseline_student": res["baseline"], "n": len(rows)}
    try:
        primary = gatekit.fit(rows, metric="action_magnitude", direction="below", fixed_threshold=0.63, **label)
        out["primary"] = {k: v for k, v in primary.to_dict().items() if k != "roc"}
        say("primary (paper's rule, action_magnitude below):\n" + primary.summary())
    except gatekit.GatekitError as e:
        out["primary"] = {"error": str(e)}
        say(f"primary fit impossible: {e}")
    try:
        out["ranking"] = gatekit.fit_all(rows, **label)
        say("\n" + gatekit.api.format_fit_all(out["ranking"]))
    except gatekit.GatekitError as e:
        out["ranking"] = {"error": str(e)}
    # causal-dissociation control
    ctrl = dataclasses.replace(spec, teacher_transform="clamp_log_std=-3", checkpoints=7)
    teachers = [args.out / "teachers" / f"tau1_seed{s}" for s in spec.teacher_seeds]
    control = []
    for path in teachers:
        steps = sweep.pick(gio.list_checkpoints(gio.read_run(path))[0], spec.checkpoints)
        step = steps[1]
        clamped = sweep.students(ctrl, args.out, f"{path}@{step}", f"{path.name}@{step}_clamp")
        plain = next(r["student_outcome"] for r in rows if r["run_path"] == str(path.resolve()) and r["step"] == step)
        control.append({"teacher": path.name, "step": step, "student_plain": plain,
                        "student_clamped_log_std": float(np.mean(clamped))})
        say(f"control {path.name}@{step}: plain {plain:.1f}  clamped log-std {np.mean(clamped):.1f}")
    out["control"] = control
    if not args.no_tau:
        tau_res = {}
        seeds = tuple(range(args.tau_seeds))
        for tau in (0.5, 2.0):
            tspec = dataclasses.replace(spec, tau=tau, teacher_seeds=seeds, checkpoints=4, student_seeds=1)
            tres = sweep.run_sweep(tspec, args.out / f"tau{tau:g}", progress=say)
            tau_res[str(tau)] = _per_seed(tres["rows"], cut)
        main_rows = [r for r in rows if r["teacher_seed"] in seeds]
        tau_res["1.0"] = _per_seed([r for r in main_rows if r["step"] in sweep.pick(
            sorted({x["step"] for x in main_rows if x["teacher_seed"] == r["teacher_seed"]}), 4)], cut)
        out["tau"] = tau_res
        say("gate epoch per tau (per seed): " + ", ".join(f"{t}: {d['gate_epochs']}" for t, d in sorted(tau_res.items())))
    out["table"] = [{k: r.get(k) for k in ("teacher_seed", "epoch", "step", "action_magnitude", "goal_rank",
                                           "teacher_far_time_at_goal", "student_outcome")} for r in rows]
    out["minutes"] = (time.time() - t0) / 60
    args.results.mkdir(parents=True, exist_ok=True)
    gio.write_table(rows, args.results / "pairs.csv")
    (args.results / "results.json").write_text(json.dumps(gio.to_jsonable(out), indent=1) + "\n")
    series = {}
    for r in rows:
        series.setdefault(f"teacher seed {r['teacher_seed']}", ([], []))
        series[f"teacher seed {r['teacher_seed']}"][0].append(r["epoch"])
        series[f"teacher seed {r['teacher_seed']}"][1].append(r["student_outcome"])
    plotting.plot_lines(series, args.results / "student_vs_epoch.png", xlabel="teacher epoch",
                        ylabel="student far-goal time at goal", ymin=0,
                        hlines={"no-teacher baseline (same budget)": float(np.mean(res["baseline"])),
                                "label cut (0.5 x final students)": cut},
                        title=f"{name}: 2 student seeds per checkpoint")
    say(f"wrote {args.results}")


def _per_seed(rows: list[dict], cut: float) -> dict:
    """Rows and gate epoch per teacher seed, plus the first seed's gate epoch (``gate_epoch``)."""
    by_seed: dict[int, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["epoch"]):
        by_seed.setdefault(int(r["teacher_seed"]), []).append(r)
    keep = ("teacher_seed", "epoch", "step", "action_magnitude", "student_outcome")
    epochs = {s: sweep.gate_epoch(rs, cut) for s, rs in by_seed.items()}
    return {"rows": [{k: r[k] for k in keep} for rs in by_seed.values() for r in rs],
            "gate_epochs": epochs, "gate_epoch": epochs[min(epochs)]}


if __name__ == "__main__":
    main()
