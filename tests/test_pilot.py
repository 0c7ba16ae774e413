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
def test_verify_trains_measured_pilots_and_picks_a_candidate_through_the_racing_engine(tmp_path):
    """``pilot.verify`` is the racing engine with the Pilot strategy: real pilots, the strategy's
    pick, a race.json, and a second call trains nothing (the result files are there)."""
    from gatekit.racing import Pilot, read_results

    teacher = train(TrainConfig(**SMALL, epochs=3, seed=1), tmp_path / "t", progress=None)["run_dir"]
    student = TrainConfig(**SMALL, epochs=4, lambda_pi=1.0)
    res = pilot.verify(teacher, out=tmp_path / "p", last=2, fraction=0.5, student_cfg=student, seeds=2)
    assert res["strategy"] == "pilot" and len(res["candidates"]) == 2
    assert all(len(c["students"]) == 2 and 0 <= c["mean"] <= 1 for c in res["candidates"])
    results = {m: r["outcome"] for m, r in read_results(tmp_path / "p").items()}
    assert {m.epochs for m in results} == {2}  # pilots: half of the 4-epoch student
    steps = [c["step"] for c in res["candidates"]]
    expect = Pilot(k=2, fraction=0.5, seeds=2, epochs=4).pick(steps, results)
    assert res["pick"] == (None if expect is None else steps[expect])
    for c in res["candidates"]:  # each pilot is a real run distilled from its candidate
        cfg = json.loads((tmp_path / "p" / f"step{c['step']}_s0" / "run.json").read_text())
        assert cfg["role"] == "student" and cfg["teacher_step"] == c["step"]
    stamps = {f: f.stat().st_mtime_ns for f in (tmp_path / "p" / "results").iterdir()}
    again = pilot.verify(teacher, out=tmp_path / "p", last=2, fraction=0.5, student_cfg=student, seeds=2)
    assert again["pick"] == res["pick"]
    assert {f: f.stat().st_mtime_ns for f in (tmp_path / "p" / "results").iterdir()} == stamps
