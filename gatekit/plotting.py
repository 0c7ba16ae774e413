"""Plots (matplotlib, headless Agg): metric vs step with the gate, outcome vs metric, ROC.

Each function draws into a new figure, saves it (PNG / PDF / SVG by suffix) and returns the path.
"""

from __future__ import annotations

import pathlib
from typing import Iterable, Mapping, Sequence

import numpy as np

from gatekit.errors import GatekitError

_SUFFIXES = (".png", ".pdf", ".svg")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
"""One marker per run (with matplotlib's colour cycle), so runs that coincide stay distinguishable."""


def plain_text(fn):
    """Draws with ``text.parse_math`` off: run names, titles and metric names reach matplotlib as
    plain text (a ``$`` in a run name is a dollar, not mathtext)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return fn(*args, **kwargs)

    return wrapper


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out) -> pathlib.Path:
    out = pathlib.Path(out)
    if out.suffix.lower() not in _SUFFIXES:
        raise GatekitError(f"{out}: unknown plot type {out.suffix!r} (use one of {_SUFFIXES})")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    _plt().close(fig)
    return out


def _threshold_lines(ax, thresholds: Mapping[str, float] | None, vertical: bool) -> None:
    styles = ["--", ":", "-."]
    for i, (label, t) in enumerate((thresholds or {}).items()):
        line = ax.axvline if vertical else ax.axhline
        line(t, color="k", ls=styles[i % 3], lw=1, label=f"{label} = {t:.3g}")


@plain_text
def plot_metric_vs_step(
    rows: Iterable[Mapping],
    out,
    *,
    metric: str = "action_magnitude",
    thresholds: Mapping[str, float] | None = None,
    x: str = "step",
    passes: str | None = None,
    selected: tuple[str, float] | None = None,
    selected_note: str = "",
) -> pathlib.Path:
    """One line per run (keyed by its path, so same-named runs in different folders stay apart):
    ``metric`` against ``x`` (env steps), with the horizontal threshold lines given.

    ``passes`` ("below" / "above") shades the side of the (single) threshold that passes the
    gate; ``selected`` = (run path, x) marks the selected checkpoint with a star."""
    return plot_lines(out=out, **metric_panel(rows, metric=metric, thresholds=thresholds, x=x, passes=passes,
                                              selected=selected, selected_note=selected_note))


def metric_panel(rows: Iterable[Mapping], *, metric: str, thresholds: Mapping[str, float] | None = None,
                 x: str = "step", passes: str | None = None, selected: tuple[str, float] | None = None,
                 selected_note: str = "") -> dict:
    """The :func:`draw_lines` arguments of :func:`plot_metric_vs_step` (one series per run,
    the threshold, the passing side, the starred pick with ``selected_note``)."""
    by_run: dict[str, list[Mapping]] = {}
    for r in rows:
        if r.get(metric) is not None and r.get(x) is not None:
            by_run.setdefault(str(r.get("run_path") or r.get("run")), []).append(r)
    if not by_run:
        raise GatekitError(f"plot: no rows with both {x!r} and {metric!r}")
    labels = _short_labels(list(by_run))
    series = {labels[k]: ([r[x] for r in rs], [r[metric] for r in rs]) for k, rs in sorted(by_run.items())}
    marks = None
    if selected is not None and selected[0] in by_run:
        row = next((r for r in by_run[selected[0]] if r[x] == selected[1]), None)
        if row is not None:
            marks = {f"selected: {labels[selected[0]]}@{row[x]}{selected_note}": (row[x], row[metric])}
    shade = None
    if passes and thresholds and len(thresholds) == 1:
        shade = (next(iter(thresholds.values())), passes)
    return {"series": series, "xlabel": x, "ylabel": metric, "hlines": thresholds, "marks": marks, "shade": shade}


def _short_labels(keys: list[str]) -> dict[str, str]:
    """The shortest path suffix that tells the runs apart (``teacher`` vs ``a/teacher``)."""
    parts = {k: pathlib.PurePath(k).parts for k in keys}
    for n in range(1, max((len(p) for p in parts.values()), default=1) + 1):
        labels = {k: "/".join(p[-n:]) for k, p in parts.items()}
        if len(set(labels.values())) == len(keys):
            return labels
    return {k: k for k in keys}


@plain_text
def plot_outcome_vs_metric(
    values: Sequence[float],
    outcomes: Sequence[float],
    out,
    *,
    groups: Sequence | None = None,
    metric: str = "action_magnitude",
    outcome: str = "student success",
    thresholds: Mapping[str, float] | None = None,
    group_label: str = "group",
) -> pathlib.Path:
    """Scatter/line of student outcome against the teacher metric, one line per group."""
    values, outcomes = np.asarray(values, float), np.asarray(outcomes, float)
    groups = np.zeros(len(values), int) if groups is None else np.asarray(groups)
    series = {f"{group_label} {g}": (values[groups == g], outcomes[groups == g]) for g in np.unique(groups)}
    # points, not lines: conditions are not a trajectory in metric order
    return plot_lines(series, out, xlabel=f"teacher {metric}", ylabel=outcome, vlines=thresholds, connect=False)


@plain_text
def plot_lines(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    out,
    *,
    xlabel: str,
    ylabel: str,
    **kwargs,
) -> pathlib.Path:
    """One line per named (xs, ys) series in a new figure, saved to ``out`` (see :func:`draw_lines`)."""
    plt = _plt()
    if not series:
        raise GatekitError("plot_lines: nothing to plot")
    fig, ax = plt.subplots(figsize=(6, 4))
    draw_lines(ax, series, xlabel=xlabel, ylabel=ylabel, **kwargs)
    return _save(fig, out)


def draw_lines(
    ax,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    hlines: Mapping[str, float] | None = None,
    vlines: Mapping[str, float] | None = None,
    connect: bool = True,
    ymin: float | None = None,
    title: str | None = None,
    marks: Mapping[str, tuple[float, float]] | None = None,
    shade: tuple[float, str] | None = None,
    legend_below: bool = False,
) -> None:
    """Into ``ax``: one line per named (xs, ys) series, points sorted by x (``connect=False``:
    points only); optional reference lines, starred marks and the passing side shaded."""
    seen: dict[tuple, str] = {}
    for i, (label, (xs, ys)) in enumerate(series.items()):
        order = np.argsort(np.asarray(xs, float))
        x, y = np.asarray(xs, float)[order], np.asarray(ys, float)[order]
        key = (tuple(x.tolist()), tuple(y.tolist()))
        if key in seen:  # drawn exactly over an earlier run: say so, and keep both visible
            label = f"{label} (same values as {seen[key]})"
        else:
            seen[key] = label
        ax.plot(x, y, marker=_MARKERS[i % len(_MARKERS)], ms=max(2.5, 5 - 0.4 * (i // len(_MARKERS))),
                label=label, ls=("-", "--", ":")[(i // 10) % 3] if connect else "none", alpha=0.9)
    if ymin is not None:
        ax.set_ylim(bottom=ymin)
    if title:
        ax.set_title(title, fontsize=9)
    _threshold_lines(ax, hlines, vertical=False)
    _threshold_lines(ax, vlines, vertical=True)
    for label, (mx, my) in (marks or {}).items():
        ax.plot([mx], [my], marker="*", ms=14, color="k", ls="none", label=label, zorder=5)
    if shade is not None:
        t, side = shade
        lo, hi = ax.get_ylim()
        ax.axhspan(t, hi, color="g", alpha=0.08, label="passes the gate") if side == "above" else \
            ax.axhspan(lo, t, color="g", alpha=0.08, label="passes the gate")
        ax.set_ylim(lo, hi)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    thousands_axis(ax)
    if legend_below:
        put_legend_below(ax)
    else:
        ax.legend(fontsize=7)


def thousands_axis(ax) -> None:
    """Env-step x ticks as 40k, 80k (not 40000 running into 80000)."""
    from matplotlib.ticker import FuncFormatter

    if max(abs(v) for v in ax.get_xlim()) >= 10_000:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k"))


def put_legend_below(ax) -> None:
    """The legend under the axes, off the data (panels with many runs)."""
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)


@plain_text
def plot_roc(fit, out, *, title: str | None = None) -> pathlib.Path:
    """ROC curve of a :class:`gatekit.fitting.FitResult` with its AUC and fitted point."""
    plt = _plt()
    fpr, tpr = np.asarray(fit.roc["fpr"]), np.asarray(fit.roc["tpr"])
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    lo, hi = fit.auc_ci
    ci = f" [{lo:.2f}, {hi:.2f}]" if fit.auc_ci_draws else ""
    ax.plot(fpr, tpr, marker="o", ms=3, label=f"in-sample AUC = {fit.auc:.3f}{ci}")
    c = fit.confusion
    pt_tpr = c["tp"] / max(c["tp"] + c["fn"], 1)
    pt_fpr = c["fp"] / max(c["fp"] + c["tn"], 1)
    ax.plot([pt_fpr], [pt_tpr], "r*", ms=12, label=f"fitted threshold {fit.threshold:.3g}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title((title or "gate ROC") + " (in sample)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.text(0.5, -0.2, _out_of_fold_text(fit), transform=ax.transAxes, ha="center", va="top", fontsize=7, wrap=True)
    return _save(fig, out)


def _out_of_fold_text(fit) -> str:
    """What the in-sample curve does not show: the out-of-fold record beside the step baseline's."""
    def rec(logo):
        auc = f", AUC {logo['auc']:.3f}" if logo.get("auc") is not None else ""
        return f"accuracy {logo['accuracy']:.3f}{auc}"

    if not fit.logo:
        return "in sample only: no groups, so no out-of-fold check (pass --group)"
    text = f"out of fold: {rec(fit.logo)}"
    base = (fit.baseline or {}).get("logo")
    if base:
        text += f"; {fit.baseline['metric']} baseline: {rec(base)}"
    return text
