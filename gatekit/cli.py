"""``gatekit`` command line: parse, call the library, print. GatekitError -> stderr, exit 1."""

from __future__ import annotations

import pathlib
import sys
from typing import Annotated, List, Optional

import typer

from gatekit.cli_common import (Quiet, check_out_paths, error_boundary, make_app, progress, run_app, say,
                                version_callback, write_json)
from gatekit.errors import GatekitError

app = make_app("gatekit", "Which teacher checkpoint to distill from: score checkpoints, select a teacher, fit the gate.",
               add_completion=True)


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=version_callback("gatekit"), is_eager=True,
                                                    help="Print the version and exit.")] = None,
):
    """Which teacher checkpoint to distill from: score checkpoints, select a teacher, fit the gate.

    Exit codes: 0 done (also when no checkpoint is ready: the answer says so), 1 bad input
    (the message names the file or argument), 2 command-line usage errors."""

# Shared options, declared once.
Sources = Annotated[
    List[pathlib.Path],
    typer.Argument(help="Run directories, folders of runs (searched recursively), or score tables (.csv/.json)."),
]
Metric = Annotated[Optional[str], typer.Option("--metric", "-m", help="Teacher statistic of a one-off --threshold rule (default: the paper's action_magnitude).")]
Direction = Annotated[str, typer.Option("--direction", help="One-off rule: 'below' (value < threshold passes) or 'above'.")]
ModeAlias = Annotated[Optional[str], typer.Option("--mode", hidden=True, help="Deprecated alias of --direction.")]
Reference = Annotated[
    Optional[str],
    typer.Option("--reference", help="RUN_DIR[@STEP] for CKA / q_corr (default: each run's last checkpoint)."),
]
Probe = Annotated[
    Optional[pathlib.Path],
    typer.Option("--probe", help=".npz with obs, action, goal shared by all runs (default: per run)."),
]
ProbeSize = Annotated[int, typer.Option("--probe-size", help="Subsample the probe to at most N rows.")]
JsonOut = Annotated[Optional[pathlib.Path], typer.Option("--json", help="Write the result as JSON to this file ('-' = stdout).")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Score again instead of reusing scores of unchanged checkpoints (gatekit.io.cache).")]


_boundary = error_boundary("gatekit")


def _to_stderr(prefix: str, items) -> None:
    """One line per skipped input (``gatekit: skipped``) or warning (``warning:``), on stderr."""
    for item in items:
        typer.echo(f"{prefix} {item}", err=True)


def _report_problems(problems) -> None:
    _to_stderr("gatekit: skipped", problems)


@app.command()
@_boundary
def score(
    runs: Sources,
    csv: Annotated[Optional[pathlib.Path], typer.Option("--csv", help="Write the table as CSV.")] = None,
    json_out: JsonOut = None,
    plot: Annotated[Optional[pathlib.Path], typer.Option("--plot", help="Plot METRIC vs step (.png/.pdf).")] = None,
    metric: Metric = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", "-t", help="Threshold line on --plot (omit for none).")] = None,
    reference: Reference = None,
    probe: Probe = None,
    probe_size: ProbeSize = 4096,
    no_cache: NoCache = False,
    tensorboard: Annotated[Optional[pathlib.Path], typer.Option("--tensorboard", help="Also write every statistic as TensorBoard scalars (one folder per run) here.")] = None,
    columns: Annotated[Optional[str], typer.Option("--columns", help="Comma-separated columns to print.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print the table.")] = False,
):
    """Score every complete checkpoint: |tanh(mu)|, entropy, effective rank, alignment /
    uniformity, contrastive accuracy, InfoNCE, CKA and q_corr against a reference.

    Unreadable or half-written checkpoints are reported on stderr and skipped.
    """
    from gatekit import scoring

    csv_stdout = str(csv) == "-"
    check_out_paths([*runs, *([probe] if probe else [])], csv=csv, json=json_out, plot=plot)
    if tensorboard is not None:
        # a folder (made if missing, in an existing one), never inside a run
        check_out_paths(runs, tensorboard=tensorboard / "events" if tensorboard.is_dir() else tensorboard)
        from gatekit.io.logs import tensorboard_dirs

        given_runs = [r for r in runs if (pathlib.Path(r) / "run.json").is_file()]
        if given_runs:  # where each run's scalars will go, checked before any scoring
            tensorboard_dirs(tensorboard, [str(pathlib.Path(r).resolve()) for r in given_runs])
    if csv_stdout and str(json_out) == "-":
        raise GatekitError("--csv - and --json - both write to stdout; pick one")
    if threshold is not None:
        from gatekit.rule import check_number

        check_number(threshold, "--threshold")
    if plot:
        from gatekit import api
        from gatekit.statistics import check_metric

        # the plotted statistic is known (or missing) before any scoring
        metric = check_metric(metric) if metric is not None else api.default_metric(api.sources_env(runs))
    interrupted = None
    try:
        with progress(quiet) as shown:
            table = scoring.score(runs, reference=reference, probe=probe, probe_size=probe_size, progress=shown,
                                  cache=not no_cache)
    except scoring.ScoringInterrupted as e:
        interrupted, table = e, e.table
    _report_problems(table.problems)
    if interrupted is not None:  # keep what was scored, say so, exit as Ctrl-C does
        for dest, write in ((csv, table.to_csv), (json_out, table.to_json)):
            if dest is not None and str(dest) != "-":
                write(dest)
        kept = ", ".join(str(d) for d in (csv, json_out) if d is not None and str(d) != "-") or "nothing (no --csv/--json)"
        typer.echo(f"gatekit: interrupted (Ctrl-C) after {interrupted.done} of {interrupted.total} checkpoints; "
                   f"partial scores written to {kept}", err=True)
        raise typer.Exit(130)
    for note in table.notes:
        typer.echo(f"gatekit: note: {note}", err=True)
    if csv_stdout:
        typer.echo(table.to_csv(), nl=False)
    elif csv:
        table.to_csv(csv)
    if json_out is not None:
        if str(json_out) == "-":
            typer.echo(table.to_json(), nl=False)
        else:
            table.to_json(json_out)
    if tensorboard is not None:
        from gatekit.io.logs import scores_to_tensorboard

        scores_to_tensorboard(table.rows, tensorboard)
    if plot:
        from gatekit import plotting
        from gatekit.selection import rows_with_role

        plotting.plot_metric_vs_step(rows_with_role(table.rows, "teacher"), plot, metric=metric,
                                     thresholds=None if threshold is None else {"threshold": threshold})
    if not quiet and str(json_out) != "-" and not csv_stdout:
        cols = columns.split(",") if columns else None
        if cols:
            missing = [c for c in cols if c not in table.columns]
            if missing:
                raise GatekitError(f"--columns: unknown column(s) {missing}; have {table.columns}")
        typer.echo(table.format(cols))
        written = [str(p) for p in (csv, json_out, plot, tensorboard) if p is not None]
        typer.echo(f"{len(table)} checkpoint(s) scored, {len(table.problems)} skipped"
                   + (f"; wrote {', '.join(written)}" if written else ""))


GateOpt = Annotated[
    Optional[str],
    typer.Option("--gate", "-G", help="Gate file (gatekit fit --save) or preset: auto, final, budget, pointmaze, paper. Default: auto where the gate benchmark's declared default rule made it the default for this decision (choose for select, stop for watch; its record says which), else final (select) or budget (watch); it prints the record of the one it applies."),
]
OneOffThreshold = Annotated[
    Optional[float],
    typer.Option("--threshold", "-t", help="One-off rule instead of a gate file: --metric --direction --threshold."),
]


def _is_preset(name: str) -> bool:
    from gatekit.io.gates import is_preset_name

    return is_preset_name(name)


def _echo_warnings(warnings) -> None:
    _to_stderr("warning:", warnings)


@app.command()
@_boundary
def select(
    sources: Sources,
    gate: GateOpt = None,
    threshold: OneOffThreshold = None,
    metric: Metric = None,
    direction: Direction = "below",
    patience: Annotated[Optional[int], typer.Option("--patience", help="Consecutive passing checkpoints required (default: the gate's).")] = None,
    role: Annotated[str, typer.Option("--role", help="Rows to consider: teacher (default), student, any.")] = "teacher",
    json_out: JsonOut = None,
    reference: Reference = None,
    probe: Probe = None,
    probe_size: ProbeSize = 4096,
    no_cache: NoCache = False,
    mode: ModeAlias = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also why, the full held-out record, every run and every warning.")] = False,
    quiet: Quiet = False,
):
    """Name the teacher checkpoint to distill from: the earliest checkpoint where the rule (a gate
    file, a preset, or a one-off --threshold rule) has held for PATIENCE consecutive checkpoints;
    where it holds in no run, the final checkpoint (as the rule's held-out record counts that
    case). Prints the checkpoint, the rule and its record in a few words, and the race command
    that would measure instead; -v for the rest. With no gate: the zero-cost rule whose held-out
    record for choosing is best; a bare --threshold is the paper's rule (|tanh mu| below it).
    Exit code 0 with an answer; 1 on bad input."""
    from gatekit import api

    check_out_paths([*sources, *([probe] if probe else []), *([gate] if gate and not _is_preset(gate) and pathlib.Path(gate).exists() else [])],
                    json=json_out)
    with progress(quiet) as shown:
        sel = api.select(sources, gate=gate, threshold=threshold, metric=metric, direction=direction, mode=mode,
                         patience=patience, role=role, reference=reference, probe=probe, probe_size=probe_size,
                         cache=not no_cache,
                         progress=shown)
    _report_problems(sel.skipped)
    if str(json_out) == "-":
        write_json(sel.to_dict(), json_out)
        _echo_warnings(sel.warnings)
        return
    write_json(sel.to_dict(), json_out)
    if quiet:
        typer.echo(f"{_as_given(sel.run_path, sources)}@{sel.step}" if sel.ready else "-")
        return
    for line in select_lines(sel, sources, verbose=verbose):
        typer.echo(line)
    if verbose:
        _echo_warnings(sel.warnings)
    elif sel.warnings:
        typer.echo(f"{len(sel.warnings)} warning(s): -v shows them", err=True)


def _as_given(path: str | None, sources) -> str:
    """A run's path as the user typed it (the library works with resolved paths)."""
    if path is None:
        return "-"
    p = pathlib.Path(path)
    for s in sources:
        given = pathlib.Path(s)
        try:
            r = given.resolve()
        except OSError:
            continue
        if p == r:
            return str(given)
        if r in p.parents:
            return str(given / p.relative_to(r))
    return str(path)


def select_lines(sel, sources=(), *, verbose: bool = False) -> list[str]:
    """What ``gatekit select`` prints: the checkpoint, the rule and its record in a few words;
    with ``verbose`` the reasons, the full record, what measuring would buy (a command that works
    on this run) and every run."""
    from gatekit.selection import short_record

    name = (sel.gate and sel.gate.name) or "one-off rule"
    lines = []
    if sel.separates_nothing:
        lines.append(f"warning: the rule already holds at the first checkpoint of {len(sel.separates_nothing)} run(s): "
                     f"it separates nothing here (its record: {short_record(sel.gate)})")
    where = f"{_as_given(sel.run_path, sources)}@{sel.step}" + (f" (epoch {sel.epoch})" if sel.epoch is not None else "")
    if sel.fallback:
        lines.append(f"distill from: {where}, the final checkpoint")
        lines.append(f"rule: {name} ({sel.rule}) did not hold, so the final checkpoint, as its record counts it: "
                     f"{short_record(sel.gate)}")
    else:
        lines.append(f"distill from: {where}")
        lines.append(f"rule: {name} ({sel.rule}); {short_record(sel.gate)}")
    measure = _measure_advice(sel, sources)
    if measure:
        lines.append(f"to measure instead: {measure}")
    if verbose:
        lines.append(f"why: {sel.reason}")
        if sel.confidence:
            lines.append(f"record: {sel.confidence}")
        lines.append("trusted: yes" if sel.trusted else f"trusted: no ({'; '.join(sel.untrusted_because)})")
        for r in sel.per_run:
            chosen = "-" if r["selected_step"] is None else r["selected_step"]
            best = "-" if r["best_value"] is None else f"{r['best_value']:.4g}"
            lines.append(f"  {_as_given(r['run_path'], sources)}: {r['checkpoints']} checkpoint(s), rule holds at step "
                         f"{chosen}, best {sel.gate.reads} {best}")
    return lines


def _measure_advice(sel, sources) -> str | None:
    """The race command that works on the answer's run: with this project's trainer where the run
    records its training settings, else with a --student-cmd for the user's own trainer."""
    from gatekit import io as gio

    buys = ((sel.gate.validation or {}) if sel.gate else {}).get("measuring")
    last = buys.get("last") if isinstance(buys, dict) and isinstance(buys.get("last"), int) else 3
    run = _as_given(sel.run_path, sources)
    if sel.run_path is None or not (pathlib.Path(sel.run_path) / gio.RUN_JSON).is_file():
        return None
    try:
        train = gio.read_run(sel.run_path).config.get("train")
    except GatekitError:
        return None
    record = (f" (on record: {buys['choose']:.0%} right, {buys['regret']:.1%} regret)"
              if isinstance(buys, dict) and isinstance(buys.get("choose"), (int, float))
              and isinstance(buys.get("regret"), (int, float)) else "")
    cmd = f"gatekit race {run} --out {run.rstrip('/')}_race --last {last}"
    if not (isinstance(train, dict) and train.get("env")):
        cmd += " --student-cmd 'python YOUR_DISTILL.py --teacher {checkpoint} --seed {seed} --epochs {epochs} --out {out}'"
    return cmd + record


@app.command()
@_boundary
def fit(
    table: Annotated[pathlib.Path, typer.Argument(help="CSV/JSON with one row per teacher checkpoint and its student outcome.")],
    label: Annotated[str, typer.Option("--label", "-l", help="Student outcome column (0/1, or continuous with a label rule).")],
    metric: Annotated[str, typer.Option("--metric", "-m", help="Teacher statistic (default: the env's built-in gate's), or 'all' to rank every numeric column out of fold.")] = None,
    label_above: Annotated[Optional[float], typer.Option("--label-above", help="Label rule: outcome > X counts as success.")] = None,
    label_relative: Annotated[Optional[float], typer.Option("--label-relative", help="Label rule: outcome >= R x the best outcome of its group.")] = None,
    group: Annotated[Optional[str], typer.Option("--group", "-g", help="Group column (teacher seed): out-of-fold validation, cluster bootstrap.")] = None,
    direction: Annotated[str, typer.Option("--direction", help="below | above | auto (chosen inside each fold).")] = "below",
    fixed: Annotated[Optional[float], typer.Option("--fixed", help="Also evaluate this fixed threshold (exact CI).")] = None,
    baseline: Annotated[str, typer.Option("--baseline", help="Baseline predictor column ('auto': step, env_steps or epoch; 'none').")] = "auto",
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for the AUC CI.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    save: Annotated[Optional[pathlib.Path], typer.Option("--save", help="Write the fitted gate (gatekit-gate/1 JSON).")] = None,
    patience: Annotated[int, typer.Option("--patience", help="Patience recorded in the saved gate (the built-in gates use 2).")] = 2,
    name: Annotated[Optional[str], typer.Option("--name", help="Name recorded in the saved gate.")] = None,
    env: Annotated[Optional[str], typer.Option("--env", help="Env the gate is for (recorded; select warns on others).")] = None,
    json_out: JsonOut = None,
    plot: Annotated[Optional[pathlib.Path], typer.Option("--plot", help="Save the ROC curve (.png/.pdf).")] = None,
    quiet: Quiet = False,
):
    """Fit the gate from (teacher metric, student outcome) pairs under a declared label rule:
    ROC / AUC, Youden-J threshold and plateau, Spearman rho, and out-of-fold
    (leave-one-group-out) accuracy beside the training-step baseline."""
    from gatekit import api
    from gatekit.rule import check_patience

    check_out_paths([table], save=save, json=json_out, plot=plot)
    if save:
        check_patience(patience, "--patience")  # before the fit, not after it
    _hint_slow_bootstrap(table, n_boot)
    base = None if baseline == "none" else baseline
    if metric == "all":
        if group is None:
            raise GatekitError("--metric all ranks statistics out of fold: it needs --group")
        if save or plot:
            raise GatekitError("--save / --plot need one statistic, not --metric all")
        ranking = api.fit_all(table, label=label, label_above=label_above, label_relative=label_relative,
                              group=group, baseline=base)
        write_json(ranking, json_out)
        if str(json_out) != "-" and not quiet:
            typer.echo(api.format_fit_all(ranking))
        return
    result = api.fit(
        table, label=label, metric=metric, label_above=label_above, label_relative=label_relative, group=group,
        direction=direction, fixed_threshold=fixed, baseline=base, n_boot=n_boot, rng=seed,
    )
    write_json(result.to_dict(), json_out)
    if quiet and str(json_out) != "-":
        from gatekit.rule import symbol

        typer.echo(f"{result.metric} {symbol(result.direction)} {result.threshold:.6g}")
    elif str(json_out) != "-":
        typer.echo(result.summary())
    else:
        _echo_warnings(result.warnings)
    if save:
        api.save_gate(result, save, table=table, patience=patience, name=name or save.stem, env=env,
                      description=f"fitted by gatekit fit on {table.name}")
        if not quiet:
            typer.echo(f"wrote gate {save}", err=str(json_out) == "-")
    if plot:
        from gatekit import plotting

        plotting.plot_roc(result, plot, title=f"{result.metric} -> {label}")


@app.command()
@_boundary
def plot(
    sources: Sources,
    out: Annotated[pathlib.Path, typer.Option("--out", "-o", help="Output image (.png/.pdf/.svg).")],
    metric: Annotated[Optional[str], typer.Option("--metric", "-m", help="Metric to plot (default: the gate's, else the env's built-in gate's).")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", "-t", help="Threshold line (omit for none).")] = None,
    gate: GateOpt = None,
    role: Annotated[str, typer.Option("--role", help="Runs to draw: teacher (default), student, any.")] = "teacher",
    x: Annotated[str, typer.Option("--x", help="Column on the x axis.")] = "step",
    no_cache: NoCache = False,
    roc_label: Annotated[Optional[str], typer.Option("--roc-label", help="With a table source: also save its ROC for this outcome column (OUT with _roc).")] = None,
    label_above: Annotated[Optional[float], typer.Option("--label-above", help="Binarize --roc-label: outcome > this.")] = None,
    quiet: Quiet = False,
):
    """Plot METRIC vs step, one line per run (teachers by default). A threshold is drawn only
    when asked: --threshold, or --gate (which also shades the passing side and stars the
    selected checkpoint). With --roc-label, also the ROC curve of METRIC against that outcome
    column (direction chosen by AUC, stated in the title)."""
    from gatekit import api, plotting

    check_out_paths(list(sources), out=out)
    if metric is not None:
        from gatekit.statistics import check_metric

        check_metric(metric)
    skipped: list = []
    path = api.plot(sources, out, metric=metric, threshold=threshold, x=x, gate=gate, role=role, problems=skipped,
                    cache=not no_cache)
    _report_problems(skipped)
    say(f"wrote {path}", quiet)
    if roc_label:
        tables = [s for s in sources if api.is_table(s)]
        if not tables:
            raise GatekitError("--roc-label needs a score table (.csv/.json) among the sources")
        result = api.fit(tables[0], label=roc_label, metric=metric, label_above=label_above,
                         direction="auto",
                         baseline=None, n_boot=0)
        roc_path = plotting.plot_roc(result, out.with_name(out.stem + "_roc" + out.suffix))
        say(f"wrote {roc_path}", quiet)


@app.command()
@_boundary
def report(
    sources: Sources,
    out: Annotated[pathlib.Path, typer.Option("--out", "-o", help="The page: .html (self-contained), or an image (.png/.pdf/.svg).")],
    gate: GateOpt = None,
    title: Annotated[Optional[str], typer.Option("--title", help="Heading of the page.")] = None,
    no_cache: NoCache = False,
    quiet: Quiet = False,
):
    """One page with the whole answer: the gate's statistic over training with the threshold and
    the pick, the teachers' eval, and (where student runs distilled from these teachers are
    among SOURCES) students vs the teacher checkpoint they learned from; above it the answer,
    whether to trust it, and every warning."""
    from gatekit.report import SUFFIXES, report as make_report

    check_out_paths(list(sources), out=out)
    if out.suffix.lower() not in SUFFIXES:
        raise GatekitError(f"--out {out}: unknown report type {out.suffix!r} (use one of {SUFFIXES})")
    skipped: list = []
    with progress(quiet) as shown:
        path = make_report(sources, out, gate=gate, cache=not no_cache, problems=skipped, title=title,
                           progress=shown)
    _report_problems(skipped)
    say(f"wrote {path}", quiet)


@app.command()
@_boundary
def watch(
    run: Annotated[pathlib.Path, typer.Argument(help="The run directory being trained.")],
    gate: GateOpt = None,
    threshold: OneOffThreshold = None,
    metric: Metric = None,
    direction: Direction = "below",
    patience: Annotated[Optional[int], typer.Option("--patience", help="Consecutive passing checkpoints (default: the gate's).")] = None,
    exit_on_gate: Annotated[bool, typer.Option("--exit-on-gate", help="Exit 0 as soon as the gate holds (else keep watching).")] = False,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for the run folder to appear.")] = 60.0,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between looks for new checkpoints.")] = 5.0,
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="Exit 3 after this many seconds without a new checkpoint.")] = None,
    mode: ModeAlias = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also the rule's description and full record.")] = False,
    quiet: Quiet = False,
):
    """Follow a run as it trains: score each new checkpoint once it is finalized (online
    statistics only), one line per checkpoint; with --exit-on-gate, exit 0 once the gate holds,
    so a script can stop a trainer gatekit does not control. Ctrl-C exits cleanly (130)."""
    from gatekit import api
    from gatekit.io import read_run
    from gatekit.watch import watch as watch_run

    if timeout is not None and not timeout > 0:
        raise GatekitError(f"--timeout must be > 0, got {timeout}")
    env = None
    try:
        env = (read_run(run).config.get("env") or {}).get("name")
    except (GatekitError, AttributeError, FileNotFoundError):
        pass  # not there yet: watch waits for it (--wait)
    g = api.resolve_gate(gate, threshold=threshold, metric=metric, direction=direction, mode=mode,
                         patience=patience, default_env=env, decision="stop")
    from gatekit.selection import short_record, stop_record

    say(f"watching {run}: {g.name or 'one-off rule'} ({g.rule}); on record: {short_record(g, 'stop')}", quiet)
    if verbose:
        typer.echo(f"{g.description} On record: {stop_record(g)}", err=True)
    held = None
    try:
        for ev in watch_run(run, gate=g, interval=interval, timeout=timeout, wait=wait, stop_at_gate=exit_on_gate):
            if ev["problem"]:
                say(f"step {ev['step']}: skipped ({ev['problem']})", quiet)
                continue
            if ev.get("note"):
                say(f"note: {ev['note']}", quiet)
            value = "-" if ev["value"] is None else f"{ev['value']:.4g}"
            if not quiet:
                typer.echo(f"step {ev['step']} epoch {ev['epoch']}: {g.metric} = {value} "
                           f"{'passes' if ev['passes'] else 'does not pass'} ({ev['count']}/{g.patience})", nl=True)
                sys.stdout.flush()
            if ev["stop"] and held is None:
                held = ev
                if quiet:
                    typer.echo(f"{run}@{ev['step']}")
                else:
                    typer.echo(f"gate held: distill from {pathlib.Path(run).resolve()}@{ev['step']}"
                               + ("" if exit_on_gate else " (still watching; --exit-on-gate exits here)"))
                sys.stdout.flush()
                if exit_on_gate:
                    raise typer.Exit(0)
    except KeyboardInterrupt:
        typer.echo("gatekit: watch stopped (Ctrl-C)", err=True)
        raise typer.Exit(130) from None
    if timeout is not None and held is None:
        typer.echo(f"gatekit: no new checkpoint for {timeout:g}s; the gate has not held", err=True)
        raise typer.Exit(3)


