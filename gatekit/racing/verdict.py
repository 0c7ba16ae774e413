"""How sure a race is: the gap between the top two candidates against the noise of that gap."""

from __future__ import annotations

import numpy as np

RELATIVE_SEED_STD = 0.09
"""The students' seed-to-seed std as a share of the best checkpoint's mean, measured on the gate
benchmark's dataset (63 teacher runs, 7 task groups: 0.089): the noise a one-seed race is judged
against."""


SEED_CORRELATION = 0.28
"""How much one student seed's luck is shared across checkpoints: the correlation of a seed's
residuals (from each checkpoint's seed mean) across a run's last 4 checkpoints, the mean over the
dataset's 7 task groups (+0.75 on the point maze to -0.14 on the momentum maze). A race uses the
same seeds at every candidate, so its comparisons are paired."""


def paired_noise(best: float, seeds: int, rho: float = SEED_CORRELATION) -> float:
    """The std of the gap between two candidates' means over ``seeds`` common seeds, from the
    dataset's relative seed std and the seeds' correlation ``rho`` across checkpoints:
    ``RELATIVE_SEED_STD x best x sqrt(2 (1 - rho) / seeds)`` (pairing removes the shared luck).

    >>> round(paired_noise(1.0, 1, 0.5), 3)
    0.09
    """
    if seeds < 1:
        return float("nan")
    return float(RELATIVE_SEED_STD * max(best, 0.0) * np.sqrt(2 * (1 - rho) / seeds))


def how_sure(means, students, seeds: int) -> dict:
    """``gap`` (best mean minus the next), ``noise`` (the std of one candidate's mean: the students'
    own seed-to-seed std / sqrt(seeds) with 2 or more seeds, else :data:`RELATIVE_SEED_STD` x the
    best mean), ``noise_from`` and ``verdict``: "clear" when the gap is more than twice the noise of
    a gap between two candidates (sqrt(2) x ``noise``), else "within noise"; a verdict is one line."""
    means = np.asarray(means, np.float64)
    means = means[np.isfinite(means)]
    top = np.sort(means)[::-1]
    gap = float(top[0] - top[1]) if len(top) > 1 else None
    if seeds > 1:
        stds = [np.std(x, ddof=1) for x in students if len(x) > 1 and np.isfinite(x).all()]
        noise = float(np.mean(stds) / np.sqrt(seeds)) if stds else float("nan")
        noise_from = f"the students' own seed-to-seed std / sqrt({seeds})"
    else:
        noise = RELATIVE_SEED_STD * float(max(top[0], 0.0)) if len(top) else float("nan")
        noise_from = f"the benchmark's seed-to-seed std ({RELATIVE_SEED_STD:.0%} of the best mean)"
    bar = float(np.sqrt(2) * noise)
    if gap is None:
        verdict = "one candidate: nothing to compare"
    elif gap > 2 * bar:
        verdict = f"clear: the best leads by {gap:.3g}, over twice the noise of a gap ({bar:.2g})"
    else:
        verdict = f"within noise: the best leads by {gap:.3g}, under twice the noise of a gap ({bar:.2g})"
    return {"gap": gap, "noise": noise, "noise_from": noise_from, "verdict": verdict}


def record(last: int, seeds: int) -> dict | None:
    """What a last-``last`` race with ``seeds`` seeds held up to on the gate benchmark's dataset (the
    ``final`` preset's ``race`` records, written by ``training.bench.analysis.race_records``): its
    held-out choose record, and ``verdicts``: how often such races whose verdict was "clear" or
    "within noise" picked right (None where the benchmark has no such race)."""
    from gatekit import io as gio

    if "final" not in gio.preset_names():
        return None
    rec = ((gio.read_gate("final").validation or {}).get("race") or {}).get(str(last))
    if not isinstance(rec, dict):
        return None
    return {**{k: v for k, v in rec.items() if k != "verdicts"}, "verdicts": (rec.get("verdicts") or {}).get(str(seeds))}


def calibration(verdict: str, rec: dict | None) -> str:
    """One sentence: how often races of this shape with this verdict picked right on the dataset,
    against the other verdict (empty without a record)."""
    verdicts = (rec or {}).get("verdicts")
    if not isinstance(verdicts, dict):
        return ""
    kind = "clear" if verdict.startswith("clear") else "within noise"
    other = "within noise" if kind == "clear" else "clear"
    mine, theirs = verdicts.get(kind) or {}, verdicts.get(other) or {}
    if not mine.get("n"):
        return ""
    text = (f"on the benchmark, races like this (last {rec['last']}) that were {kind} picked right on "
            f"{mine['success']:.0%} ({mine['n']} races)")
    if theirs.get("n"):
        text += f", {other} ones on {theirs['success']:.0%} ({theirs['n']})"
    if kind == "clear" and theirs.get("n") and mine["success"] <= theirs["success"]:
        text += ": with this many seeds a large lead does not make the pick surer"
    return text
