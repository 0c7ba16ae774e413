"""Many runs at once: vmapped runs equal single runs, sweeps shard across processes, the
persistent compilation cache is on by default and can be turned off."""

import csv
import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from gatekit import io as gio
from gatekit.cli_common import enable_compilation_cache
from training.config import TrainConfig
from training.many import Job, chunks, parse_shard, run_jobs, shard_of, train_many
from training.trainer import train

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMALL = dict(depth=4, width=32, rep_dim=8, num_envs=16, iterations_per_epoch=2, updates_per_iteration=16,
             buffer_episodes=256, batch_size=64, eval_episodes=16, sample_size=128, env_kwargs=(("maze", "u"),))


def _final(run_dir):
    run = gio.read_run(run_dir)
    steps = gio.list_checkpoints(run)[0]
    return steps, gio.load_checkpoint(run, steps[-1])


@pytest.mark.slow
def test_train_many_equals_single_runs(tmp_path):
    train(TrainConfig(**SMALL, epochs=2, seed=5), tmp_path / "t", progress=None)
    t_steps = gio.list_checkpoints(gio.read_run(tmp_path / "t"))[0]
    student = TrainConfig(**{**SMALL, "width": 16}, epochs=2, lambda_pi=1.0)
    cfgs = [dataclasses.replace(student, seed=1), dataclasses.replace(student, seed=2, lambda_pi=0.5)]
    teachers = [f"{tmp_path / 't'}@{t_steps[0]}", f"{tmp_path / 't'}@{t_steps[1]}"]  # two checkpoints, one program
    summaries = train_many(cfgs, [tmp_path / "m0", tmp_path / "m1"], teachers=teachers)
    assert [s["epochs_done"] for s in summaries] == [2, 2]
    for i, (c, t) in enumerate(zip(cfgs, teachers)):
        train(c, tmp_path / f"s{i}", teacher=t, progress=None)
        (sa, a), (sb, b) = _final(tmp_path / f"s{i}"), _final(tmp_path / f"m{i}")
        assert sa == sb and a.meta["eval"] == b.meta["eval"]
        assert a.meta["train"]["lambda_pi"] == b.meta["train"]["lambda_pi"] == c.lambda_pi
        diff = max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)))
        assert diff < 1e-4, diff  # same seeds, same keys: equal up to float summation order
        assert gio.read_run(tmp_path / f"m{i}").config["teacher_step"] == int(t.rpartition("@")[2])
    with pytest.raises(gatekit_error(), match="share every setting"):
        train_many([cfgs[0], dataclasses.replace(cfgs[1], width=8)], [tmp_path / "x0", tmp_path / "x1"],
                   teachers=teachers)


def gatekit_error():
    from gatekit.errors import GatekitError

    return GatekitError


def test_jobs_are_chunked_by_shape_and_sharded_deterministically():
    a, b = TrainConfig(**SMALL, epochs=1), TrainConfig(**{**SMALL, "width": 16}, epochs=1)
    jobs = [Job(dataclasses.replace(a, seed=s), pathlib.Path(f"a{s}")) for s in range(5)]
    jobs += [Job(b, pathlib.Path("b0")), Job(a, pathlib.Path("t0"), teacher="runs/t@100")]
    got = [[str(j.path) for j in c] for c in chunks(jobs, 2)]
    assert got == [["a0", "a1"], ["a2", "a3"], ["a4"], ["b0"], ["t0"]]
    assert parse_shard("1/3") == (1, 3) and shard_of(list(range(7)), (1, 3)) == [1, 4]
    for bad in ("3/3", "-1/2", "1", "a/b"):
        with pytest.raises(gatekit_error(), match="--shard"):
            parse_shard(bad)


def test_run_jobs_reuses_finished_runs(tmp_path):
    job = Job(TrainConfig(**SMALL, epochs=1), tmp_path / "r")
    run_jobs([job], workers=1)
    stamp = (tmp_path / "r" / "run.json").stat().st_mtime_ns
    run_jobs([job], workers=1)
    assert (tmp_path / "r" / "run.json").stat().st_mtime_ns == stamp


