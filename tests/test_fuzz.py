"""Seeded fuzz of every input kind gatekit reads besides run folders (those: tests/test_faults.py):
gate files, tables, pickles, npz probes. 200 mutations each (byte flips, truncation, insertion,
duplication of a slice); every outcome must be a value or a GatekitError naming the file, never
another exception, a hang or a large allocation."""

import io
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
    return {
        "gate.json": (json.dumps(gate).encode(), gio.read_gate),
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
            read(path)
            tally["read"] += 1
        except GatekitError as e:
            assert str(path) in str(e) or path.name in str(e), f"{kind}: error does not name the file: {e}"
            tally["refused"] += 1
    assert tally["refused"] > 0  # the fuzz did damage files
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB
