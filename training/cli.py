"""``python -m training`` / ``gatekit-train``: train a CRL teacher or distill a student.

Config errors are reported before anything is traced; any other TrainConfig field can be set
with ``--set NAME=VALUE``.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Annotated, List, Optional

import typer

from gatekit.cli_common import Quiet, error_boundary, invoked_as, make_app, version_callback
from gatekit.errors import GatekitError
from training import envs

_guard = error_boundary("gatekit-train")

app = make_app("gatekit-train", "Train CRL teachers and distilled students that write gatekit-run/1 checkpoints.",
               add_completion=False)

@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=version_callback("gatekit-train"), is_eager=True,
                                                    help="Print the version and exit.")] = None,
):
    """Train CRL teachers and distilled students that write gatekit-run/1 checkpoints; race students
    from a run's checkpoints (the same command as `gatekit race`)."""


Out = Annotated[pathlib.Path, typer.Option("--out", "-o", help="Run directory to write.")]
Env = Annotated[str, typer.Option("--env", help=f"One of {', '.join(envs.names())} (the registry, training/envs; reacher, ant and ant_maze need Brax).")]
Maze = Annotated[Optional[str], typer.Option("--maze", help="Maze layout (pointmaze: open/u/medium/big; ant_maze: u/big).")]
Depth = Annotated[int, typer.Option("--depth", help="Dense layers in residual blocks.")]
Width = Annotated[int, typer.Option("--width", help="Hidden width.")]
Tau = Annotated[float, typer.Option("--tau", help="InfoNCE temperature.")]
Epochs = Annotated[int, typer.Option("--epochs", help="Epochs (one checkpoint each).")]
NumEnvs = Annotated[int, typer.Option("--num-envs", help="Parallel environments.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
Devices = Annotated[int, typer.Option("--devices", help="Data-parallel devices (envs and batch split, params replicated).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue from the newest complete checkpoint.")]
Sets = Annotated[Optional[List[str]], typer.Option("--set", help="Any other TrainConfig field: NAME=VALUE (repeatable).")]
TensorBoard = Annotated[Optional[pathlib.Path], typer.Option("--tensorboard", help="Also log every statistic to TensorBoard event files in this folder (metrics.jsonl in the run folder always).")]
JsonSummary = Annotated[Optional[pathlib.Path], typer.Option("--json", help="Write the run's summary (JSON) to this file, or - for stdout (default: stderr).")]


Preset = Annotated[Optional[str], typer.Option("--preset", help="Named sizes, e.g. paper-antbigmaze (options given on the command line win; --set overrides).")]


def _explicit(ctx: typer.Context) -> set[str]:
    """Parameters the user typed (not defaults)."""
    out = set()
    for name in ctx.params:
        source = ctx.get_parameter_source(name)
        if source is not None and getattr(source, "name", "") not in ("DEFAULT", "DEFAULT_MAP"):
            out.add(name)
    return out


def _config(env: str, maze: str | None, sets: list[str] | None, *, preset_name: str | None = None,
            role: str = "teacher", explicit: set[str] = frozenset(), **fields):
    from training.config import TrainConfig, preset

    names = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if preset_name:
        try:
            chosen = preset(preset_name, role)
        except ValueError as e:
            raise GatekitError(f"--preset: {e}") from None
        cli_env = {"env": env, "maze": maze}
        env = cli_env["env"] if "env" in explicit else chosen.pop("env", env)
        if "maze" not in explicit:
            maze = dict(chosen.get("env_kwargs", ())).get("maze", maze)
        chosen.pop("env_kwargs", None)
        fields.update({k: v for k, v in chosen.items() if k not in explicit})
    for item in sets or []:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in names or key in ("env", "env_kwargs"):
            raise GatekitError(f"--set {item!r}: expected NAME=VALUE with NAME one of {sorted(names)}")
        try:
            fields[key] = json.loads(raw)
        except json.JSONDecodeError:
            fields[key] = raw
    env_kwargs = (("maze", maze),) if maze else ()
    try:
        return TrainConfig(env=env, env_kwargs=env_kwargs, **fields)
    except TypeError as e:
        raise GatekitError(str(e)) from None


def _keep_run_settings(cfg, out: pathlib.Path, explicit: set[str], sets: list[str] | None):
    """On --resume of an existing run: the run's own settings, except those typed on this command
    line (an option or --set), so a resumed 12-epoch run does not become the CLI default's 10."""
    from gatekit import io as gio
    from training.config import TrainConfig

    if not (pathlib.Path(out) / gio.RUN_JSON).exists():
        return cfg
    stored = TrainConfig.from_dict(gio.read_run(out).config["train"])
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k for k in explicit if k in names} | {i.partition("=")[0].strip().replace("-", "_") for i in sets or []}
    if "maze" in explicit:
        given.add("env_kwargs")
    kept = dataclasses.replace(stored, **{k: getattr(cfg, k) for k in given if k in names})
    changed = sorted(k for k in names if getattr(kept, k) != getattr(cfg, k))
    if changed:
        typer.echo(f"{invoked_as('gatekit-train')}: resuming with the run's own {', '.join(changed)} "
                   f"(type an option to change it)", err=True)
    return kept


def _run(cfg, out: pathlib.Path, *, teacher=None, hook=None, resume=False, quiet=False,
         summary_out: pathlib.Path | None = None, tensorboard: pathlib.Path | None = None) -> dict:
    from training.trainer import build_env, train

    try:
        env = build_env(cfg)
    except (ValueError, TypeError) as e:
        raise GatekitError(f"bad config: {e}") from None
    from gatekit.cli_common import check_out_paths
    from gatekit.progress import progress

    if summary_out is not None and str(summary_out) != "-":  # never into the run or its teacher
        from gatekit import io as gio

        check_out_paths([out] + ([gio.parse_checkpoint_spec(teacher)[0]] if teacher else []), json=summary_out)
    if tensorboard is not None and teacher:
        from gatekit import io as gio

        t_dir, board = gio.parse_checkpoint_spec(teacher)[0].resolve(), pathlib.Path(tensorboard).resolve()
        if board == t_dir or t_dir in board.parents:
            raise GatekitError(f"--tensorboard {tensorboard}: lies inside the teacher run {t_dir}; choose another folder")
    shown = progress("training", quiet=quiet)  # epochs with ETA on stderr; the summary where --json says
    try:
        summary = train(cfg, out, env=env, teacher=teacher, hook=hook, resume=resume, progress=shown,
                        tensorboard=str(tensorboard) if tensorboard else None)
    except KeyboardInterrupt:
        if shown is not None:
            shown.close()  # the bar's last state stays; the hint goes below it
        import sys

        role = "distill" if teacher else "teacher"
        prog = invoked_as("gatekit-train")
        mounted = prog != "gatekit-train"  # gatekit train ROLE ...: one more word before the options
        again = f"{prog if mounted else 'python -m training'} {role} {' '.join(sys.argv[3 if mounted else 2:])}"
        typer.echo(f"\n{prog}: interrupted (Ctrl-C); every finished epoch is checkpointed in {out}. "
                   f"Continue with the same command plus --resume, e.g.: {again}"
                   f"{'' if '--resume' in sys.argv else ' --resume'}", err=True)
        raise typer.Exit(130) from None
    finally:
        if shown is not None:
            shown.close()
    text = json.dumps(summary, indent=1, default=str)
    if summary_out is not None and str(summary_out) != "-":
        from gatekit.io import write_text

        write_text(summary_out, text + "\n")
    elif summary_out is not None:
        typer.echo(text)
    elif not quiet:
        typer.echo(text, err=True)
    return summary


@app.command()
@_guard
def teacher(
    ctx: typer.Context,
    out: Out,
    env: Env = "pointmaze",
    maze: Maze = None,
    depth: Depth = 8,
    width: Width = 64,
    tau: Tau = 1.0,
    epochs: Epochs = 10,
    num_envs: NumEnvs = 32,
    seed: Seed = 0,
    devices: Devices = 1,
    stop_at_gate: Annotated[bool, typer.Option("--stop-at-gate", help="Stop once the gate holds (gatekit.hooks.GateHook).")] = False,
    gate: Annotated[Optional[str], typer.Option("--gate", help="Gate file (gatekit fit --save) or preset; default: auto where its held-out stop record beats the final checkpoint, the training step and the fraction of the budget, else the budget rule (budget_fraction > 0.84: past 84% of the planned epochs), the stop rule with the best held-out record.")] = None,
    gate_threshold: Annotated[Optional[float], typer.Option("--threshold", "--gate-threshold", "-t", help="One-off rule instead of a gate file: its threshold (as in gatekit select; a bare one is the paper's |tanh mu| rule).")] = None,
    gate_metric: Annotated[Optional[str], typer.Option("--metric", "--gate-metric", "-m", help="One-off rule: the online statistic it reads (default with a bare --threshold: action_magnitude).")] = None,
    gate_direction: Annotated[str, typer.Option("--direction", "--gate-direction", help="One-off rule: below | above.")] = "below",
    gate_mode: Annotated[Optional[str], typer.Option("--gate-mode", hidden=True, help="Deprecated alias of --gate-direction.")] = None,
    gate_patience: Annotated[Optional[int], typer.Option("--patience", "--gate-patience", help="Consecutive passing epochs to stop (default: the gate's).")] = None,
    gate_start_step: Annotated[int, typer.Option("--gate-start-step", help="Env steps before the hook counts.")] = 0,
    resume: Resume = False,
    preset_name: Preset = None,
    sets: Sets = None,
    quiet: Quiet = False,
    summary_out: JsonSummary = None,
    tensorboard: TensorBoard = None,
):
    """Train a CRL teacher (residual encoders, InfoNCE critic, tanh-Gaussian actor)."""
    from gatekit.api import resolve_gate
    from gatekit.hooks import GateHook

    cfg = _config(env, maze, sets, preset_name=preset_name, role="teacher", explicit=_explicit(ctx),
                  depth=depth, width=width, tau=tau, epochs=epochs, num_envs=num_envs, seed=seed, devices=devices)
    if resume:
        cfg = _keep_run_settings(cfg, out, _explicit(ctx), sets)
    hook = None
    if stop_at_gate:
        # The env the run trains on (after --preset), not the raw --env option's default.
        rule = resolve_gate(gate, threshold=gate_threshold, metric=gate_metric, direction=gate_direction, mode=gate_mode,
                            patience=gate_patience, default_env=cfg.env, decision="stop")
        hook = GateHook.from_gate(rule, start_step=gate_start_step)
        from gatekit.selection import short_record

        typer.echo(f"stopping at the gate {rule.name or 'one-off rule'} ({rule.rule}); on record: "
                   f"{short_record(rule, 'stop')}", err=True)
    elif gate is not None or gate_threshold is not None:
        raise GatekitError("--gate / --threshold only take effect with --stop-at-gate")
    _run(cfg, out, hook=hook, resume=resume, quiet=quiet, summary_out=summary_out, tensorboard=tensorboard)


@app.command()
@_guard
def distill(
    ctx: typer.Context,
    teacher: Annotated[str, typer.Option("--teacher", help="Teacher RUN_DIR[@STEP] (default: its last checkpoint).")],
    out: Out,
    env: Env = "pointmaze",
    maze: Maze = None,
    depth: Depth = 4,
    width: Width = 64,
    tau: Tau = 1.0,
    epochs: Epochs = 10,
    num_envs: NumEnvs = 32,
    seed: Seed = 0,
    devices: Devices = 1,
    lambda_pi: Annotated[float, typer.Option("--lambda-pi", help="Distillation weight.")] = 1.0,
    lambda_pi_end: Annotated[Optional[float], typer.Option("--lambda-pi-end", help="Anneal lambda_pi linearly to this.")] = None,
    distill_start_epoch: Annotated[int, typer.Option("--distill-start-epoch", help="Late activation: epochs without the teacher first.")] = 0,
    teacher_transform: Annotated[str, typer.Option("--teacher-transform", help="Control: clamp_log_std=-3 and/or scale_mu=3 (comma-separated).")] = "",
    resume: Resume = False,
    preset_name: Preset = None,
    sets: Sets = None,
    quiet: Quiet = False,
    summary_out: JsonSummary = None,
    tensorboard: TensorBoard = None,
):
    """Train a student with CRL + lambda_pi (||mu_S - mu_T||^2 + ||log sig_S - log sig_T||^2)
    against a frozen teacher checkpoint."""
    cfg = _config(env, maze, sets, preset_name=preset_name, role="student", explicit=_explicit(ctx),
                  depth=depth, width=width, tau=tau, epochs=epochs, num_envs=num_envs, seed=seed, devices=devices,
                  lambda_pi=lambda_pi, lambda_pi_end=lambda_pi_end, distill_start_epoch=distill_start_epoch,
                  teacher_transform=teacher_transform)
    if resume:
        cfg = _keep_run_settings(cfg, out, _explicit(ctx), sets)
    _run(cfg, out, teacher=teacher, resume=resume, quiet=quiet, summary_out=summary_out,
         tensorboard=tensorboard)


Shard = Annotated[str, typer.Option("--shard", help="I/N: train only this share (0 <= I < N) of the runs, e.g. a SLURM array task; the last shard to finish builds the table.")]
Workers = Annotated[Optional[int], typer.Option("--workers", help="Worker processes (default: none: on a CPU one run per core at once, in threads of this process; on a GPU one at a time, vmapped). 1: one run after another.")]
MaxParallel = Annotated[Optional[int], typer.Option("--max-parallel", help="Runs per vmapped program (default: 1 on a CPU, 64 on a GPU).")]


@app.command()
@_guard
def sweep(
    candidate: Annotated[str, typer.Argument(help="A training.barrier candidate (e.g. car_u, pointmaze_big).")],
    out: Out,
    checkpoints: Annotated[int, typer.Option("--checkpoints", help="Teacher checkpoints per seed to distill from.")] = 7,
    student_seeds: Annotated[int, typer.Option("--student-seeds", help="Students per checkpoint.")] = 2,
    student_epochs: Annotated[int, typer.Option("--student-epochs", help="Every student's (and the baseline's) epochs.")] = 6,
    teacher_seeds: Annotated[int, typer.Option("--teacher-seeds", help="Teachers (seeds 0..N-1).")] = 3,
    teacher_epochs: Annotated[Optional[int], typer.Option("--teacher-epochs", help="Teacher budget (default: the candidate's).")] = None,
    tau: Tau = 1.0,
    shard: Shard = "0/1",
    workers: Workers = None,
    max_parallel: MaxParallel = None,
    quiet: Quiet = False,
):
    """Gate sweep: teacher seeds x CHECKPOINTS checkpoints -> distilled students (+ a no-teacher
    baseline, same budget) -> OUT/pairs.csv for `gatekit fit`; prints the out-of-fold ranking
    (label: student >= 0.5 x the mean student of the final checkpoints). Reuses finished runs,
    so N shards (--shard I/N) can fill one OUT folder from N machines."""
    from training import barrier, sweep as sweep_mod
    from training.many import parse_shard

    if candidate not in barrier.CANDIDATES:
        raise GatekitError(f"unknown candidate {candidate!r}; choose from {sorted(barrier.CANDIDATES)}")
    for name, v in (("--checkpoints", checkpoints), ("--student-seeds", student_seeds),
                    ("--student-epochs", student_epochs), ("--teacher-seeds", teacher_seeds),
                    ("--teacher-epochs", teacher_epochs or 1), ("--workers", workers or 1),
                    ("--max-parallel", max_parallel or 1)):
        if v < 1:
            raise GatekitError(f"{name} must be >= 1, got {v}")
    sweep_mod.main_cli(candidate, out, checkpoints=checkpoints, student_seeds=student_seeds,
                       student_epochs=student_epochs, tau=tau, teacher_seeds=tuple(range(teacher_seeds)),
                       teacher_epochs=teacher_epochs, shard=parse_shard(shard), workers=workers,
                       max_parallel=max_parallel, quiet=quiet)


@app.command()
@_guard
def gatebench(
    out: Out,
    tasks: Annotated[Optional[list[str]], typer.Option("--task", help="A task to run (repeatable; default: every task of the grid, training/bench/grid.py TASKS).")] = None,
    configs: Annotated[Optional[list[str]], typer.Option("--config", help="A config to run: base, w256, tau2 (repeatable; default: all).")] = None,
    shard: Shard = "0/1",
    workers: Workers = None,
    max_parallel: MaxParallel = None,
    analyze_only: Annotated[bool, typer.Option("--analyze-only", help="Train nothing: analyze the tasks finished so far.")] = False,
    pairs: Annotated[Optional[pathlib.Path], typer.Option("--pairs", help="With --analyze-only: analyze this older pairs table (its results.json and teachers.csv beside it) instead of the dataset.")] = None,
    data: Annotated[Optional[pathlib.Path], typer.Option("--data", help="The dataset directory ({task}.npz; default: the repository's examples/results/gatebench/data): finished tasks are written there and not trained again.")] = None,
    ship: Annotated[bool, typer.Option("--ship", help="Also write the presets' records (auto, final, paper, budget) from the analysis into this checkout's gatekit/presets.")] = False,
    quiet: Quiet = False,
):
    """The gate benchmark (the grid is declared in training/bench/grid.py): 7 tasks x 3 configs x
    3 teacher seeds, 8 checkpoints each, 3 students per checkpoint trained for 8 epochs (every
    epoch's outcome kept), and a no-teacher baseline -> the dataset, then OUT/pairs.csv and the
    analysis. Task by task; finished runs are
    reused, so an interrupted call continues and N shards (--shard I/N) can fill one OUT."""
    from training.bench import analysis, grid
    from training.many import parse_shard

    for name, known, given in (("--task", grid.TASKS, tasks), ("--config", grid.CONFIGS, configs)):
        bad = [x for x in given or () if x not in known]
        if bad:
            raise GatekitError(f"{name} {bad[0]!r}: choose from {sorted(known)}")
    data = data or grid.DATA_DIR
    _check_bench_out(pathlib.Path(out), pathlib.Path(data), pairs)
    presets = analysis.preset_dir() if ship else None  # an installed package is refused before any analysis
    if pairs is not None and not analyze_only:
        raise GatekitError("--pairs is for --analyze-only (re-judging an older table)")
    if analyze_only and pairs is not None:
        analysis.analyze_table(pairs, out)
        typer.echo((pathlib.Path(out) / "results.md").read_text())
    elif analyze_only:
        analysis.analyze(out, data)
        analysis.plot(out)
        analysis.plot_frontier(out)
        typer.echo((pathlib.Path(out) / "results.md").read_text())
    else:
        analysis.main_cli(out, tasks=tuple(tasks or grid.TASKS), configs=tuple(configs or grid.CONFIGS),
                    shard=parse_shard(shard), workers=workers, max_parallel=max_parallel, data=data, quiet=quiet)
    if ship:
        shipped = analysis.ship(out, presets, source=pairs.name if pairs else analysis.data_source(data))
        typer.echo(f"shipped the auto gate: {shipped['rule']} ({shipped['method']}; held out: choose "
                   f"{shipped['held_out']['choose']:.2f}, stop {shipped['held_out']['stop']:.2f})")


@app.command()
@_guard
def pilot(
    run: Annotated[pathlib.Path, typer.Argument(help="The teacher run folder whose checkpoints to verify.")],
    out: Out,
    last: Annotated[int, typer.Option("--last", help="Verify the run's last N checkpoints.")] = 3,
    fraction: Annotated[float, typer.Option("--fraction", help="A pilot's share of the full student budget.")] = 0.25,
    student_epochs: Annotated[int, typer.Option("--student-epochs", help="The full student budget in epochs.")] = 8,
    seeds: Annotated[int, typer.Option("--seeds", help="Pilots per candidate.")] = 1,
    of_best: Annotated[float, typer.Option("--of-best", help="Pick the earliest candidate whose pilots reach this share of the best pilot.")] = 0.9,
    outcome: Annotated[str, typer.Option("--outcome", help="How a pilot is measured: eval_success, eval_time_at_goal or far_time_at_goal.")] = "eval_success",
    json_out: Annotated[Optional[pathlib.Path], typer.Option("--json", help="Write the race's record (race.json) here too ('-' = stdout).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Pilots at once (default: the CPU count).")] = None,
    quiet: Quiet = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Every candidate's pilots and the noise behind the verdict.")] = False,
):
    """Verify candidate checkpoints with pilot students: distill a short student (FRACTION of the
    student budget) from each of the run's last N checkpoints, measure them, and pick the earliest
    whose pilot reaches OF_BEST x the best. The racing engine with the pilot strategy (`gatekit
    race --strategy pilot`, whose fraction and share this command sets): resumable, and it says
    what it costs."""
    from gatekit.cli import _check_race_paths, print_race
    from training import pilot as pilot_mod

    _check_race_paths(run, out, json_out)  # never over the teacher's files
    res = pilot_mod.verify(run, out=out, last=last, fraction=fraction, student_epochs=student_epochs, seeds=seeds,
                           outcome=outcome, fraction_of_best=of_best, workers=workers,
                           progress=None if quiet else (lambda m: typer.echo(m, err=True)))
    print_race(res, run, json_out, quiet=quiet, verbose=verbose)


def _check_bench_out(out: pathlib.Path, data: pathlib.Path, pairs: pathlib.Path | None) -> None:
    """The benchmark never writes over its inputs: --out is not the dataset's folder, inside it or
    above it (``examples/results/gatebench/`` holds the committed dataset), nor the folder of
    --pairs (its results.json)."""
    o, d = out.resolve(), data.resolve()
    if o == d or d in o.parents or o in d.parents:
        raise GatekitError(f"--out {out}: overlaps the dataset {data} (its files would be written over); choose "
                           f"another folder")
    if pairs is not None and o == pathlib.Path(pairs).resolve().parent:
        raise GatekitError(f"--out {out}: holds --pairs {pairs} and its results; choose another folder")


def _race_alias() -> None:
    """``python -m training race`` is ``gatekit race`` (one command, one set of options)."""
    from gatekit.cli import RACE_HELP, race as gatekit_race

    app.command("race", help=RACE_HELP + " The same command as `gatekit race` (see its --help).")(gatekit_race)


_race_alias()


def main() -> None:
    from gatekit.cli_common import run_app

    run_app(app, "gatekit-train")


if __name__ == "__main__":
    main()
