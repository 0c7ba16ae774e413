"""``gatekit`` command line: parse, call the library, print. GatekitError -> stderr, exit 1."""

from __future__ import annotations

import functools
import json
import pathlib
import sys
from typing import Annotated, Callable, List, Optional

import typer

from gatekit.errors import GatekitError

app = typer.Typer(
    name="gatekit",
    help="Which teacher checkpoint to distill from: score checkpoints, select a teacher, fit the gate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Shared options, declared once.
Sources = Annotated[
    List[pathlib.Path],
    typer.Argument(help="Run directories, folders of runs (searched recursively), or score tables (.csv/.json)."),
]
Metric = Annotated[str, typer.Option("--metric", "-m", help="Teacher metric the gate is on.")]
Threshold = Annotated[float, typer.Option("--threshold", "-t", help="Gate threshold on the metric.")]
Mode = Annotated[str, typer.Option("--mode", help="'below': value < threshold passes; 'above': value > threshold.")]
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


def error_boundary(prog: str) -> Callable[[Callable], Callable]:
    """The one place GatekitError becomes ``PROG: error: ...`` on stderr and exit code 1
    (shared with ``gatekit-train``)."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except GatekitError as e:
                typer.echo(f"{prog}: error: {e}", err=True)
                raise typer.Exit(code=1) from None

        return wrapper

    return decorate


_boundary = error_boundary("gatekit")


def _progress():
    """A progress callback on stderr when it is a terminal; None otherwise."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int, desc: str) -> None:
        end = "\n" if done == total else ""
        sys.stderr.write(f"\rscoring {done}/{total} {desc:<40}{end}")
        sys.stderr.flush()

    return report


def _report_problems(problems) -> None:
    for p in problems:
        typer.echo(f"gatekit: skipped {p}", err=True)


def _write_json(obj, dest: pathlib.Path | None) -> None:
    from gatekit.checkpoints import _atomic_write_text, to_jsonable

    text = json.dumps(to_jsonable(obj), indent=1) + "\n"
    if str(dest) == "-":
        typer.echo(text, nl=False)
    elif dest is not None:
        _atomic_write_text(dest, text)


@app.command()
@_boundary
def score(
    runs: Sources,
    csv: Annotated[Optional[pathlib.Path], typer.Option("--csv", help="Write the table as CSV.")] = None,
    json_out: JsonOut = None,
    plot: Annotated[Optional[pathlib.Path], typer.Option("--plot", help="Plot METRIC vs step (.png/.pdf).")] = None,
    metric: Metric = "action_magnitude",
    threshold: Threshold = 0.63,
    reference: Reference = None,
    probe: Probe = None,
    probe_size: ProbeSize = 4096,
    columns: Annotated[Optional[str], typer.Option("--columns", help="Comma-separated columns to print.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not print the table.")] = False,
):
    """Score every complete checkpoint: |tanh(mu)|, entropy, effective rank, alignment /
    uniformity, contrastive accuracy, InfoNCE, CKA and q_corr against a reference.

    Unreadable or half-written checkpoints are reported on stderr and skipped.
    """
    from gatekit import scoring

    table = scoring.score(runs, reference=reference, probe=probe, probe_size=probe_size, progress=_progress())
    _report_problems(table.problems)
    if csv:
        table.to_csv(csv)
    if json_out is not None:
        if str(json_out) == "-":
            typer.echo(table.to_json(), nl=False)
        else:
            table.to_json(json_out)
    if plot:
        from gatekit import plotting

        plotting.plot_metric_vs_step(table.rows, plot, metric=metric, thresholds={"threshold": threshold})
    if not quiet and str(json_out) != "-":
        cols = columns.split(",") if columns else None
        if cols:
            missing = [c for c in cols if c not in table.columns]
            if missing:
                raise GatekitError(f"--columns: unknown column(s) {missing}; have {table.columns}")
        typer.echo(table.format(cols))
        written = [str(p) for p in (csv, json_out, plot) if p is not None]
        typer.echo(f"{len(table)} checkpoint(s) scored, {len(table.problems)} skipped"
                   + (f"; wrote {', '.join(written)}" if written else ""))


@app.command()
@_boundary
def select(
    sources: Sources,
    threshold: Threshold = 0.63,
    metric: Metric = "action_magnitude",
    mode: Mode = "below",
    patience: Annotated[int, typer.Option("--patience", help="Consecutive passing checkpoints required.")] = 1,
    json_out: JsonOut = None,
    reference: Reference = None,
    probe: Probe = None,
    probe_size: ProbeSize = 4096,
):
    """Recommend the teacher checkpoint to distill from: the earliest checkpoint where METRIC
    has passed THRESHOLD for PATIENCE consecutive checkpoints, and why. Exit code 0 even when
    none is ready (the answer says so); 1 on bad input."""
    from gatekit import api

    rows = api.load_scores(sources, reference=reference, probe=probe, probe_size=probe_size, progress=_progress())
    sel = api.select(rows, threshold=threshold, metric=metric, mode=mode, patience=patience)
    if str(json_out) == "-":
        _write_json(sel.to_dict(), json_out)
        return
    _write_json(sel.to_dict(), json_out)
    if sel.ready:
        typer.echo(f"distill from: {sel.run} step {sel.step}" + (f" (epoch {sel.epoch})" if sel.epoch is not None else ""))
    else:
        typer.echo("no teacher checkpoint is ready")
    typer.echo(f"why: {sel.reason}")
    for r in sel.per_run:
        chosen = "-" if r["selected_step"] is None else r["selected_step"]
        best = "-" if r["best_value"] is None else f"{r['best_value']:.4g}"
        typer.echo(f"  {r['run']}: {r['checkpoints']} checkpoint(s), gate at step {chosen}, best {metric} {best}")


@app.command()
@_boundary
def fit(
    table: Annotated[pathlib.Path, typer.Argument(help="CSV/JSON with one row per teacher checkpoint and its student outcome.")],
    label: Annotated[str, typer.Option("--label", "-l", help="Student outcome column (0/1, or continuous with --label-above).")],
    metric: Metric = "action_magnitude",
    label_above: Annotated[Optional[float], typer.Option("--label-above", help="Outcome > this counts as success.")] = None,
    group: Annotated[Optional[str], typer.Option("--group", "-g", help="Group column (teacher seed): cluster bootstrap, leave-one-group-out.")] = None,
    direction: Annotated[str, typer.Option("--direction", help="'below': low metric predicts success; 'above': high.")] = "below",
    fixed: Annotated[Optional[float], typer.Option("--fixed", help="Also evaluate this fixed threshold (exact CI).")] = 0.63,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for the AUC CI.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    json_out: JsonOut = None,
    plot: Annotated[Optional[pathlib.Path], typer.Option("--plot", help="Save the ROC curve (.png/.pdf).")] = None,
):
    """Fit the gate threshold from (teacher metric, student outcome) pairs: ROC / AUC with a
    bootstrap CI, Youden-J threshold and plateau, confusion matrix, Spearman rho, and
    leave-one-group-out accuracy."""
    from gatekit import api

    result = api.fit(
        table, label=label, metric=metric, label_above=label_above, group=group,
        direction=direction, fixed_threshold=fixed, n_boot=n_boot, rng=seed,
    )
    if str(json_out) == "-":
        _write_json(result.to_dict(), json_out)
    else:
        _write_json(result.to_dict(), json_out)
        typer.echo(result.summary())
    if plot:
        from gatekit import plotting

        plotting.plot_roc(result, plot, title=f"{metric} -> {label}")


@app.command()
@_boundary
def plot(
    sources: Sources,
    out: Annotated[pathlib.Path, typer.Option("--out", "-o", help="Output image (.png/.pdf/.svg).")],
    metric: Metric = "action_magnitude",
    threshold: Annotated[Optional[float], typer.Option("--threshold", "-t", help="Threshold line (omit for none).")] = 0.63,
    x: Annotated[str, typer.Option("--x", help="Column on the x axis.")] = "step",
    roc_label: Annotated[Optional[str], typer.Option("--roc-label", help="With a table source: also save its ROC for this outcome column (OUT with _roc).")] = None,
    label_above: Annotated[Optional[float], typer.Option("--label-above", help="Binarize --roc-label: outcome > this.")] = None,
):
    """Plot METRIC vs step for every run with the threshold line; with --roc-label, also the
    ROC curve of METRIC against that outcome column."""
    from gatekit import api, plotting

    path = api.plot(sources, out, metric=metric, threshold=threshold, x=x)
    typer.echo(f"wrote {path}")
    if roc_label:
        tables = [s for s in sources if api.is_table(s)]
        if not tables:
            raise GatekitError("--roc-label needs a score table (.csv/.json) among the sources")
        result = api.fit(tables[0], label=roc_label, metric=metric, label_above=label_above)
        roc_path = plotting.plot_roc(result, out.with_name(out.stem + "_roc" + out.suffix))
        typer.echo(f"wrote {roc_path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
