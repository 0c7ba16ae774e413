"""The gate: fit a threshold on a teacher metric against student outcomes, and pick a teacher.

Conventions (stated once, used everywhere):

* ``direction="below"`` (the paper's rule for ``action_magnitude``): a checkpoint is predicted
  *past the gate* when ``value < threshold``; ``"above"``: when ``value > threshold``.
* ROC curves come from scikit-learn on ``score = -value`` (below) or ``value`` (above).
* The fitted threshold is the midpoint between the two adjacent observed values where Youden's
  J = TPR - FPR is maximal, so ``<`` and ``<=`` classify the data identically. The *plateau*
  is every interval of thresholds reaching that maximum.
* Degenerate input (one class, NaN, fewer than 4 points, mismatched lengths) raises
  GatekitError; nothing returns a silent NaN.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from gatekit.errors import GatekitError

DIRECTIONS = ("below", "above")
MIN_POINTS = 4


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise GatekitError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


def _validate(values, labels, groups=None, outcomes=None):
    values = np.asarray(values, dtype=float).ravel()
    labels_arr = np.asarray(labels).ravel()
    arrays = {"values": values, "labels": labels_arr}
    if groups is not None:
        arrays["groups"] = np.asarray(groups).ravel()
    if outcomes is not None:
        arrays["outcomes"] = np.asarray(outcomes, dtype=float).ravel()
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise GatekitError(f"inconsistent numbers of samples: {lengths}")
    if len(values) < MIN_POINTS:
        raise GatekitError(f"need at least {MIN_POINTS} (metric, outcome) points, got {len(values)}")
    for name in ("values", "outcomes"):
        if name in arrays and not np.all(np.isfinite(arrays[name])):
            bad = np.flatnonzero(~np.isfinite(arrays[name]))[:5].tolist()
            raise GatekitError(f"{name} contain NaN or inf (at positions {bad})")
    try:
        lab = labels_arr.astype(float)
    except ValueError:
        raise GatekitError(f"labels must be 0/1 or booleans, got {labels_arr[:5].tolist()}") from None
    if not np.all(np.isin(lab, (0.0, 1.0))):
        raise GatekitError(f"labels must be 0/1 or booleans, got values {sorted(set(lab.tolist()))[:5]}")
    lab = lab.astype(int)
    if lab.min() == lab.max():
        raise GatekitError(f"labels have a single class ({lab[0]}): a threshold needs both outcomes")
    return values, lab, arrays.get("groups"), arrays.get("outcomes")


def predict(values, threshold: float, direction: str = "below") -> np.ndarray:
    """1 where the rule says 'past the gate' (value < threshold for 'below')."""
    _check_direction(direction)
    values = np.asarray(values, dtype=float)
    return (values < threshold if direction == "below" else values > threshold).astype(int)


# --------------------------------------------------------------------------------------------
# ROC pieces
# --------------------------------------------------------------------------------------------


def _roc(values, labels, direction):
    from sklearn.metrics import roc_auc_score, roc_curve

    score = -values if direction == "below" else values
    fpr, tpr, thr = roc_curve(labels, score, drop_intermediate=False)
    return fpr, tpr, thr, float(roc_auc_score(labels, score))


def _youden(values, labels, direction):
    """Best J, the fitted threshold and the list of optimal threshold intervals.

    O(n log n): cumulative class counts over the sorted unique values give TPR / FPR at every
    cut point (below every value, between neighbours, above every value).
    """
    uniq, inverse = np.unique(values, return_inverse=True)
    n_pos, n_neg = labels.sum(), len(labels) - labels.sum()
    tp = np.concatenate([[0], np.cumsum(np.bincount(inverse, weights=labels, minlength=len(uniq)))])
    fp = np.concatenate([[0], np.cumsum(np.bincount(inverse, weights=1 - labels, minlength=len(uniq)))])
    js = tp / n_pos - fp / n_neg  # cut c predicts positive for values <= uniq[c-1] ("below")
    if direction == "above":
        js = -js
    cuts = np.concatenate([[uniq[0] - 1.0], (uniq[:-1] + uniq[1:]) / 2, [uniq[-1] + 1.0]])
    best = js.max()
    opt = np.flatnonzero(np.isclose(js, best, rtol=0, atol=1e-12))
    edges = np.concatenate([[-np.inf], uniq, [np.inf]])
    intervals = [(float(edges[i]), float(edges[i + 1])) for i in opt]
    # fitted threshold: the optimal cut nearest the middle of the plateau
    mid = opt[len(opt) // 2]
    return float(best), float(cuts[mid]), intervals


def _accuracy_at(values, labels, threshold, direction) -> float:
    return float(np.mean(predict(values, threshold, direction) == labels))


def _confusion(values, labels, threshold, direction) -> dict[str, int]:
    pred = predict(values, threshold, direction)
    return {
        "tp": int(np.sum((pred == 1) & (labels == 1))),
        "fp": int(np.sum((pred == 1) & (labels == 0))),
        "tn": int(np.sum((pred == 0) & (labels == 0))),
        "fn": int(np.sum((pred == 0) & (labels == 1))),
    }


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial CI for k successes in n trials (scipy's 'exact' method)."""
    if n <= 0 or not 0 <= k <= n:
        raise GatekitError(f"clopper_pearson needs 0 <= k <= n and n > 0, got k={k}, n={n}")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def bootstrap_auc_ci(
    values, labels, *, direction="below", groups=None, n_boot=2000, confidence=0.95, rng=0
) -> tuple[float, float, int]:
    """Percentile CI of the AUC. Stratified resampling (positives and negatives separately);
    with ``groups``, a cluster bootstrap over groups (teacher seeds), dropping draws with
    one class. Returns (low, high, number of usable draws)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(rng)
    values, labels = np.asarray(values, float), np.asarray(labels, int)
    score = -values if direction == "below" else values
    aucs = []
    if groups is None:
        pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
        for _ in range(n_boot):
            idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
            aucs.append(roc_auc_score(labels[idx], score[idx]))
    else:
        groups = np.asarray(groups)
        members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
        for _ in range(n_boot):
            idx = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
            if labels[idx].min() == labels[idx].max():
                continue
            aucs.append(roc_auc_score(labels[idx], score[idx]))
    if not aucs:
        raise GatekitError("bootstrap: every resample had a single class; too few groups for a CI")
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(aucs, [alpha, 1 - alpha])
    return float(lo), float(hi), len(aucs)


def leave_one_group_out(values, labels, groups, *, direction="below") -> dict[str, Any]:
    """Fit the Youden threshold without each group, apply it to the held-out group.

    Folds whose training part has one class cannot be fit; they are counted in
    ``skipped_groups``. Returns accuracy over the held-out points that were predicted.
    """
    values, labels, groups = np.asarray(values, float), np.asarray(labels, int), np.asarray(groups)
    correct, n, folds, skipped = 0, 0, [], []
    for g in np.unique(groups):
        train, test = groups != g, groups == g
        if labels[train].min() == labels[train].max():
            skipped.append(_plain(g))
            continue
        _, thr, _ = _youden(values[train], labels[train], direction)
        hits = int(np.sum(predict(values[test], thr, direction) == labels[test]))
        correct, n = correct + hits, n + int(test.sum())
        folds.append({"group": _plain(g), "threshold": thr, "correct": hits, "n": int(test.sum())})
    if n == 0:
        raise GatekitError("leave-one-group-out: no fold had both classes in its training part")
    return {"accuracy": correct / n, "correct": correct, "n": n, "folds": folds, "skipped_groups": skipped}


def _plain(v):
    return v.item() if hasattr(v, "item") else v


# --------------------------------------------------------------------------------------------
# fit_threshold
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Everything :func:`fit_threshold` measured. ``to_dict()`` is JSON-ready."""

    n: int
    n_positive: int
    direction: str
    auc: float
    auc_ci: tuple[float | None, float | None]
    auc_ci_draws: int
    threshold: float
    youden_j: float
    plateau: list[tuple[float, float]]
    accuracy: float
    confusion: dict[str, int]
    spearman_rho: float
    spearman_p: float
    spearman_against: str
    logo: dict | None
    fixed_rule: dict | None
    roc: dict

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        lo, hi = self.auc_ci
        rule = "<" if self.direction == "below" else ">"
        ci = f"95% bootstrap CI [{lo:.3f}, {hi:.3f}], {self.auc_ci_draws} draws" if self.auc_ci_draws else "no bootstrap"
        lines = [
            f"n = {self.n} ({self.n_positive} positive)",
            f"AUC = {self.auc:.3f}  ({ci})",
            f"fitted threshold: value {rule} {self.threshold:.4g}  (Youden J = {self.youden_j:.3f}; "
            f"plateau {', '.join(f'({a:.4g}, {b:.4g})' for a, b in self.plateau)})",
            f"accuracy at fitted threshold = {self.accuracy:.3f}  confusion {self.confusion}",
            f"Spearman rho (vs {self.spearman_against}) = {self.spearman_rho:.3f}  (p = {self.spearman_p:.2g})",
        ]
        if self.logo:
            lines.append(
                f"leave-one-group-out accuracy = {self.logo['accuracy']:.3f} "
                f"({self.logo['correct']}/{self.logo['n']}; skipped groups {self.logo['skipped_groups']})"
            )
        if self.fixed_rule:
            f = self.fixed_rule
            lines.append(
                f"fixed rule value {rule} {f['threshold']:.4g}: accuracy {f['accuracy']:.3f} "
                f"({f['correct']}/{f['n']}, exact 95% CI [{f['ci'][0]:.3f}, {f['ci'][1]:.3f}])"
            )
        return "\n".join(lines)


