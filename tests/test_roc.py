"""gatekit.roc directly: ROC/AUC, Youden's threshold, the exact interval, on hand-made data."""

import numpy as np
import pytest

from gatekit import roc


def test_a_perfect_separator_below():
    values = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    labels = np.array([1, 1, 1, 0, 0, 0])  # small values are positive: the paper's "below"
    *_, auc = roc.roc(values, labels, "below")
    assert auc == 1.0 and roc.auto_direction(values, labels) == "below"
    j, threshold, _ = roc.youden(values, labels, "below")
    assert j == 1.0 and threshold == pytest.approx(0.5)
    assert roc.accuracy_at(values, labels, threshold, "below") == 1.0
    assert roc.confusion(values, labels, 0.25, "below") == {"tp": 2, "fp": 0, "tn": 3, "fn": 1}


def test_clopper_pearson_brackets_the_rate():
    lo, hi = roc.clopper_pearson(8, 10)
    assert lo < 0.8 < hi and 0.4 < lo and hi < 1.0
    assert roc.clopper_pearson(0, 10)[0] == 0.0 and roc.clopper_pearson(10, 10)[1] == 1.0
