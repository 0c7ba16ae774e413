"""Hostile inputs of the newest layer: warnings never loop, a preset name means the preset."""

import json
import subprocess
import sys
import warnings

import pytest
import typer

from gatekit import io as gio
from gatekit.cli_common import error_boundary
from gatekit.errors import GatekitError

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_a_warning_inside_a_command_is_shown_once_and_never_loops(capsys):
    @error_boundary("gatekit")
    def noisy():
        for _ in range(3):
            warnings.warn("Glyph 26085 missing from font(s) DejaVu Sans.", UserWarning)
        warnings.warn("another", RuntimeWarning)
        return "done"

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert noisy() == "done"  # it returns: the old boundary appended to the list it was showing, forever
    texts = [str(w.message) for w in shown]
    assert texts.count("Glyph 26085 missing from font(s) DejaVu Sans.") == 1 and texts.count("another") == 1


def test_a_warning_then_an_error_still_exits_1(capsys):
    @error_boundary("gatekit")
    def bad():
        warnings.warn("careful", UserWarning)
        from gatekit.errors import GatekitError

        raise GatekitError("--x: bad")

    with warnings.catch_warnings(record=True) as shown, pytest.raises(typer.Exit) as e:
        warnings.simplefilter("always")
        bad()
    assert e.value.exit_code == 1
    assert "gatekit: error: --x: bad" in capsys.readouterr().err
    assert [str(w.message) for w in shown].count("careful") == 1