def evaluate_rule(values, labels, threshold: float, *, direction="below", confidence=0.95) -> dict:
    """Accuracy of a fixed threshold rule with its exact Clopper-Pearson CI."""
    values, labels, _, _ = _validate(values, labels)
    correct = int(np.sum(predict(values, threshold, direction) == labels))
    return {
        "threshold": float(threshold),
        "accuracy": correct / len(values),
        "correct": correct,
        "n": len(values),
        "ci": clopper_pearson(correct, len(values), confidence),
        "confusion": _confusion(values, labels, threshold, direction),
    }


def fit_threshold(
    values: Sequence[float],
    labels: Sequence[int | bool],
    *,
    direction: str = "below",
    groups: Sequence | None = None,
    outcomes: Sequence[float] | None = None,
    fixed_threshold: float | None = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    rng: int | np.random.Generator = 0,
) -> FitResult:
    """Fits the gate threshold on a teacher metric against binary student outcomes.

    Args:
      values: teacher metric per condition (e.g. action_magnitude), shape [n].
      labels: 1 if the student distilled from that checkpoint succeeded, shape [n].
      direction: "below" (value < threshold predicts success) or "above".
      groups: optional group per condition (teacher seed): cluster bootstrap and
        leave-one-group-out accuracy.
      outcomes: optional continuous student outcome for Spearman rho (default: labels).
      fixed_threshold: also evaluate this fixed rule (e.g. the paper's 0.63) with an exact CI.
      n_boot, confidence, rng: bootstrap settings; the same rng gives the same CI.

    Returns:
      A :class:`FitResult`.

    Example:
      >>> r = fit_threshold([0.9, 0.8, 0.7, 0.5, 0.4, 0.3], [0, 0, 0, 1, 1, 1], n_boot=200)
      >>> r.auc, r.threshold
      (1.0, 0.6)
    """
    _check_direction(direction)
    values, labels, groups, outcomes = _validate(values, labels, groups, outcomes)
    fpr, tpr, thr, auc = _roc(values, labels, direction)
    j, threshold, plateau = _youden(values, labels, direction)
    target = outcomes if outcomes is not None else labels
    if np.ptp(target) == 0 or np.ptp(values) == 0:
        raise GatekitError("Spearman rho undefined: values or outcomes are constant")
    rho, p = stats.spearmanr(values, target)
    if n_boot < 0:
        raise GatekitError(f"n_boot must be >= 0, got {n_boot}")
    lo, hi, draws = (
        bootstrap_auc_ci(values, labels, direction=direction, groups=groups, n_boot=n_boot, confidence=confidence, rng=rng)
        if n_boot
        else (None, None, 0)
    )
    logo = leave_one_group_out(values, labels, groups, direction=direction) if groups is not None else None
    fixed = (
        evaluate_rule(values, labels, fixed_threshold, direction=direction, confidence=confidence)
        if fixed_threshold is not None
        else None
    )
    if direction == "below":
        roc_thr = -thr
    else:
        roc_thr = thr
    return FitResult(
        n=len(values),
        n_positive=int(labels.sum()),
        direction=direction,
        auc=auc,
        auc_ci=(lo, hi),
        auc_ci_draws=draws,
        threshold=threshold,
        youden_j=j,
        plateau=plateau,
        accuracy=_accuracy_at(values, labels, threshold, direction),
        confusion=_confusion(values, labels, threshold, direction),
        spearman_rho=float(rho),
        spearman_p=float(p),
        spearman_against="outcomes" if outcomes is not None else "labels",
        logo=logo,
        fixed_rule=fixed,
        roc={
            "fpr": fpr.tolist(),
            "tpr": tpr.tolist(),
            "thresholds": [None if not math.isfinite(t) else float(t) for t in roc_thr],
        },
    )


