"""The CLI through typer's CliRunner: outputs, files, exit codes and messages."""

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from gatekit import resolve
from gatekit.cli import app
from conftest import NET, write_run

runner = CliRunner()


@pytest.fixture
def runs(tmp_path):
    write_run(tmp_path / "runs" / "a", steps=(100, 200, 300), magnitudes=[8.0, 8.0, 0.2])
    write_run(tmp_path / "runs" / "b", steps=(100, 200), seed=1, magnitudes=[8.0, 8.0])
    return tmp_path / "runs"


@pytest.mark.parametrize("cmd", [[], ["score"], ["select"], ["fit"], ["plot"]])
def test_help_on_every_command(cmd):
    r = runner.invoke(app, [*cmd, "--help"])
    assert r.exit_code == 0 and "Usage" in r.output


def test_score_writes_table_csv_json_plot(runs, tmp_path):
    r = runner.invoke(app, ["score", str(runs), "--csv", str(tmp_path / "s.csv"),
                            "--json", str(tmp_path / "s.json"), "--plot", str(tmp_path / "m.png"),
                            "--metric", "action_magnitude"])
    assert r.exit_code == 0, r.output
    assert "action_magnitude" in r.output and "5 checkpoint(s) scored, 0 skipped" in r.output
    assert (tmp_path / "s.csv").read_text().count("\n") == 6
    assert len(json.loads((tmp_path / "s.json").read_text())["rows"]) == 5
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"


def test_score_json_to_stdout(runs):
    r = runner.invoke(app, ["score", str(runs / "a"), "--json", "-"])
    assert r.exit_code == 0
    assert [row["step"] for row in json.loads(r.stdout)["rows"]] == [100, 200, 300]


def test_score_reports_skipped_checkpoint_on_stderr(runs):
    (runs / "a" / "checkpoints" / "200" / "commit_success.txt").unlink()
    r = runner.invoke(app, ["score", str(runs / "a")])
    assert r.exit_code == 0
    assert "skipped" in r.stderr and "200" in r.stderr and "not finalized" in r.stderr


def test_score_bad_path_exit_1(tmp_path):
    r = runner.invoke(app, ["score", str(tmp_path / "missing")])
    assert r.exit_code == 1
    assert "gatekit: error:" in r.stderr and "missing" in r.stderr


