"""Run-format IO on real Orbax checkpoints: round trip, and every broken-file case."""

import json
import re
import pathlib
import shutil

import jax
import numpy as np
import pytest

import gatekit
from gatekit import io
from gatekit import networks, statistics
from gatekit.errors import GatekitError
from conftest import NET, write_run


def test_round_trip_params_meta_sample(tmp_path):
    fam = networks.build("crl", NET)
    params = jax.tree.map(np.asarray, fam.init(jax.random.PRNGKey(0)))
    with io.RunWriter(tmp_path / "r", config={"family": "crl", "net": NET, "seed": 3}) as w:
        w.save(500, params=params, meta={"epoch": 1, "eval": {"success": 0.25}}, sample={"obs": np.ones((3, 4))})
    run = io.read_run(tmp_path / "r")
    assert run.config["format"] == io.FORMAT and run.config["seed"] == 3
    steps, problems = io.list_checkpoints(run)
    assert steps == [500] and problems == []
    ck = io.load_checkpoint(run, 500)
    jax.tree.map(np.testing.assert_array_equal, ck.params, params)
    sums = ck.meta.pop("checksums")
    assert ck.meta == {"step": 500, "epoch": 1, "eval": {"success": 0.25}}
    assert sums["params"] == io.tree_checksum(params) and set(sums) == {"params", "sample", "meta", "run"}
    np.testing.assert_array_equal(ck.sample["obs"], np.ones((3, 4)))
    # the restored params drive the same network to the same outputs
    x = np.zeros((2, 4), np.float32), np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32)
    np.testing.assert_allclose(fam.apply(ck.params, *x).sa_repr, fam.apply(params, *x).sa_repr)


def test_writer_refuses_to_clobber_and_resumes(tmp_path):
    write_run(tmp_path / "r", steps=(10, 20))
    with pytest.raises(GatekitError, match="already exists"):
        io.RunWriter(tmp_path / "r", config={"family": "crl", "net": NET})
    w = io.RunWriter(tmp_path / "r", config={"family": "crl", "net": NET}, resume=True)
    assert w.latest().step == 20
    w.close()
    with pytest.raises(GatekitError, match="different network"):
        io.RunWriter(tmp_path / "r", config={"family": "crl", "net": {**NET, "width": 64}}, resume=True)


def test_broken_checkpoints_are_reported_and_skipped(tmp_path):
    run = write_run(tmp_path / "r", steps=(100, 200, 300, 400))
    ck = run / "checkpoints"
    # 1) an unfinished save: Orbax's temporary directory
    shutil.copytree(ck / "100", ck / "500.orbax-checkpoint-tmp-1234")
    # 2) half-written: the commit marker never landed
    (ck / "200" / "commit_success.txt").unlink()
    # 3) corrupt: params data files overwritten with garbage
    for f in (ck / "300" / "params").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(b"garbage")
    table = gatekit.score(run)
    assert [r["step"] for r in table.rows] == [100, 400]
    reasons = {pathlib.Path(p.path).name: p.reason for p in table.problems}
    assert "unfinished" in reasons["500.orbax-checkpoint-tmp-1234"]
    assert "not finalized" in reasons["200"]
    assert re.search("unreadable|damaged", " ".join(p.reason for p in table.problems if "/300" in p.path))


def test_missing_item_and_bad_run_json(tmp_path):
    write_run(tmp_path / "good", steps=(1, 2))
    shutil.rmtree(tmp_path / "good" / "checkpoints" / "2" / "meta")
    write_run(tmp_path / "old", steps=(1,))
    cfg = json.loads((tmp_path / "old" / "run.json").read_text())
    (tmp_path / "old" / "run.json").write_text(json.dumps({**cfg, "format": "gatekit-run/0"}))
    write_run(tmp_path / "bad", steps=(1,))
    (tmp_path / "bad" / "run.json").write_text("{not json")
    write_run(tmp_path / "gone", steps=(1,))
    (tmp_path / "gone" / "run.json").unlink()
    table = gatekit.score(tmp_path)
    assert [(r["run"], r["step"]) for r in table.rows] == [("good", 1)]
    text = "\n".join(map(str, table.problems))
    assert "missing item(s) meta" in text
    assert "gatekit-run/0" in text and "not valid JSON" in text
    assert "gone/run.json: missing" in text
    with pytest.raises(GatekitError, match="run.json"):
        io.read_run(tmp_path / "bad")


