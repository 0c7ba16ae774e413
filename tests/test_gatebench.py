"""The gate benchmark end to end on a tiny grid: real teachers, real students, the analysis
(leave-one-task-out), and the shipped auto gate read back by select."""

import dataclasses
import json

import numpy as np
import pytest

from training.bench import analysis, grid


@pytest.mark.slow
def test_tiny_gatebench_runs_analyzes_and_ships(tmp_path, monkeypatch):
    small = lambda t: dataclasses.replace(t, candidate=dataclasses.replace(t.candidate, epochs=3))  # noqa: E731
    monkeypatch.setattr(grid, "TASKS", {k: small(grid.TASKS[k]) for k in ("pointmaze", "momentum_maze")})
    for name, value in (("TEACHER_SEEDS", (0,)), ("CHECKPOINTS", 3), ("STUDENT_SEEDS", 2), ("STUDENT_EPOCHS", 2),
                        ("STUDENT_ITERATIONS", 1)):
        monkeypatch.setattr(grid, name, value)
    data = tmp_path / "data"
    res = grid.run(tmp_path / "runs", configs=("base",), data=data)
    assert len(analysis.collect(tmp_path / "runs", data)) == 6 and set(res["tasks"]) == {"pointmaze", "momentum_maze"}
    from gatekit import io as gio

    bench = gio.read_benchmark(data)
    assert bench["momentum_maze"].student.shape == (1, 3, 2, 2)  # teachers, checkpoints, seeds, epochs
    assert bench["pointmaze"].teacher_mu.dtype == "float16" and np.isfinite(bench["pointmaze"].student).all()
    # resume from committed data: with the run folders gone, nothing is trained again
    import shutil

    shutil.rmtree(tmp_path / "runs")
    again = grid.run(tmp_path / "runs", configs=("base",), data=data)
    assert len(analysis.collect(tmp_path / "runs", data)) == 6 and again["tasks"] == {} and not (tmp_path / "runs" / "pointmaze").exists()
    rep = analysis.analyze(tmp_path, data)
    by = {(r["method"], r["decision"]): r for r in rep["results"]}
    assert set(by[("training step", "stop")]["per_group"]) == {"pointmaze", "momentum_maze"}
    assert all(0 <= r["success"] <= 1 and r["cost"] is not None for r in rep["results"])
    assert "| training step | baseline |" in (tmp_path / "results.md").read_text()
    shipped = analysis.ship(tmp_path, tmp_path)
    from gatekit.io import read_gate

    gate = read_gate(tmp_path / "auto.json")
    assert gate.validation["held_out"]["choose"] == shipped["held_out"]["choose"]
    assert json.loads((tmp_path / "auto.json").read_text())["name"] == "auto"
    assert analysis.plot(tmp_path).exists()




@pytest.mark.parametrize("change, message", [
    (lambda rows: rows[1].update(student_outcome=float("nan")), "row 2: student_outcome is not a finite number"),
    (lambda rows: rows.append(dict(rows[0])), "rows 1 and 3 are the same checkpoint"),
    (lambda rows: rows[0].update(config="bogus"), "row 1: config 'bogus' is not one the grid declares"),
    (lambda rows: rows[0].update(step="abc"), "row 1: step is 'abc', not an integer"),
    (lambda rows: [r.pop("task") for r in rows], "no column"),
])
def test_an_ambiguous_or_damaged_pairs_table_is_refused_naming_the_rows(tmp_path, change, message):
    """Issue 34 item 9: NaN outcomes, duplicated rows and bogus configs changed the rates, exit 0."""
    from gatekit.errors import GatekitError

    rows = [{"task": "pointmaze", "config": "base", "teacher_seed": 0, "step": s, "student_outcome": 0.5,
             "student_outcome_s0": 0.5} for s in (100, 200)]
    change(rows)
    with pytest.raises(GatekitError, match=message):
        analysis.check_pairs(rows, "pairs.csv", tasks=set(grid.TASKS), configs=set(grid.CONFIGS))
