"""The two core ideas, each tested where it lives: the rule (gatekit.rule) and the statistics
registry with its one row builder (gatekit.statistics); the two defects the rebuild fixed; the
statistic selection behind the shipped gate; the training-side helpers behind the results."""

import json
import math
import pathlib

import numpy as np
import pytest

import gatekit
from gatekit import fitting, io, resolve, rule, statistics
from gatekit.errors import GatekitError
from gatekit.hooks import GateHook

ROOT = pathlib.Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("direction,values,expected", [
    ("below", [0.5, 0.63, 0.7, math.nan, -math.inf], [1, 0, 0, 0, 1]),
    ("above", [0.5, 0.63, 0.7, math.nan, math.inf], [0, 0, 1, 0, 1]),
])
def test_predict_and_passes_are_one_comparison(direction, values, expected):
    assert rule.predict(values, 0.63, direction).tolist() == expected
    # the scalar form agrees, except that non-finite values never pass one at a time
    scalar = [int(rule.passes(v, 0.63, direction)) for v in values]
    assert scalar == [e if math.isfinite(v) else 0 for v, e in zip(values, expected)]
    assert not rule.passes(None, 0.63, direction) and not rule.passes("0.1", 0.63, direction)


def test_rule_is_checked():
    for bad, match in [(dict(direction="sideways"), "direction"), (dict(threshold=math.nan), "finite"),
                       (dict(threshold=True), "number"), (dict(threshold="0.2"), "number"),
                       (dict(threshold=10 ** 400), "finite"), (dict(patience=0), "patience"),
                       (dict(patience=1.5), "patience"), (dict(metric=""), "metric")]:
        kw = {"metric": "m", "direction": "below", "threshold": 0.5, "patience": 1, **bad}
        with pytest.raises(GatekitError, match=match):
            rule.Rule(**kw)
    assert rule.Rule("goal_rank", "above", 5.84, 2).text == "goal_rank > 5.84 for 2 consecutive checkpoints"


def test_streak_counts_consecutive_passes_and_ignores_replays():
    r = rule.Rule("m", "above", 0.5, patience=2)
    s = rule.Streak(patience=2)
    seen = []
    for step, v in [(1, 0.9), (2, 0.1), (3, 0.9), (3, 0.1), (2, 0.9), (4, math.nan), (5, 0.8), (6, 0.7)]:
        s2 = rule.advance(s, step, v, r)
        assert s2 is not s or step <= (s.last_step or -1)  # pure: a new state unless replayed
        s = s2
        seen.append((s.count, s.held))
    # a replayed step (3 again, then 2) changes nothing; NaN resets; 5 and 6 hold
    assert seen == [(1, False), (0, False), (1, False), (1, False), (1, False), (0, False), (1, False), (2, True)]
    assert rule.first_hold([1, 2, 3, 4], [0.9, 0.1, 0.9, 0.9], r) == 3
    assert rule.first_hold([1, 2], [0.9, 0.1], r) is None


def test_select_hook_and_watch_share_the_streak(run_dir):
    # the same rule over the same values: select's pick equals the step where the hook stops when
    # the gate is crossed; a gate holding from the first checkpoint never stops the hook, while
    # select names that checkpoint and says the rule separates nothing
    rows = [{"run": "r", "step": s, "action_magnitude": v} for s, v in zip((1, 2, 3, 4), (0.9, 0.5, 0.4, 0.3))]
    g = io.Gate(metric="action_magnitude", direction="below", threshold=0.63, patience=2)
    sel = gatekit.select(rows, gate=g)
    hook = GateHook.from_gate(g)
    stopped = next(r["step"] for r in rows if hook.update(r["step"], r))
    assert sel.ready and sel.step == stopped == 3 and not sel.separates_nothing
    rows = gatekit.score(run_dir).rows
    always = io.Gate(metric="action_magnitude", direction="below", threshold=2.0, patience=2)
    sel = gatekit.select(rows, gate=always)
    hook = GateHook.from_gate(always)
    assert not any(hook.update(r["step"], r) for r in rows) and hook.held_at_start == rows[0]["step"]
    assert sel.step == rows[1]["step"] and sel.separates_nothing


