"""Quick start: train a CRL teacher on the built-in point maze, score every checkpoint, pick the
one to distill from with the built-in point-maze gate (named: ``gatekit select`` given no gate
answers the final checkpoint, with its held-out record), then prove the pick: distill students
(same budget each) from the selected, the first and the final checkpoint. About 1-2 minutes on
2 CPU cores.

    python examples/quickstart.py [--out runs/quickstart] [--gate pointmaze|auto|FILE]

Writes runs/quickstart/{report.html, report.png, scores.csv, scores.json, <gate metric>.png, verdict.json}.
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
from gatekit.api import resolve_gate
from training import calibrate, outcomes, train
from training.many import run_jobs

STUDENT_SEEDS = 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/quickstart"))
    ap.add_argument("--gate", default="pointmaze", help="gate file or preset (default: the built-in point-maze gate)")
    ap.add_argument("--seed", type=int, default=0, help="teacher seed (the pointmaze gate was fitted on seeds 1-5)")
    args = ap.parse_args()
    t_start = time.time()
    if args.out.exists():
        shutil.rmtree(args.out)  # the quick start always starts fresh
    teacher = args.out / "teacher"
    cfg = calibrate.POINTMAZE_TEACHER

    print(f"== 1/4 training a depth-{cfg.depth} CRL teacher on the point maze -> {teacher}")
    summary = train(dataclasses.replace(cfg, seed=args.seed), teacher)
    print(f"   {summary['env_steps']:,} env steps in {summary['wall_time']:.0f}s, "
          f"final eval success {summary['final_eval']['success']:.2f}")

    print("== 2/4 scoring every checkpoint (gatekit score)")
    table = gatekit.score(teacher)
    g = resolve_gate(args.gate)
    cols = ["step", "epoch", "action_magnitude", "sa_rank", "goal_rank", "cka_sa_prev", "eval_success"]
    print(table.format(cols + ([g.metric] if g.metric not in cols else [])))
    table.to_csv(args.out / "scores.csv")
    table.to_json(args.out / "scores.json")

    print(f"== 3/4 which checkpoint to distill from (gatekit select --gate {args.gate})")
    print(f"   gate: {g.rule}  [{g.name}: fitted on {g.fitted_on and g.fitted_on.get('file')}]")
    choice = gatekit.select(table, gate=g)
    plot = args.out / f"{g.metric}.png"
    gatekit.plot(table, plot, gate=g, selected=choice)  # the passing side shaded, the pick starred
    print(f"   distill from {choice.run_path}@{choice.step} (epoch {choice.epoch})" if choice.ready else "   none ready")
    print(f"   why: {choice.reason}")
    print(f"   confidence: {choice.confidence}")
    print(f"   trusted: {'yes' if choice.trusted else 'no (' + '; '.join(choice.untrusted_because) + ')'}")
    for w in choice.warnings:
        print(f"   warning: {w}")

    print(f"== 4/4 proving the pick: depth-{calibrate.POINTMAZE_STUDENT.depth} students, "
          f"{calibrate.POINTMAZE_STUDENT.epochs} epochs each, {STUDENT_SEEDS} seeds per teacher checkpoint")
    steps = [r["step"] for r in table.rows]
    first, final = steps[0], steps[-1]
    targets = {"first": first, "final": final, **({"selected": choice.step} if choice.ready else {})}
    jobs = {name: calibrate.student_jobs(f"{teacher}@{step}", calibrate.POINTMAZE_STUDENT, args.out / "students",
                                         f"{name}@{step}", STUDENT_SEEDS) for name, step in targets.items()}
    run_jobs([j for js in jobs.values() for j in js])  # trained together (training.many)
    students = {}
    for name, step in targets.items():
        outs = [outcomes.final_eval_success(j.path) for j in jobs[name]]
        students[name] = float(np.mean(outs))
        print(f"   student of the {name:>8} checkpoint (step {step:>7,}): success {students[name]:.3f}  {outs}")
    verdict = {
        "selected_step": choice.step, "first_step": first, "final_step": final,
        "student_selected": students.get("selected"), "student_first": students["first"],
        "student_final": students["final"], "gate": g.to_dict()["name"], "rule": g.rule,
        "warnings": choice.warnings, "teacher_final_eval_success": summary["final_eval"]["success"],
        "confidence": choice.confidence, "trusted": choice.trusted,
    }
    if choice.ready:
        saved = 1 - choice.step / final
        ok = (students["selected"] >= 0.9 * students["final"] and choice.step < final
              and students["selected"] > students["first"])
        verdict.update(compute_saved=saved, pick_is_right=ok)
        print(f"   stopping the teacher at the selected checkpoint saves {saved:.0%} of its training; "
              f"student(selected) / student(final) = {students['selected'] / max(students['final'], 1e-9):.2f}")
        print(f"   verdict: {'the pick is right' if ok else 'the pick is NOT right'} "
              f"(target: >= 0.9 x the final checkpoint's student, above the first's, before the final step)")
    # the whole answer on one page: the statistic and the pick, teacher eval, students vs checkpoint
    page = gatekit.report([teacher, args.out / "students"], args.out / "report.html", gate=g,
                          title="gatekit quick start")
    gatekit.report([teacher, args.out / "students"], args.out / "report.png", gate=g, title="gatekit quick start")
    verdict["minutes"] = (time.time() - t_start) / 60
    (args.out / "verdict.json").write_text(json.dumps(verdict, indent=1) + "\n")
    print(f"   wrote {page} (open it: the whole answer on one page), {args.out / 'report.png'}, "
          f"{args.out / 'verdict.json'}, {args.out / 'scores.csv'}, {plot} [{verdict['minutes']:.1f} min]")


if __name__ == "__main__":
    main()
