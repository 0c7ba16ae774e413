"""Files gatekit writes inside a run are never written through a link or onto a special file
(issue 34 items 1, 2 and the lock's tracebacks)."""

import json
import os

import pytest

from gatekit import io as gio
from gatekit.errors import GatekitError
from gatekit.io.writer import LOCK_FILE

CONFIG = {"family": "arrays", "net": {"obs_dim": 2, "goal_dim": 1, "action_dim": 1}}


def _run(tmp_path):
    with gio.RunWriter(tmp_path / "run", config=CONFIG) as w:
        assert w.path.exists()
    return tmp_path / "run"


def test_a_lock_that_links_to_run_json_is_refused_and_run_json_survives(tmp_path):
    run = _run(tmp_path)
    before = (run / "run.json").read_text()
    (run / LOCK_FILE).unlink(missing_ok=True)
    os.symlink(run / "run.json", run / LOCK_FILE)
    with pytest.raises(GatekitError, match="writer lock is a symbolic link"):
        gio.RunWriter(run, config=CONFIG, resume=True)
    assert (run / "run.json").read_text() == before and json.loads(before)["format"] == gio.FORMAT


@pytest.mark.parametrize("kind", ["dir", "fifo"])
def test_a_lock_that_is_a_directory_or_fifo_is_refused_without_hanging(tmp_path, kind):
    run = _run(tmp_path)
    (run / LOCK_FILE).unlink(missing_ok=True)
    (run / LOCK_FILE).mkdir() if kind == "dir" else os.mkfifo(run / LOCK_FILE)
    with pytest.raises(GatekitError, match="writer lock is (a directory|not a regular file)"):
        gio.RunWriter(run, config=CONFIG, resume=True)


def test_forgetting_resume_closes_the_lock_once(tmp_path, monkeypatch):
    import gc
    import sys

    run = _run(tmp_path)
    ignored = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: ignored.append(u.exc_value))
    try:
        gio.RunWriter(run, config=CONFIG)
    except GatekitError as e:
        assert "run already exists" in str(e)
    else:
        pytest.fail("a second writer without resume was accepted")
    gc.collect()  # the half-made writer's __del__ used to close the descriptor again ('Bad file descriptor')
    assert not ignored, ignored


def test_metrics_jsonl_linking_outside_the_run_is_refused_before_any_epoch(tmp_path):
    run = _run(tmp_path)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("mine\n")
    (run / gio.METRICS_JSONL).unlink(missing_ok=True)
    os.symlink(outside, run / gio.METRICS_JSONL)
    with pytest.raises(GatekitError, match="metrics.jsonl is a symbolic link"):
        gio.RunWriter(run, config=CONFIG, resume=True)
    with pytest.raises(GatekitError, match="symbolic link"):
        gio.append_metrics(run, {"step": 1})
    assert outside.read_text() == "mine\n"


def test_distill_and_pilot_never_write_their_json_into_the_teacher(tmp_path):
    """Issue 34 item 3: --json TEACHER/run.json overwrote the teacher's run.json, exit 0."""
    from typer.testing import CliRunner

    from training.cli import app

    run = _run(tmp_path)
    before = (run / "run.json").read_text()
    runner = CliRunner()
    r = runner.invoke(app, ["distill", "--teacher", str(run), "--out", str(tmp_path / "s"), "--json", str(run / "run.json")])
    assert r.exit_code == 1 and "lies inside the input" in r.output, r.output
    r = runner.invoke(app, ["pilot", str(run), "--out", str(tmp_path / "p"), "--json", str(run / "run.json")])
    assert r.exit_code == 1, r.output
    assert (run / "run.json").read_text() == before
    # --tensorboard into the teacher's step folder: refused before any training, nothing written there
    files = sorted(p.relative_to(run) for p in run.rglob("*"))
    r = runner.invoke(app, ["distill", "--teacher", str(run), "--out", str(tmp_path / "s2"), "--tensorboard",
                            str(run / "checkpoints" / "100")])
    assert r.exit_code == 1 and "lies inside the teacher run" in r.output, r.output
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == files and not (tmp_path / "s2").exists()