def test_mode_is_a_deprecated_alias():
    with pytest.warns(FutureWarning, match="direction"):
        h = GateHook(metric="entropy", threshold=0.0, mode="above")
    assert h.direction == "above"
    state = {**h.state_dict()}
    state["mode"] = state.pop("direction")  # a hook state saved by gatekit 0.1
    assert GateHook.from_state_dict(state).direction == "above"


# ---------------------------------------------------------------------------- the registry


def test_every_name_list_comes_from_the_registry():
    names = [s.name for s in statistics.REGISTRY]
    assert len(names) == len(set(names)) == len(statistics.METRIC_NAMES)
    assert statistics.RETROSPECTIVE == {s.name for s in statistics.REGISTRY if s.group == "reference"}
    # every name against the previous checkpoint: the representation drift group, and the teacher's action drift
    assert set(statistics.DRIFT_COLUMNS) | {"action_drift_prev"} == {n for n in names if n.endswith("_prev")}
    assert set(statistics.STUDENT_COLUMNS) == {s.name for s in statistics.REGISTRY if s.group == "student"}
    assert all(statistics.timing(n) == "online" for n in statistics.DRIFT_COLUMNS)
    assert not set(names) & statistics.NOT_STATISTICS
    assert not set(statistics.BASELINES) & statistics.NOT_STATISTICS  # the baselines stay fittable
    for s in statistics.REGISTRY:
        # pure functions on arrays: NumPy in gatekit.metrics; the student side, which trains a network, in JAX
        assert s.group in statistics.GROUPS and s.function.startswith(("gatekit.metrics.", "gatekit.studentside."))


def test_checkpoint_row_layout():
    meta = {"epoch": 2, "env_steps": 640, "wall_time": 1.5, "eval": {"success": 0.5, "note": "x"},
            "train": {"infonce": 3.2, "flag": True}}
    row = statistics.checkpoint_row(640, meta, {"goal_rank": 4.0}, identity={"run": "r"},
                                    retrospective={"cka_sa": 0.9})
    assert list(row) == ["run", "step", "epoch", "env_steps", "wall_time", "goal_rank", "cka_sa", "eval_success",
                         "train_infonce"]
    with pytest.raises(GatekitError, match="meta epoch"):
        statistics.checkpoint_row(1, {"epoch": "one"}, {})


# ---------------------------------------------------------------------------- the two defects


SMALL = dict(depth=4, width=32, rep_dim=8, num_envs=16, iterations_per_epoch=2, updates_per_iteration=16,
             buffer_episodes=256, batch_size=64, eval_episodes=16, sample_size=128, env_kwargs=(("maze", "u"),))


def test_a_gate_on_a_train_column_works_in_select_the_hook_and_watch(tmp_path):
    # Before the rebuild, select accepted a gate on train_infonce, but the trainer's hook raised
    # "missing" after the first epoch (it saw the raw key 'infonce') and watch never passed.
    from gatekit.watch import watch
    from training.config import TrainConfig
    from training.trainer import train

    # a rule that passes everywhere: read at every checkpoint (never "missing"), it holds from the
    # first checkpoint on, so it is never crossed and never stops the teacher; each says so
    g = io.Gate(metric="train_infonce", direction="below", threshold=1e9, patience=2)
    hook = GateHook.from_gate(g)
    s = train(TrainConfig(**SMALL, epochs=3), tmp_path / "t", hook=hook, progress=None)
    assert not s["stopped_at_gate"] and s["epochs_done"] == 3 and hook.count == 0
    assert hook.held_at_start is not None and "separates nothing" in hook.note
    events = list(watch(tmp_path / "t", gate=g, interval=0.01, timeout=0.05))
    assert [e["passes"] for e in events] == [True] * 3 and not any(e["stop"] for e in events)
    assert events[0]["note"] and events[0]["step"] == hook.held_at_start
    sel = gatekit.select(tmp_path / "t", gate=g)
    assert sel.ready and sel.step in [e["step"] for e in events]  # select reads the column too


