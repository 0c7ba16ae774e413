"""Which gate applies: a Gate, a gate file or preset, a one-off rule, or the default for a
decision and an env (:func:`resolve_gate`, the one place arguments become a :class:`Gate`), and
the statistic a command shows when none is named (:func:`default_metric`)."""

from __future__ import annotations

import dataclasses
import pathlib

from gatekit import io
from gatekit import rule as R
from gatekit.errors import GatekitError
from gatekit.io.gates import Gate
from gatekit.judge import DECISIONS


TABLE_SUFFIXES = (".csv", ".json")


def scores_run_folders(sources) -> bool:
    """Whether ``sources`` names run folders (to be scored, so only gatekit's columns exist)."""
    if isinstance(sources, (str, pathlib.Path)):
        items = [sources]
    elif isinstance(sources, (list, tuple)):
        items = sources
    else:  # a ScoreTable or an iterator of rows (never consumed here)
        return False
    return any(isinstance(s, (str, pathlib.Path)) and not is_table(s) for s in items)


def is_table(path) -> bool:
    p = pathlib.Path(path)
    return p.is_file() and p.suffix.lower() in TABLE_SUFFIXES


DEFAULT_GATE = "auto"
"""The benchmark's best zero-cost *statistic* rule (``gatekit/presets/auto.json``, made by
``training.bench.analysis.ship``; its record is in the file): the default for a decision only where its
held-out record on it beats the baselines."""
FINAL_GATE = "final"
"""What ``select`` answers with when given no gate and ``auto`` is not the default: the final
checkpoint, the zero-cost rule with the best held-out record for choosing (its record, and what
measuring would buy, are in ``gatekit/presets/final.json``)."""
BUDGET_GATE = "budget"
"""What the hook, ``watch`` and ``--stop-at-gate`` use when given no gate and ``auto`` is not the
default for *stop*: the checkpoint past 84% of the planned training, the stop rule with the best
held-out record (``gatekit/presets/budget.json``, with that record)."""
PAPER_GATE = "paper"
"""The rule a bare ``--threshold`` sets the threshold of: the paper's |tanh(mu)| passing below."""


def _env_preset(env: str | None) -> bool:
    """Whether gatekit ships a built-in gate for runs of ``env`` (a preset named after it)."""
    return bool(env) and env in io.preset_names() and env not in (PAPER_GATE, DEFAULT_GATE, FINAL_GATE, BUDGET_GATE)


def _auto_held_out() -> dict:
    if DEFAULT_GATE not in io.preset_names():
        return {}
    return (io.read_gate(DEFAULT_GATE).validation or {}).get("held_out") or {}


def _auto_is_default(decision: str = "choose") -> bool:
    """The auto gate is the default for a decision only where the benchmark's declared rule made it
    so (``held_out.default_for``, written by ``training.bench.analysis.ship``: for *choose*, its
    regret must beat the final checkpoint's by a corrected paired interval over task groups; for
    *stop*, its record must beat the final checkpoint, the training step and the fraction of the
    budget; a file from before it was judged on *choose* against the final checkpoint only)."""
    R.check_direction(decision, DECISIONS, what="decision")
    held = _auto_held_out()
    if "default_for" in held:
        return held["default_for"].get(decision) is True
    return held.get("beats_final_checkpoint") is True


def _why_no_default(decision: str) -> str:
    held = _auto_held_out()
    if decision not in held.get("default_for", {}):
        return "No rule was right on most teacher runs of tasks it was not fitted on (README, 'Choosing a rule')"
    base = held.get("baselines", {}).get(decision, {})
    best = max(base.items(), key=lambda kv: kv[1]) if base else ("a baseline", float("nan"))
    return (f"The auto gate is not the default for {decision}: held out by task it was right on "
            f"{held[decision]:.0%} of teacher runs, {best[0]} on {best[1]:.0%} (README, 'Choosing a rule')")


