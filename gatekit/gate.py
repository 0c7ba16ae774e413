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
FIT_DIRECTIONS = (*DIRECTIONS, "auto")
MIN_POINTS = 4
MIN_GROUPS_FOR_CI = 5


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _check_direction(direction: str, allowed: tuple[str, ...] = DIRECTIONS) -> None:
    if direction not in allowed:
        raise GatekitError(f"direction must be one of {allowed}, got {direction!r}")


def _check_threshold(threshold, what: str = "threshold") -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise GatekitError(f"{what} must be a number, got {threshold!r}") from None
    if not math.isfinite(t):
        raise GatekitError(f"{what} must be finite, got {threshold!r}")
    return t


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


def _auto_direction(values, labels) -> str:
    """The direction with the larger in-sample AUC (ties: 'below', the paper's)."""
    from sklearn.metrics import roc_auc_score

    return "below" if roc_auc_score(labels, -values) >= roc_auc_score(labels, values) else "above"


def leave_one_group_out(values, labels, groups, *, direction="below") -> dict[str, Any]:
    """Out-of-fold validation: for each group (teacher seed), fit on the other groups, predict it.

    Everything fitted is fitted inside the fold: the Youden threshold, and with
    ``direction="auto"`` the direction too (the larger training-part AUC). Folds whose training
    part has one class cannot be fit; they are counted in ``skipped_groups``. Returns the
    out-of-fold accuracy over the held-out points that were predicted, and the out-of-fold AUC
    of the held-out values oriented by each fold's direction (None with a single class).
    """
    from sklearn.metrics import roc_auc_score

    _check_direction(direction, FIT_DIRECTIONS)
    values, labels, groups = np.asarray(values, float), np.asarray(labels, int), np.asarray(groups)
    uniq = np.unique(groups)
    if len(uniq) < 2:
        raise GatekitError(f"leave-one-group-out needs at least 2 groups, got {len(uniq)} ({uniq.tolist()})")
    correct, n, folds, skipped = 0, 0, [], []
    oriented, held_labels = [], []
    for g in uniq:
        train, test = groups != g, groups == g
        if labels[train].min() == labels[train].max():
            skipped.append(_plain(g))
            continue
        d = _auto_direction(values[train], labels[train]) if direction == "auto" else direction
        _, thr, _ = _youden(values[train], labels[train], d)
        hits = int(np.sum(predict(values[test], thr, d) == labels[test]))
        correct, n = correct + hits, n + int(test.sum())
        oriented.append(-values[test] if d == "below" else values[test])
        held_labels.append(labels[test])
        folds.append({"group": _plain(g), "direction": d, "threshold": thr, "correct": hits, "n": int(test.sum())})
    if n == 0:
        raise GatekitError("leave-one-group-out: no fold had both classes in its training part")
    y = np.concatenate(held_labels)
    auc = float(roc_auc_score(y, np.concatenate(oriented))) if y.min() != y.max() else None
    return {"accuracy": correct / n, "correct": correct, "n": n, "auc": auc, "direction": direction,
            "folds": folds, "skipped_groups": skipped}


def _fit_rule(values, labels, direction="auto"):
    """(direction, threshold) fitted on the rows where ``values`` is defined (finite)."""
    ok = np.isfinite(values)
    v, y = values[ok], labels[ok]
    d = _auto_direction(v, y) if direction == "auto" else direction
    return d, _youden(v, y, d)[1]


def _predict_defined(values, threshold, direction):
    """``predict`` where undefined values (NaN: e.g. drift at a run's first checkpoint) never pass."""
    with np.errstate(invalid="ignore"):
        return predict(values, threshold, direction)


def _inner_accuracy(values, labels, groups) -> float:
    """Leave-one-group-out accuracy of one statistic (direction and threshold fitted per fold)."""
    correct = 0
    for g in np.unique(groups):
        tr, te = groups != g, groups == g
        ok = np.isfinite(values[tr])
        if ok.sum() < 2 or labels[tr][ok].min() == labels[tr][ok].max():
            return -1.0
        d, thr = _fit_rule(values[tr], labels[tr])
        correct += int(np.sum(_predict_defined(values[te], thr, d) == labels[te]))
    return correct / len(labels)


