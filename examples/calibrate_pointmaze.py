"""Calibrate the built-in point-maze gate: the committed script behind gatekit/presets/pointmaze.json.

Declared before the run (not changed after seeing data):

* Teachers: the quick start's teacher (training.calibrate.POINTMAZE_TEACHER: depth 8, width 64,
  point maze "u", 12 epochs) for teacher seeds 1..5 (the quick start's own teacher is seed 0,
  so the quick start is a held-out check). Every checkpoint (one per epoch) is a condition.
* Students: POINTMAZE_STUDENT (depth 4, width 64, 4 epochs, lambda_pi = 1), 2 student seeds per
  checkpoint, evaluated on 256 episodes. Outcome: mean over the 2 student seeds of the final
  checkpoint's eval success. No-teacher baseline: the same budget, 2 seeds.
* Label rule: student_success >= 0.8 x the best student_success of the same teacher seed.
* Primary statistic: cka_sa_prev (CKA of the state-action representation to the previous
  checkpoint, online), direction "above" (the representation has stopped moving), threshold by
  Youden J, validated leave-one-teacher-seed-out, patience 2 in the shipped gate.
* Baseline predictor: the training step, fitted out of fold the same way (direction chosen per
  fold). Also reported: every other statistic, out of fold with direction chosen per fold
  (exploratory; not used to choose the shipped statistic).
* The shipped gate is the primary statistic's fit, whatever the comparison shows; the README
  reports whether it beats the step baseline.

Result of that plan (first run): the primary failed. cka_sa_prev "above" has in-sample AUC 0.52
and out-of-fold accuracy 0.44 against 0.80 for the step; drift does not plateau before the
student outcome jumps on this task. Shipping it would make the built-in default wrong, so:

Stage 2, declared after stage 1 failed and after the exploratory ranking had been seen (so it
is not blind; the quick start's teacher, seed 0, never used here, is the held-out check):
* "Which statistic" is fitted too: inside each leave-one-teacher-seed-out fold, every zero-cost
  online statistic (gatekit.api.online_candidates) is scored by inner leave-one-seed-out
  accuracy on the other seeds, the best is fitted there and predicts the held-out seed
  (gatekit.fitting.select_statistic). Its out-of-fold accuracy, selection included, is compared
  with the step baseline's.
* The shipped gate is the procedure's choice on all 5 seeds, with patience 2, whether or not it
  beats the step; both numbers go into the gate file and the README.

    python examples/calibrate_pointmaze.py [--out runs/calibrate_pointmaze]   # about 10 min on 2 cores

Writes pairs.csv, ranking.json, primary.json, nested.json, fit.json, summary.json to examples/results/calibrate_pointmaze/
and the gate to gatekit/presets/pointmaze.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import time

import gatekit
from gatekit import io as gio
from training import calibrate

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = (1, 2, 3, 4, 5)
STUDENT_SEEDS = 2
LABEL = dict(label="student_success", label_relative=0.8, group="teacher_seed")
PRIMARY, DIRECTION, PATIENCE = "cka_sa_prev", "above", 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/calibrate_pointmaze"))
    ap.add_argument("--results", type=pathlib.Path, default=ROOT / "examples/results/calibrate_pointmaze")
    ap.add_argument("--gate", type=pathlib.Path, default=ROOT / "gatekit/presets/pointmaze.json")
    args = ap.parse_args()
    t0 = time.time()
    teachers = [calibrate.train_teacher(calibrate.POINTMAZE_TEACHER, args.out / f"teacher_seed{s}", seed=s,
                                        progress=None) for s in SEEDS]
    print(f"teachers done [{time.time() - t0:.0f}s]", flush=True)
    baseline = calibrate.baseline_students(calibrate.POINTMAZE_STUDENT, args.out / "students",
                                           student_seeds=STUDENT_SEEDS)
    rows = calibrate.pair_table(teachers, calibrate.POINTMAZE_STUDENT, args.out / "students",
                                student_seeds=STUDENT_SEEDS)
    print(f"{len(rows)} pairs [{time.time() - t0:.0f}s]", flush=True)
    args.results.mkdir(parents=True, exist_ok=True)
    pairs = args.results / "pairs.csv"
    gio.write_table(rows, pairs)

    ranking = gatekit.fit_all(pairs, **LABEL)
    print(gatekit.api.format_fit_all(ranking))
    primary = gatekit.fit(pairs, metric=PRIMARY, direction=DIRECTION, n_boot=2000, **LABEL)
    print("== stage 1 (declared primary)\n" + primary.summary())
    nested = gatekit.api.fit_nested(pairs, **LABEL)
    c = nested["choice"]
    print(f"== stage 2 (statistic chosen inside each fold): out-of-fold accuracy {nested['accuracy']:.3f} "
          f"vs step {nested['baseline']['accuracy']:.3f}; choices per fold "
          f"{[f['metric'] for f in nested['folds']]}; on all seeds: {c['metric']} {c['direction']} {c['threshold']:.4g}")
    fit = gatekit.fit(pairs, metric=c["metric"], direction=c["direction"], n_boot=2000, **LABEL)
    print(fit.summary())
    beats = "beats" if nested["beats_baseline"] else "does not beat"
    gate = gatekit.save_gate(
        fit, args.gate, table=pairs, patience=PATIENCE, name="pointmaze", env="pointmaze",
        description=(f"Built-in gate for gatekit's point maze (maze 'u', depth-8 width-64 CRL teacher, depth-4 "
                     f"students of 4 epochs): {c['metric']} {c['direction']} the threshold for {PATIENCE} consecutive "
                     f"checkpoints. Chosen by nested leave-one-teacher-seed-out selection among zero-cost online "
                     f"statistics on teacher seeds 1-5 (examples/calibrate_pointmaze.py); out of fold, selection "
                     f"included, it {beats} the training-step baseline ({nested['accuracy']:.3f} vs "
                     f"{nested['baseline']['accuracy']:.3f}). The declared drift rule (cka_sa_prev above) failed "
                     f"(out-of-fold accuracy {primary.logo['accuracy']:.3f})."),
    )
    verdict = (f"With the statistic chosen inside each fold (the honest number), the procedure {beats} the step "
               f"baseline out of fold: accuracy {nested['accuracy']:.3f} vs {nested['baseline']['accuracy']:.3f}. "
               f"({c['metric']} alone, chosen after seeing all seeds: {fit.logo['accuracy']:.3f}; optimistic.)")
    gate = dataclasses.replace(gate, validation={**gate.validation, "verdict": verdict,
                                                 "verdict_chosen_statistic_alone": gate.validation["verdict"],
                                                 "beats_baseline": nested["beats_baseline"],
                                                 "nested_selection": nested,
                                                 "declared_primary": primary.to_dict() | {"roc": None}})
    gio.write_gate(gate, args.gate)
    (args.results / "ranking.json").write_text(json.dumps(gio.to_jsonable(ranking), indent=1) + "\n")
    (args.results / "fit.json").write_text(json.dumps(gio.to_jsonable(fit.to_dict()), indent=1) + "\n")
    (args.results / "nested.json").write_text(json.dumps(gio.to_jsonable(nested), indent=1) + "\n")
    (args.results / "primary.json").write_text(json.dumps(gio.to_jsonable(primary.to_dict()), indent=1) + "\n")
    summary = {"baseline_student_success": baseline, "minutes": (time.time() - t0) / 60, "gate": gate.to_dict(),
               "declared": {"label": LABEL, "primary": PRIMARY, "direction": DIRECTION, "patience": PATIENCE,
                            "teacher_seeds": SEEDS, "student_seeds": STUDENT_SEEDS}}
    (args.results / "summary.json").write_text(json.dumps(gio.to_jsonable(summary), indent=1) + "\n")
    print(f"no-teacher baseline students: {baseline}; wrote {args.gate} [{(time.time() - t0) / 60:.1f} min]")


if __name__ == "__main__":
    main()
