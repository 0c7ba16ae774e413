"""gatekit.selection directly: the one pick (select's, and the benchmark's), its guard, and the
answer's trust, on runs whose right answers are known by hand."""

import math

import numpy as np
import pytest

from gatekit import selection
from gatekit.errors import GatekitError
from gatekit.io import Gate

STEPS = [100, 200, 300, 400, 500]


def test_pick_is_the_first_hold_of_the_gates_form():
    g = Gate("m", "above", 3.0)
    assert selection.pick(g, STEPS, [1.0, 2.0, 4.0, 5.0, 6.0]) == 2
    assert selection.pick(Gate("m", "above", 3.0, patience=2), STEPS, [1.0, 4.0, 2.0, 5.0, 6.0]) == 4
    assert selection.pick(g, STEPS, [1.0, None, math.nan, math.inf, 2.0]) is None  # none passes
    # a scale-free form: ratio to the first value
    assert selection.pick(Gate("m", "above", 2.5, transform="ratio_first"), STEPS, [2.0, 4.0, 6.0, 8.0, 9.0]) == 2


def test_the_guard_skips_a_transient_collapse_online_has_none():
    g = Gate("m", "above", 3.0)
    m = [0.0, 1.0, 4.0, 4.0, 4.0]
    ev = np.array([0.1, 0.6, 0.05, 0.7, 0.7])  # step 300: the teacher's eval collapses
    values, collapsed = selection.gate_values(g, m, ev)
    assert collapsed.tolist() == [False, False, True, False, False] and math.isnan(values[2])
    assert selection.pick(g, STEPS, m, ev) == 3
    assert selection.pick(g, STEPS, m, ev, guard=False) == 2  # online: a collapse needs the next checkpoint


def test_select_keeps_its_gate_and_agrees_with_pick():
    m, ev = [0.0, 1.0, 4.0, 4.0, 4.0], [0.1, 0.6, 0.05, 0.7, 0.7]
    rows = [{"run": "r", "step": s, "m": v, "eval_success": e} for s, v, e in zip(STEPS, m, ev)]
    g = Gate("m", "above", 3.0, name="mine")
    sel = selection.select(rows, gate=g)
    assert sel.gate is g and sel.rule == "m > 3"
    assert sel.step == STEPS[selection.pick(g, STEPS, m, np.array(ev))] == 400
    assert sel.to_dict()["gate"]["name"] == "mine"
    assert not sel.trusted and "the gate has no held-out record" in sel.untrusted_because
    with pytest.raises(GatekitError, match="no column 'x'"):
        selection.select(rows, gate=Gate("x", "above", 0.0))
