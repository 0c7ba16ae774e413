"""Quick start: train a CRL teacher on the built-in point maze, score every checkpoint, ask
gatekit for the zero-cost answer (``gatekit select`` with no gate: the zero-cost rule with the best
held-out record for choosing, with that record), then measure: race one full student from each of
the last 3 checkpoints and keep the best (``gatekit race``, the command a user types), and prove the pick with
student seeds the race did not read (one more seed at each raced checkpoint, at the zero-cost
answer and at the first). About 1-2 minutes on 2 CPU cores.

    python examples/quickstart.py [--out runs/quickstart] [--gate pointmaze|auto|FILE]

``--gate`` adds a named gate's pick to what is judged. Writes runs/quickstart/{report.html,
report.png, scores.csv, scores.json, race/race.json, verdict.json}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

import gatekit
from training import calibrate, outcomes, train
from training.many import Job, run_jobs

LAST = 3
"""Candidates raced: the last 3 checkpoints (the measured rule on record; ``final.json``)."""
JUDGE_SEED = 1001
"""The students that prove the pick: a seed the race (seed 1000) did not read."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/quickstart"))
    ap.add_argument("--gate", default=None, help="also judge this gate's pick (a gate file or preset, e.g. pointmaze)")
    ap.add_argument("--seed", type=int, default=0, help="teacher seed")
    args = ap.parse_args()
    t_start = time.time()
    if args.out.exists():
        shutil.rmtree(args.out)  # the quick start always starts fresh
    teacher = args.out / "teacher"
    cfg, student = calibrate.POINTMAZE_TEACHER, calibrate.POINTMAZE_STUDENT

    print(f"== 1/4 training a depth-{cfg.depth} CRL teacher on the point maze -> {teacher}")
    summary = train(dataclasses.replace(cfg, seed=args.seed), teacher)
    print(f"   {summary['env_steps']:,} env steps in {summary['wall_time']:.0f}s, "
          f"final eval success {summary['final_eval']['success']:.2f}")

    print("== 2/4 scoring every checkpoint (gatekit score)")
    table = gatekit.score(teacher)
    print(table.format(["step", "epoch", "action_magnitude", "sa_rank", "goal_rank", "cka_sa_prev", "eval_success"]))
    table.to_csv(args.out / "scores.csv")
    table.to_json(args.out / "scores.json")

    print(f"== 3/4 the zero-cost answer:\n   $ gatekit select {teacher}")
    shown = subprocess.run([sys.executable, "-c", "from gatekit.cli import main; main()", "select", str(teacher)],
                           capture_output=True, text=True)
    print("\n".join(f"   {line}" for line in shown.stdout.splitlines()))
    choice = gatekit.select(table)
    g = choice.gate
    named = None
    if args.gate:
        named = gatekit.select(table, gate=args.gate)
        print(f"   the named gate {args.gate} ({named.gate.rule}) picks "
              + (f"step {named.step}" if named.ready else "nothing yet") + f"; on record: {named.confidence}")

    steps = [r["step"] for r in table.rows]
    first, final = steps[0], steps[-1]
    race_cmd = ["gatekit", "race", str(teacher), "--out", str(args.out / "race"), "--last", str(LAST),
                "--student-epochs", str(student.epochs), "--depth", str(student.depth), "--width", str(student.width),
                "--set", f"eval_episodes={student.eval_episodes}"]
    print(f"== 4/4 measuring: one depth-{student.depth} student ({student.epochs} epochs) from each of the last "
          f"{LAST} checkpoints, the best kept:\n   $ {' '.join(race_cmd)}")
    done = subprocess.run([sys.executable, "-c", "from gatekit.cli import main; main()", *race_cmd[1:]],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"gatekit race failed:\n{done.stderr[-2000:]}")
    print("\n".join(f"   {line}" for line in done.stdout.splitlines()))
    res = json.loads((args.out / "race" / "race.json").read_text())
    for c in res["candidates"]:
        print(f"   step {c['step']:>7,}: student success {c['mean']:.3f}" + ("  <- pick" if c["step"] == res["pick"] else ""))
    zero = choice.step if choice.ready else None
    judged = sorted({first, *(c["step"] for c in res["candidates"])} | ({zero} - {None})
                    | ({named.step} if named is not None and named.ready else set()))
    print(f"   proving it: a student seed the race did not read at steps {', '.join(f'{s:,}' for s in judged)}")
    jobs = {s: Job(dataclasses.replace(student, seed=JUDGE_SEED), args.out / "judges" / f"step{s}", f"{teacher}@{s}")
            for s in judged}
    run_jobs(list(jobs.values()))
    judge = {s: outcomes.final_eval_success(j.path) for s, j in jobs.items()}
    raced = [c["step"] for c in res["candidates"]]
    best = max(judge[s] for s in raced)
    for s in judged:
        tags = [t for t, x in (("first", first), ("final", final), (f"the zero-cost answer ({g.name})", zero),
                               ("race pick", res["pick"]),
                               (f"gate {args.gate}", named.step if named is not None else None)) if x == s]
        print(f"   step {s:>7,}: judge student success {judge[s]:.3f}  {', '.join(tags)}")
    ok = judge[res["pick"]] >= 0.95 * best
    ratio = judge[res["pick"]] / max(judge[final], 1e-9)
    print(f"   verdict: the race's pick {'holds' if ok else 'does NOT hold'} under the unseen seed "
          f"(target: >= 0.95 x the best raced checkpoint's judge student); judge(pick) / judge(final) = {ratio:.2f}")
    verdict = {
        "selected_step": res["pick"], "first_step": first, "final_step": final, "raced_steps": raced,
        "student_selected": judge[res["pick"]], "student_first": judge[first], "student_final": judge[final],
        "race_students": {str(c["step"]): c["mean"] for c in res["candidates"]},
        "judge_students": {str(s): v for s, v in judge.items()}, "pick_is_right": bool(ok),
        "race_verdict": res["verdict"], "kept_student": res["kept"],
        "race_extra_share_of_teacher": res["cost"]["extra_share_of_teacher"],
        "zero_cost_gate": g.name, "zero_cost_step": zero, "student_zero_cost": judge.get(zero),
        "confidence": choice.confidence,
        "trusted": choice.trusted, "warnings": choice.warnings,
        "teacher_final_eval_success": summary["final_eval"]["success"],
    }
    if named is not None:
        verdict.update(gate=named.gate.name, gate_step=named.step,
                       gate_student=judge.get(named.step) if named.ready else None)
    # the whole answer on one page: the statistic and the pick, teacher eval, students vs checkpoint
    sources = [teacher, args.out / "race", args.out / "judges"]
    shown = named.gate if named is not None else g
    title = "quick start"
    page = gatekit.report(sources, args.out / "report.html", gate=shown, title=title)
    gatekit.report(sources, args.out / "report.png", gate=shown, title=title)
    verdict["minutes"] = (time.time() - t_start) / 60
    (args.out / "verdict.json").write_text(json.dumps(verdict, indent=1) + "\n")
    print(f"   keep the student {res['kept']}; wrote {page} (open it: the whole answer on one page), "
          f"{args.out / 'report.png'}, {args.out / 'verdict.json'} [{verdict['minutes']:.1f} min]")


if __name__ == "__main__":
    main()
