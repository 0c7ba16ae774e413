"""Issue 14: outputs-only runs (family ``arrays``), plugin families through entry points, and
required ``net`` / params keys checked with clear errors."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gatekit
from gatekit.io import RunWriter, write_probe
from gatekit.errors import GatekitError
from conftest import NET, write_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_outputs_only_example_scores_and_selects(tmp_path):
    r = subprocess.run([sys.executable, "examples/outputs_only.py", "--out", str(tmp_path / "oo")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    t = gatekit.score(tmp_path / "oo")
    assert len(t) == 8 and t.problems == []
    align = t["alignment"]
    assert align[0] > align[-1]  # the example's encoders align over "training"
    assert t.rows[0]["cka_sa_prev"] is None and 0 < t.rows[1]["cka_sa_prev"] <= 1
    sel = gatekit.select(t, threshold=0.5, metric="alignment", direction="below")
    assert sel.ready and sel.step == 4000  # alignment 0.54 at 3000, 0.33 at 4000


def test_arrays_run_without_probe_is_a_clear_problem(tmp_path):
    with RunWriter(tmp_path / "r", config={"family": "arrays", "net": {}}, async_save=False) as w:
        for step in (1, 2):
            w.save(step, params={k: np.ones((8, 2)) for k in ("mu", "log_std", "phi", "psi")}, meta={"epoch": step},
                   sample={k: np.ones((8, 2)) for k in ("obs", "action", "goal", "future_goal")})
    with pytest.raises(GatekitError, match="probe.npz"):
        gatekit.score(tmp_path / "r")
    write_probe(tmp_path / "r", obs=np.ones((8, 2)), action=np.ones((8, 2)), goal=np.ones((8, 2)))
    with RunWriter(tmp_path / "bad", config={"family": "arrays", "net": {}}, async_save=False) as w:
        w.save(1, params={"mu": np.ones((8, 2))}, meta={}, sample={"obs": np.ones((8, 2))})
    write_probe(tmp_path / "bad", obs=np.ones((8, 2)), action=np.ones((8, 2)), goal=np.ones((8, 2)))
    with pytest.raises(GatekitError, match=r"params lack key\(s\) \['log_std', 'phi', 'psi'\]"):
        gatekit.score(tmp_path / "bad")


def test_crl_run_missing_net_key_or_params_key_names_it(tmp_path):
    net = {k: v for k, v in NET.items() if k != "rep_dim"}
    with RunWriter(tmp_path / "r", config={"family": "crl", "net": net}, async_save=False) as w:
        w.save(1, params={"actor": {"w": np.ones(2)}}, meta={}, sample={"obs": np.ones((4, 4))})
    with pytest.raises(GatekitError, match=r"net lacks required key\(s\) \['rep_dim'\]"):
        gatekit.score(tmp_path / "r")
    write_run(tmp_path / "ok", steps=(1, 2))
    with RunWriter(tmp_path / "p", config={"family": "crl", "net": NET}, async_save=False) as w:
        w.save(1, params={"actor": {"w": np.ones(2)}}, meta={}, sample={"obs": np.ones((4, 4))})
    t = gatekit.score(tmp_path)
    assert {r["run"] for r in t.rows} == {"ok"}
    reasons = " ".join(str(p) for p in t.problems)
    assert "rep_dim" in reasons and "params lack key(s) ['sa_encoder', 'goal_encoder']" in reasons


def test_plugin_family_from_an_installed_package_entry_point(tmp_path):
    site = tmp_path / "site"
    (site / "myfam-0.1.dist-info").mkdir(parents=True)
    (site / "myfam-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: myfam\nVersion: 0.1\n")
    (site / "myfam-0.1.dist-info" / "entry_points.txt").write_text("[gatekit.families]\nmine = myfam:factory\n")
    (site / "myfam.py").write_text(textwrap.dedent('''
        from gatekit.networks import CRLNetConfig, CRLNetworks

        def factory(net):
            return CRLNetworks(CRLNetConfig.from_dict({k: v for k, v in net.items() if k != "flavour"}))

        factory.required_net_keys = ("obs_dim", "flavour")
        factory.param_keys = ("actor", "sa_encoder", "goal_encoder")
    '''))

    run = write_run(tmp_path / "runs" / "a", steps=(1, 2))
    cfg = json.loads((run / "run.json").read_text())
    cfg["family"], cfg["net"]["flavour"] = "mine", "vanilla"
    (run / "run.json").write_text(json.dumps(cfg))
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = subprocess.run([sys.executable, "-m", "gatekit.cli", "score", str(run)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 checkpoint(s) scored" in r.stdout
    cfg["net"].pop("flavour")
    (run / "run.json").write_text(json.dumps(cfg))
    r = subprocess.run([sys.executable, "-m", "gatekit.cli", "score", str(run)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 1 and "flavour" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "gatekit.cli", "score", str(run)], capture_output=True, text=True,
                       timeout=300)  # without the plugin installed
    assert r.returncode == 1 and "unknown network family 'mine'" in r.stderr


def test_own_loop_hook_persists_with_the_checkpoint_and_stops(tmp_path):
    import re

    args = [sys.executable, "examples/own_loop.py", "--out", str(tmp_path / "ol"), "--steps-per-epoch", "20",
            "--threshold", "0.11"]
    r1 = subprocess.run(args + ["--epochs", "3"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r1.returncode == 0, r1.stderr[-2000:]
    count = int(re.findall(r"gate (\d)/2", r1.stdout)[-1])
    r2 = subprocess.run(args + ["--epochs", "40"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert f"resumed at epoch 3; gate count {count}" in r2.stdout
    stopped = int(re.search(r"stopped at the gate \(step (\d+)\)", r2.stdout).group(1))
    saved = sorted(int(p.name) for p in (tmp_path / "ol").iterdir() if p.name.isdigit())
    assert saved[-1] == stopped  # should_save: nothing after the gate step