def test_stop_at_gate_given_no_gate_stops_at_the_budget_rule_and_says_so(monkeypatch, tmp_path):
    # Given no gate, --stop-at-gate uses the stop rule with the best held-out record (the budget
    # rule) for every env, and says which rule it is and its record; the point-maze gate, which
    # has no held-out record, only when named; auto, when its record makes it the default.
    from typer.testing import CliRunner

    import training.cli as cli

    ran = []
    monkeypatch.setattr(cli, "_run", lambda cfg, out, **kw: ran.append(kw.get("hook")))
    monkeypatch.setattr(resolve, "_auto_is_default", lambda decision="choose": False)
    budget = io.read_gate("budget")
    for i, extra in enumerate([["--preset", "paper-antbigmaze"], []]):
        r = CliRunner().invoke(cli.app, ["teacher", "--out", str(tmp_path / f"x{i}"), *extra, "--stop-at-gate"])
        assert r.exit_code == 0, r.output
        assert (ran[-1].metric, ran[-1].threshold) == (budget.metric, budget.threshold) == ("budget_fraction", 0.84)
        held = budget.validation["held_out"]
        assert "stopping at the gate budget" in r.output and f"stopped right on {held['stop']:.0%}" in r.output
    r = CliRunner().invoke(cli.app, ["teacher", "--out", str(tmp_path / "y"), "--stop-at-gate", "--gate", "pointmaze"])
    assert r.exit_code == 0 and ran[-1].metric == io.read_gate("pointmaze").metric
    assert "stopping at the gate pointmaze" in r.output
    monkeypatch.setattr(resolve, "_auto_is_default", lambda decision="choose": True)  # auto the default: it, for every env
    r = CliRunner().invoke(cli.app, ["teacher", "--out", str(tmp_path / "z"), "--preset", "paper-antbigmaze",
                                     "--stop-at-gate"])
    auto = io.read_gate("auto")
    assert r.exit_code == 0 and (ran[-1].metric, ran[-1].transform) == (auto.metric, auto.transform)


def test_the_budget_rule_stops_a_training_run_past_84_percent_of_its_planned_epochs(tmp_path):
    from gatekit.watch import watch
    from training.config import TrainConfig
    from training.trainer import train

    hook = GateHook.from_gate(io.read_gate("budget"))
    s = train(TrainConfig(**SMALL, epochs=7), tmp_path / "t", hook=hook, progress=None)
    assert s["stopped_at_gate"] and s["epochs_done"] == 6  # 6/7 = 0.857 > 0.84; 5/7 = 0.714 is not
    rows = gatekit.score(tmp_path / "t").rows
    assert [round(r["budget_fraction"], 3) for r in rows] == [round(e / 7, 3) for e in range(1, 7)]
    events = list(watch(tmp_path / "t", gate=io.read_gate("budget"), interval=0.01, timeout=0.05))
    assert [e["stop"] for e in events] == [False] * 5 + [True]
    with pytest.raises(GatekitError, match="budget_fraction.*planned"):  # a user's loop that forgot the column
        GateHook.from_gate(io.read_gate("budget")).update(100, {"epoch": 1})


# ---------------------------------------------------------------------------- fitting


