"""Scale-free transforms, the plateau rule, the two decisions and leave-one-task-out, on
constructed sequences whose right answers are known by hand."""

import dataclasses
import math
import json
import pathlib

import numpy as np
import pytest

from gatekit.errors import GatekitError
from gatekit.transforms import dips, transform
from training.bench import methods


def test_transforms_are_online_and_scale_free():
    x = np.array([2.0, 3.0, 5.0, 5.5, 5.6, 5.6])
    for form in ("ratio_first", "range_position", "of_running_max", "relchange2"):
        full = transform(x, form)
        for i in range(1, len(x)):  # the value at i uses checkpoints 0..i only
            np.testing.assert_array_equal(transform(x[: i + 1], form), full[: i + 1])
        np.testing.assert_allclose(transform(10 * x, form), full, equal_nan=True)  # no units
    np.testing.assert_allclose(transform(x, "ratio_first"), x / 2)
    assert transform(x, "range_position")[2] == 1.0 and transform(x, "range_position")[3] == 1.0
    rel = transform(x, "relchange2")
    assert math.isnan(rel[0]) and math.isnan(rel[1])
    np.testing.assert_allclose(rel[2:], [3 / 2, 2.5 / 3, 0.6 / 5, 0.1 / 5.5])


def test_undefined_forms_are_nan_never_pass():
    assert np.isnan(transform([0.0, 1.0, 2.0], "ratio_first")).all()
    assert np.isnan(transform([1.0, 1.0, 1.0], "range_position")).all()
    assert np.isnan(transform([0.0, 1.0, 2.0], "relchange2")).all()
    rule = methods.gate_rule("m", "ratio_first", "above", -1.0, 1)
    run = _run("t", [0.0, 1.0, 2.0], [1, 1, 1])
    assert rule.pick(run) is None
    with pytest.raises(GatekitError, match="unknown transform"):
        transform([1.0], "log")


def test_plateau_rule_fires_where_the_curve_flattens():
    # rises fast, then flat from index 4: relative change over two checkpoints < 5% first at index 5
    x = [1.0, 2.0, 4.0, 7.0, 9.0, 9.2, 9.3, 9.3]
    rule = methods.gate_rule("m", "relchange2", "below", 0.05, 1)
    assert rule.pick(_run("t", x, [0] * 8)) == 6
    assert methods.gate_rule("m", "relchange2", "below", 0.05, 2).pick(_run("t", x, [0] * 8)) == 7


def test_transient_collapse_is_a_dip():
    assert dips([0.1, 0.43, 0.02, 0.33, 0.5]).tolist() == [False, False, True, False, False]
    assert not dips([0.1, 0.2, 0.3, 0.4]).any()
    assert not dips([0.0, 0.0, 0.0]).any()  # flat: no range, no dip
    assert not dips([0.5, 0.0]).any()  # a low last checkpoint cannot be confirmed transient


def test_pilot_pick_skips_a_collapse_and_takes_the_earliest_near_best():
    run = methods.TeacherRun(("t", "base", 0), np.arange(1, 7) * 10, {"p": np.array([0.1, 0.9, 0.05, 0.85, 0.95, 1.0])},
                              np.zeros(6), np.zeros((6, 1)))
    assert methods.PilotPick("p", 0.85).pick(run) == 1
    run.columns["p"][:] = [0.1, 0.5, 0.02, 0.9, 0.95, 1.0]  # the dip at 2 is not a pick; 3 is the first >= 0.85
    assert methods.PilotPick("p", 0.85).pick(run) == 3
    np.testing.assert_allclose(transform([1.0, 2.0, 1.0, 4.0], "of_running_max"), [1.0, 1.0, 0.5, 1.0])


def test_stop_and_choose_decisions():
    steps = np.arange(1, 6) * 10
    student = np.array([0.0, 0.2, 0.55, 0.6, 0.6])
    run = _run("t", np.zeros(5), student)
    run = methods.TeacherRun(run.key, steps, run.columns, run.student, run.student_seeds)
    outcome = lambda pick, d, r=run: (methods.decide(r, pick, d)["success"], methods.decide(r, pick, d)["saved"])  # noqa: E731
    assert outcome(2, "stop") == (True, pytest.approx(0.4))
    assert outcome(1, "stop") == (False, pytest.approx(0.6))
    assert outcome(None, "stop") == (False, 0.0)  # it should have fired
    climbing = dataclasses.replace(run, student=np.array([0.0, 0.1, 0.2, 0.3, 0.6]))
    assert outcome(None, "stop", climbing) == (True, 0.0)  # "not yet" was right
    assert outcome(4, "stop", climbing) == (True, 0.0)  # firing at the final = not before it
    assert outcome(3, "choose")[0] and not outcome(2, "choose")[0]
    assert outcome(None, "choose")[0]