def resolve_gate(gate=None, *, threshold=None, metric=None, direction="below", patience=None,
                 default_env: str | None = None, mode: str | None = None, check_known: bool = False,
                 decision: str = "choose") -> Gate:
    """The gate to apply: a Gate, a gate file or preset name, or a one-off rule from
    ``threshold``/``metric``/``direction``. With neither, :data:`DEFAULT_GATE` (``auto``, the
    benchmark's best zero-cost rule) when its held-out record on ``decision`` (``choose`` for
    select, ``stop`` for the hook and watch) beats the baselines, else the rule with the best
    held-out record for the decision (:data:`FINAL_GATE` for choose, :data:`BUDGET_GATE` for
    stop); a gate with no held-out record (e.g. ``pointmaze``) only when named. Every
    argument is checked here, once (the CLI passes them through). ``mode``: deprecated alias of
    ``direction``. ``check_known``: the one-off rule's metric must be a gatekit column (scoring
    run folders: a typo is caught before any scoring, with a did-you-mean)."""
    direction = R.alias(direction, mode)
    if patience is not None:
        R.check_patience(patience, "--patience")
    if gate is not None and threshold is not None:
        raise GatekitError("give either a gate (--gate) or a one-off rule (--threshold), not both")
    if gate is None and threshold is None:
        if _auto_is_default(decision):
            gate = DEFAULT_GATE
        elif decision == "choose" and FINAL_GATE in io.preset_names():
            gate = FINAL_GATE
        elif decision == "stop" and BUDGET_GATE in io.preset_names():
            gate = BUDGET_GATE
        elif _env_preset(default_env):
            gate = default_env
        else:
            raise GatekitError(
                "no gate given: pass --gate FILE (fitted with `gatekit fit --save`) or a preset "
                f"({', '.join(io.preset_names())}), or a one-off rule with --threshold/--metric/--direction. "
                f"{_why_no_default(decision)}"
                + ("; `gatekit race RUN --out DIR` measures candidates instead" if decision == "choose" else "")
            )
    if gate is None:  # a one-off rule: its threshold and side checked here, once
        R.check_number(threshold, "--threshold")
        R.check_direction(direction, what="--direction")
    if gate is None and metric is None:  # a bare --threshold: the paper's statistic and side
        paper = io.read_gate(PAPER_GATE)
        g = dataclasses.replace(paper, threshold=threshold, direction=direction, patience=patience or 1,
                                name=f"{PAPER_GATE} (threshold {threshold:g})",
                                description=f"a bare --threshold: the paper's statistic ({paper.metric}) passing "
                                            f"{direction} {threshold:g}; " + paper.description)
        if threshold != paper.threshold or direction != paper.direction:
            validation = dict(paper.validation or {})
            validation.pop("held_out", None)  # the record is of the paper's own threshold and side
            g = dataclasses.replace(g, validation=validation)
    elif gate is None:
        if check_known:
            from gatekit.statistics import check_metric

            check_metric(metric)
        g = Gate(metric=metric, direction=direction, threshold=threshold, patience=patience or 1,
                 name="one-off rule", description="given on the command line; not fitted")
    elif isinstance(gate, Gate):
        g = gate
    else:
        from gatekit.statistics import check_gate_metric

        g = io.read_gate(gate)
        check_gate_metric(g, str(gate))
    if patience is not None and patience != g.patience:
        g = dataclasses.replace(g, patience=patience)
    return g


def default_metric(env: str | None = None) -> str:
    """The statistic a command shows when none is named: the metric of the gate :func:`select`
    would use by default for ``env`` (never a rule fitted elsewhere, silently); GatekitError
    asking for ``--metric`` when there is none."""
    try:
        g = resolve_gate(None, default_env=env)
        if g.is_final and _env_preset(env):
            return io.read_gate(env).metric  # the env's built-in gate, named by the runs' env
        if g.is_final:
            raise GatekitError("the default answer (the final checkpoint) reads no statistic")
        return g.metric
    except GatekitError:
        raise GatekitError(f"name a statistic with --metric: there is no default gate{f' for env {env!r}' if env else ''} "
                           "to take it from (the columns are listed in docs/metrics.md)") from None


def sources_env(sources) -> str | None:
    """The one env of the teacher runs under ``sources`` (run folders, read from their run.json
    without loading a checkpoint), or None (several, none recorded, or not run folders)."""
    from gatekit.scoring import _env_name

    if not scores_run_folders(sources):
        return None
    try:
        runs, _ = io.find_runs(sources)
    except GatekitError:
        return None
    return single_env([{"env": _env_name(r.config)} for r in runs if r.config.get("role", "teacher") == "teacher"])


def single_env(rows: list[dict]) -> str | None:
    envs = {r.get("env") for r in rows if r.get("env")}
    return envs.pop() if len(envs) == 1 else None
