"""Real (short) training runs on the built-in point maze: learning, checkpoints, resume, hook."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import gatekit
from gatekit import io as gio
from gatekit.hooks import GateHook
from training import envs
from training.config import TrainConfig
from training.trainer import train

SMALL = dict(depth=4, width=32, rep_dim=8, num_envs=16, iterations_per_epoch=2, updates_per_iteration=16,
             buffer_episodes=256, batch_size=64, eval_episodes=16, sample_size=128,
             env_kwargs=(("maze", "u"),))


def random_policy_success(env, episodes=256, seed=0):
    """Eval protocol of Trainer.evaluate with uniform random actions."""
    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    state = jax.vmap(env.reset)(keys)

    def step(s, k):
        a = jax.random.uniform(k, (episodes, env.action_dim), minval=-1, maxval=1)
        s = jax.vmap(env.step)(s, a)
        return s, s.success

    _, success = jax.lax.scan(step, state, jax.random.split(jax.random.PRNGKey(seed + 1), env.episode_length))
    return float(np.max(np.asarray(success), axis=0).mean())


def test_teacher_learns_beats_random_and_gatekit_reads_it(tmp_path):
    cfg = TrainConfig(**{**SMALL, "epochs": 6, "width": 64, "updates_per_iteration": 64, "num_envs": 32,
                         "iterations_per_epoch": 4, "batch_size": 256, "buffer_episodes": 512, "eval_episodes": 128})
    summary = train(cfg, tmp_path / "t", progress=None)
    rand = random_policy_success(envs.make("pointmaze", maze="u"))
    best = max(r["eval_success"] for r in gatekit.score(tmp_path / "t").rows)
    assert best > rand + 0.1, (best, rand)
    assert summary["epochs_run"] == 6 and summary["env_steps"] == 32 * 100 * (1 + 4 * 6)
    table = gatekit.score(tmp_path / "t")
    assert [r["epoch"] for r in table.rows] == list(range(1, 7)) and not table.problems
    run = gio.read_run(tmp_path / "t")
    assert run.config["role"] == "teacher" and run.config["net"]["depth"] == 4
    ck = gio.load_checkpoint(run, table.rows[-1]["step"])
    assert set(ck.sample) == {"obs", "action", "goal", "future_goal"} and len(ck.sample["obs"]) == 128
    assert {"success", "time_at_goal"} <= set(ck.meta["eval"]) and "critic_loss" in ck.meta["train"]
    # the trainer's own action magnitude is the one gatekit recomputes from params + sample
    assert table.rows[-1]["action_magnitude"] == pytest.approx(ck.meta["action_magnitude"], rel=1e-5)


def test_student_distills_from_a_teacher_checkpoint(tmp_path):
    train(TrainConfig(**SMALL, epochs=2), tmp_path / "t", progress=None)
    step = gio.list_checkpoints(gio.read_run(tmp_path / "t"))[0][0]
    cfg = TrainConfig(**{**SMALL, "depth": 4, "width": 16}, epochs=3, lambda_pi=2.0, lambda_pi_end=0.0,
                      distill_start_epoch=1)
    train(cfg, tmp_path / "s", teacher=f"{tmp_path / 't'}@{step}", progress=None)
    run = gio.read_run(tmp_path / "s")
    assert run.config["role"] == "student" and run.config["teacher_step"] == step
    assert run.config["teacher"] == str((tmp_path / "t").resolve())
    metas = [gio.load_checkpoint(run, s, items=("meta",)).meta for s in gio.list_checkpoints(run)[0]]
    # late activation then linear anneal: 0 (epoch 0), 2.0 (epoch 1), 0.0 (epoch 2)
    assert [m["train"]["lambda_pi"] for m in metas] == [0.0, 2.0, 0.0]
    assert all("distill_loss" in m["train"] for m in metas)


def test_bad_config_and_bad_teacher_fail_before_tracing(tmp_path):
    with pytest.raises(ValueError, match="multiple of block_size"):
        train(TrainConfig(**{**SMALL, "depth": 6}), tmp_path / "x", progress=None)
    with pytest.raises(ValueError, match="buffer_episodes"):
        train(TrainConfig(**{**SMALL, "buffer_episodes": 100}), tmp_path / "x", progress=None)
    with pytest.raises(gatekit.GatekitError, match="nope: no such run directory"):
        train(TrainConfig(**SMALL), tmp_path / "s", teacher=str(tmp_path / "nope"), progress=None)
    assert not (tmp_path / "x").exists()


def test_hook_stops_the_run_and_resume_continues_its_count(tmp_path):
    # epoch > 1.5: epoch 1 does not pass (the gate is armed), every later one does; patience 2
    hook = GateHook(metric="epoch", direction="above", threshold=1.5, patience=2)
    s = train(TrainConfig(**SMALL, epochs=2), tmp_path / "t", hook=hook, progress=None)
    assert not s["stopped_at_gate"] and hook.count == 1 and hook.armed
    # resume with a fresh hook object: the count comes back from the checkpoint -> stops at epoch 3
    hook2 = GateHook(metric="epoch", direction="above", threshold=1.5, patience=2)
    s = train(TrainConfig(**SMALL, epochs=10), tmp_path / "t", hook=hook2, resume=True, progress=None)
    assert s["stopped_at_gate"] and s["epochs_done"] == 3 and hook2.stopped_step is not None
    steps = gio.list_checkpoints(gio.read_run(tmp_path / "t"))[0]
    assert len(steps) == 3
    meta = gio.load_checkpoint(gio.read_run(tmp_path / "t"), steps[-1], items=("meta",)).meta
    assert meta["gate"]["count"] == 2 and meta["gate"]["stopped_step"] == steps[-1]


def test_resume_after_kill_mid_run(tmp_path):
    out = tmp_path / "t"
    cmd = [sys.executable, "-m", "training", "teacher", "--out", str(out), "--depth", "4", "--width", "32",
           "--epochs", "200", "--num-envs", "16", "--set", "iterations_per_epoch=2", "--set", "updates_per_iteration=16",
           "--set", "batch_size=64", "--set", "buffer_episodes=256", "--set", "eval_episodes=16", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            done = [p for p in (out / "checkpoints").glob("*") if p.name.isdigit()] if (out / "checkpoints").exists() else []
            if len(done) >= 3:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoints appeared")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    run = gio.read_run(out)
    steps, problems = gio.list_checkpoints(run)
    assert len(steps) >= 2
    # every step that looks complete restores; anything in flight is reported, not listed
    for s in steps:
        gio.load_checkpoint(run, s)
    last_epoch = gio.load_checkpoint(run, steps[-1], items=("meta",)).meta["epoch"]
    r = subprocess.run(cmd[:cmd.index("200")] + [str(last_epoch + 2)] + cmd[cmd.index("200") + 1:] + ["--resume"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    steps2, _ = gio.list_checkpoints(run)
    epochs = [gio.load_checkpoint(run, s, items=("meta",)).meta["epoch"] for s in steps2]
    assert epochs[-1] == last_epoch + 2 and sorted(set(epochs)) == epochs


def test_public_train_is_the_function_even_after_submodule_imports():
    import importlib

    import training
    import training.trainer  # noqa: F401  (a submodule import must not shadow the API)

    importlib.reload(training)
    from training import train as api_train

    assert callable(api_train) and api_train.__module__ == "training"


def test_step_numbers_after_resumes_equal_an_uninterrupted_run(tmp_path):
    cfg = TrainConfig(**SMALL, epochs=3)
    train(cfg, tmp_path / "whole", progress=None)
    for epochs in (1, 2, 3):  # two resumes
        train(TrainConfig(**SMALL, epochs=epochs), tmp_path / "pieces", resume=epochs > 1, progress=None)
    whole = gio.list_checkpoints(gio.read_run(tmp_path / "whole"))[0]
    pieces_run = gio.read_run(tmp_path / "pieces")
    pieces = gio.list_checkpoints(pieces_run)[0]
    assert pieces == whole
    meta = gio.load_checkpoint(pieces_run, pieces[-1], items=("meta",)).meta
    assert meta["refill_env_steps"] == 2 * 16 * envs.make("pointmaze", maze="u").episode_length
    # online statistics are in meta and match gatekit score's
    table = {r["step"]: r for r in gatekit.score(tmp_path / "whole").rows}
    m = gio.load_checkpoint(gio.read_run(tmp_path / "whole"), whole[-1], items=("meta",)).meta
    assert m["online"]["cka_sa_prev"] == pytest.approx(table[whole[-1]]["cka_sa_prev"], rel=1e-5)
    assert table[whole[0]]["cka_sa_prev"] is None


def test_resume_falls_back_to_the_newest_step_with_trainer_state(tmp_path):
    import shutil

    train(TrainConfig(**SMALL, epochs=3), tmp_path / "t", progress=None)
    steps = gio.list_checkpoints(gio.read_run(tmp_path / "t"))[0]
    shutil.rmtree(tmp_path / "t" / "checkpoints" / str(steps[-1]) / "trainer")
    s = train(TrainConfig(**SMALL, epochs=3), tmp_path / "t", resume=True, progress=None)
    assert s["epochs_done"] == 3
    assert gio.list_checkpoints(gio.read_run(tmp_path / "t"))[0] == steps


def test_hook_from_gate_file_and_cli_refuses_retrospective(tmp_path):
    from typer.testing import CliRunner

    from training.cli import app

    r = CliRunner().invoke(app, ["teacher", "--out", str(tmp_path / "t"), "--stop-at-gate", "--gate-metric", "cka_sa",
                                 "--gate-threshold", "0.9", "--gate-mode", "above", "--epochs", "1"])
    assert r.exit_code == 1 and "retrospective" in r.stderr
    gate_file = tmp_path / "g.json"
    gatekit.write_gate(gatekit.Gate(metric="cka_sa_prev", direction="above", threshold=-1.0, patience=1), gate_file)
    hook = GateHook.from_file(gate_file)
    s = train(TrainConfig(**SMALL, epochs=4), tmp_path / "h", hook=hook, progress=None)
    # the first checkpoint has no previous one (no drift value): the gate can hold at epoch 2 at the earliest
    assert s["stopped_at_gate"] and s["epochs_done"] == 2


def test_watch_follows_a_run_being_trained_and_exits_on_gate(tmp_path):
    out = tmp_path / "t"
    cmd = [sys.executable, "-m", "training", "teacher", "--out", str(out), "--depth", "4", "--width", "32",
           "--epochs", "6", "--num-envs", "16", "--set", "iterations_per_epoch=2", "--set", "updates_per_iteration=16",
           "--set", "batch_size=64", "--set", "buffer_episodes=256", "--set", "eval_episodes=16", "-q"]
    trainer = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # started at once: watch waits for the run folder to appear (--wait); cka_sa_prev > -1 holds as soon as it is defined (the 2nd checkpoint); patience 2 -> the 3rd
        w = subprocess.run([sys.executable, "-m", "gatekit.cli", "watch", str(out), "--threshold", "-1", "--metric",
                            "cka_sa_prev", "--direction", "above", "--patience", "2", "--exit-on-gate",
                            "--interval", "0.5", "--timeout", "120", "--wait", "120"], capture_output=True, text=True,
                           timeout=300)
    finally:
        trainer.wait(timeout=300)
    assert w.returncode == 0, w.stderr[-2000:]
    lines = [line for line in w.stdout.splitlines() if line.startswith("step ")]
    steps = [int(line.split()[1]) for line in lines]
    assert steps == sorted(steps) and len(steps) == 3
    assert "does not pass (0/2)" in lines[0] and "passes (2/2)" in lines[2]
    assert f"distill from {out.resolve()}@{steps[2]}" in w.stdout
    r = subprocess.run([sys.executable, "-m", "gatekit.cli", "watch", str(out), "--threshold", "0.9", "--metric",
                        "cka_sa", "--direction", "above"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "retrospective" in r.stderr


def test_preset_paper_antbigmaze_sizes_and_overrides(monkeypatch):
    from typer.testing import CliRunner

    import training.cli as cli

    seen = {}
    monkeypatch.setattr(cli, "_run", lambda cfg, out, **kw: seen.__setitem__("cfg", cfg))
    r = CliRunner().invoke(cli.app, ["teacher", "--out", "x", "--preset", "paper-antbigmaze", "--seed", "3"])
    assert r.exit_code == 0, r.output
    c = seen["cfg"]
    assert (c.env, dict(c.env_kwargs), c.depth, c.width, c.num_envs, c.batch_size, c.rep_dim, c.seed) == \
        ("ant_maze", {"maze": "big"}, 8, 256, 512, 256, 64, 3)
    r = CliRunner().invoke(cli.app, ["distill", "--teacher", "t", "--out", "s", "--preset", "paper-antbigmaze",
                                     "--width", "256", "--set", "num_envs=1024"])
    c = seen["cfg"]
    assert r.exit_code == 0 and (c.depth, c.width, c.lambda_pi, c.num_envs) == (4, 256, 1.0, 1024)


def test_data_parallel_two_fake_devices_match_one(tmp_path):
    code = f"""
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
import jax, numpy as np
from training import TrainConfig, train
from gatekit import io as gio
small = dict(depth=4, width=32, rep_dim=8, num_envs=16, iterations_per_epoch=1, updates_per_iteration=8,
             buffer_episodes=256, batch_size=64, eval_episodes=16, sample_size=128, env_kwargs=(("maze", "u"),), epochs=1)
