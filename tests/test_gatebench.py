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
    assert read_gate(tmp_path / "budget.json").validation["held_out"]["stop"] == shipped["records"]["budget"]["stop"]
    assert analysis.plot(tmp_path).exists()




@pytest.mark.slow
def test_a_task_interrupted_between_configs_resumes_from_its_parts_on_a_fresh_machine(tmp_path, monkeypatch):
    """Issue 31: run folders do not survive to the next session's machine. Each teacher's part is
    written when its students finish; a task stopped after its first config and rerun with every
    run folder gone trains only what has no part, and the merged task holds the part unchanged."""
    from gatekit import io as gio
    from training.bench import data as benchdata

    task = dataclasses.replace(grid.TASKS["pointmaze"], candidate=dataclasses.replace(
        grid.TASKS["pointmaze"].candidate, epochs=2), student_eval_episodes=16)
    for name, value in (("TEACHER_SEEDS", (0,)), ("CHECKPOINTS", 2), ("STUDENT_SEEDS", 1), ("STUDENT_EPOCHS", 2),
                        ("STUDENT_ITERATIONS", 1)):
        monkeypatch.setattr(grid, name, value)
    real, trained = grid.run_jobs, []

    def stop_at_tau2(jobs, **kw):
        if any("/tau2/" in str(j.path) for j in jobs):
            raise KeyboardInterrupt("the machine went away")
        trained.extend(str(j.path) for j in jobs if not (j.path / "run.json").exists())
        return real(jobs, **kw)

    monkeypatch.setattr(grid, "run_jobs", stop_at_tau2)
    data, configs = tmp_path / "data", ("base", "tau2")
    parts = benchdata.part_dir(data, "pointmaze")
    with pytest.raises(KeyboardInterrupt):
        grid.run_task(task, configs, tmp_path / "runs1", data=data)
    assert sorted(p.name for p in parts.glob("*.npz")) == ["base_seed0.npz", "baseline.npz", "probe.npz"]
    assert not (data / "pointmaze.npz").exists()
    _, base_part = gio.read_benchmark_part(parts / "base_seed0.npz")

    monkeypatch.setattr(grid, "run_jobs", lambda jobs, **kw: (trained.extend(
        str(j.path) for j in jobs if not (j.path / "run.json").exists()), real(jobs, **kw))[1])
    trained.clear()
    assert grid.run_task(task, configs, tmp_path / "runs2", data=data)  # a fresh machine: no run folders
    assert trained and all("/tau2" in p for p in trained if "/students/" not in p)
    assert all("tau2_seed0" in p for p in trained if "/students/" in p)  # no base student again, no baseline
    assert not parts.exists()
    bt = gio.read_benchmark_task(data / "pointmaze.npz")
    assert bt.teachers == [("base", 0), ("tau2", 0)] and "derived" in bt.arrays
    for k, v in base_part.items():
        np.testing.assert_array_equal(bt.arrays[k][:1] if k != "columns" else bt.arrays[k], v, err_msg=k)
    assert bt.meta["parts"]["base_seed0.npz"]["made"] and bt.meta["wall_seconds"] > 0


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
