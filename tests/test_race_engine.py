"""The racing engine (gatekit.racing): any trainer, any executor, resumable, and replayed by the
same strategy objects. Runs here come from write_run (real Orbax checkpoints this trainer did not
make); students come from a user's command or callable, never from training."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import write_run
from gatekit import racing
from gatekit.errors import GatekitError
from gatekit.racing import CallableTrainer, CommandTrainer, Measurement, ReplayTrainer

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "data" / "student_cmd.py"
CMD = f"{sys.executable} {SCRIPT} --teacher {{checkpoint}} --seed {{seed}} --epochs {{epochs}} --out {{out}}"
STEPS = (100, 200, 300, 400, 500)


def outcome_of(checkpoint, seed, epochs, out):
    """A user's callable: the same function of (step, seed, epochs) the script computes."""
    step = int(str(checkpoint).rpartition("@")[2])
    return min(step, 400) / 1000 + epochs / 100 + (seed % 7) / 1000


@pytest.fixture(scope="module")
def foreign_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("foreign") / "t", steps=STEPS)


def test_a_callable_races_a_run_this_trainer_did_not_make(foreign_run, tmp_path):
    res = racing.race(foreign_run, out=tmp_path / "r", strategy=racing.LastK(k=3, seeds=2, epochs=4),
                      trainer=CallableTrainer(outcome_of))
    # steps 400 and 500 tie on the outcome: ties go to the later checkpoint
    assert res["pick"] == 500 and res["checkpoint"] == f"{foreign_run}@500"
    assert [c["step"] for c in res["candidates"]] == [300, 400, 500]
    assert res["cost"]["students"] == 6 and len(list((tmp_path / "r" / "results").glob("*.json"))) == 6
    on_disk = json.loads((tmp_path / "r" / "race.json").read_text())
    assert on_disk["pick"] == 500 and on_disk["settings"]["k"] == 3


