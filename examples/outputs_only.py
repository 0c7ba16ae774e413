"""Your own trainer, any framework: write an outputs-only run (family ``arrays``) with NumPy.

A PyTorch (or TF, or JAX) trainer does not need gatekit to rebuild its networks: at each save it
writes what its networks output on fixed rows, and every gatekit command works on the run.
This script stands in for such a trainer with NumPy alone (no torch dependency): a policy and
two encoders whose outputs sharpen over "training".

    python examples/outputs_only.py --out runs/outputs_only
    gatekit score runs/outputs_only && gatekit select runs/outputs_only --threshold 0.5 --metric alignment --direction below
"""

from __future__ import annotations

import argparse
import pathlib
import shutil

import numpy as np

import gatekit
from gatekit.io import RunWriter, write_probe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/outputs_only"))
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    rng = np.random.default_rng(0)
    n, obs_dim, act_dim, goal_dim, rep = 512, 6, 2, 2, 16
    # Fixed probe rows: every checkpoint's encoders are evaluated on these (for rank, CKA, drift).
    probe = {"obs": rng.normal(size=(n, obs_dim)), "action": rng.uniform(-1, 1, (n, act_dim)),
             "goal": rng.normal(size=(n, goal_dim))}
    args.out.mkdir(parents=True)
    write_probe(args.out, **probe)
    proj = rng.normal(size=(obs_dim + act_dim, rep))
    with RunWriter(args.out, config={"family": "arrays", "net": {"energy": "neg_l2_sq"}, "role": "teacher",
                                     "seed": 0, "env": {"name": "my_task"}}, async_save=False) as w:
        for epoch in range(1, 9):
            # --- in your trainer: mu, log_std = policy(sample_obs, sample_goal); phi = f(probe); psi = g(probe) ---
            sample = {"obs": rng.normal(size=(n, obs_dim)), "action": rng.uniform(-1, 1, (n, act_dim)),
                      "goal": rng.normal(size=(n, goal_dim)), "future_goal": rng.normal(size=(n, goal_dim))}
            k = epoch / 8  # "training progress"
            phi = np.tanh(np.concatenate([probe["obs"], probe["action"]], 1) @ proj * k) + 0.3 * rng.normal(size=(n, rep))
            psi = phi + (1 - k) * rng.normal(size=(n, rep))
            outputs = {"mu": rng.normal(size=(n, act_dim)) * (0.5 + k), "log_std": np.full((n, act_dim), -0.5 - k),
                       "phi": phi, "psi": psi}
            w.save(epoch * 1000, params=outputs, meta={"epoch": epoch}, sample=sample)
    table = gatekit.score(args.out)
    print(table.format(["step", "epoch", "action_magnitude", "entropy", "sa_rank", "alignment", "cka_sa_prev", "cka_sa"]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
