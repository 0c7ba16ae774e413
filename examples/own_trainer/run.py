"""Your own CRL stack, end to end: JaxGCRL-layout checkpoints -> a gatekit run -> the zero-cost
answer -> a race of your own students through submitit (its local executor here; the same
command submits SLURM job arrays where sbatch exists) -> the checkpoint to distill from.

    python examples/own_trainer/run.py --out runs/own          # about a minute on 2 CPU cores

Each step is the command a user types, printed before it runs.
"""

import argparse
import json
import pathlib
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


GATEKIT = [sys.executable, "-c", "from gatekit.cli import main; main()"]  # `gatekit`, with this Python


def sh(*cmd) -> str:
    shown = ["gatekit", *cmd[len(GATEKIT):]] if list(cmd[:len(GATEKIT)]) == GATEKIT else cmd
    print("$ " + " ".join(str(c) if " " not in str(c) else repr(str(c)) for c in shown), flush=True)
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    print(done.stdout, end="", flush=True)
    return done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/own"))
    ap.add_argument("--executor", default="slurm", help="slurm (submitit; local without sbatch), dask, threads")
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    ckpts, run, race = args.out / "jaxgcrl_ckpts", args.out / "teacher", args.out / "race"
    py = sys.executable
    sh(py, HERE / "make_teacher.py", "--out", ckpts)
    gk = GATEKIT
    sh(*gk, "import", "jaxgcrl", ckpts, "--out", run)
    sh(*gk, "select", run)
    student = f"python {HERE / 'distill.py'} --teacher {{checkpoint}} --seed {{seed}} --epochs {{epochs}} --out {{out}}"
    opts = ["--executor-opt", "cluster=local"] if args.executor == "slurm" else []
    sh(*gk, "race", run, "--out", race, "--last", "4", "--student-epochs", "4", "--student-cmd", student,
       "--executor", args.executor, *opts, "-q")
    res = json.loads((race / "race.json").read_text())
    print(f"raced {[c['step'] for c in res['candidates']]}: students {[c['mean'] for c in res['candidates']]}; "
          f"pick {res['pick']}")


if __name__ == "__main__":
    main()