def test_threads_train_the_same_runs_as_one_after_another(tmp_path):
    """Students of one teacher checkpoint in 2 threads (Orbax saves and restores one at a time)
    equal the same students trained one after another, checkpoint for checkpoint."""
    train(TrainConfig(**SMALL, epochs=1, seed=5), tmp_path / "t", progress=None)
    teacher = f"{tmp_path / 't'}@{gio.list_checkpoints(gio.read_run(tmp_path / 't'))[0][-1]}"
    cfg = TrainConfig(**{**SMALL, "width": 16}, epochs=2, lambda_pi=1.0)
    jobs = lambda d: [Job(dataclasses.replace(cfg, seed=s), tmp_path / d / f"s{s}", teacher) for s in range(3)]
    run_jobs(jobs("seq"), workers=1)
    run_jobs(jobs("thr"), threads=2)
    for s in range(3):
        (sa, a), (sb, b) = _final(tmp_path / "seq" / f"s{s}"), _final(tmp_path / "thr" / f"s{s}")
        assert sa == sb and a.meta["eval"] == b.meta["eval"] and a.meta["online"] == b.meta["online"]
        assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)))
    with pytest.raises(gatekit_error(), match="choose one"):
        run_jobs(jobs("both"), workers=2, threads=2)


def test_compilation_cache_is_on_by_default_and_can_be_turned_off(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert enable_compilation_cache(env) == str(tmp_path / "xdg" / "gatekit" / "jax")
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "xdg" / "gatekit" / "jax")
    assert enable_compilation_cache({"GATEKIT_COMPILATION_CACHE": "0"}) is None
    env = {"GATEKIT_COMPILATION_CACHE": str(tmp_path / "mine")}
    assert enable_compilation_cache(env) == str(tmp_path / "mine") and (tmp_path / "mine").is_dir()
    # a real command fills the folder; with the cache off it is left empty
    cmd = [sys.executable, "-m", "training", "teacher", "--depth", "4", "--width", "16", "--epochs", "1",
           "--num-envs", "16", "--set", "iterations_per_epoch=1", "--set", "updates_per_iteration=4",
           "--set", "batch_size=32", "--set", "buffer_episodes=64", "--set", "eval_episodes=16"]
    e = {**os.environ, "GATEKIT_COMPILATION_CACHE": str(tmp_path / "cache")}
    e.pop("JAX_COMPILATION_CACHE_DIR", None)
    r = subprocess.run(cmd + ["--out", str(tmp_path / "run"), "--json", "-"], capture_output=True, text=True, env=e,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    # progress on stderr (plain lines when not a terminal, with the compile phase named and an
    # elapsed/ETA tail); the summary only where --json says
    assert "compiling the training epoch" in r.stderr and "epoch 1/1" in r.stderr and "elapsed" in r.stderr
    assert json.loads(r.stdout)["epochs_run"] == 1
    assert any((tmp_path / "cache").iterdir())


def _pairs(path):
    timing = {"score_seconds", "wall_time", "train_env_steps_per_second", "train_updates_per_second"}
    with open(path) as f:
        return [{k: v for k, v in r.items() if k not in timing} for r in csv.DictReader(f)]


@pytest.mark.slow
def test_two_shards_fill_one_folder_like_one_shard(tmp_path):
    args = ["-m", "training", "sweep", "momentum_u", "--teacher-seeds", "2", "--teacher-epochs", "2",
            "--checkpoints", "2", "--student-seeds", "1", "--student-epochs", "1", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    shards = [subprocess.Popen([sys.executable, *args, "--out", str(tmp_path / "two"), "--shard", f"{i}/2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
    outs = [p.communicate(timeout=1200) for p in shards]
    assert all(p.returncode == 0 for p in shards), [o[1][-2000:] for o in outs]
    if not (tmp_path / "two" / "pairs.csv").exists():  # both finished together: one more pass merges
        r = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "two"), "--shard", "1/2"],
                           capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], capture_output=True, text=True,
                       env=env, timeout=1200)
    assert r.returncode == 0, r.stderr[-2000:]
    two, one = _pairs(tmp_path / "two" / "pairs.csv"), _pairs(tmp_path / "one" / "pairs.csv")
    assert len(one) == 4
    assert [{k: v for k, v in r.items() if k != "run_path"} for r in two] == \
        [{k: v for k, v in r.items() if k != "run_path"} for r in one]
