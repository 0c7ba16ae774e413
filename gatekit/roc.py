"""ROC statistics of one predictor against binary outcomes: pure functions on arrays.

Conventions (stated once, used everywhere):

* A predictor is oriented by the rule's direction (:func:`gatekit.rule.oriented`): ROC curves
  come from scikit-learn on ``-value`` for ``below`` and ``value`` for ``above``.
* The fitted threshold is the midpoint between the two adjacent observed values where Youden's
  J = TPR - FPR is maximal, so ``<`` and ``<=`` classify the data identically. The *plateau*
  is every interval of thresholds reaching that maximum.
* Degenerate input (one class, NaN, fewer than 4 points, mismatched lengths) raises
  GatekitError; nothing returns a silent NaN.
"""

from __future__ import annotations

import numpy as np

from gatekit.errors import GatekitError
from gatekit.rule import oriented, predict

MIN_POINTS = 4


def validate(values, labels, groups=None, outcomes=None):
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



def roc(values, labels, direction):
    from sklearn.metrics import roc_auc_score, roc_curve

    score = oriented(values, direction)
    fpr, tpr, thr = roc_curve(labels, score, drop_intermediate=False)
    return fpr, tpr, thr, float(roc_auc_score(labels, score))


def youden(values, labels, direction):
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


def accuracy_at(values, labels, threshold, direction) -> float:
    return float(np.mean(predict(values, threshold, direction) == labels))


def confusion(values, labels, threshold, direction) -> dict[str, int]:
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
    from scipy import stats  # here, not at import: scipy.stats takes ~1 s to import
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
    score = oriented(values, direction)
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


def auto_direction(values, labels) -> str:
    """The direction with the larger in-sample AUC (ties: 'below', the paper's)."""
    from sklearn.metrics import roc_auc_score

    return "below" if roc_auc_score(labels, -values) >= roc_auc_score(labels, values) else "above"
