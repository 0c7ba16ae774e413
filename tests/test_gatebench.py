"""The gate benchmark end to end on a tiny grid: real teachers, real students, the analysis
(leave-one-task-out), and the shipped auto gate read back by select."""

import dataclasses
import json

import pytest

from training import gatebench as gb


@pytest.mark.slow
def test_tiny_gatebench_runs_analyzes_and_ships(tmp_path, monkeypatch):
    small = lambda t: dataclasses.replace(t, candidate=dataclasses.replace(t.candidate, epochs=3))  # noqa: E731
    monkeypatch.setattr(gb, "TASKS", {k: small(gb.TASKS[k]) for k in ("pointmaze", "momentum_maze")})
    for name, value in (("TEACHER_SEEDS", (0,)), ("CHECKPOINTS", 3), ("STUDENT_SEEDS", 2), ("STUDENT_EPOCHS", 2),
                        ("STUDENT_ITERATIONS", 1)):
        monkeypatch.setattr(gb, name, value)
    res = gb.run(tmp_path, configs=("base",))
    assert res["rows"] == 6 and set(res["tasks"]) == {"pointmaze", "momentum_maze"}
    again = gb.run(tmp_path, configs=("base",))  # finished runs are reused: nothing is trained again
    assert again["rows"] == 6 and again["minutes"] < res["minutes"]
    rep = gb.analyze(tmp_path)
    by = {(r["method"], r["decision"]): r for r in rep["results"]}
    assert set(by[("training step", "stop")]["per_group"]) == {"pointmaze", "momentum_maze"}
    assert all(0 <= r["success"] <= 1 and r["cost"] is not None for r in rep["results"])
    assert "| training step | baseline |" in (tmp_path / "results.md").read_text()
    shipped = gb.ship(tmp_path, tmp_path / "auto.json")
    from gatekit.io import read_gate

    gate = read_gate(tmp_path / "auto.json")
    assert gate.validation["held_out"]["choose"] == shipped["held_out"]["choose"]
    assert json.loads((tmp_path / "auto.json").read_text())["name"] == "auto"
    assert gb.plot(tmp_path).exists()


def test_running_a_variant_keeps_the_other_configs_rows():
    from training.gatebench import merge_configs

    base = [{"config": "base", "step": 1}, {"config": "base", "step": 2}]
    old_tau = [{"config": "tau2", "step": 1}]
    new_tau = [{"config": "tau2", "step": 1}, {"config": "tau2", "step": 2}]
    assert merge_configs(base + old_tau, new_tau, ("tau2",)) == base + new_tau
    assert merge_configs([], base, ("base",)) == base


def test_teacher_curves_of_runs_not_on_disk_are_kept(tmp_path):
    from gatekit import io as gio
    from training.gatebench import _teacher_curves, keep_other_runs

    old = [{"task": "pointmaze", "config": "base", "teacher_seed": 0, "epoch": e, "eval_success": 0.1 * e} for e in (1, 2)]
    new = [{"task": "car_maze", "config": "w256", "teacher_seed": 0, "epoch": 1, "eval_success": 0.5}]
    redo = [dict(old[0], eval_success=0.9)]
    assert keep_other_runs(old, new) == old + new
    assert keep_other_runs(old, redo) == redo  # a run measured again replaces all of its old rows
    gio.write_table(old, tmp_path / "teachers.csv")
    _teacher_curves(tmp_path, gb.CONFIGS)  # no teacher on disk: the recorded curves stay as they are
    assert gio.read_table(tmp_path / "teachers.csv") == old


def test_costs_reuse_recorded_student_timings_only_where_no_student_runs_are_left(tmp_path):
    from gatekit.errors import GatekitError

    rows = [{"task": "pointmaze", "config": "base", "teacher_seed": 0, "step": s, "wall_time": w, "score_seconds": 0.5}
            for s, w in ((1, 10.0), (2, 20.0))]
    recorded = {"pointmaze": {"student_epoch_seconds": 4.0, "student_first_epoch_extra": 1.0}}
    got = gb.costs(tmp_path, rows, recorded)["pointmaze"]
    assert got["teacher_seconds"] == 20.0 and got["student_epoch_seconds"] == 4.0
    assert got["score_seconds_per_checkpoint"] == 0.5
    with pytest.raises(GatekitError, match="no recorded costs for 'pointmaze'"):
        gb.costs(tmp_path, rows)
