"""One answer per run that a user can act on: select always names a checkpoint and prints the
record of exactly what it did; a gate stops a teacher only when crossed."""

import subprocess
import sys

import numpy as np
import pytest

import gatekit
from conftest import write_run
from gatekit import io as gio
from gatekit.hooks import GateHook
from gatekit.rule import Rule, first_cross, first_hold

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "results" / "gatebench" / "data"


def test_select_on_a_finished_run_where_the_rule_never_holds_answers_the_final_checkpoint(tmp_path):
    run = write_run(tmp_path / "t", steps=(100, 200, 300))
    sel = gatekit.select(run, gate=gatekit.io.Gate("action_magnitude", "below", -1.0, name="never"))
    assert sel.ready and sel.fallback and sel.step == 300 and sel.value is None
    assert "final checkpoint" in sel.reason and "the rule did not hold" in "; ".join(sel.untrusted_because)


def test_select_prints_two_short_lines_with_the_path_as_given(tmp_path):
    write_run(tmp_path / "t", steps=(100, 200, 300))
    out = subprocess.run([sys.executable, "-m", "gatekit.cli", "select", "t"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("distill from: t@") and str(tmp_path) not in out.stdout
    assert lines[1].startswith("rule: ") and "held-out" in lines[1]
    assert lines[2].startswith("to measure instead: gatekit race t --out t_race --last 6 --student-cmd")
    assert len(lines) == 3 and all(len(x) < 260 for x in lines)
    verbose = subprocess.run([sys.executable, "-m", "gatekit.cli", "select", "t", "-v"], capture_output=True,
                             text=True, cwd=tmp_path, timeout=300)
    assert "why:" in verbose.stdout and "record:" in verbose.stdout


@pytest.mark.skipif(not DATA.is_dir(), reason="the dataset is not in this checkout")
def test_the_benchmark_scores_exactly_what_select_answers_fallback_included():
    """For every teacher run of the dataset, the shipped default rule's pick as the benchmark
    replays it (GateRule, the final checkpoint where it never holds, as gatekit.judge counts
    "no pick") is the checkpoint `gatekit select` names: so the preset's record is the record of
    select's answer."""
    from training.bench import analysis, methods

    gate = gio.read_gate("auto")
    rows = [r for bt in gio.read_benchmark(DATA).values() for r in analysis.rows_from_task(bt)]
    runs = methods.teacher_runs(rows)
    fell_back = 0
    for run in runs:
        p = methods.GateRule(gate, guard=True).pick(run)
        mine = [dict(r, run="/".join(map(str, run.key))) for r in rows
                if (r["task"], r["config"], r["teacher_seed"]) == run.key]
        sel = gatekit.select(mine, gate=gate)
        assert sel.step == int(run.steps[-1 if p is None else p]), run.key
        assert sel.fallback == (p is None)
        fell_back += p is None
    assert 0 < fell_back < len(runs)  # both cases occur on the dataset


def test_a_gate_that_holds_from_the_first_checkpoint_never_stops_a_teacher():
    hook = GateHook(threshold=10.0, metric="action_magnitude", direction="below")
    for step, v in [(1, 0.3), (2, 0.2), (3, 0.1)]:
        assert not hook.update(step, {"action_magnitude": v})
    assert not hook.stopped and hook.held_at_start == 1 and "separates nothing" in hook.note
    crossed = GateHook(threshold=0.63, metric="action_magnitude", direction="below")
    stops = [crossed.update(step, {"action_magnitude": v}) for step, v in [(1, 0.2), (2, 0.9), (3, 0.5)]]
    assert stops == [False, False, True] and crossed.stopped_step == 3
    restored = GateHook.from_state_dict(hook.state_dict())  # the crossing state survives a resume
    assert restored.armed is False and restored.held_at_start == 1


def test_the_benchmark_counts_a_crossing_as_the_rule_does():
    from training.bench.methods import _first_held_matrix

    rng = np.random.default_rng(0)
    for _ in range(2000):
        n, p = int(rng.integers(1, 9)), int(rng.integers(1, 3))
        holds = rng.random(n) < 0.6
        rule = Rule("x", "above", 0.5, p)
        for crossing, fn in ((False, first_hold), (True, first_cross)):
            a = int(_first_held_matrix(holds[None], p, crossing=crossing)[0])
            b = fn(range(n), holds.astype(float), rule)
            assert (a == -1 and b is None) or a == b, (holds, p, crossing)


def test_select_on_a_folder_scores_only_the_teacher_runs(tmp_path):
    write_run(tmp_path / "runs" / "teacher", steps=(100, 200))
    student = write_run(tmp_path / "runs" / "race" / "step200_s0", steps=(10, 20), role="student")
    for f in (student / "checkpoints").rglob("*"):  # were the student scored, it would be reported as damaged
        if f.is_file() and f.stat().st_size > 100:
            f.write_bytes(b"\0" * f.stat().st_size)
    sel = gatekit.select(tmp_path / "runs", cache=False)
    assert sel.step == 200 and sel.skipped == [] and len(sel.per_run) == 1


def test_the_report_headline_is_the_race_pick_where_a_race_ran(tmp_path):
    """The report leads with the measured answer when a race of the teacher is among the sources,
    with the zero-cost answer beside it; both are marked on the plot."""
    from gatekit.racing import CallableTrainer, LastK, race

    run = write_run(tmp_path / "t", steps=(100, 200, 300))
    race(run, out=tmp_path / "race", strategy=LastK(k=3, epochs=1),
         trainer=CallableTrainer(_prefer_200))
    from gatekit.report import report

    page = report([run, tmp_path / "race"], tmp_path / "r.html")
    text = page.read_text()
    assert f"Distill from <b>{run}@200</b>, measured by a race" in text and "The zero-cost answer" in text
    assert "0.95 x the student of the best checkpoint" in text


def _prefer_200(checkpoint, seed, epochs, out):
    return 1.0 if checkpoint.endswith("@200") else 0.5


def _commands(group, prefix=()):
    for name, cmd in getattr(group, "commands", {}).items():
        if getattr(cmd, "commands", None):
            yield from _commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def test_every_command_of_both_command_lines_takes_q_with_one_meaning():
    """One CLI: ``-q`` exists on every command of ``gatekit`` and ``gatekit-train`` (it was on 3 of
    14), each with the shared help (print only the answer)."""
    from gatekit.cli import app
    from gatekit.cli_common import QUIET_HELP, click_command
    from training.cli import app as train_app

    seen = 0
    for root in (app, train_app):
        for name, cmd in _commands(click_command(root)):
            if name == ("train",):  # the mount of gatekit-train: its commands are checked below
                continue
            opts = {o: p for p in cmd.params for o in getattr(p, "opts", [])}
            assert "-q" in opts, name
            if name != ("score",):  # score -q: the table's file only (its own, older words)
                assert opts["-q"].help == QUIET_HELP, name
            seen += 1
    assert seen >= 14


def test_gatekit_holds_the_training_commands(tmp_path):
    """``gatekit train ...`` is gatekit-train, mounted through an entry point (gatekit never
    imports training): its help lists the training commands, and its options are the same."""
    top = subprocess.run([sys.executable, "-m", "gatekit.cli", "--help"], capture_output=True, text=True, timeout=300)
    assert top.returncode == 0 and "train" in top.stdout and "race" in top.stdout
    sub = subprocess.run([sys.executable, "-m", "gatekit.cli", "train", "--help"], capture_output=True, text=True,
                         timeout=300)
    assert sub.returncode == 0, sub.stderr[-2000:]
    assert all(c in sub.stdout for c in ("teacher", "distill", "pilot")) and "gatekit train" in sub.stdout
    teacher = subprocess.run([sys.executable, "-m", "gatekit.cli", "train", "teacher", "--help"], capture_output=True,
                             text=True, timeout=300)
    assert teacher.returncode == 0 and "--threshold" in teacher.stdout and "-q" in teacher.stdout
    bad = subprocess.run([sys.executable, "-m", "gatekit.cli", "train", "teacher", "--epochs", "0", "--out",
                          str(tmp_path / "t")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "epochs" in bad.stderr
    assert bad.stderr.startswith("gatekit train: error:"), bad.stderr  # named as the user called it
    assert not (tmp_path / "t").exists()


def test_select_q_prints_the_checkpoint_alone(tmp_path):
    write_run(tmp_path / "t", steps=(100, 200, 300))
    out = subprocess.run([sys.executable, "-m", "gatekit.cli", "select", "t", "-q"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ["t@300"] and out.stderr == ""


@pytest.mark.slow
def test_resuming_a_teacher_stopped_by_the_budget_rule_with_a_longer_budget_trains_on(tmp_path):
    """Issue 44: after the budget rule stopped a teacher, ``--resume --epochs 10 --stop-at-gate``
    trained nothing ("gate already held"): the stop was decided under the old budget."""
    from training.config import TrainConfig
    from training.trainer import train

    small = dict(env="pointmaze", env_kwargs=(("maze", "u"),), depth=4, width=16, rep_dim=8, num_envs=4,
                 iterations_per_epoch=1, updates_per_iteration=2, batch_size=32, eval_episodes=4, sample_size=32)
    hook = lambda: GateHook(threshold=0.5, metric="budget_fraction", direction="above", patience=1)  # noqa: E731
    first = train(TrainConfig(**small, epochs=4), tmp_path / "t", hook=hook(), progress=None)
    assert first["stopped_at_gate"] and first["epochs_run"] == 3  # 3/4 > 0.5, after 2/4 did not pass
    said = []
    again = train(TrainConfig(**small, epochs=8), tmp_path / "t", hook=hook(), resume=True, progress=said.append)
    assert again["stopped_at_gate"] and again["epochs_run"] >= 2, said  # 4/8 does not pass, 5/8 does
    assert any("counted again" in m for m in said)
    same = train(TrainConfig(**small, epochs=8), tmp_path / "t", hook=hook(), resume=True, progress=said.append)
    assert same["epochs_run"] == 0  # stopped under this budget: nothing to do