def _run(task, stat, student, seed=0):
    student = np.asarray(student, dtype=float)
    return methods.TeacherRun((task, "base", seed), np.arange(1, len(student) + 1) * 100,
                               {"m": np.asarray(stat, dtype=float)}, student, student[:, None])


def test_leave_one_task_out_never_sees_the_held_out_task():
    # tasks a, b: the students are ready once m > 5; task c: only once m > 8. Fitted on all three
    # (leaking), the threshold moves to suit c; fitted on a and b only, c is stopped too early.
    m = [1.0, 3.0, 6.0, 7.0, 9.0, 10.0]
    early = [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    late = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    runs = [_run("a", m, early, s) for s in range(2)] + [_run("b", m, early, s) for s in range(2)] + \
           [_run("c", m, late, s) for s in range(3)]
    seen = []

    def spy(train, decision):
        seen.append({r.task for r in train})
        return methods.fit_series_rule(train, decision, ["m"], ("raw",), (1,))[0]

    res = methods.evaluate(runs, methods.Method("spy", spy), "stop")
    assert seen == [{"b", "c"}, {"a", "c"}, {"a", "b"}]
    assert res["per_group"]["c"]["success"] == 0.0  # held out, c gets a and b's threshold
    leaked, _ = methods.fit_series_rule(runs, "stop", ["m"], ("raw",), (1,))
    assert all(decide["success"] for decide in (methods.decide(r, leaked.pick(r), "stop") for r in runs[4:]))
    assert res["per_group"]["a"]["success"] == 1.0


def test_teacher_runs_from_rows_and_noise_floor():
    rows = [{"task": "t", "config": "base", "teacher_seed": 0, "step": s, "m": float(s),
             "student_outcome": v, "student_outcome_s0": v + 0.1, "student_outcome_s1": v - 0.1}
            for s, v in zip([300, 100, 200], [0.9, 0.1, 0.8])]
    (run,) = methods.teacher_runs(rows)
    assert run.steps.tolist() == [100, 200, 300] and run.student_seeds.shape == (3, 2)
    floor = methods.noise_floor([run], "choose")
    assert 0 <= floor["one_seed_oracle_success"] <= 1 and floor["relative_seed_std"] > 0
    with pytest.raises(GatekitError, match="needs >= 2"):
        methods.evaluate([run], methods.FINAL, "stop")


def _rows(values, evals=None, run="r"):
    return [{"run": run, "step": 100 * (i + 1), "m": v, **({"eval_success": evals[i]} if evals else {})}
            for i, v in enumerate(values)]


def test_select_never_recommends_a_transient_collapse():
    from gatekit import select
    from gatekit.io.gates import Gate

    gate = Gate(metric="m", direction="above", threshold=0.5, patience=1)
    # the metric passes at step 300, but the teacher's eval collapsed there (0.43 -> 0.02 -> 0.33)
    sel = select(_rows([0.1, 0.2, 0.9, 0.95, 0.97], [0.1, 0.43, 0.02, 0.33, 0.5]), gate=gate)
    assert sel.ready and sel.step == 400
    assert any("transient collapse" in w and "step 300" in w for w in sel.warnings)
    plain = select(_rows([0.1, 0.2, 0.9, 0.95, 0.97], [0.1, 0.2, 0.3, 0.4, 0.5]), gate=gate)
    assert plain.step == 300 and not any("collapse" in w for w in plain.warnings)


def test_select_warns_outside_the_fitted_range_and_says_why_not_ready():
    from gatekit import select
    from gatekit.io.gates import Gate

    gate = Gate(metric="m", direction="above", threshold=5.0, patience=1, fitted_on={"range": [1.0, 8.0]})
    inside = select(_rows([1.5, 3.0, 6.0, 7.0]), gate=gate)
    assert inside.ready and not any("outside" in w for w in inside.warnings)
    wide = select(_rows([0.1, 0.2, 0.3, 0.4]), gate=gate)  # another width: the metric never gets near
    assert wide.ready and wide.fallback and wide.step == 400  # the final checkpoint, as the record counts it
    assert any("outside [1, 8]" in w for w in wide.warnings)
    assert "outside the range it was fitted on" in wide.reason
    assert "no held-out record" in wide.confidence
    held = Gate(metric="m", direction="above", threshold=5.0, validation={"held_out": {"choose": 0.75, "text": "x"}})
    assert "75%" in select(_rows([6.0, 7.0]), gate=held).confidence


def test_scale_free_gate_in_select_and_hook_agree():
    from gatekit import select
    from gatekit.hooks import GateHook
    from gatekit.io.gates import Gate

    gate = Gate(metric="goal_rank", direction="below", threshold=0.05, patience=2, transform="relchange2")
    values = [1.0, 2.0, 4.0, 7.0, 9.0, 9.2, 9.3, 9.3]
    rows = [{"run": "r", "step": 100 * (i + 1), "goal_rank": v} for i, v in enumerate(values)]
    choice = select(rows, gate=gate)
    assert choice.step == 800 and "relchange2(goal_rank) = " in choice.reason  # the value the rule read, named so
    hook = GateHook.from_gate(gate)
    stops = [hook.update(r["step"], r) for r in rows]
    assert stops.index(True) == 7
    resumed = GateHook.from_gate(gate)  # a resume restores the history the transform needs
    for r in rows[:6]:
        resumed.update(r["step"], r)
    again = GateHook.from_gate(gate).load_state_dict(resumed.state_dict())
    assert [again.update(r["step"], r) for r in rows[6:]] == [False, True]
    assert "relchange2(goal_rank) <" in gate.rule


def test_gate_file_transform_round_trip(tmp_path):
    from gatekit.io.gates import Gate, read_gate, write_gate

    g = Gate(metric="goal_rank", direction="below", threshold=0.05, transform="ratio_first")
    assert read_gate(write_gate(g, tmp_path / "g.json")).transform == "ratio_first"
    with pytest.raises(GatekitError, match="transform"):
        Gate(metric="goal_rank", direction="below", threshold=0.05, transform="log")


def test_a_mistyped_metric_fails_before_scoring_with_a_suggestion(run_dir, monkeypatch):
    from gatekit import api, scoring

    for mod in (api, scoring):
        monkeypatch.setattr(mod, "score", lambda *a, **k: pytest.fail("scored before checking --metric"))
    with pytest.raises(GatekitError, match="did you mean 'goal_rank'"):
        api.select([run_dir], threshold=5.0, metric="goal_rnak", direction="above")


def test_select_is_trusted_only_with_a_good_held_out_record_and_no_warnings():
    from gatekit import select
    from gatekit.io.gates import Gate

    good = Gate(metric="m", direction="above", threshold=5.0, validation={"held_out": {"choose": 0.9}})
    weak = Gate(metric="m", direction="above", threshold=5.0, validation={"held_out": {"choose": 0.5}})
    assert select(_rows([1.0, 6.0, 7.0]), gate=good).trusted
    sel = select(_rows([1.0, 6.0, 7.0]), gate=weak)
    assert not sel.trusted and "only 50%" in sel.untrusted_because[0]
    assert "not trusted" in str(sel) and len(repr(sel)) < 300  # print(selection) is one line, not KBs
    warned = select(_rows([6.0, 7.0, 8.0]), gate=good)  # held from the first checkpoint: a warning
    assert warned.ready and not warned.trusted and "warning" in warned.untrusted_because[0]
    assert select(_rows([1.0, 2.0]), gate=good).to_dict()["trusted"] is False


def test_watch_waits_for_the_run_and_keeps_watching_unless_told_to_stop(run_dir, tmp_path):
    from gatekit.io.gates import Gate
    from gatekit.watch import watch

    gate = Gate(metric="step", direction="above", threshold=150, patience=1)  # crossed at the second checkpoint
    t = [0.0]

    def sleep(dt):
        t[0] += dt

    with pytest.raises(GatekitError, match="no run appeared there within 3 s"):
        list(watch(tmp_path / "not_yet", gate=gate, wait=3, sleep=sleep, clock=lambda: t[0]))
    assert t[0] > 3  # it waited
    t[0] = 0.0
    stopped = list(watch(run_dir, gate=gate, timeout=5, sleep=sleep, clock=lambda: t[0]))
    assert [e["step"] for e in stopped] == [100, 200]  # stops at the gate by default
    t[0] = 0.0
    kept = list(watch(run_dir, gate=gate, timeout=5, stop_at_gate=False, sleep=sleep, clock=lambda: t[0]))
    assert [e["step"] for e in kept] == [100, 200, 300] and [e["stop"] for e in kept] == [False, True, True]


def test_pairs_joins_your_own_students_with_teacher_scores(tmp_path):
    from typer.testing import CliRunner

    from conftest import write_run
    from gatekit.cli import app
    from gatekit.io import read_table

    run_dir = write_run(tmp_path / "teacher", steps=(100, 200, 300, 400, 500))
    runner = CliRunner()
    assert runner.invoke(app, ["score", str(run_dir), "--csv", str(tmp_path / "s.csv"), "-q"]).exit_code == 0
    (tmp_path / "st.csv").write_text("run,step,student_success\nteacher,100,0.1\nteacher,200,0.5\n"
                                     "teacher,300,0.9\nteacher,400,0.2\nteacher,500,0.8\nteacher,999,0.3\n")
    r = runner.invoke(app, ["pairs", "--scores", str(tmp_path / "s.csv"), "--students", str(tmp_path / "st.csv"),
                            "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 0, r.output
    assert "5 pairs" in r.output and "teacher@999" in r.output
    rows = read_table(tmp_path / "p.csv")
    assert [(x["step"], x["student_success"]) for x in rows][:3] == [(100, 0.1), (200, 0.5), (300, 0.9)]
    assert "goal_rank" in rows[0]
    fit = runner.invoke(app, ["fit", str(tmp_path / "p.csv"), "--metric", "goal_rank", "--label", "student_success",
                              "--label-above", "0.3", "--direction", "auto", "--n-boot", "0"])
    assert fit.exit_code == 0, fit.output
    (tmp_path / "bad.csv").write_text("run,step,student_success\nteacher,1.5,0.1\n")
    bad = runner.invoke(app, ["pairs", "--scores", str(tmp_path / "s.csv"), "--students", str(tmp_path / "bad.csv"),
                              "--out", str(tmp_path / "q.csv")])
    assert bad.exit_code == 1 and "integer step" in bad.output


def test_fit_on_a_large_table_says_the_bootstrap_takes_time_before_it_starts(tmp_path):
    from typer.testing import CliRunner

    from gatekit.cli import app

    rng = np.random.default_rng(0)
    n = 20_000
    lines = ["teacher_seed,m,o"] + [f"{i % 4},{x:.4f},{int(x > 0)}" for i, x in enumerate(rng.normal(size=n))]
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["fit", str(tmp_path / "big.csv"), "--metric", "m", "--label", "o",
                                 "--label-above", "0.5", "--group", "teacher_seed", "--n-boot", "0"])
    assert r.exit_code == 0 and "bootstrap draws" not in r.output
    r = CliRunner().invoke(app, ["fit", str(tmp_path / "big.csv"), "--metric", "m", "--label", "o",
                                 "--label-above", "0.5", "--n-boot", "5"])
    assert r.exit_code == 0 and "20,000 rows x 5 bootstrap draws" in r.output and "--n-boot 0" in r.output


@pytest.mark.parametrize("beats", [True, False])
def test_auto_is_the_default_gate_only_where_it_beats_the_final_checkpoint(tmp_path, monkeypatch, beats):
    from gatekit import api
    from gatekit.io import gates
    from gatekit.io.gates import Gate, write_gate

    monkeypatch.setattr(gates, "PRESET_DIR", tmp_path)
    write_gate(Gate(metric="entropy", direction="below", threshold=0.8, transform="ratio_first", name="auto",
                    validation={"held_out": {"choose": 0.9 if beats else 0.2, "beats_final_checkpoint": beats}}),
               tmp_path / "auto.json")
    if beats:
        assert api.resolve_gate(None, default_env="anything").name == "auto"
    else:
        with pytest.raises(GatekitError, match="no gate given.*gatekit race RUN"):
            api.resolve_gate(None, default_env="anything")


def test_auto_is_the_default_per_decision_and_the_refusal_says_why(tmp_path, monkeypatch):
    from gatekit import api
    from gatekit.io import gates
    from gatekit.io.gates import Gate, write_gate

    monkeypatch.setattr(gates, "PRESET_DIR", tmp_path)
    held = {"choose": 0.74, "stop": 0.15, "default_for": {"choose": True, "stop": False},
            "baselines": {"choose": {"final checkpoint": 0.56, "training step": 0.63, "fraction of budget": 0.48},
                          "stop": {"final checkpoint": 0.11, "training step": 0.19, "fraction of budget": 0.81}}}
    write_gate(Gate(metric="entropy", direction="below", threshold=0.8, name="auto", validation={"held_out": held}),
               tmp_path / "auto.json")
    assert api.resolve_gate(None, default_env="anything").name == "auto"  # select
    with pytest.raises(GatekitError, match="not the default for stop.*15%.*fraction of budget on 81%"):
        api.resolve_gate(None, default_env="anything", decision="stop")  # the hook, watch, --stop-at-gate
    with pytest.raises(GatekitError, match="decision must be one of"):
        api.resolve_gate(None, decision="halt")


def test_a_choose_rule_skips_transient_collapses_as_select_does():
    """The benchmark's record must describe the rule select applies: a checkpoint whose teacher
    eval collapses is never picked, by either."""
    from gatekit import selection
    from gatekit.io import Gate

    m = np.array([0.0, 1.0, 4.0, 4.0, 4.0])
    ev = np.array([0.1, 0.6, 0.05, 0.7, 0.7])  # step 300: a transient collapse
    steps = np.arange(1, 6) * 100
    run = methods.TeacherRun(("t", "base", 0), steps, {"m": m, "eval_success": ev}, m, m[:, None])
    assert methods.gate_rule("m", "raw", "above", 3.0, 1).pick(run) == 2  # online (stop): no guard
    assert methods.gate_rule("m", "raw", "above", 3.0, 1, guard=True).pick(run) == 3
    rows = [{"run": "t", "step": int(s), "m": float(v), "eval_success": float(e)} for s, v, e in zip(steps, m, ev)]
    sel = selection.select(rows, gate=Gate(metric="m", direction="above", threshold=3.0))
    assert sel.step == 400
    fitted, _ = methods.fit_series_rule([run], "choose", ["m"], ("raw",), (1,))
    assert fitted.guard and fitted.pick(run) != 2


def test_ship_records_writes_the_budget_stop_record_and_what_measuring_buys(tmp_path):
    """The presets' records come from one analysis: ``budget`` (the stopping tools' default) gets
    the shipped rule's stop record (the fitted fraction rule's beside it) and where it stopped; ``final`` names the measured
    rule with the lowest regret and the rule most folds fitted."""
    from training.bench import analysis

    from gatekit.io import read_gate
    from gatekit.selection import confidence, stop_record

    def res(method, decision, success, regret, kind="baseline", cost=0.0, rules=("r", "r"), fractions=(0.86, 0.85)):
        return {"method": method, "decision": decision, "group": "task", "kind": kind, "success": success,
                "success_ci": [success - 0.1, success + 0.1], "regret": regret, "regret_ci": [regret / 2, regret * 2],
                "saved": 0.14, "saved_ci": [0.13, 0.15], "cost": cost,
                "per_group": {t: {"success": success, "regret": regret, "saved": 0.14, "rule": r}
                              for t, r in zip(("a", "b"), rules)},
                "runs": [{"run": ["a", "base", i], "pick_fraction": f} for i, f in enumerate(fractions)]}

    rep = {"tasks": ["a", "b"], "n_runs": 2, "results": [
        res("final checkpoint", "choose", 0.58, 0.107), res("final checkpoint", "stop", 0.17, 0.2),
        res(analysis.RECORDED["paper"], "choose", 0.01, 0.9), res(analysis.RECORDED["paper"], "stop", 0.03, 0.9),
        res("fraction of budget", "stop", 0.72, 0.128), res(analysis.RECORDED["budget"], "stop", 0.71, 0.13),
        res("last 3", "choose", 0.67, 0.067, kind="measured", cost=0.15),
        res("last K", "choose", 0.74, 0.049, kind="measured", cost=0.35,
            rules=("the best student_outcome_mean of the last 6 checkpoints",) * 2)]}
    records = analysis.ship_records(rep, tmp_path, "data")
    budget = read_gate(tmp_path / "budget.json")
    assert budget.metric == "budget_fraction" and budget.threshold == 0.84  # the rule is unchanged
    held = budget.validation["held_out"]  # the shipped rule's own record, the fitted rule's beside it
    assert held["stop"] == records["budget"]["stop"] == 0.71 and held["fitted"]["stop"] == 0.72
    assert held["stopped_at"] == [0.85, 0.86] and "as shipped" in held["text"]
    assert "71%" in stop_record(budget) and "14%" in stop_record(budget)
    final = read_gate(tmp_path / "final.json")
    buys = final.validation["measuring"]
    assert buys["method"] == "last K" and buys["rule"] == "the best student_outcome_mean of the last 6 checkpoints"
    assert "Measuring would buy: last K (the best student_outcome_mean of the last 6" in confidence(final)
    assert "was right on 74%" in confidence(final) and "`gatekit race RUN --out DIR --last 6`" in confidence(final)


def _choose_rows(gains: dict[str, list[float]], tasks: int = 10, runs: int = 3) -> dict:
    """A results.json with the final checkpoint (regret 0.2 on every run) and rules whose per-task
    regret is 0.2 - gain[task]."""
    def row(method, kind, per_task):
        return {"decision": "choose", "group": "task", "method": method, "kind": kind,
                "runs": [{"run": [f"t{t}", 0, i], "regret": 0.2 - per_task[t]} for t in range(tasks) for i in range(runs)]}
    rows = [row("final checkpoint", "baseline", [0.0] * tasks)]
    rows += [row(m, "statistic", g) for m, g in gains.items()]
    return {"results": rows}


def test_the_default_rule_admits_only_fold_chosen_rules_at_a_corrected_level():
    from training.bench.spend import default_rule, must_beat_final

    steady = [0.05] * 10
    noisy = [0.06, 0.05, -0.02, 0.04, 0.07, 0.0, 0.03, 0.05, 0.01, 0.04]
    rep = _choose_rows({"student_grad_norm": [0.3] * 10, "best statistic": noisy, "best statistic (scale-free)": steady})
    # rule 5 (every zero-cost row, 95%) takes the row with the largest gain, chosen after seeing them all
    assert must_beat_final(rep)["default"] == "student_grad_norm"
    d = default_rule(rep)
    assert "student_grad_norm" not in d["rules"] and d["level"] == pytest.approx(0.975)
    assert d["default"] == "best statistic (scale-free)"  # the qualifying candidate with the larger gain
    assert d["rules"]["best statistic (scale-free)"]["qualifies"]
    # one candidate at 95% gives rule 5's interval for that row; the corrected level widens it
    one = default_rule(rep, candidates=["best statistic"])
    assert one["rules"]["best statistic"]["gain_ci"] == must_beat_final(rep)["rules"]["best statistic"]["gain_ci"]
    lo95 = one["rules"]["best statistic"]["gain_ci"][0]
    assert d["rules"]["best statistic"]["gain_ci"][0] < lo95
    # nothing qualifies: the final checkpoint is the default
    flat = _choose_rows({"best statistic": [0.05, -0.05] * 5, "best statistic (scale-free)": [0.0] * 10})
    assert default_rule(flat)["default"] == "final checkpoint"


def _flat(obj, key=""):
    """Nested dicts/lists as {path: leaf}, numbers as floats (None and strings as they are)."""
    if isinstance(obj, dict):
        return {k: v for name, x in obj.items() for k, v in _flat(x, f"{key}/{name}").items()}
    if isinstance(obj, list):
        return {k: v for i, x in enumerate(obj) for k, v in _flat(x, f"{key}/{i}").items()}
    return {key: float(obj) if isinstance(obj, (int, float)) and not isinstance(obj, bool) else obj}


def test_issue_43s_committed_figures_reproduce_from_the_dataset(tmp_path):
    """``python -m training.bench.spend`` on the 8 groups of ``spend_students8`` gives its committed
    frontier and verdicts exactly, and draws the frontier in students."""
    from training.bench import spend

    root = pathlib.Path(__file__).resolve().parents[1] / "examples/results/gatebench"
    committed = json.loads((root / "spend_students8/results.json").read_text())
    data = tmp_path / "data"
    data.mkdir()
    for task in committed["tasks"]:
        (data / f"{task}.npz").symlink_to(root / "data" / f"{task}.npz")
    spend.main(["--out", str(tmp_path / "out"), "--data", str(data), "--results", str(root / "dataset8/results.json")])
    got = json.loads((tmp_path / "out/results.json").read_text())
    for key in ("frontier", "verdicts", "must_beat_final"):  # equal up to float rounding across CPUs
        assert _flat(got[key]) == pytest.approx(_flat(committed[key]), rel=1e-9, abs=1e-12), key
    assert got["default_rule"]["default"] == "final checkpoint"  # rule 9 on 8 groups: nothing qualifies at 97.5%
    assert (tmp_path / "out/frontier.png").stat().st_size > 10_000