@pytest.mark.parametrize("name", ["budget", "auto", "final"])
def test_a_file_or_folder_named_like_a_preset_never_replaces_it(name, tmp_path, monkeypatch):
    from gatekit import io as gio

    shipped = gio.read_gate(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(json.dumps({**shipped.to_dict(), "metric": "step", "direction": "above",
                                             "threshold": 1.0, "transform": "raw"}))
    with pytest.warns(Warning, match="shipped preset"):
        g = gio.read_gate(name)
    assert g.to_dict() == shipped.to_dict()
    assert gio.read_gate(f"./{name}").metric == "step"  # spelled as a path, the file is read
    (tmp_path / name).unlink()
    (tmp_path / name).mkdir()  # a run folder called "auto"
    with pytest.warns(Warning, match="folder"):
        assert gio.read_gate(name).to_dict() == shipped.to_dict()


def test_select_with_a_folder_named_auto_in_the_working_directory(run_dir, tmp_path):
    (tmp_path / "work" / "auto").mkdir(parents=True)
    out = subprocess.run([sys.executable, "-m", "gatekit.cli", "select", str(run_dir), "--gate", "auto"],
                         capture_output=True, text=True, cwd=tmp_path / "work", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "note:" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("out", ["examples/results/gatebench", "examples/results/gatebench/data",
                                 "examples/results/gatebench/data/sub"])
def test_the_benchmark_never_writes_over_its_dataset(out):
    before = sorted((ROOT / "examples/results/gatebench").rglob("*"))
    done = subprocess.run([sys.executable, "-m", "training", "gatebench", "--out", out, "--data",
                           "examples/results/gatebench/data", "--analyze-only"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 1 and "overlaps the dataset" in done.stderr and "Traceback" not in done.stderr
    assert sorted((ROOT / "examples/results/gatebench").rglob("*")) == before


@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "0", "-5"])
def test_a_bad_npz_cap_is_an_error_naming_the_variable(value, monkeypatch):
    from gatekit.errors import GatekitError
    from gatekit.io.npz import max_npz_bytes

    monkeypatch.setenv("GATEKIT_MAX_NPZ_MB", value)
    with pytest.raises(GatekitError, match="GATEKIT_MAX_NPZ_MB"):
        max_npz_bytes()


@pytest.mark.parametrize("record, match", [
    ({"held_out": {"choose": "high"}}, "validation.held_out.choose must be a number"),
    ({"held_out": {"choose": float("nan")}}, "finite"),
    ({"held_out": {"choose": float("inf")}}, "finite"),
    ({"held_out": {"choose": 7}}, r"in \[0, 1\]"),
    ({"held_out": {"choose": 0.9, "choose_ci": "wide"}}, "choose_ci must be"),
    ({"held_out": {"choose": 0.9, "default_for": {"choose": "yes"}}}, "default_for"),
    ({"held_out": {"choose": 0.9, "per_task": {"a": {"choose": None, "stop": [1e999]}}}}, "finite"),
])
def test_a_gate_files_record_is_validated_like_every_input(record, match, tmp_path, run_dir):
    """Issue 44: a gate whose validation held a string, NaN or Infinity gave a traceback, or
    "right on nan%" and "trusted: yes"."""
    import json
    import subprocess
    import sys

    gate = {"format": "gatekit-gate/1", "metric": "action_magnitude", "direction": "below", "threshold": 0.5,
            "patience": 1, "validation": record}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(gate))  # NaN and Infinity as Python's json writes them
    with pytest.raises(GatekitError, match=match):
        gio.read_gate(path)
    if record["held_out"]["choose"] == record["held_out"]["choose"]:  # the command line once, on the NaN record
        return
    out = subprocess.run([sys.executable, "-m", "gatekit.cli", "select", str(run_dir), "--gate", str(path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr and "g.json" in out.stderr
    assert "nan%" not in out.stdout and "trusted: yes" not in out.stdout


def test_ship_writes_every_preset_or_none(tmp_path):
    """Issue 44: --ship wrote some presets and then failed, leaving them half-shipped."""
    from training.bench.analysis import all_or_none

    for n in ("auto.json", "final.json"):
        (tmp_path / n).write_text('{"old": 1}')

    def half(stage):
        (stage / "auto.json").write_text('{"new": 1}')
        raise RuntimeError("the second preset failed")

    with pytest.raises(RuntimeError):
        all_or_none(tmp_path, half, ("auto.json", "final.json"))
    assert (tmp_path / "auto.json").read_text() == '{"old": 1}' and sorted(p.name for p in tmp_path.iterdir()) == [
        "auto.json", "final.json"]
    all_or_none(tmp_path, lambda st: [(st / n).write_text('{"new": 2}') for n in ("auto.json", "final.json")],
                ("auto.json", "final.json"))
    assert {p.read_text() for p in tmp_path.iterdir()} == {'{"new": 2}'}


def test_ship_from_an_installed_package_is_refused_before_any_analysis(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from training import cli
    from training.bench import analysis

    monkeypatch.setattr(analysis, "REPO_PRESETS", tmp_path / "site-packages" / "gatekit" / "presets")
    monkeypatch.setattr(analysis, "analyze", lambda *a, **k: pytest.fail("analysed before refusing"))
    res = CliRunner().invoke(cli.app, ["gatebench", "--out", str(tmp_path / "o"), "--analyze-only", "--ship"])
    assert res.exit_code == 1 and "not a checkout" in res.output


def test_no_output_lands_inside_another_run_or_race(tmp_path, run_dir):
    """Issue 44: ``race ... --json O/step7200_s0/run.json`` (the kept student of an earlier race)
    exited 0 and left that student unreadable. No command writes into a run or a race folder that
    is not its own input."""
    from conftest import write_run

    kept = write_run(tmp_path / "O" / "step300_s0", steps=(100,))
    (tmp_path / "O" / "race-settings.json").write_text("{}")
    before = (kept / "run.json").read_bytes()
    for target, what in ((kept / "run.json", "a gatekit run"), (tmp_path / "O" / "race.json", "a race's folder"),
                         (kept / "checkpoints" / "x.json", "a gatekit run")):
        out = subprocess.run([sys.executable, "-m", "gatekit.cli", "score", str(run_dir), "--json", str(target)],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 1 and what in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert (kept / "run.json").read_bytes() == before and not (tmp_path / "O" / "race.json").exists()


def test_no_cache_is_written_inside_a_run(tmp_path, run_dir, monkeypatch):
    """Issue 44: GATEKIT_SCORE_CACHE inside *another* run was written into; GATEKIT_COMPILATION_CACHE
    inside a run filled its folder with JAX cache files."""
    from conftest import write_run

    import gatekit
    from gatekit.cli_common import enable_compilation_cache

    other = write_run(tmp_path / "other", steps=(100,))
    before = sorted(p.relative_to(other) for p in other.rglob("*"))
    monkeypatch.setenv("GATEKIT_SCORE_CACHE", str(other / "checkpoints" / "cache"))
    with pytest.raises(GatekitError, match="GATEKIT_SCORE_CACHE=.*inside .*other.*a gatekit run"):
        gatekit.score(run_dir)
    assert sorted(p.relative_to(other) for p in other.rglob("*")) == before
    env = {"GATEKIT_COMPILATION_CACHE": str(other / "jax")}
    assert enable_compilation_cache(env) is None and "JAX_COMPILATION_CACHE_DIR" not in env
    assert sorted(p.relative_to(other) for p in other.rglob("*")) == before


def test_an_edited_cache_entry_with_its_digest_recomputed_is_not_served(tmp_path, monkeypatch):
    """Issue 44: a cache entry whose rows were edited and whose sha256 was recomputed was served (the
    answer changed with no message; one entry listed /etc as a scored run). Entries are signed with
    a key the cache folder does not hold."""
    import hashlib

    from gatekit.io import cache

    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(cache.KEY_ENV, str(tmp_path / "key" / "cache.key"))
    cache.put("k", {"rows": [{"step": 100, "action_magnitude": 0.5}], "problems": [], "notes": []})
    assert cache.get("k")["rows"][0]["action_magnitude"] == 0.5
    assert (tmp_path / "key" / "cache.key").stat().st_mode & 0o077 == 0  # the user's alone
    path = tmp_path / "cache" / "k.json"
    entry = json.loads(path.read_text())
    entry["rows"][0]["action_magnitude"] = 0.01
    entry["rows"].append({"step": 200, "run_path": "/etc"})
    body = {k: v for k, v in entry.items() if k not in ("key", "digest")}
    entry["digest"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()  # recomputed
    path.write_text(json.dumps(entry))
    assert cache.get("k") is None  # scored again, never served
    monkeypatch.setenv(cache.KEY_ENV, str(tmp_path / "cache" / "cache.key"))  # a key the cache folder holds
    cache.put("k2", {"rows": [], "problems": [], "notes": []})
    assert cache.get("k2") is None and not (tmp_path / "cache" / "k2.json").exists()


def test_a_run_whose_checksums_were_stripped_is_not_trusted(tmp_path):
    """Issue 44: a run whose run.json and every meta had lost their checksums was read as trusted;
    an edited eval_success passed with no note. Missing checksums are a visible state."""
    from conftest import write_run

    import gatekit

    run = write_run(tmp_path / "t", steps=(100, 200, 300))
    assert not any("checksums" in n for n in gatekit.score(run, cache=False).notes)
    cfg = json.loads((run / "run.json").read_text())
    cfg.pop("checksums", None)
    (run / "run.json").write_text(json.dumps(cfg))
    for meta in run.glob("checkpoints/*/meta/metadata"):
        doc = json.loads(meta.read_text())
        doc.pop("checksums", None)
        meta.write_text(json.dumps(doc))
    table = gatekit.score(run, cache=False)
    assert any("carry no checksums" in n for n in table.notes) and len(table.rows) == 3
    sel = gatekit.select(run, gate=gatekit.io.Gate("action_magnitude", "below", 10.0, name="x"), cache=False)
    assert not sel.trusted and any("carry no checksums" in w for w in sel.warnings)


@pytest.mark.slow
def test_student_side_scores_on_wide_observations_stay_bounded(tmp_path):
    """Issue 44: an outputs-only run with 256 rows of a flattened 64x64x3 image peaked at 4.5-4.9 GB
    in the student-side scores (every row's gradient at once, the projection closed over by the
    jitted program). Measured in a fresh process: under 1.6 GB now (about 1.1 GB)."""
    script = tmp_path / "wide.py"
    script.write_text(  # the child's own peak (VmHWM): ru_maxrss keeps the parent's pages across exec
        "import numpy as np\nfrom gatekit import studentside as ss\n"
        "rng = np.random.default_rng(0)\nn = 256\n"
        "obs = rng.normal(size=(n, 64 * 64 * 3)).astype(np.float32); goal = rng.normal(size=(n, 2)).astype(np.float32)\n"
        "mu = rng.normal(size=(n, 3)).astype(np.float32); ls = 0.1 * rng.normal(size=(n, 3)).astype(np.float32)\n"
        "out = ss.student_side_scores(obs, goal, mu, ls)\n"
        "assert all(np.isfinite(v) for k, v in out.items() if v is not None), out\n"
        "print(next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM:')) / 1024)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split()[-1]) < 1600, out.stdout


ROOT_DATA = ROOT / "examples" / "results" / "gatebench" / "data"


@pytest.mark.skipif(not ROOT_DATA.is_dir(), reason="the dataset is not in this checkout")
def test_the_dataset_reader_caps_the_whole_directory_and_names_the_variable(monkeypatch):
    """Issue 44: twelve valid task files of ~240 MB each took 2.6 GB (the cap was per file)."""
    monkeypatch.setenv("GATEKIT_MAX_DATASET_MB", "3")
    with pytest.raises(GatekitError, match="inflate to .* together.*GATEKIT_MAX_DATASET_MB"):
        gio.read_benchmark(ROOT_DATA)
    for bad in ("nan", "inf", "0", "-1", "lots"):
        monkeypatch.setenv("GATEKIT_MAX_DATASET_MB", bad)
        with pytest.raises(GatekitError, match="GATEKIT_MAX_DATASET_MB"):
            gio.read_benchmark(ROOT_DATA)


def test_odd_npz_members_and_deep_meta_are_refused(tmp_path):
    """Issue 44: a raw zip member beside a .npy of the same name, and a meta JSON nested 100,000
    deep, gave tracebacks."""
    import zipfile

    import numpy as np

    path = tmp_path / "t.npz"
    np.savez(path, meta=np.array("{}"), values=np.zeros(3))
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("values", b"raw bytes")
    with pytest.raises(GatekitError, match="appear twice"):
        gio.read_benchmark_task(path)
    deep = tmp_path / "deep.npz"
    np.savez(deep, meta=np.array("[" * 100_000 + "]" * 100_000))
    with pytest.raises(GatekitError, match="meta"):
        gio.read_benchmark_task(deep)


@pytest.mark.parametrize("results, teachers, match", [
    ("garbage{", None, "not valid JSON"),
    ('{"tasks": 5}', None, "no 'costs'"),
    ('{"costs": {"pointmaze": {"teacher_seconds": "x"}}}', None, "teacher_seconds"),
    (None, "config,teacher_seed\nbase,0\n", "teachers.csv: row 2 needs task"),
])
def test_an_older_tables_results_and_curves_are_checked(results, teachers, match, tmp_path):
    """Issue 44: garbage results.json, or teachers.csv rows without task, gave tracebacks."""
    import shutil

    src = ROOT / "examples" / "results" / "gatebench"
    for name in ("pairs.csv", "results.json", "teachers.csv"):
        shutil.copy(src / name, tmp_path / name)
    if results is not None:
        (tmp_path / "results.json").write_text(results)
    if teachers is not None:
        (tmp_path / "teachers.csv").write_text(teachers)
    out = subprocess.run([sys.executable, "-m", "training", "gatebench", "--out", str(tmp_path / "o"), "--analyze-only",
                          "--pairs", str(tmp_path / "pairs.csv")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 1 and "Traceback" not in out.stderr and match in out.stderr, out.stderr[-1500:]


def test_report_says_why_no_teacher_run_was_read(tmp_path):
    """Issue 44: report on a run under a backslash path said "no teacher run among the sources"
    without the reason score gives."""
    from conftest import write_run

    run = write_run(tmp_path / "ab", steps=(100, 200))
    moved = run.rename(tmp_path / "a\\b")
    out = subprocess.run([sys.executable, "-m", "gatekit.cli", "report", str(moved), "--out", str(tmp_path / "r.html")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "backslash" in out.stderr and "Traceback" not in out.stderr
