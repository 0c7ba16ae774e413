"""What trusting the score cache costs: a cache hit, whose key now hashes every byte of the run's
checkpoint files (``gatekit.io.cache.fingerprint``), against rescoring the run, in one process.

    python benchmarks/cache_cost.py [--checkpoints 12 24] [--width 256]

Writes ``benchmarks/results/cache_cost_cpu.json`` and prints a table: for each run size, the
seconds of a cold score (cache off), of a hit (the content key computed, the entry read and
checked), of the key alone, and the ratio hit / cold; and what signing an entry costs (its
HMAC-SHA256 under the user's key, which a plain sha256 of the same bytes once was): the signature
against that plain digest and against the whole hit.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[12, 24])
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--width", type=int, default=256)
    args = ap.parse_args()
    import gatekit
    from gatekit import io
    from gatekit.io import cache
    from run import write_fake_run

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[cache.ENV] = str(pathlib.Path(tmp) / "cache")
        os.environ[cache.KEY_ENV] = str(pathlib.Path(tmp) / "key" / "cache.key")
        for n in args.checkpoints:
            run = pathlib.Path(tmp) / f"run{n}"
            write_fake_run(run, n, args.depth, args.width)
            size = sum(f.stat().st_size for f in run.rglob("*") if f.is_file())
            gatekit.score(run, cache=False)  # compile once: the cold timing below is a rescore, not a first call
            t0 = time.perf_counter()
            gatekit.score(run, cache=False)
            cold = time.perf_counter() - t0
            gatekit.score(run)  # fills the cache
            t0 = time.perf_counter()
            gatekit.score(run)
            hit = time.perf_counter() - t0
            r = io.read_run(run)
            steps = io.list_checkpoints(r)[0]
            t0 = time.perf_counter()
            cache.fingerprint(r.checkpoint_dir)
            key = time.perf_counter() - t0
            k = cache.key(r, steps, {})
            entry = {"rows": gatekit.score(run).rows, "problems": [], "notes": []}
            secret = os.urandom(32)
            import hashlib
            import json as js

            t0 = time.perf_counter()
            for _ in range(50):
                cache._digest(entry, secret)
            sign = (time.perf_counter() - t0) / 50
            t0 = time.perf_counter()
            for _ in range(50):
                hashlib.sha256(js.dumps(entry, sort_keys=True, default=cache._plain).encode()).hexdigest()
            plain = (time.perf_counter() - t0) / 50
            rows.append({"checkpoints": n, "run_mb": size / 2**20, "cold_s": cold, "hit_s": hit, "key_s": key,
                         "hit_over_cold": hit / cold, "steps": len(steps), "sign_s": sign, "plain_digest_s": plain,
                         "sign_over_plain": sign / plain, "sign_over_hit": sign / hit, "entry_key": k[:8]})
    out = {"machine": f"{os.cpu_count()} CPUs", "depth": args.depth, "width": args.width, "rows": rows}
    res = ROOT / "benchmarks" / "results" / "cache_cost_cpu.json"
    res.write_text(json.dumps(out, indent=1) + "\n")
    print("| checkpoints | run MB | cold score s | cache hit s | content key s | hit / cold |")
    print("|---|---|---|---|---|---|")
    for x in rows:
        print(f"| {x['checkpoints']} | {x['run_mb']:.1f} | {x['cold_s']:.2f} | {x['hit_s']:.3f} | {x['key_s']:.3f} | "
              f"{x['hit_over_cold']:.3f} |")
    for x in rows:
        print(f"signing an entry of {x['steps']} rows: {1e3 * x['sign_s']:.2f} ms, {x['sign_over_plain']:.2f} x a plain "
              f"sha256, {x['sign_over_hit']:.3f} of a hit")
    print(f"wrote {res}")


if __name__ == "__main__":
    main()
