"""`python -m training race`: full students raced from a run's last checkpoints; the best is kept,
and an interrupted race continues where it stopped."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gatekit import io as gio

ROOT = os.path.dirname(os.path.dirname(__file__))
TINY = ["--depth", "4", "--width", "16", "--num-envs", "4", "--set", "iterations_per_epoch=1",
        "--set", "updates_per_iteration=2", "--set", "batch_size=32", "--set", "eval_episodes=4", "-q"]


@pytest.mark.slow
def test_race_keeps_the_best_and_resumes_after_ctrl_c(tmp_path):
    t = subprocess.run([sys.executable, "-m", "training", "teacher", "--out", str(tmp_path / "t"), "--epochs", "3", *TINY],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert t.returncode == 0, t.stderr[-2000:]
    cmd = [sys.executable, "-m", "training", "race", str(tmp_path / "t"), "--out", str(tmp_path / "race"),
           "--last", "3", "--student-epochs", "40", "--workers", "1"]
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
    assert res["pick"] == best["step"] and res["kept"] == best["path"]
    assert len(gio.list_checkpoints(gio.read_run(res["kept"]))[0]) == 40  # the kept student is a full one
    assert "distill from:" in again.stdout and "how sure:" in again.stdout
