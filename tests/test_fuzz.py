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


# --- structured fuzz of the newest input kinds (issue 44): values, not bytes -----------------------

HOSTILE = ["x", "", None, True, -1, 0, 1e308, -1e308, float("nan"), float("inf"), [], {}, [1, 2, 3], {"a": 1},
           "9" * 400, 2 ** 70, "\x00\t<b>", [[[[[]]]]]]


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    yield path


def _set(obj, path, value):
    import copy

    obj = copy.deepcopy(obj)
    if not path:
        return value
    cur = obj
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return obj


def _structured(doc, rng, n=N):
    paths = [p for p in _leaves(doc) if p]
    for _ in range(n):
        yield _set(doc, paths[int(rng.integers(len(paths)))], HOSTILE[int(rng.integers(len(HOSTILE)))])


def test_fuzzed_gate_records_give_a_gate_whose_record_prints_or_a_named_error(tmp_path):
    """200 value mutations of the shipped auto gate's record (validation, fitted_on, label_rule):
    read_gate returns a gate whose record prints (select's record lines) or a GatekitError naming
    the file; never a traceback, a NaN percentage or 'trusted' from a broken record."""
    import json

    from gatekit.selection import confidence, short_record, stop_record

    doc = json.loads((ROOT / "gatekit" / "presets" / "auto.json").read_text())
    rng = np.random.default_rng(44)
    path, tally = tmp_path / "g.json", {"read": 0, "refused": 0}
    for bad in _structured(doc, rng):
        path.write_text(json.dumps(bad))
        try:
            gate = gio.read_gate(path)
        except GatekitError as e:
            assert "g.json" in str(e)
            tally["refused"] += 1
            continue
        text = " ".join([short_record(gate, "choose"), short_record(gate, "stop"), confidence(gate), stop_record(gate)])
        assert "nan%" not in text and "inf%" not in text
        tally["read"] += 1
    print(f"fuzz gate records: {tally}")
    assert tally["refused"] > 20 and tally["read"] > 20


def test_fuzzed_race_folders_resume_or_skip_and_race_json_is_read_or_ignored(tmp_path):
    """200 mutations of a race's result files and of its race.json: read_results keeps a valid
    record or drops it (that student trains again); the report's race reader takes an answer or
    ignores the file; neither raises."""
    import json

    from gatekit.racing import read_results
    from gatekit.report import race_answers

    rng = np.random.default_rng(45)
    out = tmp_path / "race"
    (out / "results").mkdir(parents=True)
    record = {"step": 300, "seed": 0, "epochs": 8, "checkpoint": "t@300", "student": str(out / "step300_s0"),
              "outcome": 0.5, "seconds": 1.0, "fingerprint": "ab" * 32}
    race = {"teacher": str(tmp_path / "t"), "teacher_path": str(tmp_path / "t"), "pick": 300, "checkpoint": "t@300",
            "strategy": "last", "rule": "r", "kept": "k", "candidates": [{"step": 300, "students": [0.5], "mean": 0.5}],
            "verdict": "clear", "cost": {"students": 1}}
    kept = 0
    for i, (bad_rec, bad_race) in enumerate(zip(_structured(record, rng), _structured(race, rng))):
        (out / "results" / "step300_s0_e8.json").write_text(json.dumps(bad_rec))
        (out / "race.json").write_text(json.dumps(bad_race) if i % 2 else _mutate(json.dumps(race).encode(), rng).decode(
            "latin-1"))
        got = read_results(out)
        for m, r in got.items():
            assert (m.step, m.seed, m.epochs) == (r["step"], r["seed"], r["epochs"])
            assert r.get("outcome") is None or __import__("math").isfinite(r["outcome"])
        kept += len(got)
        for a in race_answers([out], {str(tmp_path / "t")}):
            assert isinstance(a["pick"], int) and isinstance(a["checkpoint"], str)
    assert 0 < kept < N


def test_fuzzed_benchmark_task_arrays_give_a_task_or_a_named_error(tmp_path):
    """200 mutations of the arrays of a benchmark task file (not its bytes): a dtype, a value or a
    shape swapped for a hostile one; the reader returns a task or a GatekitError naming the file."""
    import json

    src = gio.read_benchmark_task(ROOT / "examples/results/gatebench/data/reacher.npz")
    arrays = {k: v for k, v in src.arrays.items()}
    rng = np.random.default_rng(46)
    hostile = [lambda a: a.astype(np.float64) * np.nan, lambda a: a.astype(str), lambda a: a[..., :1],
               lambda a: -np.abs(a.astype(np.float64)) - 1, lambda a: np.full(a.shape, np.inf),
               lambda a: a.reshape(-1), lambda a: np.zeros((0,) + a.shape[1:], a.dtype), lambda a: a.astype(np.int8),
               lambda a: np.array(["abc"] * a.shape[0]) if a.ndim else a]
    path, tally = tmp_path / "task.npz", {"read": 0, "refused": 0}
    keys = sorted(arrays)
    for _ in range(N):
        bad = dict(arrays)
        k = keys[int(rng.integers(len(keys)))]
        try:
            bad[k] = hostile[int(rng.integers(len(hostile)))](arrays[k])
        except (ValueError, TypeError):
            continue
        np.savez(path, meta=np.array(json.dumps(src.meta)), **bad)
        try:
            gio.read_benchmark_task(path)
            tally["read"] += 1
        except GatekitError as e:
            assert "task.npz" in str(e)
            tally["refused"] += 1
    print(f"fuzz task arrays: {tally}")
    assert tally["refused"] > 50


def test_fuzzed_environment_variables_are_used_or_named_in_an_error(tmp_path, monkeypatch):
    """200 values for each of gatekit's environment variables: each is used, or refused with an
    error naming the variable; none crashes a reader."""
    from gatekit.io import cache
    from gatekit.io.dataset import max_dataset_bytes
    from gatekit.io.npz import max_npz_bytes

    rng = np.random.default_rng(47)
    alphabet = list("0123456789.-+eEinfatyNo /\\\t\x01~") + ["nan", "inf", "1e308", "-0", "0x10", "１２"]

    def value():
        return "".join(alphabet[int(i)] for i in rng.integers(len(alphabet), size=rng.integers(0, 8)))

    for var, use in (("GATEKIT_MAX_NPZ_MB", max_npz_bytes), ("GATEKIT_MAX_DATASET_MB", max_dataset_bytes)):
        for _ in range(N):
            monkeypatch.setenv(var, value())
            try:
                assert use() > 0
            except GatekitError as e:
                assert var in str(e)
    for _ in range(N):  # cache folders and keys: any value is used or turns the cache off, never raises
        monkeypatch.setenv(cache.ENV, str(tmp_path / value().replace("\x00", "")))
        monkeypatch.setenv(cache.KEY_ENV, str(tmp_path / "k" / value().replace("\x00", "")))
        cache.put("k", {"rows": [], "problems": [], "notes": []})
        assert cache.get("k") in (None, {"rows": [], "problems": [], "notes": [], "key": "k",
                                         "digest": (cache.get("k") or {}).get("digest")})
