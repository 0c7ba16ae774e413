"""The fair judge (gatekit.judge): picks judged by student seeds the rule did not read; regret;
bootstrap intervals over task groups."""

import math

import numpy as np
import pytest

from gatekit import judge
from training.bench import methods, races
from gatekit.errors import GatekitError


def test_seed_splits_never_let_a_rule_read_its_judge():
    for n, uses in ((3, 0), (3, 1), (3, 2), (4, 2)):
        splits = judge.seed_splits(n, uses)
        assert all(j not in used and len(used) == uses for used, j in splits)
        assert sorted({j for _, j in splits}) == list(range(n))  # every seed judges
    assert len(judge.seed_splits(3, 2)) == 3 and len(judge.seed_splits(4, 2)) == 12
    with pytest.raises(GatekitError, match="cannot be judged"):
        judge.seed_splits(3, 3)


def test_regret_and_decisions_by_hand():
    judged = np.array([0.2, 0.8, 0.5, 0.6])
    steps = np.array([1, 2, 3, 4])
    assert judge.regret(judged, 1) == 0.0
    assert judge.regret(judged, None) == pytest.approx(1 - 0.6 / 0.8)  # None: the final checkpoint
    assert judge.regret(np.zeros(3), 0) == 0.0
    assert judge.judge_pick(judged, steps, 1, "choose") == {"success": True, "regret": 0.0, "saved": 0.0}
    assert not judge.judge_pick(judged, steps, 2, "choose")["success"]  # 0.5 < 0.95 x 0.8
    stop = judge.judge_pick(judged, steps, 1, "stop")  # 0.8 >= 0.9 x 0.6 (final), stopped at step 2 of 4
    assert stop["success"] and stop["saved"] == pytest.approx(0.5)
    assert not judge.judge_pick(judged, steps, None, "stop")["success"]  # it should have fired


def _run(task, seeds):
    seeds = np.asarray(seeds, dtype=float)  # [checkpoint, seed]
    cols = {f"student_outcome_s{k}": seeds[:, k] for k in range(seeds.shape[1])}
    cols["step"] = np.arange(1, len(seeds) + 1) * 100.0
    return methods.TeacherRun((task, "base", 0), cols["step"], cols, seeds.mean(axis=1), seeds)


def test_a_rule_reading_students_is_judged_by_the_others():
    # Seed 0's student at checkpoint 1 is a lucky outlier; seeds 1 and 2 say the final is best.
    lucky = [[0.1, 0.1, 0.1], [1.0, 0.2, 0.2], [0.5, 0.9, 0.9]]
    runs = [_run(t, lucky) for t in ("a", "b")]
    rule = races.LastBest("student_outcome_mean", 3)
    # judged by the same seed it read, the rule is always right ...
    self_judged = [judge.judge_pick(r.student_seeds[:, k], r.steps, rule.pick(r.seeds_view([k])), "choose")["success"]
                   for r in runs for k in range(3)]
    assert np.mean(self_judged) == 1.0
    # ... judged by a seed it did not read, it is right only when neither seed is the lucky one:
    # (read 2, judge 1) and (read 1, judge 2); reading 0 picks checkpoint 1 (0.2 for the others),
    # and seed 0 as the judge rejects the final (0.5 of its 1.0)
    method = races.measured_method("1 student, all", "student_outcome_mean", uses=1, student_epochs=8, k=3)
    res = methods.evaluate(runs, method, "choose")
    assert res["success"] == pytest.approx(2 / 6)
    assert res["regret"] == pytest.approx((0.5 + 0.5 + 2 * (1 - 0.2 / 0.9)) / 6)
    # a view hides every seed the rule may not read
    view = runs[0].seeds_view([2])
    assert "student_outcome_s1" not in view.columns and view.series("student_outcome_s0")[1] == 0.2
    assert np.isnan(runs[0].seeds_view([]).student).all()


def test_bootstrap_interval_over_groups():
    groups = ["a"] * 3 + ["b"] * 3 + ["c"] * 2
    same = [1.0, 0.0, 0.5] * 2 + [0.25, 0.75]  # every group's mean is 0.5: no spread between groups
    assert judge.bootstrap_interval(same, groups) == pytest.approx((0.5, 0.5))
    values = [1, 1, 1, 0, 0, 0, 1, 0]
    lo, hi = judge.bootstrap_interval(values, groups)
    assert lo < np.mean(values) < hi and 0 <= lo and hi <= 1
    assert judge.bootstrap_interval(values, groups) == (lo, hi)  # seeded
    assert all(math.isnan(x) for x in judge.bootstrap_interval([1, 0], ["a", "a"]))
    with pytest.raises(GatekitError, match="differ in shape"):
        judge.bootstrap_interval([1, 0], ["a"])


