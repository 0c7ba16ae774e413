"""`python -m training race`: full students raced from a run's last checkpoints; the best is kept,
and an interrupted race continues where it stopped."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from gatekit import io as gio

ROOT = os.path.dirname(os.path.dirname(__file__))
TINY = ["--depth", "4", "--width", "16", "--num-envs", "4", "--set", "iterations_per_epoch=1",
        "--set", "updates_per_iteration=2", "--set", "batch_size=32", "--set", "eval_episodes=4", "-q"]


def _race_command(tmp_path, *, student_epochs: int) -> list[str]:
    """Trains a tiny 3-epoch teacher at ``tmp_path/t``; the command that races its last 3
    checkpoints into ``tmp_path/race``."""
    t = subprocess.run([sys.executable, "-m", "training", "teacher", "--out", str(tmp_path / "t"), "--epochs", "3", *TINY],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert t.returncode == 0, t.stderr[-2000:]
    return [sys.executable, "-m", "training", "race", str(tmp_path / "t"), "--out", str(tmp_path / "race"),
            "--last", "3", "--student-epochs", str(student_epochs), "--workers", "1"]


@pytest.mark.slow
def test_race_keeps_the_best_and_resumes_after_ctrl_c(tmp_path):
    cmd = _race_command(tmp_path, student_epochs=40)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.time() + 300
    while not list((tmp_path / "race").glob("*/checkpoints/[0-9]*")) and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)  # a student is under way
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert not (tmp_path / "race" / "race.json").exists()
    # again, with the budget the students were started with: what finished is kept, the rest trains
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert again.returncode == 0, again.stderr[-2000:]
    res = json.loads((tmp_path / "race" / "race.json").read_text())
    saved = gio.list_checkpoints(gio.read_run(tmp_path / "t"))[0]
    assert [c["step"] for c in res["candidates"]] == saved[-3:]
    best = max(res["candidates"], key=lambda c: (c["mean"], c["step"]))
    assert res["pick"] == best["step"] and res["kept"].endswith(f"step{best['step']}_s0")
    assert len(gio.list_checkpoints(gio.read_run(res["kept"]))[0]) == 40  # the kept student is a full one
    assert "distill from:" in again.stdout and "how sure:" in again.stdout


def test_a_race_is_clear_only_when_the_gap_beats_the_noise_of_a_difference():
    """Two one-seed means differ with std sqrt(2) x one mean's noise: a lead of 2.5 x the noise
    of one candidate is within noise, a lead of 3 x is clear; with seeds, their own spread counts."""
    from gatekit.racing.verdict import RELATIVE_SEED_STD, how_sure

    def sure(*a, **k):
        v = how_sure(*a, **k)
        return v["gap"], v["noise"], v["noise_from"], v["verdict"]

    noise = RELATIVE_SEED_STD * 0.8
    gap, n, src, verdict = sure([0.8, 0.8 - 2.5 * noise, 0.1], [[0.8], [0.6], [0.1]], seeds=1)
    assert n == pytest.approx(noise) and gap == pytest.approx(2.5 * noise) and verdict.startswith("within noise")
    assert sure([0.8, 0.8 - 3 * noise], [[0.8], [0.6]], seeds=1)[3].startswith("clear")
    gap, n, src, verdict = sure([0.8, 0.7], [[0.7, 0.9], [0.6, 0.8]], seeds=2)  # std 0.141 / sqrt 2 = 0.1
    assert n == pytest.approx(0.1) and "own seed-to-seed" in src and verdict.startswith("within noise")
    assert sure([0.8], [[0.8]], seeds=1)[3].startswith("one candidate")


def test_race_verdicts_replay_the_race_and_judge_it_by_unseen_seeds():
    """A one-seed race whose lead comes from a lucky student looks clear and is wrong: the replay
    counts every seed split, and the judge is a seed the race did not read."""
    from training.bench.methods import TeacherRun
    from training.bench.races import race_verdicts

    s = np.full((8, 3), 0.1)
    s[5], s[6], s[7] = [0.2, 0.9, 0.9], [0.5, 0.5, 0.5], [1.0, 0.5, 0.5]
    run = TeacherRun(("t", "base", 0), np.arange(1, 9) * 100, {}, s.mean(1), s)
    v = race_verdicts([run], k=3, seeds=1)
    # seed 0 picks step 800 (1.0): the judges (0.5 there, 0.9 at 600) say wrong; seeds 1 and 2 pick
    # 600 (0.9): seed 0 judges it wrong (0.2 against 1.0), the other right
    assert v["n"] == 6 and v["clear"]["n"] == 6 and v["within noise"]["n"] == 0
    assert v["clear"]["success"] == pytest.approx(2 / 6)
    two = race_verdicts([run], k=3, seeds=2)
    assert two["n"] == 3 and two["clear"]["n"] + two["within noise"]["n"] == 3


def test_a_race_states_what_its_verdict_was_worth_on_the_benchmark():
    from gatekit.racing.verdict import calibration, record as _record

    rec = {"last": 3, "verdicts": {"clear": {"n": 32, "success": 0.5}, "within noise": {"n": 346, "success": 0.69}}}
    text = calibration("clear: the best leads ...", rec)
    assert "that were clear picked right on 50%" in text and "within noise ones on 69%" in text
    assert "does not make the pick surer" in text
    assert "does not make" not in calibration("within noise: ...", rec) and calibration("clear", None) == ""
    shipped = _record(3, 1)  # the final preset carries the dataset's replayed races
    assert shipped["last"] == 3 and set(shipped["verdicts"]) == {"clear", "within noise"}
    assert _record(3, 2)["verdicts"]["clear"]["n"] > 0 and _record(4, 1) is None
