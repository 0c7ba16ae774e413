"""The fair judge: a pick is scored by student seeds the rule did not use.

A checkpoint rule that reads students (pilots, or full students raced from several checkpoints)
would flatter itself if the same students also judged its pick: their noise would agree with it.
So every rule is judged by one held-out student seed ``j``; a rule that reads ``uses`` seeds sees
only seeds other than ``j`` (every such combination, :func:`seed_splits`), and its success and
regret are averaged over the splits. A zero-cost rule (``uses == 0``) faces the same judges, so
all rules carry the same judging noise and their numbers compare.

Per teacher run (``judged``: the judging seed's outcome at each benchmarked checkpoint):

* **choose**: right when ``judged[pick] >= CHOOSE_FRACTION x max(judged)``;
* **stop**: right when it fires before the final checkpoint and ``judged[pick] >= STOP_FRACTION x
  judged[final]``, or does not fire and no earlier checkpoint would have qualified;
* **regret** (both): ``1 - judged[pick] / max(judged)`` (0 where every outcome is 0; no pick means
  the final checkpoint).

Rates pool runs; their 95% intervals come from a bootstrap over task groups
(:func:`bootstrap_interval`), the unit a rule must transfer across.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

from gatekit.errors import GatekitError

DECISIONS = ("stop", "choose")
"""The two decisions: ``stop`` (online: the hook, ``watch``, ``--stop-at-gate``) and ``choose``
(post hoc: ``select``)."""
STOP_FRACTION = 0.9
CHOOSE_FRACTION = 0.95


def seed_splits(n_seeds: int, uses: int) -> list[tuple[tuple[int, ...], int]]:
    """Every (seeds the rule may read, the judging seed): each seed judges once, the rule reads
    each combination of ``uses`` of the others.

    >>> seed_splits(3, 1)
    [((1,), 0), ((2,), 0), ((0,), 1), ((2,), 1), ((0,), 2), ((1,), 2)]
    """
    if uses < 0 or uses > n_seeds - 1:
        raise GatekitError(f"a rule reading {uses} student seed(s) cannot be judged by another of {n_seeds} seed(s)")
    return [(used, j) for j in range(n_seeds)
            for used in itertools.combinations([k for k in range(n_seeds) if k != j], uses)]


def regret(judged: np.ndarray, pick: int | None) -> float:
    """``1 - judged[pick] / max(judged)``; ``pick`` None means the final checkpoint."""
    judged = np.asarray(judged, dtype=np.float64)
    best = float(np.max(judged))
    if best <= 0:
        return 0.0
    return float(1.0 - judged[len(judged) - 1 if pick is None else pick] / best)


def judge_pick(judged: np.ndarray, steps: np.ndarray, pick: int | None, decision: str) -> dict:
    """``success``, ``regret`` and ``saved`` (stop: the share of training after the pick) of one pick."""
    judged = np.asarray(judged, dtype=np.float64)
    last = len(judged) - 1
    if decision == "choose":
        p = last if pick is None else pick
        ok, saved = bool(judged[p] >= CHOOSE_FRACTION * judged.max()), 0.0
    elif decision == "stop":
        qualifies = judged[:last] >= STOP_FRACTION * judged[last]
        if pick is None or pick >= last:
            ok, saved = not bool(qualifies.any()), 0.0
        else:
            ok, saved = bool(qualifies[pick]), float(1.0 - steps[pick] / steps[last])
    else:
        raise GatekitError(f"decision must be 'stop' or 'choose', got {decision!r}")
    return {"success": ok, "regret": regret(judged, pick), "saved": saved}


def bootstrap_interval(values: Sequence[float], groups: Sequence, *, n_boot: int = 2000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the pooled mean of ``values`` when whole ``groups`` (e.g. tasks) are
    resampled with replacement. With one group the interval is (nan, nan): nothing to resample."""
    values, groups = np.asarray(values, dtype=np.float64), np.asarray(groups)
    if values.shape != groups.shape:
        raise GatekitError(f"values {values.shape} and groups {groups.shape} differ in shape")
    names = np.unique(groups)
    if len(names) < 2:
        return (math.nan, math.nan)
    sums = np.array([values[groups == g].sum() for g in names])
    counts = np.array([(groups == g).sum() for g in names])
    idx = np.random.default_rng(seed).integers(0, len(names), size=(n_boot, len(names)))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))
