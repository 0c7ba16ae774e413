"""Fitting a gate: a threshold on a teacher statistic against student outcomes, validated out
of fold (leave one group, i.e. one teacher seed or one task, out) beside the step baseline.

Everything fitted (threshold, direction with ``"auto"``, and in :func:`select_statistic` the
statistic itself) is fitted inside each fold, through the one fold helper :func:`folds`.
The ROC pieces are in :mod:`gatekit.roc`; the rule's comparison in :mod:`gatekit.rule`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from gatekit import roc
from gatekit.errors import GatekitError
from gatekit.rule import DIRECTIONS, check_direction, check_number, oriented, predict, symbol

FIT_DIRECTIONS = (*DIRECTIONS, "auto")
MIN_GROUPS_FOR_CI = 5
"""Below this many groups a cluster-bootstrap CI has too few distinct resamples to mean much."""


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def folds(groups) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
    """Leave-one-group-out folds: ``(group, train mask, held-out mask)`` for each group, sorted."""
    groups = np.asarray(groups)
    for g in np.unique(groups):
        yield _plain(g), groups != g, groups == g


def fit_rule(values, labels, direction: str = "auto") -> tuple[str, float]:
    """(direction, Youden threshold) fitted on the rows where ``values`` is finite; ``"auto"``
    picks the direction with the larger AUC on those rows."""
    ok = np.isfinite(values)
    v, y = values[ok], labels[ok]
    d = roc.auto_direction(v, y) if direction == "auto" else direction
    return d, roc.youden(v, y, d)[1]


def _fittable(values, labels) -> bool:
    ok = np.isfinite(values)
    return ok.sum() >= 2 and labels[ok].min() != labels[ok].max()


def leave_one_group_out(values, labels, groups, *, direction="below") -> dict[str, Any]:
    """Out-of-fold validation: for each group (teacher seed), fit on the other groups, predict it.

    Everything fitted is fitted inside the fold: the Youden threshold, and with
    ``direction="auto"`` the direction too (the larger training-part AUC). Folds whose training
    part has one class cannot be fit; they are counted in ``skipped_groups``. Returns the
    out-of-fold accuracy over the held-out points that were predicted, and the out-of-fold AUC
    of the held-out values oriented by each fold's direction (None with a single class).
    """
    from sklearn.metrics import roc_auc_score

    check_direction(direction, FIT_DIRECTIONS)
    values, labels, groups = np.asarray(values, float), np.asarray(labels, int), np.asarray(groups)
    uniq = np.unique(groups)
    if len(uniq) < 2:
        raise GatekitError(f"leave-one-group-out needs at least 2 groups, got {len(uniq)} ({uniq.tolist()})")
    correct, n, records, skipped = 0, 0, [], []
    scores, held_labels = [], []
    for g, train, test in folds(groups):
        if labels[train].min() == labels[train].max():
            skipped.append(g)
            continue
        d, thr = fit_rule(values[train], labels[train], direction)
        hits = int(np.sum(predict(values[test], thr, d) == labels[test]))
        correct, n = correct + hits, n + int(test.sum())
        scores.append(oriented(values[test], d))
        held_labels.append(labels[test])
        records.append({"group": g, "direction": d, "threshold": thr, "correct": hits, "n": int(test.sum())})
    if n == 0:
        raise GatekitError("leave-one-group-out: no fold had both classes in its training part")
    y = np.concatenate(held_labels)
    auc = float(roc_auc_score(y, np.concatenate(scores))) if y.min() != y.max() else None
    return {"accuracy": correct / n, "correct": correct, "n": n, "auc": auc, "direction": direction,
            "folds": records, "skipped_groups": skipped}


def _inner_accuracy(values, labels, groups) -> float:
    """Leave-one-group-out accuracy of one statistic (direction and threshold fitted per fold);
    -1 when some fold cannot be fit (so the statistic is never chosen)."""
    correct = 0
    for _, tr, te in folds(groups):
        if not _fittable(values[tr], labels[tr]):
            return -1.0
        d, thr = fit_rule(values[tr], labels[tr])
        correct += int(np.sum(predict(values[te], thr, d) == labels[te]))
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
        d, thr = fit_rule(cols[best][mask], labels[mask])
        return best, d, thr, scores[best]

    records, correct = [], 0
    for g, tr, te in folds(groups):
        name, d, thr, inner = choose(tr)
        hits = int(np.sum(predict(cols[name][te], thr, d) == labels[te]))
        correct += hits
        records.append({"group": g, "metric": name, "direction": d, "threshold": thr,
                        "inner_accuracy": inner, "correct": hits, "n": int(te.sum())})
    name, d, thr, inner = choose(np.ones(len(labels), bool))
    return {"accuracy": correct / len(labels), "correct": correct, "n": len(labels), "folds": records,
            "choice": {"metric": name, "direction": d, "threshold": thr, "inner_accuracy": inner}}


# --------------------------------------------------------------------------------------------
# fit_threshold
# --------------------------------------------------------------------------------------------


def _beats(logo: dict, blogo: dict) -> bool:
    """Strictly higher out-of-fold accuracy and an AUC at least the baseline's (when both have one)."""
    aucs = (logo.get("auc"), blogo.get("auc"))
    return logo["accuracy"] > blogo["accuracy"] and (None in aucs or aucs[0] >= aucs[1])


