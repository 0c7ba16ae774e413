"""Pilot verification: real short students distilled from real teacher checkpoints."""

import json

import pytest

from gatekit.errors import GatekitError
from training import pilot
from training.config import TrainConfig
from training.trainer import train

SMALL = dict(env="pointmaze", env_kwargs=(("maze", "u"),), depth=4, width=16, rep_dim=8, num_envs=4,
             iterations_per_epoch=1, updates_per_iteration=2, batch_size=32, eval_episodes=4, sample_size=32)


def test_pilot_epochs_is_a_share_of_the_budget():
    assert pilot.pilot_epochs(8, 0.25) == 2 and pilot.pilot_epochs(8, 0.1) == 1 and pilot.pilot_epochs(4, 1.0) == 4
    with pytest.raises(GatekitError, match="--fraction"):
        pilot.pilot_epochs(8, 0.0)


@pytest.mark.slow
def test_verify_trains_measured_pilots_and_picks_a_candidate(tmp_path):
    teacher = train(TrainConfig(**SMALL, epochs=3, seed=1), tmp_path / "t", progress=None)["run_dir"]
    student = TrainConfig(**SMALL, epochs=4, lambda_pi=1.0)
    res = pilot.verify(teacher, out=tmp_path / "p", last=2, fraction=0.5, student_cfg=student, seeds=2)
    assert res["pilot_epochs"] == 2 and len(res["pilots"]) == 2
    assert all(len(p["pilots"]) == 2 and 0 <= p["mean"] <= 1 for p in res["pilots"])
    assert res["pick"] is None or res["pick"] in [p["step"] for p in res["pilots"]]
    for p in res["pilots"]:  # each pilot is a real run distilled from its candidate
        cfg = json.loads((tmp_path / "p" / f"step{p['step']}_s0" / "run.json").read_text())
        assert cfg["role"] == "student" and cfg["teacher_step"] == p["step"]
    with pytest.raises(GatekitError, match="no checkpoint at step"):
        pilot.verify(teacher, out=tmp_path / "q", steps=[7], student_cfg=student)
