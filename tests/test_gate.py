"""fit_threshold / select / GateHook against sklearn, scipy and hand-derived values."""

import json

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from gatekit import api, fitting, roc, rule
from gatekit.errors import GatekitError
from gatekit.hooks import GateHook

# A paper-like set: 21 conditions, 3 seeds, success when action magnitude is low (with noise).
rng = np.random.default_rng(3)
VALUES = np.concatenate([np.linspace(0.9, 0.5, 7) + rng.normal(0, 0.04, 7) for _ in range(3)])
LABELS = (VALUES + rng.normal(0, 0.05, 21) < 0.63).astype(int)
GROUPS = np.repeat(["s0", "s1", "s2"], 7)


def brute_auc(values, labels):
    # P(value_pos < value_neg) + 0.5 P(tie): the Mann-Whitney form, pair by pair
    pos, neg = values[labels == 1], values[labels == 0]
    wins = sum((p < n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_matches_sklearn_and_brute_force():
    r = fitting.fit_threshold(VALUES, LABELS, n_boot=100)
    assert r.auc == pytest.approx(roc_auc_score(LABELS, -VALUES))
    assert r.auc == pytest.approx(brute_auc(VALUES, LABELS))
    assert fitting.fit_threshold(-VALUES, LABELS, direction="above", n_boot=100).auc == pytest.approx(r.auc)


def test_threshold_hand_example_and_consistency():
    # sorted values .3 .4 .5 | .7 .8 .9 ; only the cut between .5 and .7 separates: J = 1, thr = .6
    r = fitting.fit_threshold([0.9, 0.8, 0.7, 0.5, 0.4, 0.3], [0, 0, 0, 1, 1, 1], n_boot=50)
    assert r.threshold == pytest.approx(0.6)
    assert r.youden_j == 1.0 and r.accuracy == 1.0 and r.auc == 1.0
    assert r.plateau == [(0.5, 0.7)]
    assert r.confusion == {"tp": 3, "fp": 0, "tn": 3, "fn": 0}


def test_youden_plateau_and_recomputed_rates():
    # values .1(1) .2(0) .3(1) .4(0): cuts .05 J=0 ; .15 J=.5 ; .25 J=0 ; .35 J=.5 ; .45 J=0
    r = fitting.fit_threshold([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], n_boot=50)
    assert r.youden_j == pytest.approx(0.5)
    assert r.plateau == [(0.1, 0.2), (0.3, 0.4)]
    # recompute TPR / FPR from the returned threshold
    pred = rule.predict([0.1, 0.2, 0.3, 0.4], r.threshold)
    tpr = pred[[0, 2]].mean()
    fpr = pred[[1, 3]].mean()
    assert tpr - fpr == pytest.approx(r.youden_j)


def test_fit_statistics_match_scipy():
    outcomes = 400 * (1 - VALUES) + rng.normal(0, 10, 21)
    r = fitting.fit_threshold(VALUES, LABELS, groups=GROUPS, outcomes=outcomes, fixed_threshold=0.63, n_boot=300)
    ref = stats.spearmanr(VALUES, outcomes)
    assert r.spearman_rho == pytest.approx(ref.statistic) and r.spearman_p == pytest.approx(ref.pvalue)
    acc = np.mean((VALUES < 0.63) == LABELS)
    assert r.fixed_rule["accuracy"] == pytest.approx(acc)
    assert r.logo["n"] == 21
    json.dumps(r.to_dict())  # JSON-ready
    assert r.auc_ci[0] <= r.auc <= r.auc_ci[1] + 1e-12


def test_clopper_pearson_paper_example():
    # the paper's 16 of 21 conditions right: exact (Clopper-Pearson) 95% CI [0.53, 0.92]
    lo, hi = roc.clopper_pearson(16, 21)
    assert (round(lo, 2), round(hi, 2)) == (0.53, 0.92)
    assert roc.clopper_pearson(21, 21)[1] == 1.0


def test_bootstrap_is_reproducible_and_seeded():
    a = roc.bootstrap_auc_ci(VALUES, LABELS, groups=GROUPS, n_boot=200, rng=7)
    b = roc.bootstrap_auc_ci(VALUES, LABELS, groups=GROUPS, n_boot=200, rng=7)
    assert a == b
    # stratified draws are fine-grained enough that another seed moves the CI
    c = roc.bootstrap_auc_ci(VALUES, LABELS, n_boot=200, rng=7)
    d = roc.bootstrap_auc_ci(VALUES, LABELS, n_boot=200, rng=8)
    assert c == roc.bootstrap_auc_ci(VALUES, LABELS, n_boot=200, rng=np.random.default_rng(7)) and c != d


def test_leave_one_group_out_hand_example():
    # group a: .2(1) .8(0); group b: .3(1) .7(0); group c: .4(1) .6(0)
    # without a: .3 .4 | .6 .7 -> cut (.4+.6)/2 = .5 ; without b: .2 .4 | .6 .8 -> .5 ;
    # without c: .2 .3 | .7 .8 -> .5 ; each held-out pair is then classified correctly.
    v = [0.2, 0.8, 0.3, 0.7, 0.4, 0.6]
    r = fitting.leave_one_group_out(v, [1, 0, 1, 0, 1, 0], ["a", "a", "b", "b", "c", "c"])
    assert r["accuracy"] == 1.0 and r["n"] == 6
    assert [f["threshold"] for f in r["folds"]] == pytest.approx([0.5, 0.5, 0.5])


@pytest.mark.parametrize(
    "values,labels,kw,match",
    [
        ([0.1, 0.2, 0.3, 0.4], [1, 1, 1, 1], {}, "single class"),
        ([0.1, np.nan, 0.3, 0.4], [1, 0, 1, 0], {}, "NaN"),
        ([0.1, 0.2, 0.3], [1, 0, 1], {}, "at least 4"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1], {}, "inconsistent"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 2, 0], {}, "0/1"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], {"direction": "sideways"}, "direction"),
    ],
)
def test_degenerate_input_raises(values, labels, kw, match):
    with pytest.raises(GatekitError, match=match):
        fitting.fit_threshold(values, labels, **kw)