def test_a_bad_student_command_costs_its_candidate_only(foreign_run, tmp_path, monkeypatch):
    monkeypatch.setenv("BEHAVE", json.dumps({"100": "fail", "200": "hang", "300": "garbage", "400": "nan"}))
    before = sorted(p.name for p in pathlib.Path(foreign_run).rglob("*"))
    out = subprocess.run([sys.executable, "-m", "gatekit.cli", "race", str(foreign_run), "--out", str(tmp_path / "r"),
                          "--last", "5", "--student-cmd", CMD, "--timeout", "3", "-v", "--workers", "5"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "distill from:" in out.stdout and "@500" in out.stdout.splitlines()[0]
    res = json.loads((tmp_path / "r" / "race.json").read_text())
    errors = {f["step"]: f["error"] for f in res["failed"]}
    assert sorted(errors) == [100, 200, 300, 400]
    assert "exited with 3" in errors[100] and "--timeout" in errors[200]
    assert "not JSON" in errors[300] and "not a finite number" in errors[400]
    assert all(c["mean"] is None for c in res["candidates"] if c["step"] != 500)  # never a silent NaN
    assert sorted(p.name for p in pathlib.Path(foreign_run).rglob("*")) == before  # nothing of the user's touched


def test_every_candidate_failing_is_an_error_naming_the_results(foreign_run, tmp_path, monkeypatch):
    monkeypatch.setenv("BEHAVE", json.dumps({str(s): "fail" for s in STEPS}))
    with pytest.raises(GatekitError, match="no candidate was measured"):
        racing.race(foreign_run, out=tmp_path / "r", strategy=racing.LastK(k=2), trainer=CommandTrainer(CMD))


@pytest.mark.parametrize("template,match", [
    ("python distill.py --seed {seed}", "must use"),
    ("python d.py {checkpoint} {out} {nope}", "unknown field"),
    ("python 'unclosed {checkpoint} {out}", "cannot split"),
])
def test_bad_templates_are_refused_before_any_work(template, match):
    with pytest.raises(GatekitError, match=match):
        CommandTrainer(template)


def test_bad_options_are_refused_before_any_student(foreign_run, tmp_path):
    for kwargs, match in [(dict(strategy="lastt"), "did you mean 'last'"), (dict(seeds=10**9), "--seeds"),
                          (dict(student_epochs=0), "--student-epochs"), (dict(last=-2), "--last"),
                          (dict(executor="mpi"), "--executor"), (dict(timeout=float("nan")), "--timeout")]:
        with pytest.raises(GatekitError, match=match):
            from gatekit import api

            api.race(foreign_run, out=tmp_path / "r", student_cmd=CMD, **kwargs)
    assert not (tmp_path / "r" / "results").exists()


def test_a_race_folder_belongs_to_one_race(foreign_run, tmp_path):
    racing.race(foreign_run, out=tmp_path / "r", strategy=racing.LastK(k=2, epochs=2), trainer=CallableTrainer(outcome_of))
    with pytest.raises(GatekitError, match="other settings"):  # another K: refused, never reused
        racing.race(foreign_run, out=tmp_path / "r", strategy=racing.LastK(k=3, epochs=2),
                    trainer=CallableTrainer(outcome_of))
    other = write_run(tmp_path / "t2", steps=STEPS, seed=1)
    with pytest.raises(GatekitError, match="other settings"):  # another teacher: refused
        racing.race(other, out=tmp_path / "r", strategy=racing.LastK(k=2, epochs=2), trainer=CallableTrainer(outcome_of))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(GatekitError, match="not empty"):
        racing.race(foreign_run, out=tmp_path / "mine", strategy=racing.LastK(k=2), trainer=CallableTrainer(outcome_of))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_json_never_lands_inside_the_race(foreign_run, tmp_path):
    out = subprocess.run([sys.executable, "-m", "gatekit.cli", "race", str(foreign_run), "--out", str(tmp_path / "r"),
                          "--student-cmd", CMD, "--json", str(tmp_path / "r" / "step500_s0" / "run.json")],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 1 and "--json" in out.stderr and "Traceback" not in out.stderr


def _picks(executor, foreign_run, out):
    return racing.race(foreign_run, out=out, strategy=racing.LastK(k=3, seeds=2, epochs=3),
                       trainer=CommandTrainer(CMD), executor=executor)


def test_dask_and_submitit_give_the_picks_threads_give(foreign_run, tmp_path):
    pytest.importorskip("distributed")
    pytest.importorskip("submitit")
    with racing.make_executor("threads", workers=2) as ex:
        ref = _picks(ex, foreign_run, tmp_path / "threads")
    with racing.make_executor("dask", workers=2) as ex:
        dask = _picks(ex, foreign_run, tmp_path / "dask")
    with racing.make_executor("slurm", folder=tmp_path / "submitit", options={"cluster": "local"}) as ex:
        slurm = _picks(ex, foreign_run, tmp_path / "slurm")
    for res in (dask, slurm):
        assert res["pick"] == ref["pick"]
        assert [c["students"] for c in res["candidates"]] == [c["students"] for c in ref["candidates"]]


def test_kill_9_mid_race_then_resume_retrains_no_finished_student(foreign_run, tmp_path):
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "CALLS": str(calls)}
    cmd = [sys.executable, "-m", "gatekit.cli", "race", str(foreign_run), "--out", str(tmp_path / "r"), "--last", "4",
           "--seeds", "2", "--workers", "1", "--student-cmd", CMD + " --sleep 0.4", "-q"]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    results = tmp_path / "r" / "results"
    deadline = time.time() + 60
    while len(list(results.glob("*.json"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    finished = {f.name for f in results.glob("*.json")}
    assert 3 <= len(finished) < 8
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    trained = [tuple(map(int, line.split())) for line in calls.read_text().splitlines()]
    for name in finished:  # every student finished before the kill trained exactly once
        step, seed = int(name.split("_")[0][4:]), 1000 + int(name.split("_")[1][1:])
        assert trained.count((step, seed, 8)) == 1, (name, trained)
    assert len(set(trained)) == 8 and json.loads((tmp_path / "r" / "race.json").read_text())["cost"]["students"] == 8


STRATEGIES = [racing.LastK(k=3, seeds=2, epochs=4), racing.Halving(k=4, rungs=(1, 2), epochs=4),
              racing.SecondSeed(k=3, epochs=4), racing.Pilot(k=4, fraction=0.5, epochs=4),
              racing.ByNeed(n=4, k=2, epochs=4),
              racing.GPRace(n=3, k=5, epochs=4, distances=tuple(tuple(abs(i - j) / 4 for j in range(5)) for i in range(5)))]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.name)
def test_replay_makes_the_picks_live_training_made(strategy, foreign_run, tmp_path):
    def noisy(checkpoint, seed, epochs, out):  # distinct outcomes, so a pick is not a tie-break
        step = int(str(checkpoint).rpartition("@")[2])
        return float(np.sin(step * 0.37 + seed * 1.3) + epochs * 0.1)

    live = racing.race(foreign_run, out=tmp_path / "live", strategy=strategy, trainer=CallableTrainer(noisy))
    recorded = {(r["step"], r["seed"], r["epochs"]): r["outcome"]
                for r in (json.loads(p.read_text()) for p in (tmp_path / "live" / "results").glob("*.json"))}
    pick, results = racing.replay(strategy, list(STEPS), ReplayTrainer(recorded))
    assert STEPS[pick] == live["pick"]
    assert set(results) == {Measurement(*k) for k in recorded}  # the same students, no more


def test_halving_spends_fewer_student_epochs_than_the_full_race():
    steps = [1, 2, 3, 4]
    h = racing.Halving(k=4, rungs=(2,), epochs=8)
    assert h.most(steps) == (4, 4 * 2 + 2 * 6)  # 4 students to epoch 2, the best 2 on to 8
    assert racing.LastK(k=4, epochs=8).most(steps) == (4, 32)


def test_the_gp_race_measures_its_kernel_on_the_run_and_trains_n_students(foreign_run, tmp_path):
    """``gatekit race --strategy gp`` on any gatekit run: the teacher's action distances between
    its candidates come from its checkpoints (no training package), then n students, the first at
    the final checkpoint, each next where the GP is unsure; the pick is a measured candidate."""
    from gatekit import api

    def noisy(checkpoint, seed, epochs, out):
        return float(np.sin(int(str(checkpoint).rpartition("@")[2]) * 0.37) + 2)

    res = api.race(foreign_run, out=tmp_path / "gp", strategy="gp", students=3, last=5, student_epochs=2,
                   trainer=CallableTrainer(noisy))
    d = np.asarray(res["settings"]["distances"])
    assert d.shape == (5, 5) and np.allclose(d, d.T) and np.allclose(np.diag(d), 0) and (d[~np.eye(5, dtype=bool)] > 0).all()
    measured = sorted(c["step"] for c in res["candidates"])
    assert res["cost"]["students"] == 3 and STEPS[-1] in measured and res["pick"] in measured
    with pytest.raises(GatekitError, match="--seeds does not apply to --strategy gp"):
        api.race(foreign_run, out=tmp_path / "gp2", strategy="gp", seeds=2, trainer=CallableTrainer(noisy))
    with pytest.raises(GatekitError, match="--students"):
        api.race(foreign_run, out=tmp_path / "gp3", strategy="gp", students=9, last=5, trainer=CallableTrainer(noisy))
    assert not (tmp_path / "gp2").exists() and not (tmp_path / "gp3").exists()


def test_a_finished_student_changed_since_it_was_measured_is_measured_again(foreign_run, tmp_path):
    """Issue 44: a finished student whose parameters were damaged later was reused without a word."""
    calls = []

    def writes(checkpoint, seed, epochs, out):
        out.mkdir(parents=True, exist_ok=True)
        (out / "params.bin").write_bytes(b"\x01" * 64)
        calls.append(str(checkpoint))
        return outcome_of(checkpoint, seed, epochs, out)

    strategy = racing.LastK(k=2, epochs=2)
    first = racing.race(foreign_run, out=tmp_path / "r", strategy=strategy, trainer=CallableTrainer(writes))
    kept = pathlib.Path(first["kept"])
    damaged = bytearray((kept / "params.bin").read_bytes())
    damaged[7] ^= 0x10
    (kept / "params.bin").write_bytes(bytes(damaged))
    said = []
    calls.clear()
    again = racing.race(foreign_run, out=tmp_path / "r", strategy=strategy, trainer=CallableTrainer(writes),
                        progress=said.append)
    assert calls == [f"{foreign_run}@{first['pick']}"]  # only the changed student, measured again
    assert any("changed since its outcome was recorded" in m for m in said) and again["pick"] == first["pick"]
    calls.clear()
    racing.race(foreign_run, out=tmp_path / "r", strategy=strategy, trainer=CallableTrainer(writes))
    assert calls == []  # unchanged students are reused
