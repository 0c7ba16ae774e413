"""training.outcomes directly: a student's outcome read off its checkpoint's meta."""

import pytest

from training import outcomes


def test_outcomes_read_the_final_or_a_given_checkpoint(run_dir):
    # conftest's run: eval success i / 3 at checkpoint i (steps 100, 200, 300)
    assert outcomes.measure("eval_success")(run_dir) == pytest.approx(2 / 3)
    assert outcomes.final_eval_success(run_dir, step=100) == 0.0
    with pytest.raises(ValueError, match="unknown student outcome"):
        outcomes.measure("reward")