BOOTSTRAP_HINT_ROWS = 20_000


def _hint_slow_bootstrap(table: pathlib.Path, n_boot: int) -> None:
    """A large table with the default bootstrap takes long (100k rows x 2000 draws: ~40 s on 2
    cores): say so before it starts, with the way out."""
    try:
        with open(table, "rb") as f:
            rows = sum(1 for _ in f) - 1 if str(table).endswith(".csv") else None
    except OSError:
        return
    if rows and rows >= BOOTSTRAP_HINT_ROWS and n_boot > 0:
        typer.echo(f"gatekit: {rows:,} rows x {n_boot} bootstrap draws for the AUC CI: this can take a minute; "
                   f"--n-boot 0 skips the CI (the fit itself takes seconds)", err=True)


@app.command()
@_boundary
def pairs(
    scores: Annotated[pathlib.Path, typer.Option("--scores", help="Teacher scores (gatekit score --csv/--json).")],
    students: Annotated[pathlib.Path, typer.Option("--students", help="Student outcomes: a CSV/JSON table with run (or run_path), step and outcome columns.")],
    out: Annotated[pathlib.Path, typer.Option("--out", "-o", help="The pairs table to write (.csv or .json).")],
    quiet: Quiet = False,
):
    """Join teacher statistics with your own students' outcomes into the table `gatekit fit`
    reads: one row per teacher checkpoint that has students (matched on run and step); every
    student column is kept, and rows that match nothing are reported."""
    from gatekit import io, pairs as pairs_mod

    check_out_paths([scores, students], out=out)
    joined, unmatched = pairs_mod.join(io.read_table(scores), io.read_table(students), scores=str(scores),
                                       students=str(students))
    io.write_table(joined, out)
    for what in unmatched:
        typer.echo(f"gatekit: warning: {what}", err=True)
    say(f"wrote {out}: {len(joined)} pairs (teacher checkpoint x student outcomes)", quiet)


