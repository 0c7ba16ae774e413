"""Issue 10: gate files, honest out-of-fold validation, the step baseline, online-only hooks,
and select's warnings."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import gatekit
from gatekit import api, fitting, resolve, roc
from gatekit.io import Gate
from gatekit.io import read_gate, write_gate
from gatekit.cli import app
from gatekit.errors import GatekitError
from gatekit.hooks import GateHook

runner = CliRunner()


def _pairs(tmp_path, rows, name="pairs.csv"):
    cols = list(rows[0])
    text = ",".join(cols) + "\n" + "".join(",".join(str(r[c]) for c in cols) + "\n" for r in rows)
    (tmp_path / name).write_text(text)
    return tmp_path / name


def test_gate_file_round_trip_and_preset(tmp_path):
    g = Gate(metric="cka_sa_prev", direction="above", threshold=0.9, patience=2, name="g", env="pointmaze",
                  label_rule={"kind": "relative", "value": 0.8})
    write_gate(g, tmp_path / "g.json")
    back = read_gate(tmp_path / "g.json")
    assert back == g and json.loads((tmp_path / "g.json").read_text())["format"] == "gatekit-gate/1"
    paper = read_gate("paper")
    assert (paper.metric, paper.direction, paper.threshold) == ("action_magnitude", "below", 0.63)
    assert "Ant Big Maze" in paper.description
    assert GateHook.from_file(tmp_path / "g.json").patience == 2


@pytest.mark.parametrize("content, match", [
    ("{not json", "not valid JSON"),
    ('{"format": "gatekit-gate/0", "metric": "action_magnitude", "direction": "below", "threshold": 1}', "gatekit-gate/0"),
    ('{"format": "gatekit-gate/1", "metric": "wobble", "direction": "below", "threshold": 1}', "unknown metric 'wobble'"),
    ('{"format": "gatekit-gate/1", "metric": "entropy", "direction": "below"}', "missing key"),
    ('{"format": "gatekit-gate/1", "metric": "entropy", "direction": "below", "threshold": null}', "threshold"),
    ('{"format": "gatekit-gate/1", "metric": "entropy", "direction": "up", "threshold": 1}', "direction"),
    ('[1, 2]', "expected a JSON object"),
])
def test_bad_gate_files_name_the_file(tmp_path, content, match):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(GatekitError, match=match) as e:
        api.resolve_gate(p)  # where a gate file is applied (gatekit.io reads its structure only)
    assert str(p) in str(e.value)
    with pytest.raises(GatekitError, match=match):
        GateHook.from_file(p)
    r = runner.invoke(app, ["select", str(tmp_path), "--gate", str(p)])
    assert r.exit_code == 1 and str(p) in r.stderr


def test_missing_gate_and_both_rules(monkeypatch):
    monkeypatch.setattr(resolve, "_auto_is_default", lambda decision="choose": False)  # else auto answers for every env
    with pytest.raises(GatekitError, match="no such gate file or preset"):
        read_gate("nope.json")
    with pytest.raises(GatekitError, match="not both"):
        api.resolve_gate("paper", threshold=0.5)
    assert api.resolve_gate(None, default_env="some_other_env", decision="stop").name == "budget"  # hook, watch
    assert api.resolve_gate(None, default_env="some_other_env").is_final  # select: the final checkpoint


def test_direction_is_refit_inside_each_fold():
    # Groups a and b: success when the value is high; group c: success when it is low and it
    # has the most rows, so on all data the direction is "below". Held out from the fold
    # without c, the direction fitted on a + b is "above".
    values = np.array([1, 2, 8, 9, 1, 2, 8, 9] + [1, 2, 3, 4, 6, 7, 8, 9, 10, 11], float)
    labels = np.array([0, 0, 1, 1, 0, 0, 1, 1] + [1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    groups = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 10)
    assert roc.auto_direction(values, labels) == "below"
    logo = fitting.leave_one_group_out(values, labels, groups, direction="auto")
    dirs = {f["group"]: f["direction"] for f in logo["folds"]}
    assert dirs["c"] == "above" and dirs["a"] == "below"
    fixed = fitting.leave_one_group_out(values, labels, groups, direction="below")
    assert all(f["direction"] == "below" for f in fixed["folds"])
    assert logo["accuracy"] != fixed["accuracy"]


def test_step_baseline_is_fitted_and_compared(tmp_path):
    rows = []
    for s in range(4):
        for i, step in enumerate((100, 200, 300, 400, 500)):
            rows.append({"teacher_seed": s, "step": step, "noise": (i * 7 + s * 3) % 5,
                         "student_success": 0.1 if i < 2 else 0.8})
    p = _pairs(tmp_path, rows)
    r = api.fit(p, metric="noise", label="student_success", label_above=0.5, group="teacher_seed",
                direction="auto", n_boot=0)
    assert r.baseline["metric"] == "step" and r.baseline["logo"]["accuracy"] == 1.0
    assert r.beats_baseline() is False and "does not beat the step baseline" in r.verdict
    ranking = api.fit_all(p, label="student_success", label_above=0.5, group="teacher_seed")
    assert ranking[0]["metric"] == "step" and ranking[0]["baseline"] and ranking[0]["oof_accuracy"] == 1.0
    noise = next(o for o in ranking if o["metric"] == "noise")
    assert noise["beats_baseline"] is False
    r = runner.invoke(app, ["fit", str(p), "--label", "student_success", "--label-above", "0.5", "--group",
                            "teacher_seed", "--metric", "all"])
    assert r.exit_code == 0 and "(baseline)" in r.stdout and "OOF acc" in r.stdout


def test_label_rules_are_declared(tmp_path):
    rows = [{"teacher_seed": s, "step": i, "m": i + s, "student_success": (i + 1) * (s + 1) / 10}
            for s in range(2) for i in range(4)]
    lab = api.make_labels(rows, label="student_success", label_relative=0.7, group="teacher_seed")
    # each seed's best is its last row; 0.7 x best keeps the rows at >= 70% of it
    assert lab.labels.tolist() == [0, 0, 1, 1, 0, 0, 1, 1]
    assert lab.rule["kind"] == "relative" and "0.7 x the best" in lab.rule["text"]
    with pytest.raises(GatekitError, match="needs --group"):
        api.make_labels(rows, label="student_success", label_relative=0.7)
    with pytest.raises(GatekitError, match="finite"):
        api.make_labels(rows, label="student_success", label_above=float("nan"))
    with pytest.raises(GatekitError, match=r"\(0, 1\]"):
        api.make_labels(rows, label="student_success", label_relative=1.5, group="teacher_seed")


def test_fit_save_writes_a_gate_select_uses_it(tmp_path):
    rows = [{"teacher_seed": s, "step": 100 * (i + 1), "cka_sa_prev": [0.2, 0.5, 0.93, 0.96, 0.97][i] - 0.01 * s,
             "student_success": [0.1, 0.2, 0.7, 0.75, 0.8][i]} for s in range(5) for i in range(5)]
    p = _pairs(tmp_path, rows)
    r = runner.invoke(app, ["fit", str(p), "--metric", "cka_sa_prev", "--label", "student_success",
                            "--label-relative", "0.8", "--group", "teacher_seed", "--direction", "above",
                            "--save", str(tmp_path / "g.json"), "--patience", "2", "--n-boot", "100"])
    assert r.exit_code == 0, r.output
    g = read_gate(tmp_path / "g.json")
    # label: student >= 0.8 x 0.8 -> checkpoints 3-5 positive; the largest negative cka_sa_prev is 0.5 (seed 0),
    # the smallest positive 0.93 - 0.04 = 0.89 (seed 4): the fitted threshold is midway, 0.695
    assert g.metric == "cka_sa_prev" and g.direction == "above" and g.patience == 2
    assert g.threshold == pytest.approx(0.695)
    assert g.fitted_on["file"] == "pairs.csv" and len(g.fitted_on["sha256"]) == 64 and g.fitted_on["n"] == 25
    assert g.validation["out_of_fold"]["accuracy"] == 1.0 and g.label_rule["kind"] == "relative"
    sel = gatekit.select([dict(r, run="t0") for r in rows if r["teacher_seed"] == 0], gate=tmp_path / "g.json")
    assert sel.ready and sel.step == 400 and sel.gate.metric == "cka_sa_prev"


def test_hook_refuses_retrospective_metrics():
    for name in ("cka_sa", "cka_goal", "q_corr", "cka_sa_debiased"):
        with pytest.raises(GatekitError, match="retrospective"):
            GateHook(metric=name, threshold=0.9, direction="above")
    GateHook(metric="cka_sa_prev", threshold=0.9, direction="above")  # the online version is fine
    with pytest.raises(GatekitError, match="finite"):
        GateHook(threshold=float("nan"))


def _rows(values, run="r", env="pointmaze", role="teacher"):
    return [{"run": run, "run_path": f"/x/{run}", "step": 100 * (i + 1), "epoch": i + 1, "env": env, "role": role,
             "m": v} for i, v in enumerate(values)]


def test_select_warns_when_the_gate_held_from_the_first_checkpoint():
    sel = api.select(_rows([0.1, 0.2, 0.3, 0.4, 0.5]), threshold=0.63, metric="m", direction="below")
    assert sel.ready and sel.step == 100 and sel.run_path == "/x/r"
    assert any("first scored checkpoint" in w for w in sel.warnings)
    assert any("rises over training" in w for w in sel.warnings)  # trend against "below"
    ok = api.select(_rows([0.9, 0.8, 0.5, 0.4, 0.3]), threshold=0.63, metric="m", direction="below")
    assert ok.ready and ok.step == 300 and ok.warnings == []


def test_select_warns_on_nan_envs_and_filters_students():
    rows = _rows([0.9, float("nan"), 0.5, 0.4]) + _rows([0.1, 0.1], run="s", role="student") \
        + _rows([0.9, 0.5], run="q", env="ant")
    sel = api.select(rows, threshold=0.63, metric="m", direction="below")
    assert sel.run_path == "/x/q" and sel.step == 200  # the student never counts as a teacher
    assert any("NaN" in w and "/x/r" in w for w in sel.warnings)
    assert any("different envs" in w for w in sel.warnings)
    anyrole = api.select(rows, threshold=0.63, metric="m", direction="below", role="any")
    assert anyrole.run_path == "/x/s" and anyrole.step == 100
    with pytest.raises(GatekitError, match="no student rows|no teacher rows"):
        api.select(_rows([0.5]), threshold=0.63, metric="m", role="student")


def test_select_cli_prints_path_and_warnings(tmp_path):
    from conftest import write_run

    write_run(tmp_path / "runs" / "x" / "teacher", steps=(100, 200), magnitudes=[0.1, 0.1])
    write_run(tmp_path / "runs" / "y" / "teacher", steps=(100, 200), seed=1, magnitudes=[8.0, 8.0])
    r = runner.invoke(app, ["select", str(tmp_path / "runs"), "--gate", "paper", "--json", str(tmp_path / "s.json"),
                            "-v"])
    assert r.exit_code == 0, r.output
    assert f"distill from: {tmp_path / 'runs' / 'x' / 'teacher'}@100" in r.stdout
    assert r.stdout.startswith("warning: the rule already holds at the first checkpoint")
    assert "warning:" in r.stderr and "first scored checkpoint" in r.stderr
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["run_path"].endswith("x/teacher") and doc["warnings"] and doc["gate"]["name"] == "paper"