def test_nothing_scorable_raises_with_reasons(tmp_path):
    write_run(tmp_path / "r", steps=(1,))
    (tmp_path / "r" / "checkpoints" / "1" / "commit_success.txt").unlink()
    with pytest.raises(GatekitError, match="nothing to score.*not finalized"):
        gatekit.score(tmp_path / "r")
    with pytest.raises(GatekitError, match="no such file"):
        gatekit.score(tmp_path / "nope")


def test_probe_npz_without_pickle(tmp_path):
    run = write_run(tmp_path / "r", steps=(1, 2))
    rng = np.random.default_rng(0)
    io.write_probe(run, obs=rng.normal(size=(50, 4)), action=rng.normal(size=(50, 2)), goal=rng.normal(size=(50, 2)))
    assert io.load_probe(io.read_run(run))["obs"].shape == (50, 4)
    np.savez(run / "probe.npz", obs=np.array([{"a": 1}], dtype=object), action=np.zeros(1), goal=np.zeros(1))
    with pytest.raises(GatekitError, match="object arrays, which need pickle"):
        io.load_probe(io.read_run(run))


def test_no_pickle_in_the_code():
    root = pathlib.Path(__file__).resolve().parents[1]
    for f in [*root.glob("gatekit/**/*.py"), *root.glob("training/**/*.py")]:
        text = f.read_text()
        assert "allow_pickle=True" not in text and "pickle.load(" not in text and "pickle.loads(" not in text, f
        if f.name == "pickles.py":  # the one allowed use: the allow-listed unpickler for JaxGCRL files
            assert text.count("import pickle") == 1 and "def find_class" in text
        else:
            assert "import pickle" not in text, f


def test_forward_pass_compiles_once_per_shape(tmp_path):
    write_run(tmp_path / "a", steps=(1, 2, 3))
    write_run(tmp_path / "b", steps=(1, 2, 3), seed=1)
    statistics._JITTED.clear()
    table = gatekit.score(tmp_path)
    assert len(table) == 6
    ((_, policy, reprs),) = statistics._JITTED.values()  # one network config -> one pair of jitted functions
    assert policy._cache_size() == 1 and reprs._cache_size() == 1  # compiled once, not once per checkpoint


def test_table_csv_json_round_trip(tmp_path, run_dir):
    table = gatekit.score(run_dir)
    table.to_csv(tmp_path / "s.csv")
    table.to_json(tmp_path / "s.json")
    for f in ("s.csv", "s.json"):
        rows = io.read_table(tmp_path / f)
        assert [r["step"] for r in rows] == [100, 200, 300]
        assert rows[0]["action_magnitude"] == pytest.approx(table.rows[0]["action_magnitude"])
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["settings"]["rank_eps"] == 1e-7 and doc["problems"] == []
    with pytest.raises(GatekitError, match="unknown table type"):
        io.read_table(tmp_path / "s.txt")


def test_reference_from_another_run(tmp_path):
    write_run(tmp_path / "a", steps=(1, 2))
    write_run(tmp_path / "b", steps=(1, 2), seed=5)
    table = gatekit.score(tmp_path / "a", reference=f"{tmp_path / 'b'}@2")
    assert all(r["cka_sa"] < 0.999 for r in table.rows)
    with pytest.raises(GatekitError, match="no complete checkpoint at step 7"):
        gatekit.score(tmp_path / "a", reference=f"{tmp_path / 'b'}@7")