def _verdict(metric: str, base: str, logo: dict, blogo: dict) -> str:
    """One sentence: does the statistic beat the baseline out of fold, on accuracy and on AUC,
    with the caveat that holds whenever a statistic looks better than the step."""
    acc = f"accuracy {logo['accuracy']:.3f} vs {blogo['accuracy']:.3f}"
    has_auc = logo.get("auc") is not None and blogo.get("auc") is not None
    auc = f"AUC {logo['auc']:.3f} vs {blogo['auc']:.3f}" if has_auc else "no AUC"
    if _beats(logo, blogo):
        return (f"{metric} beats the {base} baseline out of fold on accuracy ({acc}) and AUC ({auc}). "
                f"This holds only if {metric} was declared before looking at this table: a statistic picked "
                "among several on the same data needs `--metric all` (selection inside each fold).")
    if logo["accuracy"] > blogo["accuracy"] or (has_auc and logo["auc"] > blogo["auc"]):
        return (f"{metric} does not clearly beat the {base} baseline out of fold: {acc}, {auc} (better on one, "
                f"not both); the {base} alone predicts the outcome about as well.")
    return (f"{metric} does not beat the {base} baseline out of fold: {acc}, {auc}; the {base} alone predicts "
            "the outcome at least as well.")


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
    value_range: tuple[float, float] | None = None
    """(min, max) of the values fitted on: a gate warns where a run leaves this range."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def beats_baseline(self) -> bool | None:
        """Out of fold, better than the step baseline on accuracy and not worse on AUC (where
        both have one); None when not measurable."""
        if not self.logo or not self.baseline or not self.baseline.get("logo"):
            return None
        return _beats(self.logo, self.baseline["logo"])

    def summary(self) -> str:
        lo, hi = self.auc_ci
        rule = symbol(self.direction)
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
    values, labels, _, _ = roc.validate(values, labels)
    correct = int(np.sum(predict(values, threshold, direction) == labels))
    return {
        "threshold": float(threshold),
        "accuracy": correct / len(values),
        "correct": correct,
        "n": len(values),
        "ci": roc.clopper_pearson(correct, len(values), confidence),
        "confusion": roc.confusion(values, labels, threshold, direction),
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
    check_direction(direction, FIT_DIRECTIONS)
    if n_boot < 0:
        raise GatekitError(f"n_boot must be >= 0, got {n_boot}")
    if fixed_threshold is not None:
        fixed_threshold = check_number(fixed_threshold, "fixed threshold")
    values, labels, groups, outcomes = roc.validate(values, labels, groups, outcomes)
    warnings: list[str] = []
    source = "given"
    if direction == "auto":
        direction, source = roc.auto_direction(values, labels), "in-sample (auto)"
    fpr, tpr, thr, auc = roc.roc(values, labels, direction)
    j, threshold, plateau = roc.youden(values, labels, direction)
    rho, p = _spearman(values, outcomes if outcomes is not None else labels, metric)
    n_groups = None if groups is None else len(np.unique(groups))
    lo, hi, draws = _auc_interval(values, labels, direction, groups, n_groups, n_boot, confidence, rng, warnings)
    logo, base, verdict = _out_of_fold(values, labels, groups, n_groups, direction if source == "given" else "auto",
                                       baseline, baseline_name, metric, warnings)
    n_pos = int(labels.sum())
    _sample_warnings(labels, n_pos, auc, direction, source, metric, warnings)
    fixed = None if fixed_threshold is None else _fixed_rule(values, labels, fixed_threshold, direction, confidence,
                                                             metric, warnings)
    roc_thr = oriented(thr, direction)
    return FitResult(
        value_range=(float(np.min(values)), float(np.max(values))),
        n=len(values),
        n_positive=n_pos,
        direction=direction,
        auc=auc,
        auc_ci=(lo, hi),
        auc_ci_draws=draws,
        threshold=threshold,
        youden_j=j,
        plateau=plateau,
        accuracy=roc.accuracy_at(values, labels, threshold, direction),
        confusion=roc.confusion(values, labels, threshold, direction),
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


def _spearman(values: np.ndarray, target: np.ndarray, metric: str) -> tuple[float, float]:
    if np.ptp(target) == 0 or np.ptp(values) == 0:
        raise GatekitError(f"{metric}: Spearman rho undefined: values or outcomes are constant")
    from scipy import stats  # here, not at import: scipy.stats takes ~1 s to import

    rho, p = stats.spearmanr(values, target)
    return rho, p


def _auc_interval(values, labels, direction, groups, n_groups, n_boot, confidence, rng, warnings):
    """(lo, hi, draws) of the (cluster) bootstrap AUC interval; a warning when it rests on too
    few groups to mean anything."""
    if not n_boot:
        return None, None, 0
    lo, hi, draws = roc.bootstrap_auc_ci(values, labels, direction=direction, groups=groups, n_boot=n_boot,
                                        confidence=confidence, rng=rng)
    if n_groups is not None and n_groups < MIN_GROUPS_FOR_CI:
        warnings.append(
            f"the bootstrap CI resamples only {n_groups} groups (at most {math.comb(2 * n_groups - 1, n_groups)} "
            f"distinct resamples): it is not meaningful; use at least {MIN_GROUPS_FOR_CI} groups (teacher seeds)"
        )
    return lo, hi, draws


def _out_of_fold(values, labels, groups, n_groups, direction, baseline, baseline_name, metric, warnings):
    """(logo, baseline record, verdict): leave-one-group-out for the statistic and, refit the same
    way, for the baseline; (None, None, None) without groups."""
    if groups is None:
        return None, None, None
    if n_groups < 2:
        warnings.append(f"only one group ({groups[0]!r}): no out-of-fold validation is possible")
        return None, None, None
    logo = _logo_or_none(values, labels, groups, direction, warnings, metric)
    if baseline is None:
        return logo, None, None
    b = np.asarray(baseline, dtype=float).ravel()
    if len(b) != len(values) or not np.all(np.isfinite(b)):
        raise GatekitError(f"baseline {baseline_name!r}: needs one finite value per row")
    blogo = _logo_or_none(b, labels, groups, "auto", warnings, baseline_name)
    verdict = _verdict(metric, baseline_name, logo, blogo) if logo and blogo else None
    return logo, {"metric": baseline_name, "logo": blogo}, verdict


def _sample_warnings(labels, n_pos, auc, direction, source, metric, warnings) -> None:
    if min(n_pos, len(labels) - n_pos) < 3:
        warnings.append(f"only {min(n_pos, len(labels) - n_pos)} row(s) in the smaller class "
                        f"({n_pos} positive of {len(labels)}): AUC and threshold rest on very few points")
    if source == "given" and auc < 0.5:
        other = "above" if direction == "below" else "below"
        warnings.append(f"AUC {auc:.3f} < 0.5 in direction {direction!r}: {metric} runs the other way here "
                        f"(direction {other!r} or 'auto')")


def _fixed_rule(values, labels, threshold, direction, confidence, metric, warnings) -> dict:
    fixed = evaluate_rule(values, labels, threshold, direction=direction, confidence=confidence)
    if fixed["confusion"]["tp"] + fixed["confusion"]["fp"] in (0, len(values)):
        warnings.append(f"the fixed rule {metric} {symbol(direction)} {threshold:g} "
                        f"predicts the same class for every row; its accuracy is the class share")
    return fixed


def _logo_or_none(values, labels, groups, direction, warnings, name):
    try:
        return leave_one_group_out(values, labels, groups, direction=direction)
    except GatekitError as e:
        warnings.append(f"{name}: {e}")
        return None
