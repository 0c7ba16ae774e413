"""training.teacher directly: RUN@STEP -> a frozen teacher, checked against the env."""

import types

import pytest
from conftest import NET

from gatekit.errors import GatekitError
from training.teacher import load_teacher


def test_load_teacher_reads_the_step_and_refuses_another_env(run_dir):
    env = types.SimpleNamespace(name="fake", obs_dim=NET["obs_dim"], goal_dim=NET["goal_dim"],
                                action_dim=NET["action_dim"])
    t = load_teacher(f"{run_dir}@200", env)
    assert t.step == 200 and t.path.endswith("teacher")
    assert load_teacher(str(run_dir), env).step == 300  # default: the last checkpoint
    with pytest.raises(GatekitError, match="net.action_dim"):
        load_teacher(str(run_dir), types.SimpleNamespace(**{**vars(env), "action_dim": NET["action_dim"] + 1}))