def test_select_statistic_chooses_inside_each_fold():
    # 4 groups; 'good' separates every group at 0.5; 'tricky' equals it except in group d, where
    # it points the other way. On a, b, c the two tie (the first listed wins a tie), so the fold
    # that holds d out, seeing only a, b, c, picks 'tricky' and gets d wrong. Choosing the
    # statistic on all groups (leaking d into its own fold) would pick 'good' and score 1.0.
    groups = np.repeat(list("abcd"), 4)
    labels = np.tile([0, 0, 1, 1], 4)
    good = np.tile([0.1, 0.2, 0.8, 0.9], 4)
    tricky = np.where(groups == "d", np.tile([0.9, 0.8, 0.2, 0.1], 4), good)
    res = fitting.select_statistic({"tricky": tricky, "good": good}, labels, groups)
    assert [f["metric"] for f in res["folds"]] == ["good", "good", "good", "tricky"]
    assert res["accuracy"] == 12 / 16 and res["folds"][3]["correct"] == 0
    assert res["choice"]["metric"] == "good"  # on all groups, d counts against 'tricky'

    with pytest.raises(GatekitError, match="3 groups"):
        fitting.select_statistic({"good": good[:8]}, labels[:8], groups[:8])


def test_the_shipped_gate_is_what_nested_selection_fits_on_its_committed_table():
    pairs = ROOT / "examples/results/calibrate_pointmaze/pairs.csv"
    shipped = io.read_gate("pointmaze")
    label = dict(label="student_success", label_relative=0.8, group="teacher_seed")
    nested = gatekit.api.fit_nested(pairs, **label)
    c = nested["choice"]
    assert (c["metric"], c["direction"], c["threshold"]) == (shipped.metric, shipped.direction, shipped.threshold)
    assert nested["accuracy"] == shipped.validation["nested_selection"]["accuracy"]
    assert nested["beats_baseline"] is shipped.validation["beats_baseline"] is False
    fit = gatekit.fit(pairs, metric=c["metric"], direction=c["direction"], n_boot=2000, **label)
    assert fit.threshold == shipped.threshold and fit.auc == shipped.validation["in_sample"]["auc"]
    assert list(fit.auc_ci) == shipped.validation["in_sample"]["auc_ci"]
    assert io.sha256_file(pairs) == shipped.fitted_on["sha256"]


# ---------------------------------------------------------------------------- training helpers


def test_gate_epoch_is_a_sustained_crossing():
    from training.sweep import gate_epoch

    rows = [{"epoch": e, "student_outcome": v} for e, v in [(3, 5.0), (1, 0.0), (2, 6.0), (4, 7.0)]]
    assert gate_epoch(rows, 4.0) == 2  # epoch 2 and everything after clear 4
    rows.append({"epoch": 5, "student_outcome": 1.0})  # a late collapse: nothing is sustained
    assert gate_epoch(rows, 4.0) is None
    assert gate_epoch([{"epoch": 1, "student_outcome": 4.0}], 4.0) is None
    assert gate_epoch([{"epoch": 1, "student_outcome": 4.0}], 4.0, inclusive=True) == 1


def test_pair_table_pairs_each_checkpoint_with_its_students(tmp_path):
    from training import calibrate
    from training.config import TrainConfig

    teacher = calibrate.train_teacher(TrainConfig(**SMALL, epochs=2), tmp_path / "teacher", seed=3)
    student = TrainConfig(**{**SMALL, "depth": 4, "width": 16}, epochs=1, lambda_pi=1.0)
    rows = calibrate.pair_table([teacher], student, tmp_path / "students", student_seeds=2)
    steps = gio_steps(teacher)
    assert [r["step"] for r in rows] == steps and all(r["teacher_seed"] == 3 for r in rows)
    for r in rows:
        per_seed = [r["student_success_s0"], r["student_success_s1"]]
        assert r["student_success"] == pytest.approx(np.mean(per_seed)) and all(0 <= v <= 1 for v in per_seed)
        run = tmp_path / "students" / f"teacher@{r['step']}_s1"
        assert json.loads((run / "run.json").read_text())["teacher_step"] == r["step"]
    again = calibrate.pair_table([teacher], student, tmp_path / "students", student_seeds=2)  # reused, same
    assert [r["student_success"] for r in again] == [r["student_success"] for r in rows]


def gio_steps(run_dir):
    return io.list_checkpoints(io.read_run(run_dir))[0]