def select_statistic(columns: Mapping[str, Sequence[float]], labels, groups) -> dict[str, Any]:
    """Which statistic, its direction and threshold, all chosen *inside* each outer fold.

    For every held-out group, each candidate is scored by leave-one-group-out accuracy on the
    remaining groups (inner folds); the best is fitted on those groups and predicts the held-out
    one. The out-of-fold accuracy is that of the whole procedure, selection included. NaN values
    (statistic undefined there) never pass the gate. Returns the outer folds (with the choice
    each made), the out-of-fold accuracy, and the procedure's choice on all groups.
    """
    labels, groups = np.asarray(labels, int), np.asarray(groups)
    cols = {k: np.asarray(v, float) for k, v in columns.items()}
    if len(np.unique(groups)) < 3:
        raise GatekitError("select_statistic needs at least 3 groups (an inner fold needs 2)")

    def choose(mask):
        scores = {k: _inner_accuracy(v[mask], labels[mask], groups[mask]) for k, v in cols.items()}
        best = max(scores, key=lambda k: (scores[k], -list(cols).index(k)))
        d, thr = _fit_rule(cols[best][mask], labels[mask])
        return best, d, thr, scores[best]

    folds, correct = [], 0
    for g in np.unique(groups):
        tr, te = groups != g, groups == g
        name, d, thr, inner = choose(tr)
        hits = int(np.sum(_predict_defined(cols[name][te], thr, d) == labels[te]))
        correct += hits
        folds.append({"group": _plain(g), "metric": name, "direction": d, "threshold": thr,
                      "inner_accuracy": inner, "correct": hits, "n": int(te.sum())})
    name, d, thr, inner = choose(np.ones(len(labels), bool))
    return {"accuracy": correct / len(labels), "correct": correct, "n": len(labels), "folds": folds,
            "choice": {"metric": name, "direction": d, "threshold": thr, "inner_accuracy": inner}}


def _plain(v):
    return v.item() if hasattr(v, "item") else v