def test_successive_halving_keeps_the_true_best_when_the_rungs_rank_right():
    """Racing from the last 4 checkpoints: the early rung's ranking agrees with the full budget's,
    so halving keeps the true best (checkpoint 5) while training fewer student epochs."""
    curves = np.array([[0.1, 0.2, 0.3], [0.2, 0.3, 0.4], [0.1, 0.5, 0.7], [0.3, 0.6, 0.9],
                       [0.2, 0.4, 0.5], [0.4, 0.7, 0.95]])  # [checkpoint, epoch] at epochs 1, 2, 8
    cols = {f"student_e{e}_s0": curves[:, j] for j, e in enumerate((1, 2, 8))}
    cols.update({f"student_e{e}_s1": curves[:, j] for j, e in enumerate((1, 2, 8))})
    seeds = np.stack([curves[:, 2], curves[:, 2]], axis=1)
    run = methods.TeacherRun(("t", "base", 0), np.arange(1, 7) * 100, cols, seeds.mean(1), seeds)
    rule = races.Halving(4, (2, 8))
    assert rule.pick(run.seeds_view([0])) == 5
    assert rule.epochs_used == 4 * 2 + 2 * 6 < 4 * 8  # 4 to epoch 2, the better 2 on to 8
    # a rung that ranks wrong: at epoch 1 checkpoint 5 looks worst of the last 4, so a 1-then-8
    # race over the last 2 drops it
    assert races.Halving(2, (1, 8)).pick(run.seeds_view([0])) == 5  # 4 vs 5 at epoch 1: 0.2 < 0.4
    cols["student_e1_s0"] = np.array([0.1, 0.2, 0.1, 0.3, 0.9, 0.0])
    run = methods.TeacherRun(("t", "base", 0), np.arange(1, 7) * 100, cols, seeds.mean(1), seeds)
    assert races.Halving(2, (1, 8)).pick(run.seeds_view([0])) == 4


def test_gp_posterior_by_hand():
    # one observation: the posterior mean moves from the prior by signal^2 / (signal^2 + noise^2)
    # of the gap, at the point and, times the correlation, elsewhere
    k = np.array([[1.0, 0.5], [0.5, 1.0]])
    mean, sd = races.gp_posterior(k, np.array([0.5, 0.5]), [1], np.array([0.9]), signal=0.2, noise=0.1)
    w = 0.04 / (0.04 + 0.01)
    assert mean[1] == pytest.approx(0.5 + w * 0.4) and mean[0] == pytest.approx(0.5 + 0.5 * w * 0.4)
    assert sd[1] == pytest.approx(math.sqrt(0.04 - 0.04 * w)) and sd[0] > sd[1]


def test_the_gp_race_finds_a_best_checkpoint_far_from_the_final_and_reads_only_its_students():
    """Checkpoints on a line (action distance |i - j|); the students peak at checkpoint 3 and the
    final is poor. With every checkpoint measurable the race must end on the peak; with one student
    it can only take the final; it never picks a checkpoint it did not measure."""
    steps = np.arange(1, 9) * 100
    y = np.array([0.1, 0.3, 0.6, 0.9, 0.7, 0.5, 0.4, 0.3])
    cols = {f"action_dist_c{j}": np.abs(np.arange(8) - j).astype(float) for j in range(8)}
    cols.update(student_outcome_s0=y, student_outcome_s1=y)
    run = methods.TeacherRun(("t", "base", 0), steps, cols, y, np.stack([y, y], axis=1))
    assert races.GPRace(8).pick(run.seeds_view([0])) == 3
    assert races.GPRace(1).pick(run.seeds_view([0])) == 7
    picks = {races.GPRace(n).pick(run.seeds_view([0])) for n in range(1, 9)}
    assert picks <= set(range(8)) and 3 in picks
    # no action distances (an older table): no GP race, the final checkpoint
    bare = methods.TeacherRun(("t", "base", 0), steps, {"student_outcome_s0": y}, y, y[:, None])
    assert races.GPRace(3).pick(bare.seeds_view([0])) is None
