"""Quick start: train a small CRL teacher on the built-in point maze, score every checkpoint,
and ask which one to distill from. About two minutes on 2 CPU cores.

    python examples/quickstart.py [--out runs/quickstart] [--epochs 12]
"""

from __future__ import annotations

import argparse
import pathlib
import shutil

import gatekit
from training import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/quickstart"))
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--threshold", type=float, default=0.63)
    args = ap.parse_args()
    teacher = args.out / "teacher"
    if teacher.exists():
        shutil.rmtree(teacher)  # the quick start always starts fresh

    print(f"== 1/3 training a depth-8 CRL teacher on the point maze -> {teacher}")
    cfg = TrainConfig(env="pointmaze", env_kwargs=(("maze", "u"),), depth=8, width=64, rep_dim=32,
                      epochs=args.epochs, num_envs=32, iterations_per_epoch=4, updates_per_iteration=64)
    summary = train(cfg, teacher)
    print(f"   {summary['env_steps']:,} env steps in {summary['wall_time']:.0f}s, "
          f"final eval success {summary['final_eval']['success']:.2f}")

    print("== 2/3 scoring every checkpoint (gatekit score)")
    table = gatekit.score(teacher)
    print(table.format())
    table.to_csv(args.out / "scores.csv")
    table.to_json(args.out / "scores.json")
    gatekit.plot([args.out / "scores.csv"], args.out / "action_magnitude.png", threshold=args.threshold)
    print(f"   wrote {args.out / 'scores.csv'}, {args.out / 'scores.json'}, {args.out / 'action_magnitude.png'}")

    print(f"== 3/3 which checkpoint to distill from (gatekit select --threshold {args.threshold})")
    choice = gatekit.select(table, threshold=args.threshold, patience=2)
    print(("   distill from step %s (epoch %s)" % (choice.step, choice.epoch)) if choice.ready else "   none ready")
    print(f"   why: {choice.reason}")
    print("   note: 0.63 is the paper's Ant Big Maze calibration; fit your own environment's threshold "
          "from teacher/student pairs with `gatekit fit` (see examples/gate_sweep.py).")


if __name__ == "__main__":
    main()