# --------------------------------------------------------------------------------------------
# fit_threshold
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Everything :func:`fit_threshold` measured. ``to_dict()`` is JSON-ready.

    ``auc``, ``threshold``, ``accuracy`` are in-sample (fitted on all rows); ``logo`` is the
    honest, out-of-fold number; ``baseline`` is the same out-of-fold fit with the training step
    as the predictor, and ``verdict`` says in one sentence whether the statistic beats it.
    """

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
    metric: str = "value"
    direction_source: str = "given"
    n_groups: int | None = None
    baseline: dict | None = None
    verdict: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    label_rule: dict | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def beats_baseline(self) -> bool | None:
        """Out-of-fold accuracy strictly above the step baseline's (None when not measurable)."""
        if not self.logo or not self.baseline or not self.baseline.get("logo"):
            return None
        return self.logo["accuracy"] > self.baseline["logo"]["accuracy"]

    def summary(self) -> str:
        lo, hi = self.auc_ci
        rule = "<" if self.direction == "below" else ">"
        ci = f"95% bootstrap CI [{lo:.3f}, {hi:.3f}], {self.auc_ci_draws} draws" if self.auc_ci_draws else "no bootstrap"
        how = "" if self.direction_source == "given" else f", direction chosen {self.direction_source}"
        lines = [
            f"{self.metric}: n = {self.n} ({self.n_positive} positive)"
            + (f", {self.n_groups} groups" if self.n_groups else ""),
            f"in-sample AUC = {self.auc:.3f}  ({ci}{how})",
            f"fitted threshold: {self.metric} {rule} {self.threshold:.4g}  (Youden J = {self.youden_j:.3f}; "
            f"plateau {', '.join(f'({a:.4g}, {b:.4g})' for a, b in self.plateau)})",
            f"in-sample accuracy at fitted threshold = {self.accuracy:.3f}  confusion {self.confusion}",
            f"Spearman rho (vs {self.spearman_against}) = {self.spearman_rho:.3f}  (p = {self.spearman_p:.2g})",
        ]
        if self.logo:
            lines.append(f"out of fold (leave-one-group-out, direction {self.logo['direction']} fitted per fold): "
                         + _logo_text(self.logo))
        if self.baseline and self.baseline.get("logo"):
            lines.append(f"baseline {self.baseline['metric']} out of fold: " + _logo_text(self.baseline["logo"]))
        if self.verdict:
            lines.append(self.verdict)
        if self.fixed_rule:
            f = self.fixed_rule
            lines.append(
                f"fixed rule {self.metric} {rule} {f['threshold']:.4g}: accuracy {f['accuracy']:.3f} "
                f"({f['correct']}/{f['n']}, exact 95% CI [{f['ci'][0]:.3f}, {f['ci'][1]:.3f}])"
            )
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _logo_text(logo: dict) -> str:
    auc = "-" if logo.get("auc") is None else f"{logo['auc']:.3f}"
    skipped = f"; skipped groups {logo['skipped_groups']}" if logo["skipped_groups"] else ""
    return f"accuracy {logo['accuracy']:.3f} ({logo['correct']}/{logo['n']}), AUC {auc}{skipped}"


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
    baseline: Sequence[float] | None = None,
    baseline_name: str = "step",
    metric: str = "value",
    n_boot: int = 2000,
    confidence: float = 0.95,
    rng: int | np.random.Generator = 0,
) -> FitResult:
    """Fits the gate threshold on a teacher metric against binary student outcomes.

    Args:
      values: teacher metric per condition (e.g. action_magnitude), shape [n].
      labels: 1 if the student distilled from that checkpoint succeeded, shape [n].
      direction: "below" (value < threshold predicts success), "above", or "auto" (the larger
        AUC; in-sample for the reported fit, and chosen again inside every out-of-fold fold).
      groups: optional group per condition (teacher seed): cluster bootstrap and
        leave-one-group-out (out-of-fold) validation.
      outcomes: optional continuous student outcome for Spearman rho (default: labels).
      fixed_threshold: also evaluate this fixed rule (e.g. the paper's 0.63) with an exact CI.
      baseline: the trivial predictor (training step or epoch) per condition; fitted out of
        fold the same way (direction "auto") and compared with the statistic.
      metric: the statistic's name, for messages.
      n_boot, confidence, rng: bootstrap settings; the same rng gives the same CI.

    Returns:
      A :class:`FitResult`.

    Example:
      >>> r = fit_threshold([0.9, 0.8, 0.7, 0.5, 0.4, 0.3], [0, 0, 0, 1, 1, 1], n_boot=200)
      >>> r.auc, r.threshold
      (1.0, 0.6)
    """
    _check_direction(direction, FIT_DIRECTIONS)
    if n_boot < 0:
        raise GatekitError(f"n_boot must be >= 0, got {n_boot}")
    if fixed_threshold is not None:
        fixed_threshold = _check_threshold(fixed_threshold, "fixed threshold")
    values, labels, groups, outcomes = _validate(values, labels, groups, outcomes)
    warnings: list[str] = []
    source = "given"
    if direction == "auto":
        direction, source = _auto_direction(values, labels), "in-sample (auto)"
    fpr, tpr, thr, auc = _roc(values, labels, direction)
    j, threshold, plateau = _youden(values, labels, direction)
    target = outcomes if outcomes is not None else labels
    if np.ptp(target) == 0 or np.ptp(values) == 0:
        raise GatekitError(f"{metric}: Spearman rho undefined: values or outcomes are constant")
    rho, p = stats.spearmanr(values, target)
    n_groups = None if groups is None else len(np.unique(groups))
    if n_boot:
        lo, hi, draws = bootstrap_auc_ci(values, labels, direction=direction, groups=groups, n_boot=n_boot,
                                         confidence=confidence, rng=rng)
    else:
        lo, hi, draws = None, None, 0
    if n_boot and n_groups is not None and n_groups < MIN_GROUPS_FOR_CI:
        warnings.append(
            f"the bootstrap CI resamples only {n_groups} groups (at most {math.comb(2 * n_groups - 1, n_groups)} "
            f"distinct resamples): it is not meaningful; use at least {MIN_GROUPS_FOR_CI} groups (teacher seeds)"
        )
    logo = base = verdict = None
    if groups is not None:
        if n_groups < 2:
            warnings.append(f"only one group ({groups[0]!r}): no out-of-fold validation is possible")
        else:
            logo = _logo_or_none(values, labels, groups, "auto" if source != "given" else direction, warnings, metric)
            if baseline is not None:
                b = np.asarray(baseline, dtype=float).ravel()
                if len(b) != len(values) or not np.all(np.isfinite(b)):
                    raise GatekitError(f"baseline {baseline_name!r}: needs one finite value per row")
                blogo = _logo_or_none(b, labels, groups, "auto", warnings, baseline_name)
                base = {"metric": baseline_name, "logo": blogo}
                if logo and blogo:
                    beats = logo["accuracy"] > blogo["accuracy"]
                    verdict = (
                        f"{metric} {'beats' if beats else 'does not beat'} the {baseline_name} baseline out of fold: "
                        f"accuracy {logo['accuracy']:.3f} vs {blogo['accuracy']:.3f}"
                        + (f", AUC {logo['auc']:.3f} vs {blogo['auc']:.3f}"
                           if logo.get("auc") is not None and blogo.get("auc") is not None else "")
                        + ("." if beats else f"; the {baseline_name} alone predicts the outcome at least as well.")
                    )
    n_pos = int(labels.sum())
    if min(n_pos, len(labels) - n_pos) < 3:
        warnings.append(f"only {min(n_pos, len(labels) - n_pos)} row(s) in the smaller class "
                        f"({n_pos} positive of {len(labels)}): AUC and threshold rest on very few points")
    if source == "given" and auc < 0.5:
        other = "above" if direction == "below" else "below"
        warnings.append(f"AUC {auc:.3f} < 0.5 in direction {direction!r}: {metric} runs the other way here "
                        f"(direction {other!r} or 'auto')")
    fixed = None
    if fixed_threshold is not None:
        fixed = evaluate_rule(values, labels, fixed_threshold, direction=direction, confidence=confidence)
        if fixed["confusion"]["tp"] + fixed["confusion"]["fp"] in (0, len(values)):
            warnings.append(f"the fixed rule {metric} {'<' if direction == 'below' else '>'} {fixed_threshold:g} "
                            f"predicts the same class for every row; its accuracy is the class share")
    roc_thr = -thr if direction == "below" else thr
    return FitResult(
        n=len(values),
        n_positive=n_pos,
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
        metric=metric,
        direction_source=source,
        n_groups=n_groups,
        baseline=base,
        verdict=verdict,
        warnings=warnings,
    )


