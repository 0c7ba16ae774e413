"""Issue 14: JaxGCRL checkpoints (pickles in its save_params layout) import and score; the
restricted unpickler refuses anything but arrays and plain containers."""

import os
import pickle  # the test writes pickles as JaxGCRL does; gatekit only reads them, allow-listed

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

import gatekit
from gatekit import io
from gatekit import networks
from gatekit.cli import app
from gatekit.errors import GatekitError

runner = CliRunner()
FLAGS = dict(obs_dim=5, goal_dim=2, action_dim=3, h_dim=32, n_hidden=4, skip_connections=2, use_ln=True,
             use_relu=False, repr_dim=8)


def _write_jaxgcrl(folder, steps=(1000, 2000, 3000)):
    net = {**FLAGS, "energy": "neg_l2"}
    fam = networks.build("jaxgcrl", net)
    folder.mkdir(parents=True)
    params_by_step = {}
    for i, step in enumerate(steps):
        p = fam.init(jax.random.PRNGKey(i))  # jax arrays, as JaxGCRL's training state holds
        jaxgcrl_layout = ({"log_alpha": jnp.asarray(0.1 * i)}, p["actor"],
                          {"sa_encoder": p["sa_encoder"], "g_encoder": p["goal_encoder"]})
        (folder / f"step_{step}.pkl").write_bytes(pickle.dumps(jaxgcrl_layout))
        params_by_step[step] = p
    return fam, params_by_step


def _probe(tmp_path, n=64):
    rng = np.random.default_rng(0)
    path = tmp_path / "probe.npz"
    np.savez(path, obs=rng.normal(size=(n, 5)), action=rng.uniform(-1, 1, (n, 3)), goal=rng.normal(size=(n, 2)))
    return path


def test_import_round_trip_and_score(tmp_path):
    fam, params = _write_jaxgcrl(tmp_path / "ckpts")
    flags = [f"--{k.replace('_', '-')}" if isinstance(v, bool) else f"--{k.replace('_', '-')}={v}"
             for k, v in FLAGS.items() if v is not False]
    r = runner.invoke(app, ["import", "jaxgcrl", str(tmp_path / "ckpts"), "--out", str(tmp_path / "run"),
                            "--probe", str(_probe(tmp_path)), "--energy-fn", "norm", *flags])
    assert r.exit_code == 0, r.output
    run = io.read_run(tmp_path / "run")
    assert run.family == "jaxgcrl" and io.list_checkpoints(run)[0] == [1000, 2000, 3000]
    ck = io.load_checkpoint(run, 2000)
    x = [np.asarray(ck.sample[k][:4], np.float32) for k in ("obs", "action", "goal")]
    got, want = fam.apply(ck.params, *x), fam.apply(params[2000], *x)
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    table = gatekit.score(tmp_path / "run")
    assert len(table) == 3 and table.problems == [] and table.rows[-1]["cka_sa"] == pytest.approx(1.0)


def test_jaxgcrl_trunk_matches_the_reference_definition():
    """Skip every 2 layers starting after layer 0, LayerNorm in encoders, swish, log-std in [-5, 2]."""
    fam = networks.build("jaxgcrl", {**FLAGS, "energy": "neg_l2"})
    p = fam.init(jax.random.PRNGKey(0))
    names = sorted(p["sa_encoder"]["params"])
    assert names == ["Dense_0", "Dense_1", "Dense_2", "Dense_3", "Dense_4",
                     "LayerNorm_0", "LayerNorm_1", "LayerNorm_2", "LayerNorm_3"]
    assert sorted(p["actor"]["params"]) == [f"Dense_{i}" for i in range(6)]  # 4 hidden + mean + log-std
    mu, log_std = fam.policy(p["actor"], jnp.ones((7, 5)) * 3, jnp.ones((7, 2)))
    assert mu.shape == (7, 3) and float(log_std.min()) >= -5 and float(log_std.max()) <= 2
    # hand-rolled reference of the encoder
    sp = p["sa_encoder"]["params"]
    x = jnp.ones((2, 8))

    def dense(q, x):
        return x @ q["kernel"] + q["bias"]

    def ln(q, x):
        m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - m) / jnp.sqrt(v + 1e-6) * q["scale"] + q["bias"]

    skip = None
    for i in range(4):
        x = jax.nn.swish(ln(sp[f"LayerNorm_{i}"], dense(sp[f"Dense_{i}"], x)))
        if i == 0:
            skip = x
        if i > 0 and i % 2 == 0:
            x = x + skip
            skip = x
    ref = dense(sp["Dense_4"], x)
    np.testing.assert_allclose(np.asarray(fam.sa_encoder.apply(p["sa_encoder"], jnp.ones((2, 8)))), np.asarray(ref),
                               rtol=1e-5, atol=1e-5)


class Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    target = tmp_path / "pwned"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "step_1.pkl").write_bytes(pickle.dumps(({}, {"x": Payload(target)}, {})))
    with pytest.raises(GatekitError, match=r"refused to load (posix|os)\.system"):
        io.read_restricted_pickle(bad / "step_1.pkl")
    r = runner.invoke(app, ["import", "jaxgcrl", str(bad), "--out", str(tmp_path / "run"), "--probe",
                            str(_probe(tmp_path)), "--obs-dim", "5", "--goal-dim", "2", "--action-dim", "3"])
    assert r.exit_code == 1 and "refused" in r.stderr
    assert not target.exists()
    (bad / "step_2.pkl").write_bytes(pickle.dumps(np.array([{"a": 1}], dtype=object)))
    with pytest.raises(GatekitError, match="object dtype|refused"):
        io.read_restricted_pickle(bad / "step_2.pkl")
    (bad / "step_3.pkl").write_bytes(b"\x80\x04garbage")
    with pytest.raises(GatekitError, match="not a readable JaxGCRL checkpoint"):
        io.read_restricted_pickle(bad / "step_3.pkl")


@pytest.mark.parametrize("probe, message", [
    ({"n": 0}, "0 row(s)"), ({"n": 1}, "1 row(s)"), ({"nan": True}, "non-finite"), ({"complex": True}, "complex"),
])
def test_import_refuses_a_probe_it_cannot_score_and_leaves_nothing(tmp_path, probe, message):
    _write_jaxgcrl(tmp_path / "ckpts", steps=(1000,))
    rng = np.random.default_rng(0)
    n = probe.get("n", 16)
    obs = rng.normal(size=(n, 5))
    if probe.get("nan"):
        obs[0, 0] = np.nan
    if probe.get("complex"):
        obs = obs + 1j
    np.savez(tmp_path / "p.npz", obs=obs, action=rng.uniform(-1, 1, (n, 3)), goal=rng.normal(size=(n, 2)))
    flags = [f"--{k.replace('_', '-')}" if isinstance(v, bool) else f"--{k.replace('_', '-')}={v}"
             for k, v in FLAGS.items() if v is not False]
    r = runner.invoke(app, ["import", "jaxgcrl", str(tmp_path / "ckpts"), "--out", str(tmp_path / "run"),
                            "--probe", str(tmp_path / "p.npz"), "--energy-fn", "norm", *flags])
    assert r.exit_code == 1 and message in r.output, r.output
    assert not (tmp_path / "run").exists()  # no run.json, probe.npz or lock left behind


class _HugeScalar:
    """A NumPy scalar whose dtype is 1 GB wide, in a pickle of a few dozen bytes."""

    def __init__(self, dtype):
        self.dtype = dtype

    def __reduce__(self):
        return (np._core.multiarray.scalar, (np.dtype(self.dtype), b"x"))


@pytest.mark.parametrize("dtype", ["V1000000000", "S1000000000", [("a", "f8", (125_000_000,))]])
def test_a_numpy_scalar_wider_than_its_file_is_refused(tmp_path, dtype):
    """Issue 34 (memory): NumPy scalars in pickles were not size-checked (70 bytes -> 1.2 GB)."""
    import resource

    path = tmp_path / "step_1.pkl"
    path.write_bytes(pickle.dumps(({}, {"x": _HugeScalar(dtype)}, {})))
    assert path.stat().st_size < 400
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(GatekitError, match="refused: .* would need 1,000,000,000 bytes"):
        io.read_restricted_pickle(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: far below 1 GB


def test_a_refused_pickle_after_good_ones_leaves_no_thread_printing_a_traceback(tmp_path):
    """Issue 44: the refused-pickle import's Orbax cleanup thread printed a FileNotFoundError
    traceback (2 of 4 times under load): every pickle is now read before any writer starts."""
    import subprocess
    import sys

    src = tmp_path / "ckpts"
    _write_jaxgcrl(src, steps=(1000, 2000))
    (src / "step_3000.pkl").write_bytes(pickle.dumps(({}, {"x": Payload(tmp_path / "pwned")}, {})))
    for i in range(2):
        out = subprocess.run([sys.executable, "-m", "gatekit.cli", "import", "jaxgcrl", str(src), "--out",
                              str(tmp_path / f"run{i}")], capture_output=True, text=True, timeout=300)
        assert out.returncode == 1 and "refused" in out.stderr, out.stderr[-1500:]
        assert "Traceback" not in out.stderr and "FileNotFoundError" not in out.stderr
        assert not (tmp_path / f"run{i}").exists() and not (tmp_path / "pwned").exists()