RACE_HELP = ("Measure which checkpoint to distill from: train students from the run's last checkpoints "
             "and keep the best.")


@app.command(help=RACE_HELP + """

With no --student-cmd, students are this project's (a depth-4 student with the teacher's
parameter count; --depth, --width, --set change it) from a run it trained. Any other run (an
imported JaxGCRL run, your own trainer's) is raced with your student trainer: --student-cmd
'python distill.py --teacher {checkpoint} --seed {seed} --epochs {epochs} --out {out}', which
writes {out}/outcome.json as {"outcome": <number>, larger is better}. Each student writes one
result file under OUT/results, so an interrupted race resumes without training a finished
student again. It says what it will cost before it starts and what it cost after.""")
@_boundary
def race(
    run: Annotated[pathlib.Path, typer.Argument(help="The teacher run folder (gatekit-run/1) whose checkpoints to race.")],
    out: Annotated[pathlib.Path, typer.Option("--out", "-o", help="The race's folder: students, result files, race.json (new, or this race's own to resume).")],
    strategy: Annotated[str, typer.Option("--strategy", help="last (a full student per candidate), halving (successive halving in student epochs), second-seed, pilot, gp (students where a GP over the teacher's action distances is unsure), by-need (a second seed only where the best two are not separated).")] = "last",
    last: Annotated[Optional[int], typer.Option("--last", help="Race the run's last N checkpoints (default: the strategy's; last: 3).")] = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", help="Students per candidate, the same seeds at each (default 1).")] = None,
    student_epochs: Annotated[int, typer.Option("--student-epochs", help="A full student's epochs.")] = 8,
    students: Annotated[Optional[int], typer.Option("--students", help="gp, by-need: full students in all (default 3 for gp, 6 for by-need).")] = None,
    rungs: Annotated[Optional[str], typer.Option("--rungs", help="halving: comma-separated student epochs at which to drop the worse half (default 2).")] = None,
    student_cmd: Annotated[Optional[str], typer.Option("--student-cmd", help="Your student trainer, run once per student: a command with {checkpoint} (RUN@STEP), {seed}, {epochs}, {out}.")] = None,
    outcome_file: Annotated[str, typer.Option("--outcome-file", help="With --student-cmd: the JSON file in {out} holding the outcome.")] = "outcome.json",
    outcome_key: Annotated[str, typer.Option("--outcome-key", help="With --student-cmd: the outcome's key in that file.")] = "outcome",
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="With --student-cmd: stop a student after this many seconds (it counts as failed).")] = None,
    depth: Annotated[Optional[int], typer.Option("--depth", help="Built-in students: dense layers (default 4).")] = None,
    width: Annotated[Optional[int], typer.Option("--width", help="Built-in students: hidden width (default: the teacher's parameter count).")] = None,
    sets: Annotated[Optional[List[str]], typer.Option("--set", help="Built-in students: any other TrainConfig field, NAME=VALUE (repeatable).")] = None,
    outcome: Annotated[str, typer.Option("--outcome", help="Built-in students: eval_success, eval_time_at_goal or far_time_at_goal.")] = "eval_success",
    executor: Annotated[str, typer.Option("--executor", help="Where students train: threads, processes, slurm (submitit; pip install '.[slurm]'), dask (pip install '.[dask]').")] = "threads",
    workers: Annotated[Optional[int], typer.Option("--workers", help="Students at once (default: the CPU count; dask: 2 local workers).")] = None,
    executor_opts: Annotated[Optional[List[str]], typer.Option("--executor-opt", help="slurm: submitit parameters, e.g. slurm_partition=gpu timeout_min=60 (cluster=local runs them here); dask: address=tcp://HOST:8786. Repeatable.")] = None,
    json_out: JsonOut = None,
    quiet: Quiet = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Every candidate's students, failures and the noise behind the verdict.")] = False,
):
    from gatekit import api
    from gatekit.racing import parse_options

    _check_race_paths(run, out, json_out)
    sets_parsed = parse_options(sets, what="--set") if sets else None
    res = api.race(run, out=out, strategy=strategy, last=last, seeds=seeds, student_epochs=student_epochs,
                   rungs=_int_list(rungs, "--rungs"), student_cmd=student_cmd, outcome_file=outcome_file,
                   outcome_key=outcome_key, timeout=timeout, depth=depth, width=width, sets=sets_parsed,
                   outcome=outcome, executor=executor, workers=workers,
                   executor_options=parse_options(executor_opts), progress=None if quiet else _say,
                   students=students)
    print_race(res, run, json_out, quiet=quiet, verbose=verbose)


