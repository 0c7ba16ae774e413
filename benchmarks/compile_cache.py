"""Second-call latency with and without JAX's persistent compilation cache, in one run.

    python benchmarks/compile_cache.py

Runs the same ``python -m training teacher`` command (the quick start's teacher config, one
epoch) twice with the cache off (``GATEKIT_COMPILATION_CACHE=0``, what every call paid before the
cache was on by default) and twice with a fresh cache folder, and reports for each call the wall
time until its first epoch's line appears on stderr (start, import, trace, compile, one epoch)
and the whole call. Writes benchmarks/results/compile_cache_<backend>.json.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CMD = ["-m", "training", "teacher", "--maze", "u", "--depth", "8", "--width", "64", "--epochs", "1",
       "--num-envs", "32", "--set", "rep_dim=32"]


def call(out: pathlib.Path, cache: str) -> dict:
    env = dict(os.environ, GATEKIT_COMPILATION_CACHE=cache, PYTHONPATH=str(ROOT))
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, *CMD, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    first = None
    for line in p.stderr:
        if line.startswith("epoch 1/") and first is None:
            first = time.perf_counter() - t0
    p.wait()
    if p.returncode:
        raise RuntimeError(f"{CMD} failed ({p.returncode})")
    return {"first_epoch_seconds": first, "call_seconds": time.perf_counter() - t0}


def main() -> None:
    import jax

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for label, cache in (("cache off", "0"), ("cache on", str(tmp / "cache"))):
            for i in (1, 2):
                r = {"cache": label, "call": i, **call(tmp / f"{label.replace(' ', '_')}_{i}", cache)}
                rows.append(r)
                print(f"{label:<9} call {i}: first epoch after {r['first_epoch_seconds']:5.1f} s, "
                      f"whole call {r['call_seconds']:5.1f} s", flush=True)
    out = ROOT / "benchmarks/results" / f"compile_cache_{jax.default_backend()}.json"
    out.write_text(json.dumps({"device": str(jax.devices()[0]), "command": " ".join(["python", *CMD]),
                               "rows": rows}, indent=1) + "\n")
    off, on = rows[1]["first_epoch_seconds"], rows[3]["first_epoch_seconds"]
    print(f"wrote {out}\nsecond call, first epoch: {off:.1f} s without the cache, {on:.1f} s with it "
          f"({off / on:.2f}x)")


if __name__ == "__main__":
    main()
