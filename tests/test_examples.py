"""End-to-end runs of examples/ (subprocess, tiny settings) and of the Brax environments."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import gatekit

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(args, timeout=900):
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-4000:]
    return r.stdout


@pytest.mark.slow
def test_gate_sweep_tiny_produces_wellformed_artifacts(tmp_path):
    out = tmp_path / "sweep"
    stdout = run(["examples/gate_sweep.py", "--tiny", "--out", str(out)])
    res = json.loads((out / "results.json").read_text())
    assert res["n_conditions"] == 2 * 3 and len(res["table"]) == 6
    for row in res["table"]:
        assert 0 <= row["action_magnitude"] <= 1 and 0 <= row["student_success"] <= 1
    assert set(res["tau"]) == {"0.5", "1.0", "2.0"}
    pairs = (out / "pairs.csv").read_text().splitlines()
    assert len(pairs) == 7 and "student_success" in pairs[0] and "action_magnitude" in pairs[0]
    for png in ("student_vs_epoch.png", "student_vs_action_magnitude.png", "tau_gate.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "teacher_success" in stdout
    # a second call reuses the finished runs instead of retraining
    run(["examples/gate_sweep.py", "--tiny", "--out", str(out), "--no-tau"], timeout=300)


@pytest.mark.slow
def test_quickstart_runs_and_writes_its_verdict(tmp_path):
    stdout = run(["examples/quickstart.py", "--out", str(tmp_path / "qs")])
    assert "on record:" in stdout and "how sure:" in stdout and (tmp_path / "qs" / "scores.csv").exists()
    v = json.loads((tmp_path / "qs" / "verdict.json").read_text())
    no_gate = gatekit.select(str(tmp_path / "qs" / "teacher"))  # select, given no gate: the preset on record
    assert v["zero_cost_gate"] == no_gate.gate.name and v["zero_cost_step"] == (no_gate.step if no_gate.ready else None)
    assert v["raced_steps"] == sorted(v["raced_steps"])[-3:] and v["raced_steps"][-1] == v["final_step"]
    assert v["selected_step"] in v["raced_steps"]
    race = json.loads((tmp_path / "qs" / "race" / "race.json").read_text())
    assert race["pick"] == v["selected_step"] and v["kept_student"] == race["kept"]
    # the pick is proved by a seed the race did not read, at every raced checkpoint and the first
    assert set(map(int, v["judge_students"])) == {v["first_step"], *v["raced_steps"]} | ({v["zero_cost_step"]} - {None})
    best = max(v["judge_students"][str(s)] for s in v["raced_steps"])
    assert v["pick_is_right"] == (v["student_selected"] >= 0.95 * best)
    for k in ("student_first", "student_final", "student_selected"):
        assert 0 <= v[k] <= 1
    page = (tmp_path / "qs" / "report.html").read_text()  # the one page it ends with, students included
    assert "data:image/png;base64," in page and page.count(" (2)</td>") >= 3  # race + judge at the last 3
    assert (tmp_path / "qs" / "report.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.parametrize("name,kw", [("reacher", {}), ("ant", {}), ("ant_maze", {"maze": "u"})])
def test_brax_goal_envs_step(name, kw):
    import jax
    import jax.numpy as jnp

    from training import envs

    env = envs.make(name, **kw)
    s = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert s.obs.shape == (env.obs_dim,) and s.goal.shape == (env.goal_dim,)
    step = jax.jit(env.step)
    s2 = step(step(s, jnp.zeros(env.action_dim)), jnp.ones(env.action_dim))
    assert np.all(np.isfinite(np.asarray(s2.obs)))
    # the goal stays fixed within an episode; success is a 0/1 flag
    np.testing.assert_array_equal(np.asarray(s2.goal), np.asarray(s.goal))
    assert float(s2.success) in (0.0, 1.0)


@pytest.mark.slow
def test_ant_maze_walls_are_in_the_model():
    from training.envs.brax_envs import ANT_MAZES, maze_xml

    xml = maze_xml(ANT_MAZES["u"])
    assert xml.count('name="wall_') == sum(row.count("#") for row in ANT_MAZES["u"])


@pytest.mark.slow
def test_one_epoch_on_brax_reacher(tmp_path):
    import gatekit
    from training import TrainConfig, train

    cfg = TrainConfig(env="reacher", depth=4, width=16, rep_dim=8, num_envs=8, iterations_per_epoch=1,
                      updates_per_iteration=4, buffer_episodes=16, batch_size=32, eval_episodes=4,
                      sample_size=64, epochs=1)
    train(cfg, tmp_path / "r", progress=None)
    table = gatekit.score(tmp_path / "r")
    assert len(table) == 1 and table.rows[0]["step"] == 8 * 50 * 2


@pytest.mark.slow
def test_ant_cannot_pass_through_a_maze_wall_and_goals_follow_jaxgcrl():
    """A scripted push (12 m/s) into the wall beside the start never enters the wall cell; the
    same push along the open corridor travels metres. Goals = G-cell centres, success < 0.5 m."""
    import jax
    import jax.numpy as jnp

    from training import envs

    env = envs.make("ant_maze", maze="u")
    inner = env._env
    init, step = jax.jit(inner.pipeline_init), jax.jit(inner.pipeline_step)

    def push(axis, speed, start=0.0, n=40):
        q = inner.sys.init_q.at[axis].set(start)
        ps = init(q, jnp.zeros(inner.sys.qd_size()).at[axis].set(speed))
        out = []
        for _ in range(n):
            ps = step(ps, jnp.zeros(env.action_dim))
            out.append(float(ps.x.pos[0, axis]))
        return np.array(out)

    # U maze: row 0 (x = -4 m, wall face at x = -2 m) is wall; row 1 continues along +y (open)
    into_wall = push(0, -12.0, start=-0.8)
    assert into_wall.min() > -2.0
    along_corridor = push(1, 12.0)
    assert along_corridor.max() > 3.0
    goals = np.stack([np.asarray(env._sample_goal(k)) for k in jax.random.split(jax.random.PRNGKey(0), 32)])
    centres = env._goal_cells()
    assert np.all(np.min(np.linalg.norm(goals[:, None] - centres[None], axis=-1), axis=1) < 1e-6)
    assert {tuple(c) for c in centres} == {(0.0, 4.0), (0.0, 8.0), (4.0, 8.0), (8.0, 0.0), (8.0, 4.0), (8.0, 8.0)}
    assert env.success_threshold == 0.5


@pytest.mark.slow
def test_own_trainer_example_races_jaxgcrl_checkpoints_with_its_own_students_through_submitit(tmp_path):
    """examples/own_trainer: JaxGCRL-layout pickles imported with no flags, raced by a student
    script that imports no training code, through submitit's local executor."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "examples/own_trainer/run.py", "--out", str(tmp_path / "own")],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "$ gatekit import jaxgcrl" in done.stdout and "$ gatekit race" in done.stdout
    res = json.loads((tmp_path / "own" / "race" / "race.json").read_text())
    assert len(res["candidates"]) == 4 and not res["failed"]
    assert res["pick"] == max(res["candidates"], key=lambda c: (c["mean"], c["step"]))["step"]
    assert (tmp_path / "own" / "race" / "submitit").is_dir()  # it ran through submitit
    assert "import training" not in (ROOT / "examples" / "own_trainer" / "distill.py").read_text()