def _logo_or_none(values, labels, groups, direction, warnings, name):
    try:
        return leave_one_group_out(values, labels, groups, direction=direction)
    except GatekitError as e:
        warnings.append(f"{name}: {e}")
        return None


# --------------------------------------------------------------------------------------------
# select
# --------------------------------------------------------------------------------------------


GATE_FORMAT = "gatekit-gate/1"
ID_LIKE = ("step", "epoch", "env_steps")


def known_metric(name: str) -> bool:
    """Statistics a gate may be on: gatekit's metrics, the trainer's eval_* / train_* / online_*
    columns, and the step-like baselines."""
    from gatekit.metrics import METRIC_NAMES

    return name in METRIC_NAMES or name in ID_LIKE or name.startswith(("eval_", "train_"))


@dataclasses.dataclass(frozen=True)
class Gate:
    """A gate rule as a saved, versioned artifact (``gatekit-gate/1``).

    ``metric direction threshold`` (e.g. ``cka_sa_prev above 0.95``) must hold for ``patience``
    consecutive checkpoints. The rest records where the rule comes from: the label rule, the
    table it was fitted on (file, sha256, n, groups), its out-of-fold validation against the
    training-step baseline, and the env it was fitted on.
    """

    metric: str
    direction: str
    threshold: float
    patience: int = 1
    name: str | None = None
    description: str = ""
    env: str | None = None
    label_rule: dict | None = None
    fitted_on: dict | None = None
    validation: dict | None = None
    format: str = GATE_FORMAT

    def __post_init__(self):
        if not isinstance(self.metric, str) or not self.metric:
            raise GatekitError(f"gate: metric must be a column name, got {self.metric!r}")
        _check_direction(self.direction)
        object.__setattr__(self, "threshold", _check_threshold(self.threshold, "gate threshold"))
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            raise GatekitError(f"gate: patience must be an integer >= 1, got {self.patience!r}")

    @property
    def rule(self) -> str:
        op = "<" if self.direction == "below" else ">"
        held = "" if self.patience == 1 else f" for {self.patience} consecutive checkpoints"
        return f"{self.metric} {op} {self.threshold:.4g}{held}"

    def passes(self, value) -> bool:
        return passes(value, self.threshold, self.direction)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {"format": d.pop("format"), **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "gate") -> "Gate":
        if not isinstance(d, Mapping):
            raise GatekitError(f"{source}: expected a JSON object, found {type(d).__name__}")
        if d.get("format") != GATE_FORMAT:
            raise GatekitError(f"{source}: format is {d.get('format')!r}; this gatekit reads {GATE_FORMAT!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = [k for k in ("metric", "direction", "threshold") if k not in d]
        if missing:
            raise GatekitError(f"{source}: missing key(s) {', '.join(missing)}")
        unknown = sorted(set(d) - fields)
        if unknown:
            raise GatekitError(f"{source}: unknown key(s) {unknown}")
        if not isinstance(d["metric"], str) or not known_metric(d["metric"]):
            raise GatekitError(f"{source}: unknown metric {d['metric']!r} (gatekit's metrics: see gatekit.metrics)")
        try:
            return cls(**dict(d))
        except GatekitError as e:
            raise GatekitError(f"{source}: {e}") from None

    @classmethod
    def from_fit(cls, fit: "FitResult", *, patience: int = 1, **info) -> "Gate":
        """The rule a fit found, with its out-of-fold validation and baseline attached."""
        validation = {
            "in_sample": {"auc": fit.auc, "auc_ci": list(fit.auc_ci), "accuracy": fit.accuracy,
                          "direction_source": fit.direction_source, "spearman_rho": fit.spearman_rho},
            "out_of_fold": fit.logo,
            "baseline": fit.baseline,
            "beats_baseline": fit.beats_baseline(),
            "verdict": fit.verdict,
            "warnings": list(fit.warnings),
        }
        return cls(metric=fit.metric, direction=fit.direction, threshold=fit.threshold, patience=patience,
                   label_rule=fit.label_rule, validation=validation, **info)


PRESETS = ("paper", "pointmaze")


@dataclasses.dataclass(frozen=True)
class Selection:
    """The recommended checkpoint (or none), why, and when the answer cannot be trusted."""

    ready: bool
    run: str | None
    step: int | None
    epoch: int | None
    value: float | None
    reason: str
    per_run: list[dict]
    run_path: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    gate: dict | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def passes(value, threshold: float, mode: str = "below") -> bool:
    """Whether one metric value is past the gate (non-finite values never pass)."""
    _check_direction(mode)
    if value is None or isinstance(value, str) or not math.isfinite(float(value)):
        return False
    return float(value) < threshold if mode == "below" else float(value) > threshold


ROLES = ("teacher", "student", "any")
TREND_RHO = 0.5  # |Spearman(step, metric)| beyond which a trend against the gate is reported


def _cell_number(r: Mapping, key: str, where: str, *, required: bool):
    v = r.get(key)
    if v is None or v == "":
        if required:
            raise GatekitError(f"{where}: column {key!r} is empty")
        return None
    if isinstance(v, bool):
        raise GatekitError(f"{where}: column {key!r} is {v!r}, not a number")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise GatekitError(f"{where}: column {key!r} is {v!r}, not a number") from None


def select(
    scores: Iterable[Mapping[str, Any]],
    *,
    gate: Gate | None = None,
    threshold: float = 0.63,
    metric: str = "action_magnitude",
    mode: str = "below",
    patience: int = 1,
    role: str = "teacher",
) -> Selection:
    """Earliest checkpoint at which the gate has held for ``patience`` consecutive checkpoints.

    Args:
      scores: rows with ``run`` (or ``run_path``), ``step`` and the metric (a ScoreTable or dicts).
      gate: a :class:`Gate`; else the one-off rule ``metric mode threshold`` with ``patience``.
      role: "teacher" (default: rows whose ``role`` is teacher or absent), "student" or "any".

    Returns:
      A :class:`Selection`. Across runs the earliest qualifying step wins (ties: the run with
      the more extreme metric). ``warnings`` lists why the answer may not be trusted: the gate
      held from a run's first checkpoint (the rule separates nothing there), the metric's trend
      runs against the gate's direction, NaN values, rows of different envs, a gate fitted on
      another env.
    """
    if gate is None:
        gate = Gate(metric=metric, direction=mode, threshold=threshold, patience=patience)
    _check_direction(role, ROLES)
    metric, mode, threshold, patience = gate.metric, gate.direction, gate.threshold, gate.patience
    rows = list(scores)
    if not rows:
        raise GatekitError("select: no scored checkpoints")
    if not any(metric in r for r in rows):
        raise GatekitError(f"select: no column {metric!r} in the scores")
    if role != "any":
        kept = [r for r in rows if (r.get("role") or "teacher") == role]
        if not kept:
            roles = sorted({str(r.get("role")) for r in rows})
            raise GatekitError(f"select: no {role} rows (roles present: {roles}); pass --role any to use them all")
        rows = kept
    warnings: list[str] = []
    by_run: dict[str, list[dict]] = {}
    for i, r in enumerate(rows):
        where = f"row {i + 1}" + (f" ({r.get('run')})" if r.get("run") else "")
        step = _cell_number(r, "step", where, required=True)
        if not step.is_integer():
            raise GatekitError(f"{where}: column 'step' is {r.get('step')!r}, not an integer")
        value = _cell_number(r, metric, where, required=False)
        key = str(r.get("run_path") or r.get("run") or "(unnamed run)")
        by_run.setdefault(key, []).append({**r, "step": int(step), metric: value, "_key": key})
    envs = sorted({str(r["env"]) for r in rows if r.get("env")})
    if len(envs) > 1:
        warnings.append(f"rows come from different envs {envs}: one gate rarely fits them all")
    if gate.env and envs and any(e != gate.env for e in envs):
        warnings.append(f"the gate was fitted on env {gate.env!r} but these runs are {envs}")
    rule = "<" if mode == "below" else ">"
    per_run, candidates = [], []
    for key, rs in by_run.items():
        rs = sorted(rs, key=lambda r: r["step"])
        name = rs[0].get("run") or key
        nan_steps = [r["step"] for r in rs if r[metric] is not None and not math.isfinite(r[metric])]
        if nan_steps:
            warnings.append(f"{key}: {metric} is NaN/inf at step(s) {nan_steps[:5]}; those checkpoints "
                            f"count as not passing, which can move the answer later")
        streak, hit = 0, None
        for r in rs:
            streak = streak + 1 if passes(r[metric], threshold, mode) else 0
            if streak >= patience:
                hit = r
                break
        vals = [r[metric] for r in rs if r[metric] is not None and math.isfinite(r[metric])]
        first = next((r for r in rs if r[metric] is not None), None)
        if first is not None and passes(first[metric], threshold, mode):
            warnings.append(f"{key}: the gate already held at the run's first scored checkpoint (step "
                            f"{first['step']}, {metric} = {first[metric]:.4g}): the rule separates nothing "
                            f"in this run, so its answer cannot be trusted")
        fin = [(r["step"], r[metric]) for r in rs if r[metric] is not None and math.isfinite(r[metric])]
        if len(fin) >= 4 and np.ptp([v for _, v in fin]) > 0:
            rho = float(stats.spearmanr([s_ for s_, _ in fin], [v for _, v in fin])[0])
            if (mode == "below" and rho >= TREND_RHO) or (mode == "above" and rho <= -TREND_RHO):
                warnings.append(f"{key}: {metric} {'rises' if rho > 0 else 'falls'} over training (Spearman rho "
                                f"{rho:+.2f} with step) while the gate expects it to {'fall' if mode == 'below' else 'rise'} "
                                f"past the gate; was the rule fitted on this task?")
        best = (min if mode == "below" else max)(vals) if vals else None
        per_run.append({"run": name, "run_path": key, "checkpoints": len(rs),
                        "selected_step": None if hit is None else int(hit["step"]), "best_value": best})
        if hit is not None:
            candidates.append(hit)
    sign = 1 if mode == "below" else -1
    gate_info = gate.to_dict()
    if candidates:
        c = min(candidates, key=lambda r: (r["step"], sign * float(r[metric])))
        held = "it" if patience == 1 else f"the last {patience} consecutive checkpoints"
        reason = (
            f"{c['_key']} at step {c['step']}: {metric} = {float(c[metric]):.4g} {rule} {threshold:g} "
            f"and {held} passed the gate; the earliest such checkpoint across "
            f"{len(by_run)} run(s) ({len(candidates)} run(s) reached the gate)"
        )
        return Selection(True, c.get("run") or c["_key"], int(c["step"]), _int_or_none(c.get("epoch")),
                         float(c[metric]), reason, per_run, run_path=c["_key"], warnings=warnings, gate=gate_info)
    finite = [r for rs in by_run.values() for r in rs if r[metric] is not None and math.isfinite(r[metric])]
    if finite:
        closest = (min if mode == "below" else max)(finite, key=lambda r: float(r[metric]))
        near = f"; closest is {closest['_key']} at step {closest['step']} with {metric} = {float(closest[metric]):.4g}"
    else:
        near = f"; no finite {metric} values"
    reason = (
        f"no checkpoint is ready: none of {sum(map(len, by_run.values()))} checkpoint(s) in {len(by_run)} run(s) had "
        f"{metric} {rule} {threshold:g} for {patience} consecutive checkpoint(s){near}. "
        f"Train the teacher longer, or check that the gate was fitted on this task."
    )
    return Selection(False, None, None, None, None, reason, per_run, warnings=warnings, gate=gate_info)


def _int_or_none(v):
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None