def print_race(res: dict, run, json_out, *, quiet: bool, verbose: bool) -> None:
    """A race's record to --json, then its answer: RUN@STEP alone with -q, else :func:`race_lines`."""
    write_json(res, json_out)
    if str(json_out) == "-":
        return
    if quiet:
        typer.echo(f"{run}@{res['pick']}" if res.get("pick") is not None else "-")
        return
    for line in race_lines(res, verbose=verbose):
        typer.echo(line)


def _say(msg: str) -> None:
    typer.echo(msg, err=True)


def _int_list(text: str | None, what: str):
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise GatekitError(f"{what} {text!r}: expected comma-separated integers, e.g. 2 or 1,2") from None


def _check_race_paths(run: pathlib.Path, out: pathlib.Path, json_out) -> None:
    """The race's folder is never the run or inside it; --json never inside the race's folder."""
    r, o = run.resolve(), out.resolve()
    if o == r or r in o.parents or o in r.parents:
        raise GatekitError(f"--out {out}: overlaps the teacher run {run}; choose another folder")
    check_out_paths([run, out], json=json_out)


def race_lines(res: dict, *, verbose: bool = False) -> list[str]:
    """What ``gatekit race`` prints: the answer, the student to keep, the verdict, the cost (one
    line each); with ``verbose`` every candidate and failure."""
    cands = {c["step"]: c for c in res["candidates"]}
    best = cands.get(res["pick"], {})
    score = f" (student {best['mean']:.3g})" if best.get("mean") is not None else ""
    lines = [f"distill from: {res['checkpoint']}{score}"]
    if res.get("kept"):
        lines.append(f"keep the student: {res['kept']}")
    lines.append(f"how sure: {res['verdict']}")
    cost = res["cost"]
    share = cost.get("extra_share_of_teacher")
    lines.append(f"cost: {cost['students']} student(s), {cost['student_seconds']:.0f} s of training"
                 + (f"; beyond the student kept, {share:.2f} of the teacher's training" if share is not None else ""))
    if res.get("failed"):
        lines.append(f"{len(res['failed'])} student(s) failed (-v lists them); their candidates were skipped")
    if verbose:
        for c in res["candidates"]:
            mark = "  <- pick" if c["step"] == res["pick"] else ""
            vals = ", ".join("failed" if v is None else f"{v:.3g}" for v in c["students"])
            lines.append(f"  {res['teacher']}@{c['step']}: {vals}{mark}")
        for f in res.get("failed", []):
            lines.append(f"  failed: step {f['step']} seed {f['seed']} ({f['epochs']} epochs): {f['error']}")
        lines.append(f"  noise: {res['noise_from']}; rule: {res['rule']}")
        if res.get("verdict_worth"):
            lines.append(f"  {res['verdict_worth']}")
        rec = res.get("record")
        if rec:
            lines.append(f"  on record: {rec['method']} chose right on {rec['choose']:.0%} of held-out teacher runs, "
                         f"losing {rec['regret']:.1%} of the best student on average")
    return lines


