"""The declared rules (:func:`default_methods`) and the benchmark report (:func:`report`): every
rule x decision, leave-one-group-out, beside the noise floor and the ceiling."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from gatekit.errors import GatekitError
from training.bench.methods import (BUDGET, DECISIONS, FINAL, PAPER, Method, _is_number, ceiling, evaluate,
                                    logistic_method, noise_floor, pilot_method, teacher_runs, threshold_method)
from training.bench.races import (gp_race_method, halving_method, measured_method, pilot_race_method,
                                  second_seed_method)
from gatekit.transforms import SCALE_FREE


PILOT_COLUMNS = ("pilot1_s0", "pilot2_s0", "pilot1_mean", "pilot2_mean")


def add_pilot_means(rows: Sequence[dict]) -> list[dict]:
    """Rows with ``pilot{e}_mean``: the mean over every ``pilot{e}_s{k}`` column present."""
    out = []
    for r in rows:
        r = dict(r)
        for e in (1, 2):
            vals = [v for c, v in r.items() if c.startswith(f"pilot{e}_s") and _is_number(v)]
            if vals:
                r[f"pilot{e}_mean"] = float(np.mean(vals))
        out.append(r)
    return out


def default_methods(statistics: Sequence[str], full_epochs: int | None = None,
                    rows_columns: Sequence = ()) -> list[Method]:
    """The declared candidates: baselines (final checkpoint; a threshold on the step, on the
    fraction of the budget, and on the teacher's own eval success in any form, i.e. its plateau);
    each statistic in any form and in scale-free forms only; the best statistic (chosen inside
    each fold) in any form and scale-free only; a logistic model on scale-free forms; pilots
    (1 student at 12.5% and 25% of the student budget, 2 students at 25%); and with
    ``full_epochs`` (the student budget) the measured rules declared for the dataset (issue 31):
    1 full student on each of the last 3 checkpoints, the same with K fitted in each fold, and
    2 pilots at 25% on the last 3; where the rows carry every student epoch (``student_e{e}_s{k}``,
    the dataset), successive halving from the last checkpoints (declared 2026-12-04, before it was
    scored on the dataset): last 4 at 25% then full, and K and rungs fitted inside each fold; where
    they carry the teacher action distances (``action_dist_c{j}``, the dataset), the GP race
    (:class:`GPRace`, declared 2026-12-05 before it was scored): 3 students with a constant prior,
    and 3 students with a student-side prior chosen inside each fold; a second full student at the
    best 2 of the last 3 (:class:`SecondSeed`, declared 2026-12-05 before it was scored); the pilot
    race exactly as ``gatekit race --strategy pilot`` answers (:class:`PilotRace`, declared
    2026-12-06 before it was scored)."""
    ms = [FINAL, PAPER, BUDGET, threshold_method("training step", ["step"], ("raw",), "baseline"),
          threshold_method("fraction of budget", ["fraction"], ("raw",), "baseline"),
          threshold_method("teacher eval (any form)", ["teacher_eval_success"], kind="baseline")]
    for s in statistics:
        ms.append(threshold_method(f"{s}", [s]))
        ms.append(threshold_method(f"{s} (scale-free)", [s], SCALE_FREE))
    ms += [threshold_method("best statistic", list(statistics)),
           threshold_method("best statistic (scale-free)", list(statistics), SCALE_FREE),
           logistic_method(statistics)]
    ms += [pilot_method("pilot 12.5%, 1 student", "pilot1_s0", uses=1, student_epochs=1),
           pilot_method("pilot 25%, 1 student", "pilot2_s0", uses=1, student_epochs=2),
           pilot_method("pilot 25%, 2 students", "pilot2_mean", uses=2, student_epochs=2)]
    if full_epochs:
        ms += [measured_method("1 full student, last 3", "student_outcome_mean", uses=1, student_epochs=full_epochs, k=3),
               measured_method("1 full student, last K (K fitted)", "student_outcome_mean", uses=1,
                               student_epochs=full_epochs),
               measured_method("pilot 25%, 2 students, last 3", "pilot2_mean", uses=2, student_epochs=2, k=3),
               second_seed_method("1 full student, last 3, a second at the best 2", k=3, full_epochs=full_epochs)]
        if any(c.startswith("student_e") for r in rows_columns for c in r):
            ms += [halving_method("successive halving, last 4, at 25% then full", k=4, rungs=(2, full_epochs),
                                  full_epochs=full_epochs),
                   halving_method("successive halving (K and rungs fitted)", full_epochs=full_epochs,
                                  rung_sets=((2, full_epochs), (1, 2, full_epochs), (1, full_epochs))),
                   pilot_race_method("pilot race (gatekit race --strategy pilot): 25% pilots on the last 3",
                                     full_epochs=full_epochs)]
        if any(c.startswith("action_dist_c") for r in rows_columns for c in r):  # the dataset's teacher outputs
            from gatekit.statistics import STUDENT_COLUMNS

            side = [c for c in STUDENT_COLUMNS if c in statistics]
            ms += [gp_race_method("GP race (A-OPS-style), 3 students", full_epochs=full_epochs),
                   gp_race_method("GP race (A-OPS-style), 3 students, student-side prior (fitted)", priors=side,
                                  full_epochs=full_epochs)]
    return ms


def report(rows: Sequence[dict], statistics: Sequence[str], *, groups: Sequence[str] = ("task", "config"),
           methods: Sequence[Method] | None = None, progress: Callable[[str], None] | None = None,
           full_epochs: int | None = None) -> dict:
    """Every method x decision, leave-one-``group``-out for each group with >= 2 values, with the
    noise floor per decision. Methods whose columns are missing from some run are skipped."""
    runs = teacher_runs(add_pilot_means(rows))
    methods = list(methods or default_methods(statistics, full_epochs, [rows[0]] if rows else []))
    out = {"n_runs": len(runs), "tasks": sorted({r.task for r in runs}), "configs": sorted({r.config for r in runs}),
           "noise_floor": {d: noise_floor(runs, d) for d in DECISIONS},
           "ceiling": {d: ceiling(runs, d) for d in DECISIONS}, "results": []}
    for group in groups:
        if len({getattr(r, group) for r in runs}) < 2:
            continue
        for m in methods:
            for d in m.decisions:
                try:
                    res = evaluate(runs, m, d, group=group)
                except GatekitError as e:
                    if progress:
                        progress(f"  {m.name} ({d}, by {group}): skipped: {e}")
                    continue
                out["results"].append(res)
                if progress:
                    progress(f"  {m.name:34s} {d:6s} by {group}: success {res['success']:.2f} "
                             f"regret {res['regret']:.3f} saved {res['saved']:.2f}")
    return out
