"""gatekit.pairs directly: the declared label rules (never fitted)."""

import numpy as np
import pytest

from gatekit import pairs
from gatekit.errors import GatekitError

ROWS = [{"g": "a", "o": 1.0, "s": 0.1}, {"g": "a", "o": 0.4, "s": 0.2}, {"g": "b", "o": 10.0, "s": 0.3},
        {"g": "b", "o": 6.0, "s": 0.4}]


def test_relative_labels_are_relative_to_each_groups_best():
    lab = pairs.make_labels(ROWS, label="o", label_relative=0.5, group="g")
    assert lab.labels.tolist() == [1, 0, 1, 1] and lab.rule["kind"] == "relative"
    assert pairs.make_labels(ROWS, label="o", label_above=5.0).labels.tolist() == [0, 0, 1, 1]
    assert pairs.numeric_columns(ROWS, exclude=("o",)) == ["s"]


def test_a_non_binary_outcome_needs_a_declared_rule():
    with pytest.raises(GatekitError, match="not 0/1"):
        pairs.make_labels(ROWS, label="o")
    with pytest.raises(GatekitError, match="needs --group"):
        pairs.make_labels(ROWS, label="o", label_relative=0.5)
    np.testing.assert_array_equal(pairs.column(ROWS, "s", "t"), [0.1, 0.2, 0.3, 0.4])
