"""Scale-free forms of a statistic's trajectory over one run's checkpoints.

Each transform maps the values of one run, in step order, to one value per checkpoint, and is
*online*: the value at checkpoint ``i`` uses checkpoints ``0..i`` only, so a hook can compute it
when the checkpoint is saved. Where a form is undefined (a zero or non-finite reference, too few
checkpoints) it is NaN, which never passes a rule.

* ``raw``: the value itself (scale-bound: a threshold on it is in the statistic's units);
* ``ratio_first``: ``x_i / x_0``, the change since the run's first checkpoint;
* ``range_position``: ``(x_i - min_{j<=i} x_j) / (max_{j<=i} x_j - min_{j<=i} x_j)``, where the
  value sits in the range the run has covered so far (1: at its running max, 0: at its min);
* ``of_running_max``: ``x_i / max_{j<=i} x_j`` (NaN while that max is not positive), the
  fraction of the best value so far, for outcomes and other non-negative signals;
* ``relchange2``: ``|x_i - x_{i-2}| / |x_{i-2}|``, the relative change over the last two
  checkpoints; a rule ``relchange2 below t`` is a plateau rule.

One form is *retrospective* (:data:`RETROSPECTIVE_FORMS`: it needs the run's last checkpoint, so
``select`` may use it and a hook or watcher may not):

* ``of_final``: ``x_i / x_last``; ``of_final(step) > 0.999999`` is the final-checkpoint rule (the
  ``final`` preset).

>>> transform([1.0, 2.0, 4.0, 3.0], "ratio_first").tolist()
[1.0, 2.0, 4.0, 3.0]
>>> transform([1.0, 2.0, 4.0, 3.0], "range_position").tolist()
[nan, 1.0, 1.0, 0.6666666666666666]
>>> transform([1.0, 2.0, 4.0, 3.0], "relchange2").tolist()
[nan, nan, 3.0, 0.5]
"""

from __future__ import annotations

import numpy as np

from gatekit.errors import GatekitError

TRANSFORMS = ("raw", "ratio_first", "range_position", "of_running_max", "relchange2")
"""The online forms (what the benchmark fits and a hook may read)."""
SCALE_FREE = TRANSFORMS[1:]
RETROSPECTIVE_FORMS = ("of_final",)
ALL_FORMS = TRANSFORMS + RETROSPECTIVE_FORMS
LAG = 2


def _finite(values) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise GatekitError(f"a trajectory must be one value per checkpoint, got shape {x.shape}")
    return x


def transform(values, name: str) -> np.ndarray:
    """The ``name`` form of one run's trajectory (same length; NaN where undefined)."""
    x = _finite(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "raw":
            out = x.copy()
        elif name == "ratio_first":
            out = x / x[0] if x.size and np.isfinite(x[0]) and x[0] != 0 else np.full_like(x, np.nan)
        elif name == "range_position":
            lo, hi = _running(x, np.fmin), _running(x, np.fmax)
            out = np.where(hi > lo, (x - lo) / (hi - lo), np.nan)
        elif name == "of_running_max":
            hi = _running(x, np.fmax)
            out = np.where(hi > 0, x / hi, np.nan)
        elif name == "of_final":
            last = x[-1] if x.size else np.nan
            out = x / last if np.isfinite(last) and last != 0 else np.full_like(x, np.nan)
        elif name == "relchange2":
            out = np.full_like(x, np.nan)
            if x.size > LAG:
                prev = x[:-LAG]
                out[LAG:] = np.where(prev != 0, np.abs(x[LAG:] - prev) / np.abs(prev), np.nan)
        else:
            raise GatekitError(f"unknown transform {name!r}; choose from {ALL_FORMS}")
    out[~np.isfinite(out)] = np.nan
    return out


def _running(x: np.ndarray, op) -> np.ndarray:
    """Running min/max that skips NaN (NaN until the first finite value)."""
    return op.accumulate(x) if x.size else x


def dips(values, *, drop: float = 0.5) -> np.ndarray:
    """True where a checkpoint is a transient collapse: its value is lower than *both* neighbours'
    by more than ``drop`` x the run's range (larger is better: pass ``-x`` for a statistic whose
    passing side is below). Only a checkpoint with two finite neighbours can dip (a low first
    checkpoint is the start, not a collapse). Needs the next checkpoint, so it is a post-hoc
    check (``select``); online, a patience >= 2 plays its part.

    >>> dips([0.1, 0.43, 0.02, 0.33, 0.5]).tolist()
    [False, False, True, False, False]
    """
    x = _finite(values)
    ok = np.isfinite(x)
    out = np.zeros(x.shape, dtype=bool)
    if ok.sum() < 2:
        return out
    gap = drop * float(np.ptp(x[ok]))
    for i in np.flatnonzero(ok):
        nb = [x[j] for j in (i - 1, i + 1) if 0 <= j < x.size and ok[j]]
        out[i] = len(nb) == 2 and gap > 0 and all(v - x[i] > gap for v in nb)
    return out