def test_select_from_runs_and_from_table(runs, tmp_path):
    r = runner.invoke(app, ["select", str(runs), "--threshold", "0.63", "--metric", "action_magnitude", "-v"])
    assert r.exit_code == 0, r.output
    assert f"distill from: {runs / 'a'}@300" in r.stdout and "why:" in r.stdout  # the path as given
    runner.invoke(app, ["score", str(runs), "--csv", str(tmp_path / "s.csv"), "-q"])
    r = runner.invoke(app, ["select", str(tmp_path / "s.csv"), "--threshold", "0.01", "-m", "action_magnitude", "--json", "-"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["fallback"] is True  # the rule never held: the final checkpoint
    r = runner.invoke(app, ["select", str(runs), "--threshold", "0.5", "-m", "action_magnitude", "--mode", "sideways"])
    assert r.exit_code == 1 and "direction must be one of" in r.stderr


def test_fit_from_table(tmp_path):
    rows = ["teacher_seed,action_magnitude,student_success"]
    data = [(0, .9, 10), (0, .8, 20), (0, .6, 300), (0, .5, 320), (1, .85, 15), (1, .7, 40), (1, .55, 280),
            (1, .4, 350), (2, .95, 5), (2, .75, 30), (2, .62, 250), (2, .45, 330)]
    rows += [f"{s},{m},{o}" for s, m, o in data]
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    r = runner.invoke(app, ["fit", str(tmp_path / "pairs.csv"), "--label", "student_success", "--label-above", "100",
                            "-m", "action_magnitude", "--group", "teacher_seed", "--json", str(tmp_path / "fit.json"),
                            "--plot", str(tmp_path / "roc.png"), "--n-boot", "200"])
    assert r.exit_code == 0, r.output
    assert "in-sample AUC = 1.000" in r.stdout and "out of fold" in r.stdout and "accuracy 1.000 (12/12)" in r.stdout
    assert "not meaningful" in r.stdout  # 3 groups: the bootstrap CI carries a warning
    fit = json.loads((tmp_path / "fit.json").read_text())
    # separable: the threshold is midway between the largest positive (0.62) and smallest negative (0.70)
    assert fit["threshold"] == pytest.approx(0.66) and (tmp_path / "roc.png").exists()
    r = runner.invoke(app, ["fit", str(tmp_path / "pairs.csv"), "--label", "student_success"])
    assert r.exit_code == 1 and "--label-above" in r.stderr and "--label-relative" in r.stderr
    r = runner.invoke(app, ["fit", str(tmp_path / "pairs.csv"), "--label", "nope", "--label-above", "1"])
    assert r.exit_code == 1 and "no column 'nope'" in r.stderr


def test_plot_command(runs, tmp_path):
    r = runner.invoke(app, ["plot", str(runs), "--out", str(tmp_path / "p.pdf"), "--metric", "sa_rank"])
    assert r.exit_code == 0 and (tmp_path / "p.pdf").read_bytes()[:4] == b"%PDF"
    r = runner.invoke(app, ["plot", str(runs), "--out", str(tmp_path / "p.bmp"), "-m", "entropy"])
    assert r.exit_code == 1 and "unknown plot type" in r.stderr


def test_import_and_help_do_not_load_brax_or_jax():
    code = ("import sys, gatekit, gatekit.cli; assert 'brax' not in sys.modules; "
            "assert 'jax' not in sys.modules; print('ok')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"


def test_scoring_does_not_import_brax(run_dir):
    code = f"import sys, gatekit; gatekit.score({str(run_dir)!r}); print('brax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().endswith("False"), out.stderr[-2000:]




def test_plot_draws_one_line_per_run_and_threshold_only_when_asked(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gatekit import plotting

    write_run(tmp_path / "dup" / "x" / "teacher", steps=(100, 200), magnitudes=[1.0, 0.1])
    write_run(tmp_path / "dup" / "y" / "teacher", steps=(100, 200), seed=1, magnitudes=[1.0, 0.1])
    write_run(tmp_path / "dup" / "s", steps=(100, 200), seed=2, role="student")
    seen = {}

    def capture(fig, out):
        ax = fig.axes[0]
        seen["lines"] = [ln for ln in ax.get_lines() if ln.get_marker() not in ("*", "None", "", None)]
        seen["labels"] = [t.get_text() for t in ax.get_legend().get_texts()]
        seen["hlines"] = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--" and ln.get_marker() in ("None", "")]
        plt.close(fig)
        return out

    monkeypatch.setattr(plotting, "_save", capture)
    r = runner.invoke(app, ["plot", str(tmp_path / "dup"), "--out", str(tmp_path / "p.png"), "--metric", "sa_rank"])
    assert r.exit_code == 0, r.output
    assert len(seen["lines"]) == 2 and sorted(seen["labels"]) == ["x/teacher", "y/teacher"]  # no student
    assert seen["hlines"] == []  # no threshold unless asked
    r = runner.invoke(app, ["plot", str(tmp_path / "dup"), "--out", str(tmp_path / "p.png"), "--gate", "paper"])
    assert r.exit_code == 0, r.output
    assert any("selected" in lab for lab in seen["labels"]) and any("passes" in lab for lab in seen["labels"])
    assert len(seen["hlines"]) == 1
    r = runner.invoke(app, ["plot", str(tmp_path / "dup"), "--out", str(tmp_path / "p.png"), "--role", "any", "-m", "entropy"])
    assert len(seen["lines"]) == 3
    # a run identical to another is not hidden behind it: its own marker, and the legend says so
    write_run(tmp_path / "dup" / "z" / "teacher", steps=(100, 200), magnitudes=[1.0, 0.1])
    r = runner.invoke(app, ["plot", str(tmp_path / "dup"), "--out", str(tmp_path / "p.png"), "-m", "entropy"])
    assert r.exit_code == 0, r.output
    assert "z/teacher (same values as x/teacher)" in seen["labels"]
    assert len({ln.get_marker() for ln in seen["lines"]}) == 3


def test_newcomer_details_version_pipes_modes_help(runs, tmp_path):
    import os

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.startswith("gatekit ")
    r = runner.invoke(app, ["score", str(runs / "a"), "--csv", "-"])
    assert r.exit_code == 0 and r.stdout.splitlines()[0].startswith("run,") and len(r.stdout.splitlines()) == 4
    old = os.umask(0o022)
    try:
        runner.invoke(app, ["score", str(runs / "a"), "--csv", str(tmp_path / "s.csv"), "-q"])
    finally:
        os.umask(old)
    assert (tmp_path / "s.csv").stat().st_mode & 0o777 == 0o644
    r = subprocess.run([sys.executable, "-m", "gatekit.cli", "select", "--help"], capture_output=True, text=True)
    assert "SOURCES" in r.stdout and "<list[Path]>" not in r.stdout and "--gate TEXT" in r.stdout
    r = subprocess.run([sys.executable, "-m", "gatekit.cli", "score", "--nope"], capture_output=True, text=True)
    assert r.returncode == 2  # usage errors exit 2 (documented), bad input 1


def test_score_table_is_notebook_friendly(runs, tmp_path):
    import gatekit
    from gatekit.scoring import ScoreTable

    t = gatekit.score(runs)
    assert t[0]["step"] == 100 and len(t[1:3]) == 2 and t["step"].tolist() == [100, 200, 300, 100, 200]
    assert len(repr(t)) < 200 and "5 checkpoint(s) of 2 run(s)" in repr(t)
    assert t._repr_html_().startswith("<table>")
    t.to_json(tmp_path / "s.json")
    back = ScoreTable.read(tmp_path / "s.json")
    assert len(back) == 5 and back.settings == t.settings
    lines = t.format(["step", "action_magnitude"]).splitlines()[1:]
    dots = {line.index(".") for line in lines if "." in line}
    assert len(dots) == 1  # decimal points line up


def test_fit_warns_on_few_positives_and_wrong_direction(tmp_path):
    rows = ["teacher_seed,m,o"] + [f"{s},{v},{o}" for s in range(3) for v, o in ((1, 0), (2, 0), (3, 0), (4, 1))]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    r = runner.invoke(app, ["fit", str(tmp_path / "p.csv"), "--metric", "m", "--label", "o", "--direction", "below",
                            "--group", "teacher_seed", "--n-boot", "50"])
    assert r.exit_code == 0
    assert "runs the other way" in r.stdout and "not meaningful" in r.stdout


def test_select_always_answers(runs, tmp_path, monkeypatch):
    """With no gate, select answers the final checkpoint with its held-out record and what
    measuring would buy; a bare --threshold is the paper's |tanh mu| rule with its record."""
    r = runner.invoke(app, ["select", str(runs), "--json", str(tmp_path / "shipped.json")])  # as shipped
    assert r.exit_code == 0, r.output
    shipped = json.loads((tmp_path / "shipped.json").read_text())
    assert shipped["gate"]["name"] == resolve.resolve_gate(None).name and "to measure instead: gatekit race" in r.stdout
    monkeypatch.setattr(resolve, "_auto_is_default", lambda decision="choose": False)  # auto beats nothing
    r = runner.invoke(app, ["select", str(runs), "--json", str(tmp_path / "sel.json"), "-v"])
    assert r.exit_code == 0, r.output
    sel = json.loads((tmp_path / "sel.json").read_text())
    last = {p.name: max(int(s.name) for s in (p / "checkpoints").iterdir()) for p in runs.iterdir() if p.is_dir()}
    assert sel["ready"] and sel["step"] == min(last.values()) and sel["gate"]["name"] == "final"
    assert "rule: final" in r.stdout and "the final checkpoint" in r.stdout
    assert "of teacher runs of tasks it was not fitted on" in r.stdout and "Measuring would buy" in r.stdout
    assert "trusted: no" in r.stdout  # its record is below 80%
    r = runner.invoke(app, ["select", str(runs), "--threshold", "0.63", "-v"])
    assert r.exit_code == 0, r.output
    assert "action_magnitude < 0.63" in r.stdout and "tasks it was not fitted on" in r.stdout
    r = runner.invoke(app, ["select", str(runs), "--threshold", "0.5"])  # another threshold: no record claimed
    assert r.exit_code == 0 and "action_magnitude < 0.5" in r.stdout and "no held-out record" in r.stdout


def test_commands_that_show_a_statistic_ask_for_one(runs, tmp_path, monkeypatch):
    """Without a gate for the runs' env, a plot asks for the statistic instead of silently using
    the paper's |tanh mu|, and says so before any scoring; fit takes the env's built-in gate's."""
    monkeypatch.setattr(resolve, "_auto_is_default", lambda decision="choose": False)
    r = runner.invoke(app, ["score", str(runs), "--plot", str(tmp_path / "m.png")])
    assert r.exit_code == 1 and "--metric" in r.stderr and "scoring" not in r.stderr
    assert not (tmp_path / "m.png").exists()
    (tmp_path / "pairs.csv").write_text("env,teacher_seed,goal_rank,action_magnitude,o\n"
                                        + "".join(f"pointmaze,{i % 3},{i},{1 - i / 12},{i}\n" for i in range(12)))
    r = runner.invoke(app, ["fit", str(tmp_path / "pairs.csv"), "--label", "o", "--label-above", "5", "-g", "teacher_seed",
                            "--json", "-", "--n-boot", "0"])
    assert r.exit_code == 0 and json.loads(r.stdout)["metric"] == "goal_rank"  # the pointmaze gate's statistic


def test_fit_verdict_needs_accuracy_and_auc(tmp_path):
    from gatekit.fitting import _verdict

    better_acc_worse_auc = _verdict("goal_rank", "step", {"accuracy": 0.9, "auc": 0.899}, {"accuracy": 0.8, "auc": 0.914})
    assert "does not clearly beat" in better_acc_worse_auc and "0.899 vs 0.914" in better_acc_worse_auc
    both = _verdict("goal_rank", "step", {"accuracy": 0.9, "auc": 0.95}, {"accuracy": 0.8, "auc": 0.914})
    assert " beats the step" in both and "declared before looking" in both


def test_score_cache_reuses_unchanged_runs_and_rescores_changed_ones(tmp_path, monkeypatch):
    import time

    from gatekit import scoring
    from gatekit.io import cache

    monkeypatch.setenv("GATEKIT_SCORE_CACHE", str(tmp_path / "cache"))
    write_run(tmp_path / "r", steps=(100, 200, 300), magnitudes=[1.0, 0.5, 0.1])
    t0 = time.perf_counter()
    first = scoring.score(tmp_path / "r")
    cold = time.perf_counter() - t0
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    calls = []
    monkeypatch.setattr(scoring, "_score_checkpoint", lambda *a, **k: calls.append(1) or 1 / 0)
    again = scoring.score(tmp_path / "r")  # nothing restored or scored: the rows come back exactly
    assert calls == [] and again.rows == first.rows
    monkeypatch.undo()
    monkeypatch.setenv("GATEKIT_SCORE_CACHE", str(tmp_path / "cache"))
    # a new checkpoint changes the key: the run is scored again (its reference is now step 400)
    write_run(tmp_path / "r2", steps=(100, 200, 300, 400), magnitudes=[1.0, 0.5, 0.1, 0.1])
    n = len(scoring.score(tmp_path / "r2").rows)
    assert n == 4 and len(list((tmp_path / "cache").glob("*.json"))) == 2
    # a damaged file changes the key: the damage is found, not hidden by the cache
    victim = max((p for p in (tmp_path / "r" / "checkpoints" / "200" / "params").rglob("d/*")), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    damaged = scoring.score(tmp_path / "r")
    assert [r["step"] for r in damaged.rows] == [100, 300] and any("200" in p.path for p in damaged.problems)
    assert scoring.score(tmp_path / "r", cache=False).rows[0]["step"] == 100
    assert cache.folder({"GATEKIT_SCORE_CACHE": "off"}) is None
    r = runner.invoke(app, ["score", str(tmp_path / "r"), "--no-cache", "-q"])
    assert r.exit_code == 0 and "skipped" in r.stderr
    assert cold > 0


def test_report_one_page_html_and_png(tmp_path):
    """The report: the answer, trust and warnings above a self-contained figure (the gate's
    statistic, teacher eval, students vs teacher checkpoint) and a table with the pick marked."""
    import base64
    import re
    from html.parser import HTMLParser

    from gatekit.io import RunWriter

    write_run(tmp_path / "runs" / "teacher", steps=(100, 200, 300, 400), magnitudes=[1.0, 0.8, 0.3, 0.2])
    teacher = (tmp_path / "runs" / "teacher").resolve()
    for k, (step, success) in enumerate([(100, 0.1), (100, 0.2), (300, 0.7), (300, 0.6), (400, 0.65)]):
        w = RunWriter(tmp_path / "runs" / f"student{k}", config={"family": "crl", "net": NET, "role": "student", "seed": k,
                                                                  "teacher": str(teacher), "teacher_step": step})
        w.save(50, params={"w": np.zeros(2, np.float32)}, meta={"epoch": 1, "env_steps": 50, "eval": {"success": success}},
               sample={"obs": np.zeros((2, 4), np.float32)})
        w.close()
    from gatekit.io import Gate, write_gate

    write_gate(Gate(metric="action_magnitude", direction="below", threshold=0.2, patience=1, name="g"), tmp_path / "g.json")
    gate = ["--gate", str(tmp_path / "g.json")]  # action_magnitude 0.37, 0.30, 0.15, 0.10: passes from step 300
    r = runner.invoke(app, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r.html"), *gate])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "r.html").read_text()
    tags = []

    class Check(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag not in ("meta", "img", "br"):
                tags.append(tag)

        def handle_endtag(self, tag):
            assert tags.pop() == tag

    Check().feed(page)
    assert tags == []  # well formed
    assert f"{teacher}@300</b>" in page and "Trusted:</b> no" in page
    png = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1))
    assert png[:4] == b"\x89PNG"
    pick = re.search(r'<tr class="pick">(.*?)</tr>', page).group(1)
    assert "300" in pick and "0.650 (2)" in pick  # the pick's row carries its two students' mean
    r = runner.invoke(app, ["report", str(tmp_path / "runs" / "teacher"), "--out", str(tmp_path / "r.png"), *gate])
    assert r.exit_code == 0 and (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    r = runner.invoke(app, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r.txt"), *gate])
    assert r.exit_code == 1 and "unknown report type" in r.stderr
    r = runner.invoke(app, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r2.html"), "--gate", "nosuch"])
    assert r.exit_code == 1 and "nosuch" in r.stderr and "scoring" not in r.stderr


def test_two_outputs_to_one_file_are_refused_before_scoring(runs, tmp_path):
    """Issue 34 item 10: --csv F --json F used to lose the CSV silently."""
    same = tmp_path / "scores.out"
    r = runner.invoke(app, ["score", str(runs), "--csv", str(same), "--json", str(same)])
    assert r.exit_code == 1 and "--csv and --json are the same file" in r.stderr and "scoring" not in r.stderr
    assert not same.exists()


def test_a_dollar_in_a_run_name_or_title_is_plain_text(tmp_path):
    """Issue 34: `price_$5_to_$10` was a mathtext ParseSyntaxException after scoring."""
    write_run(tmp_path / "price_$5_to_$10", steps=(100, 200, 300))
    run = str(tmp_path / "price_$5_to_$10")
    r = runner.invoke(app, ["score", run, "--plot", str(tmp_path / "m.png"), "--metric", "entropy"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", run, "--out", str(tmp_path / "r.png"), "--title", "cost $1 to $2"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "m.png").stat().st_size > 0 and (tmp_path / "r.png").stat().st_size > 0