def rows(run, values, start=100):
    return [{"run": run, "step": start * (i + 1), "epoch": i + 1, "action_magnitude": v} for i, v in enumerate(values)]


def test_select_patience_and_multiple_runs():
    a = rows("a", [0.9, 0.6, 0.7, 0.5, 0.4])
    b = rows("b", [0.8, 0.7, 0.62, 0.61, 0.3])
    s = api.select(a + b, threshold=0.63, metric="action_magnitude")
    assert (s.ready, s.run, s.step) == (True, "a", 200)
    s2 = api.select(a + b, threshold=0.63, metric="action_magnitude", patience=2)
    # a passes at 400, 500 -> held at 500 ; b passes at 300, 400 -> held at 400 -> b wins
    assert (s2.run, s2.step, s2.epoch) == ("b", 400, 4)
    assert "2 consecutive" in s2.reason


def test_select_answers_the_final_checkpoint_when_the_rule_never_holds():
    s = api.select(rows("a", [0.9, 0.8, float("nan"), 0.7]), threshold=0.63, metric="action_magnitude")
    assert s.ready and s.fallback and s.step == 400
    assert "final checkpoint" in s.reason and "0.7" in s.reason
    with pytest.raises(GatekitError, match="no column"):
        api.select(rows("a", [0.5]), threshold=0.63, metric="entropy")


def test_hook_patience_start_step_and_resume():
    hook = GateHook(threshold=0.63, patience=2, start_step=200)
    assert not hook.update(100, {"action_magnitude": 0.1})  # before start_step: not counted
    assert not hook.update(200, {"action_magnitude": 0.5})
    assert not hook.update(300, {"action_magnitude": 0.7})  # resets
    assert not hook.update(400, {"action_magnitude": 0.5})
    state = json.loads(json.dumps(hook.state_dict()))  # survives JSON
    resumed = GateHook(threshold=0.63, patience=2, start_step=200).load_state_dict(state)
    assert not resumed.update(400, {"action_magnitude": 0.1})  # replayed step ignored
    assert resumed.update(500, {"action_magnitude": 0.55})
    assert resumed.stopped_step == 500 and resumed.update(600, {"action_magnitude": 0.9})
    fresh = GateHook(threshold=0.63, patience=2, start_step=200)
    assert not fresh.update(500, {"action_magnitude": 0.55})  # without the state it restarts
    assert GateHook.from_state_dict(state).count == 1


def test_hook_errors():
    with pytest.raises(GatekitError, match="missing"):
        GateHook().update(1, {"entropy": 0.1})
    assert not GateHook(strict=False).update(1, {"action_magnitude": float("nan")})
    with pytest.raises(GatekitError, match="threshold"):
        GateHook(threshold=0.5).load_state_dict(GateHook().state_dict())


def test_youden_matches_brute_force_on_random_data():
    # the O(n log n) cumulative-count search against a cut-by-cut brute force
    r = np.random.default_rng(11)
    for direction in ("below", "above"):
        v = np.round(r.normal(size=60), 1)  # many ties
        lab = (v + r.normal(0, 0.7, 60) < 0).astype(int)
        j, thr, _ = roc.youden(v, lab, direction)
        u = np.unique(v)
        cuts = np.concatenate([[u[0] - 1], (u[:-1] + u[1:]) / 2, [u[-1] + 1]])
        brute = max(rule.predict(v, c, direction)[lab == 1].mean() - rule.predict(v, c, direction)[lab == 0].mean()
                    for c in cuts)
        assert j == pytest.approx(brute)
        p = rule.predict(v, thr, direction)
        assert p[lab == 1].mean() - p[lab == 0].mean() == pytest.approx(j)
    assert fitting.fit_threshold(VALUES, LABELS, n_boot=0).auc_ci_draws == 0
