"""Seeded fuzz of every input kind gatekit reads besides run folders (those: tests/test_faults.py):
gate files, tables, pickles, npz probes, metrics.jsonl, score-cache entries, the writer lock,
benchmark pairs tables and benchmark task files, and run.json (what ``pilot`` and ``race`` read back
from a student folder they reuse). 200 mutations each (byte flips, truncation, insertion,
duplication of a slice); every outcome must be a value or a GatekitError naming the file, never
another exception, a hang or a large allocation."""

import io
import pathlib
import pickle
import resource
import zlib

import numpy as np
import pytest

from gatekit import io as gio
from gatekit.errors import GatekitError

N = 200


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    kind = rng.integers(4)
    if kind == 0 and b:  # flip bytes
        for i in rng.integers(0, len(b), size=rng.integers(1, 8)):
            b[i] = int(rng.integers(256))
    elif kind == 1:  # truncate
        b = b[: int(rng.integers(0, len(b) + 1))]
    elif kind == 2:  # insert random bytes
        i = int(rng.integers(0, len(b) + 1))
        b[i:i] = bytes(rng.integers(0, 256, size=rng.integers(1, 16)).astype(np.uint8))
    else:  # duplicate a slice
        i, j = sorted(rng.integers(0, len(b) + 1, size=2))
        b[j:j] = b[i:j]
    return bytes(b)


ROOT = pathlib.Path(__file__).resolve().parent.parent
DAMAGED = "damaged"
"""What a reader that tolerates damage by design returns when it saw some (counted as refused)."""
TOLERANT = {".writer.lock"}
"""Inputs whose content is never read for meaning (the lock: only held), so nothing is refused."""


def _cache_entry(k: str) -> bytes:
    """A real score-cache entry (written by the cache itself) under key ``k``."""
    import os
    import tempfile

    from gatekit.io import cache

    with tempfile.TemporaryDirectory() as d:
        old = os.environ.get(cache.ENV)
        os.environ[cache.ENV] = d
        try:
            cache.put(k, {"rows": [{"step": 100, "action_magnitude": 0.5}], "problems": [], "notes": []})
            return (pathlib.Path(d) / f"{k}.json").read_bytes()
        finally:
            os.environ.pop(cache.ENV) if old is None else os.environ.__setitem__(cache.ENV, old)


def _read_cache_entry(path):
    """A damaged entry is never trusted and never an error: the run is scored again (None)."""
    import os

    from gatekit.io import cache

    os.environ[cache.ENV] = str(path.parent)
    try:
        entry = cache.get(path.stem)
    finally:
        del os.environ[cache.ENV]
    assert entry is None or entry["rows"] == [{"step": 100, "action_magnitude": 0.5}]
    return DAMAGED if entry is None else entry


def _read_metrics(path):
    """Torn or damaged lines are skipped by design (a run killed mid-write leaves one)."""
    records = gio.read_metrics(path.parent)
    return DAMAGED if len(records) < 5 else records


def _take_lock(path):
    import os

    from gatekit.io.writer import _lock_run

    os.close(_lock_run(path.parent))


def _check_pairs(path):
    from training.bench import analysis, grid

    analysis.check_pairs(gio.read_table(path), str(path), tasks=set(grid.TASKS), configs=set(grid.CONFIGS))


def _valid():
    gate = gio.Gate(metric="goal_rank", direction="above", threshold=5.8, patience=2, name="g",
                    fitted_on={"range": [1.0, 9.0]}).to_dict()
    import json

    table = "teacher_seed,step,goal_rank,student_success\n" + "\n".join(
        f"{s},{k * 1000},{k * 0.7:.3f},{k / 10:.2f}" for s in range(3) for k in range(1, 9)) + "\n"
    tree = ({"log_alpha": np.float32(0.1)}, {"params": {"Dense_0": {"kernel": np.ones((3, 4), np.float32)}}},
            {"sa_encoder": {"params": {"w": np.arange(6.0).reshape(2, 3)}}})
    buf = io.BytesIO()
    np.savez(buf, obs=np.zeros((8, 5)), action=np.zeros((8, 3)), goal=np.zeros((8, 2)))
    pairs = "task,config,teacher_seed,step,student_outcome,student_outcome_s0\n" + "\n".join(
        f"pointmaze,{c},{s},{k * 1000},{k / 10:.2f},{k / 10:.2f}" for c in ("base", "w256") for s in range(2)
        for k in range(1, 5)) + "\n"
    metrics = "".join(json.dumps({"step": k * 100, "epoch": k, "eval": {"success": k / 10}}) + "\n" for k in range(1, 6))
    return {
        "gate.json": (json.dumps(gate).encode(), gio.read_gate),
        "metrics.jsonl": (metrics.encode(), _read_metrics),
        "k0.json": (_cache_entry("k0"), _read_cache_entry),
        ".writer.lock": (b"12345\n", _take_lock),
        "pairs.csv": (pairs.encode(), _check_pairs),
        "reacher.npz": ((ROOT / "examples/results/gatebench/data/reacher.npz").read_bytes(), gio.read_benchmark_task),
        "run.json": (json.dumps({"format": "gatekit-run/1", "family": "crl", "role": "student", "seed": 1000,
                                 "net": {"obs_dim": 4, "goal_dim": 2, "action_dim": 2, "goal_indices": [0, 1],
                                         "depth": 2, "width": 8, "rep_dim": 4},
                                 "teacher": "runs/t0@16000", "train": {"epochs": 8}}).encode(),
                     lambda p: gio.read_run(p.parent)),  # a pilot's or student's run folder, as pilot reuses it
        "table.csv": (table.encode(), gio.read_table),
        "step_1.pkl": (pickle.dumps(tree, protocol=4), gio.read_restricted_pickle),
        "probe.npz": (buf.getvalue(), lambda p: gio.read_npz(p, required=("obs", "action", "goal"))),
    }


@pytest.mark.parametrize("kind", list(_valid()))
def test_fuzzed_inputs_give_a_value_or_a_named_error(kind, tmp_path):
    data, read = _valid()[kind]
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    path = tmp_path / kind
    tally = {"read": 0, "refused": 0}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(N):
        path.write_bytes(_mutate(data, rng))
        try:
            tally["refused" if read(path) is DAMAGED else "read"] += 1
        except GatekitError as e:
            assert str(path) in str(e) or path.name in str(e), f"{kind}: error does not name the file: {e}"
            tally["refused"] += 1
    print(f"fuzz {kind}: {tally}")
    assert tally["refused"] > 0 or kind in TOLERANT  # the fuzz did damage files
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB
