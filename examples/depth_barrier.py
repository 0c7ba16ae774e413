"""Pre-registered depth-barrier check (training.barrier): does a task need depth?

Fixed before any run (see training/barrier.py): for each ENV candidate, depth 4 and depth 8 at
width 64 plus an equal-parameter wider depth 4, seeds 0 and 1, matched env steps (same epochs
and collection); final checkpoint evaluated from the start on far goals only (>= half the
largest shortest-path distance), scored by time at goal over the episode.
PASS iff mean d8 >= 50% of the best achievable and each depth-4 variant's mean <= 0.1 x d8.

    python examples/depth_barrier.py                      # every candidate (about 40 min on 2 cores)
    python examples/depth_barrier.py momentum_u car_u     # some of them

Every candidate goes into examples/results/depth_barrier/results.json, passing or not, with a
plot (barrier.png: far time at goal per depth/width, one point per seed).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from gatekit import io as gio
from training import barrier

ROOT = pathlib.Path(__file__).resolve().parent.parent


def plot(results: dict, out: pathlib.Path) -> None:
    from gatekit.plotting import _plt, _save

    plt = _plt()
    names = list(results)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(names)), 4))
    offsets = {"d4": -0.25, "d8": 0.0, "d4 wide": 0.25}
    colors = {"d4": "C0", "d8": "C3", "d4 wide": "C2"}
    for i, name in enumerate(names):
        r = results[name]
        for run in r["runs"]:
            kind = "d8" if run["depth"] == 8 else ("d4" if run["width"] == r["width"] else "d4 wide")
            ax.scatter(i + offsets[kind], run["far_time_at_goal"], color=colors[kind], s=18,
                       label=kind if i == 0 and run["seed"] == 0 else None)
        ax.hlines(r["best_achievable"], i - 0.4, i + 0.4, color="k", lw=1, ls=":",
                  label="best achievable" if i == 0 else None)
    ax.set_xticks(range(len(names)), [f"{n}\n{'PASS' if results[n]['pass'] else 'fail'}" for n in names], fontsize=8)
    ax.set_ylabel("far-goal time at goal (steps, final checkpoint)")
    ax.set_title("Depth barrier check: each point is one seed at matched env steps")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    _save(fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("envs", nargs="*", help=f"candidates (default: all): {', '.join(barrier.CANDIDATES)}")
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/depth_barrier"))
    ap.add_argument("--results", type=pathlib.Path, default=ROOT / "examples/results/depth_barrier")
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    unknown = [e for e in args.envs if e not in barrier.CANDIDATES]
    if unknown:
        sys.exit(f"depth_barrier: unknown candidate(s) {unknown}; choose from {list(barrier.CANDIDATES)}")
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / "results.json"
    results = json.loads(path.read_text())["candidates"] if path.exists() else {}
    for name in args.envs or list(barrier.CANDIDATES):
        print(f"== {name}: {barrier.CANDIDATES[name].axis}", flush=True)
        results[name] = barrier.check(barrier.CANDIDATES[name], args.out, seeds=tuple(range(args.seeds)),
                                      progress=lambda m: print(m, flush=True))
        r = results[name]
        print(f"   d8 {r['mean_d8']:.1f}  d4 {r['mean_d4']:.1f}  d4 wide (w{r['wide_width']}) {r['mean_d4_wide']:.1f}  "
              f"best {r['best_achievable']:.1f}  -> {'PASS' if r['pass'] else 'fail'}  [{r['minutes']:.1f} min]",
              flush=True)
        doc = {"criteria": barrier.CRITERIA, "protocol": barrier.__doc__, "candidates": results}
        path.write_text(json.dumps(gio.to_jsonable(doc), indent=1) + "\n")
        plot(results, args.results / "barrier.png")
    print(f"wrote {path} and {args.results / 'barrier.png'}")


if __name__ == "__main__":
    main()
