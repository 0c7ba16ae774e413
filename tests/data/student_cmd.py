"""A stand-in for a user's student trainer (``--student-cmd``), used by the racing tests: it does
not import gatekit or training. Its outcome is a known function of the checkpoint step, the seed
and the epochs; ``BEHAVE`` (a JSON env var) makes chosen steps fail, hang, print garbage or write
NaN; every call is appended to ``CALLS`` (an env var: a file) so a test can count trainings."""

import argparse
import json
import os
import sys
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--teacher")
    p.add_argument("--seed", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--out")
    p.add_argument("--sleep", type=float, default=0.0)
    a = p.parse_args()
    step = int(a.teacher.rpartition("@")[2])
    if os.environ.get("CALLS"):
        with open(os.environ["CALLS"], "a") as f:
            f.write(f"{step} {a.seed} {a.epochs}\n")
    behave = json.loads(os.environ.get("BEHAVE", "{}")).get(str(step))
    time.sleep(a.sleep)
    os.makedirs(a.out, exist_ok=True)
    result = os.path.join(a.out, "outcome.json")
    if behave == "fail":
        sys.exit(3)
    if behave == "hang":
        time.sleep(600)
    if behave == "garbage":
        open(result, "w").write("not json")
    elif behave == "nan":
        open(result, "w").write('{"outcome": NaN}')
    else:
        # later checkpoints and longer students are better, up to step 400; seed luck is small
        value = min(step, 400) / 1000 + a.epochs / 100 + (a.seed % 7) / 1000
        json.dump({"outcome": value}, open(result, "w"))


if __name__ == "__main__":
    main()