COMMANDS_GROUP = "gatekit.commands"
"""Entry points that add command groups to ``gatekit`` (this project's trainer adds ``train``),
so gatekit holds every user command without importing ``training``."""


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def train(ctx: typer.Context):
    """Train CRL teachers and distilled students with this project's trainer: gatekit train
    teacher | distill | pilot | sweep | gatebench ... (gatekit train --help; the same as gatekit-train)."""
    from importlib import metadata

    from gatekit.cli_common import click_command

    eps = [ep for ep in metadata.entry_points(group=COMMANDS_GROUP) if ep.name == "train"]
    if not eps:
        typer.echo("gatekit: 'train' needs this project's trainer (the training package of the gatekit repository: "
                   "pip install it from a clone); your own trainer's checkpoints are read by gatekit import", err=True)
        raise typer.Exit(1)
    from gatekit.cli_common import MOUNTED

    MOUNTED["gatekit-train"] = "gatekit train"  # its errors name the command the user typed
    click_command(eps[0].load())(args=list(ctx.args), prog_name="gatekit train")


import_app = make_app("import", "Convert other trainers' checkpoints into gatekit runs.")
app.add_typer(import_app, name="import")


@import_app.command("jaxgcrl")
@_boundary
def import_jaxgcrl(
    source: Annotated[pathlib.Path, typer.Argument(help="A JaxGCRL .pkl, or a folder of step_N.pkl files.")],
    out: Annotated[pathlib.Path, typer.Option("--out", "-o", help="Run directory to write.")],
    probe: Annotated[Optional[pathlib.Path], typer.Option("--probe", help=".npz with obs (state), action, goal rows from your task to score on (default: 256 random rows, said so).")] = None,
    obs_dim: Annotated[Optional[int], typer.Option("--obs-dim", help="JaxGCRL state_size (default: read off the parameters).")] = None,
    goal_dim: Annotated[Optional[int], typer.Option("--goal-dim", help="len(goal_indices) (default: read off the parameters).")] = None,
    action_dim: Annotated[Optional[int], typer.Option("--action-dim", help="action_size (default: read off the parameters).")] = None,
    h_dim: Annotated[Optional[int], typer.Option("--h-dim", help="JaxGCRL --h-dim (default: read off the parameters).")] = None,
    n_hidden: Annotated[Optional[int], typer.Option("--n-hidden", help="JaxGCRL --n-hidden (default: read off the parameters).")] = None,
    skip_connections: Annotated[Optional[int], typer.Option("--skip-connections", help="JaxGCRL --skip-connections (no parameter shows it; default 4, JaxGCRL's).")] = None,
    use_ln: Annotated[Optional[bool], typer.Option("--use-ln/--no-use-ln", help="JaxGCRL --use-ln (default: read off the parameters).")] = None,
    use_relu: Annotated[Optional[bool], typer.Option("--use-relu/--no-use-relu", help="JaxGCRL --use-relu (no parameter shows it; default swish, JaxGCRL's).")] = None,
    repr_dim: Annotated[Optional[int], typer.Option("--repr-dim", help="JaxGCRL --repr-dim (default: read off the parameters).")] = None,
    energy_fn: Annotated[Optional[str], typer.Option("--energy-fn", help="JaxGCRL --energy-fn: norm | l2 | dot (no parameter shows it; default norm, JaxGCRL's).")] = None,
    quiet: Quiet = False,
):
    """Convert JaxGCRL CRL checkpoints (pickled (alpha, actor, critic) params) into gatekit-run/1.
    The architecture is read off the parameters; what no parameter shows (skip connections,
    activation, energy) takes JaxGCRL's defaults unless given, and is said. Pickles are read
    through an allow-list (arrays and plain containers only); anything else is refused without
    being run."""
    from gatekit import jaxgcrl
    from gatekit.io import read_npz

    check_out_paths([source, *([probe] if probe else [])], out=out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):  # before the checkpoints are read
        raise GatekitError(f"{out}: exists and is not a folder; import into a new folder")
    settings, inferred, assumed = jaxgcrl.infer_settings(
        source, obs_dim=obs_dim, goal_dim=goal_dim, action_dim=action_dim, h_dim=h_dim, n_hidden=n_hidden,
        skip_connections=skip_connections, use_ln=use_ln, use_relu=use_relu, repr_dim=repr_dim, energy_fn=energy_fn)
    settings.net()
    say("read off the parameters: " + ", ".join(f"{k} {v}" for k, v in inferred.items()), quiet)
    if assumed:
        say("assumed (JaxGCRL's defaults; no parameter shows them): "
            + ", ".join(f"{k} {v}" for k, v in assumed.items()), quiet)
    if probe is None:
        rows = jaxgcrl.default_probe(settings)
        say(f"probe: {jaxgcrl.PROBE_ROWS} rows of obs and goal from N(0, 1), actions from U(-1, 1) (seed 0); "
            f"--probe FILE.npz with states from your task scores the states that matter", quiet)
    else:
        rows = read_npz(probe, required=("obs", "action", "goal"))
    steps = jaxgcrl.import_checkpoints(source, out, settings, probe=rows)
    if not quiet:
        typer.echo(f"wrote {out}: {len(steps)} checkpoint(s) (steps {steps[0]}..{steps[-1]}); next: gatekit select {out}")


def main() -> None:
    run_app(app, "gatekit")


if __name__ == "__main__":
    main()