params = []
for d in (1, 2):
    train(TrainConfig(**small, devices=d), "{tmp_path}/d%d" % d, progress=None)
    run = gio.read_run("{tmp_path}/d%d" % d)
    params.append(gio.load_checkpoint(run, gio.list_checkpoints(run)[0][-1]).params)
assert len(jax.devices()) == 2
print(max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(params[0]), jax.tree.leaves(params[1]))))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert float(r.stdout.strip().splitlines()[-1]) < 1e-4  # same global batch, same keys: same result


def test_sweep_reuses_only_a_run_of_the_same_config(tmp_path):
    from training.runs import train_or_reuse

    cfg = TrainConfig(**SMALL, epochs=1)
    train_or_reuse(cfg, tmp_path / "t")
    stamp = (tmp_path / "t" / "run.json").stat().st_mtime_ns
    train_or_reuse(cfg, tmp_path / "t")  # finished, same config: reused
    assert (tmp_path / "t" / "run.json").stat().st_mtime_ns == stamp
    with pytest.raises(gatekit.GatekitError, match="another config"):
        train_or_reuse(TrainConfig(**{**SMALL, "width": 16}, epochs=1), tmp_path / "t")
    assert (tmp_path / "t" / "run.json").exists()  # never deleted


def test_training_and_scoring_log_to_metrics_jsonl_and_tensorboard(tmp_path):
    """Every checkpoint gets a metrics.jsonl line; --tensorboard writes event files that
    TensorBoard's own Event protocol buffer reads back, with the same values."""
    from typer.testing import CliRunner

    from gatekit.cli import app as gatekit_app
    from training.cli import app

    r = CliRunner().invoke(app, ["teacher", "--out", str(tmp_path / "t"), "--depth", "4", "--width", "16", "--epochs", "2",
                                 "--num-envs", "8", "--set", "iterations_per_epoch=1", "--set", "updates_per_iteration=2",
                                 "--set", "batch_size=32", "--set", "eval_episodes=4", "-q",
                                 "--tensorboard", str(tmp_path / "tb"), "--json", str(tmp_path / "summary.json")])
    assert r.exit_code == 0, r.output
    assert r.stdout == ""  # the summary went to --json
    assert json.loads((tmp_path / "summary.json").read_text())["epochs_run"] == 2
    records = gio.read_metrics(tmp_path / "t")
    steps, _ = gio.list_checkpoints(gio.read_run(tmp_path / "t"))
    assert [rec["step"] for rec in records] == steps and "goal_rank" in records[0]["online"]
    events = gio.read_tensorboard(tmp_path / "tb")
    assert [s for s, _ in events["online/goal_rank"]] == steps
    assert events["eval/success"][-1][1] == pytest.approx(records[-1]["eval"]["success"])
    r = CliRunner().invoke(gatekit_app, ["score", str(tmp_path / "t"), "--tensorboard", str(tmp_path / "tb_scores"), "-q"])
    assert r.exit_code == 0, r.output
    scored = gio.read_tensorboard(tmp_path / "tb_scores")
    assert [s for s, _ in scored["score/goal_rank"]] == steps
