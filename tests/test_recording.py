"""training.recording directly: a hook's metric must be a column the trainer writes, checked
before the first epoch (no tracing needed for the statistics and eval columns)."""

import pytest

from gatekit.errors import GatekitError
from training.recording import check_gate_column


def test_gate_column_is_checked_with_a_did_you_mean():
    for ok in ("action_magnitude", "step", "eval_success"):
        check_gate_column(ok, trainer=None, teacher_actor=None)
    with pytest.raises(GatekitError, match="'action_magnitud' is not a column this trainer writes .*action_"):
        check_gate_column("action_magnitud", trainer=None, teacher_actor=None)
    with pytest.raises(GatekitError, match="not a column"):
        check_gate_column("cka_sa_final", trainer=None, teacher_actor=None)  # retrospective: not online