# --------------------------------------------------------------------------------------------
# select
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Selection:
    """The recommended checkpoint (or none) and why."""

    ready: bool
    run: str | None
    step: int | None
    epoch: int | None
    value: float | None
    reason: str
    per_run: list[dict]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def passes(value, threshold: float, mode: str = "below") -> bool:
    """Whether one metric value is past the gate (non-finite values never pass)."""
    _check_direction(mode)
    if value is None or not math.isfinite(float(value)):
        return False
    return float(value) < threshold if mode == "below" else float(value) > threshold


def select(
    scores: Iterable[Mapping[str, Any]],
    *,
    threshold: float = 0.63,
    metric: str = "action_magnitude",
    mode: str = "below",
    patience: int = 1,
) -> Selection:
    """Earliest checkpoint at which the gate has held for ``patience`` consecutive checkpoints.

    Args:
      scores: rows with ``run``, ``step`` and ``metric`` (a ScoreTable or a list of dicts).
      threshold, metric, mode: the gate (``mode="below"``: value < threshold).
      patience: consecutive checkpoints (of one run) that must pass.

    Returns:
      A :class:`Selection`. Across runs the earliest qualifying step wins (ties: the run with
      the lower metric for "below"). When no checkpoint qualifies, ``ready`` is False and the
      reason names the closest candidate.
    """
    _check_direction(mode)
    if patience < 1:
        raise GatekitError(f"patience must be >= 1, got {patience}")
    rows = list(scores)
    if not rows:
        raise GatekitError("select: no scored checkpoints")
    if not any(metric in r for r in rows):
        raise GatekitError(f"select: no column {metric!r} in the scores")
    by_run: dict[str, list[Mapping]] = {}
    for r in rows:
        if "step" not in r:
            raise GatekitError("select: every row needs a 'step'")
        by_run.setdefault(str(r.get("run_path") or r.get("run")), []).append(r)
    rule = "<" if mode == "below" else ">"
    per_run, candidates = [], []
    for key, rs in by_run.items():
        rs = sorted(rs, key=lambda r: r["step"])
        streak, hit = 0, None
        for r in rs:
            streak = streak + 1 if passes(r.get(metric), threshold, mode) else 0
            if streak >= patience:
                hit = r
                break
        vals = [float(r[metric]) for r in rs if r.get(metric) is not None and math.isfinite(float(r[metric]))]
        best = (min if mode == "below" else max)(vals) if vals else None
        per_run.append(
            {
                "run": rs[0].get("run", key),
                "checkpoints": len(rs),
                "selected_step": None if hit is None else int(hit["step"]),
                "best_value": best,
            }
        )
        if hit is not None:
            candidates.append(hit)
    sign = 1 if mode == "below" else -1
    if candidates:
        c = min(candidates, key=lambda r: (r["step"], sign * float(r[metric])))
        held = "it" if patience == 1 else f"the last {patience} consecutive checkpoints"
        reason = (
            f"{c.get('run')} at step {c['step']}: {metric} = {float(c[metric]):.4g} {rule} {threshold:g} "
            f"and {held} passed the gate; the earliest such checkpoint across "
            f"{len(by_run)} run(s) ({len(candidates)} run(s) reached the gate)"
        )
        return Selection(True, c.get("run"), int(c["step"]), _int_or_none(c.get("epoch")), float(c[metric]), reason, per_run)
    finite = [r for r in rows if r.get(metric) is not None and math.isfinite(float(r[metric]))]
    if finite:
        closest = (min if mode == "below" else max)(finite, key=lambda r: float(r[metric]))
        near = (
            f"; closest is {closest.get('run')} at step {closest['step']} with {metric} = "
            f"{float(closest[metric]):.4g}"
        )
    else:
        near = f"; no finite {metric} values"
    reason = (
        f"no checkpoint is ready: none of {len(rows)} checkpoint(s) in {len(by_run)} run(s) had "
        f"{metric} {rule} {threshold:g} for {patience} consecutive checkpoint(s){near}. "
        f"Train the teacher longer."
    )
    return Selection(False, None, None, None, None, reason, per_run)


def _int_or_none(v):
    return None if v is None else int(v)
