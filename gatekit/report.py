"""One page with the whole answer: ``gatekit report RUN... --out report.html`` (or ``.png``).

Panels, left to right: the gate's statistic over training (one line per teacher run, the
threshold, the passing side shaded, the pick starred), the teachers' own eval success, and,
where student runs distilled from these teachers are among the sources (students of other
teachers are left out), each student's final
eval success against the teacher checkpoint it was distilled from (one point per student seed,
the mean per checkpoint marked and joined only across checkpoints that follow one another, the pick marked). Above them: the answer, how far it can be
trusted, and every warning. The HTML page is self-contained (the figure is embedded), with a
table of the teacher checkpoints below.
"""

from __future__ import annotations

import base64
import html
import io as _bytes
import pathlib
from typing import Sequence

import numpy as np

from gatekit import io
from gatekit.errors import GatekitError, Problem
from gatekit.plotting import plain_text

SUFFIXES = (".html", ".png", ".pdf", ".svg")


def student_outcomes(sources: Sequence, problems: list | None = None) -> list[dict]:
    """Student runs under ``sources``: their teacher (resolved path and step), seed and final
    eval success (from the last checkpoint's meta; nothing is scored). A student that cannot be
    read is appended to ``problems``."""
    runs, _ = io.find_runs(sources)  # unreadable runs: reported by the caller's own find_runs
    out = []
    for run in runs:
        cfg = run.config
        if cfg.get("role") != "student" or not cfg.get("teacher") or cfg.get("teacher_step") is None:
            continue
        try:
            steps, _ = io.list_checkpoints(run)
            if not steps:
                raise GatekitError("no complete checkpoint")
            meta = io.load_checkpoint(run, steps[-1], items=("meta",)).meta
            success = float(meta["eval"]["success"])
        except (GatekitError, KeyError, TypeError, ValueError) as e:
            if problems is not None:
                problems.append(Problem(str(run.path), f"student outcome unreadable ({e}); left out of the report"))
            continue
        out.append({"teacher": str(pathlib.Path(cfg["teacher"]).resolve()), "teacher_step": int(cfg["teacher_step"]),
                    "seed": cfg.get("seed"), "success": success, "run_path": str(run.path)})
    return out


@plain_text
def report(sources: Sequence, out, *, gate=None, cache: bool = True, problems: list | None = None,
           title: str | None = None, progress=None) -> pathlib.Path:
    """Writes the one-page report of the teacher runs (and any students) under ``sources`` to
    ``out`` (.html, or an image: .png / .pdf / .svg). ``gate``: as for :func:`gatekit.select`
    (default: the runs' env's built-in gate). Returns the path written."""
    from gatekit import api, plotting, selection

    out = pathlib.Path(out)
    if out.suffix.lower() not in SUFFIXES:
        raise GatekitError(f"--out {out}: unknown report type {out.suffix!r} (use one of {SUFFIXES})")
    problems = problems if problems is not None else []
    given = api.resolve_gate(gate) if gate is not None else None  # a bad gate fails before any scoring
    sources = [sources] if isinstance(sources, (str, pathlib.Path)) else list(sources)
    tables = [s for s in sources if api.is_table(s)]
    folders = [s for s in sources if not api.is_table(s)]
    # a race of the user's own students holds no runs, only race.json: read for its answer, not scored
    scored = [f for f in folders if not ((pathlib.Path(f) / "race.json").is_file()
                                         and not any(pathlib.Path(f).rglob(io.RUN_JSON)))]
    runs, probs = io.find_runs(scored) if scored else ([], [])
    problems += probs
    teachers = [str(r.path) for r in runs if r.config.get("role") != "student"]  # students are not scored
    if not teachers and not tables:
        why = f": {'; '.join(map(str, probs[:3]))}" if probs else ""
        raise GatekitError(f"report: no teacher run among the sources{why}")
    rows = selection.rows_with_role(api.load_scores(tables + teachers, problems=problems, cache=cache,
                                                             progress=progress), "teacher")
    g = given or api.resolve_gate(None, default_env=api.single_env(rows))
    sel = api.select(rows, gate=g)
    known = {str(pathlib.Path(r["run_path"]).resolve()) for r in rows}
    students = [s for s in (student_outcomes(scored, problems) if scored else []) if s["teacher"] in known]
    raced = race_answers(folders, known)
    fig = _figure(rows, g, sel, students, raced)
    heading = title or "gatekit report"
    if out.suffix.lower() != ".html":
        answer = (f"distill from {raced[0]['checkpoint']} (measured by a race); zero-cost answer step {sel.step}"
                  if raced else sel.headline())
        fig.suptitle(_wrapped(f"{heading}: {answer}", fig), fontsize=9)
        return plotting._save(fig, out)
    buf = _bytes.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plotting._plt().close(fig)
    io.write_text(out, _html(heading, sel, g, rows, students, problems, buf.getvalue(), raced))
    return out


def race_answers(folders, known: set[str]) -> list[dict]:
    """The races (``race.json`` of ``gatekit race``) under ``folders`` whose teacher is among the
    reported runs: the measured answer, which the report puts first."""
    import json

    found = []
    for f in folders:
        f = pathlib.Path(f)
        for p in [f / "race.json", *sorted(f.glob("*/race.json"))]:
            try:
                if p.stat().st_size > 16 << 20:  # a race.json is a few KB
                    continue
                d = json.loads(p.read_text(encoding="utf-8"))
                teacher = str(pathlib.Path(d.get("teacher_path") or d["teacher"]).resolve())
                pick = d["pick"]
                if isinstance(pick, bool) or not isinstance(pick, int) or not isinstance(d.get("checkpoint"), str):
                    continue  # not a race's answer: a step and the RUN@STEP it names
            except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError, UnicodeDecodeError):
                continue
            if teacher in known:
                found.append({**d, "teacher_path": teacher, "pick": pick})
    return found


def _wrapped(text: str, fig, lines: int = 3) -> str:
    """``text`` wrapped to the figure's width (about 15 characters an inch at 9 points), at most
    ``lines`` lines, the last ending in an ellipsis when cut: a title is never cut mid-figure."""
    import textwrap

    return textwrap.fill(text, width=max(40, int(fig.get_figwidth() * 15)), max_lines=lines, placeholder=" ...")


def _figure(rows, g, sel, students, raced=()):
    from gatekit import api, plotting

    plt = plotting._plt()
    panels = 3 if students else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 5.2))
    shown, metric = rows, g.metric
    if g.transform != "raw":  # the threshold is on the transformed values: plot those
        shown, metric = api.transformed_rows(rows, g), g.reads
    picked = (sel.run_path, sel.step) if sel.ready else None
    panel = plotting.metric_panel(shown, metric=metric, thresholds={f"gate ({g.name or 'rule'})": g.threshold},
                                  passes=g.direction, selected=picked, selected_note=api.held_note(g))
    plotting.draw_lines(axes[0], title="the gate's statistic", legend_below=True, **panel)
    for r in raced:  # the measured answer, on every panel with a step axis
        for ax in axes:
            ax.axvline(r["pick"], color="C3", ls="--", lw=1.2, label=f"race pick {r['pick']:,}" if ax is axes[-1] else None)
    evals = [r for r in rows if r.get("eval_success") is not None]
    if evals:
        panel = plotting.metric_panel(evals, metric="eval_success")
        plotting.draw_lines(axes[1], title="teacher eval success (its own rollouts)", ymin=0, legend_below=True, **panel)
    else:
        axes[1].text(0.5, 0.5, "no eval_success column", ha="center", transform=axes[1].transAxes)
        axes[1].set_axis_off()
    if students:
        ax = axes[2]
        by_teacher: dict[str, list[dict]] = {}
        for s in students:
            by_teacher.setdefault(s["teacher"], []).append(s)
        labels = plotting._short_labels(list(by_teacher))
        for teacher, ss in sorted(by_teacher.items()):
            xs = np.array([s["teacher_step"] for s in ss], float)
            ys = np.array([s["success"] for s in ss], float)
            line, = ax.plot(xs, ys, "o", alpha=0.45, ms=4)
            steps = np.unique(xs)
            means = [ys[xs == x].mean() for x in steps]
            saved = sorted({r["step"] for r in rows if str(pathlib.Path(r["run_path"]).resolve()) == teacher})
            label = f"{labels[teacher]}: mean per checkpoint ({len(ss)} students)"
            for seg in _adjacent(steps, saved):  # joined only across checkpoints next to each other: no
                ax.plot(seg, [means[list(steps).index(x)] for x in seg], "_-", ms=10, color=line.get_color(),
                        label=label)  # line drawn over checkpoints that were never measured
                label = None
        if sel.ready:
            ax.axvline(sel.step, color="k", ls=":", lw=1, label=f"zero-cost answer {sel.step:,}")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("teacher checkpoint (step) distilled from")
        ax.set_ylabel("student final eval success")
        ax.set_title("students vs teacher checkpoint (one point per student)", fontsize=9)
        ax.grid(alpha=0.3)
        plotting.thousands_axis(ax)
        plotting.put_legend_below(ax)
    return fig


def _adjacent(steps, saved) -> list[list[float]]:
    """``steps`` (sorted) cut into runs of checkpoints that follow one another among ``saved`` (a
    step not among them stands alone)."""
    index = {float(x): i for i, x in enumerate(saved)}
    segs: list[list[float]] = []
    for x in steps:
        i = index.get(float(x))
        if segs and i is not None and index.get(segs[-1][-1]) == i - 1:
            segs[-1].append(float(x))
        else:
            segs.append([float(x)])
    return segs


def _html(heading, sel, g, rows, students, problems, png: bytes, raced=()) -> str:
    esc = html.escape
    zero = (f"Distill from <b>{esc(str(sel.run_path))}@{sel.step}</b> (epoch {sel.epoch})" if sel.ready
            else "<b>No checkpoint is ready</b>")
    answer = zero
    if raced:
        r = raced[0]
        answer = (f"Distill from <b>{esc(r['checkpoint'])}</b>, measured by a race ({esc(str(r.get('rule')))}; "
                  f"{esc(str(r.get('verdict')))}); keep the student {esc(str(r.get('kept')))}.<br>"
                  f"The zero-cost answer: {zero}")
    trust = "yes" if sel.trusted else "no: " + "; ".join(map(str, sel.untrusted_because))
    warn = "".join(f"<li>{esc(str(w))}</li>" for w in sel.warnings) or "<li>none</li>"
    skipped = "".join(f"<li>{esc(str(p))}</li>" for p in problems)
    by_ckpt: dict[tuple[str, int], list[float]] = {}
    for s in students:
        by_ckpt.setdefault((s["teacher"], s["teacher_step"]), []).append(s["success"])
    head = ["run", "step", "epoch", g.metric, "eval_success"] + (["students (mean, n)"] if students else [])
    body = []
    for r in sorted(rows, key=lambda r: (r["run_path"], r["step"])):
        key = (str(pathlib.Path(r["run_path"]).resolve()), int(r["step"]))
        cells = [r.get("run"), f"{int(r['step']):,}", r.get("epoch"), _num(r.get(g.metric)), _num(r.get("eval_success"))]
        if students:
            got = by_ckpt.get(key)
            cells.append(f"{np.mean(got):.3f} ({len(got)})" if got else "")
        mark = ' class="pick"' if sel.ready and r["run_path"] == sel.run_path and r["step"] == sel.step else ""
        body.append(f"<tr{mark}>" + "".join(f"<td>{esc(str(c if c is not None else ''))}</td>" for c in cells) + "</tr>")
    img = base64.b64encode(png).decode()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(heading)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5em;max-width:1300px}}td,th{{padding:2px 8px;text-align:right}}
th{{border-bottom:1px solid #999}}tr.pick{{background:#e6f4e6;font-weight:bold}}img{{max-width:100%}}
.small{{color:#555;font-size:90%}}</style></head><body>
<h1>{esc(heading)}</h1>
<p>{answer}.</p>
<p><b>Why:</b> {esc(sel.reason)}</p>
<p><b>Trusted:</b> {esc(trust)}<br><b>Confidence:</b> {esc(str(sel.confidence))}</p>
<p><b>Gate:</b> {esc(g.name or 'rule')}: {esc(g.rule)}<br><span class="small">{esc(g.description or '')}</span></p>
<p><b>Warnings:</b></p><ul>{warn}</ul>
<img alt="the gate's statistic, teacher eval and students over training" src="data:image/png;base64,{img}">
<h2>Teacher checkpoints</h2>
<table><tr>{''.join(f'<th>{esc(h)}</th>' for h in head)}</tr>
{''.join(body)}
</table>
{f'<h2>Skipped</h2><ul>{skipped}</ul>' if skipped else ''}
<p class="small">Made by gatekit {esc(_version())}. Student success: each student's final eval success; a
pick is right when its student reaches at least 0.95 x the student of the best checkpoint (README).</p>
</body></html>
"""


def _num(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return f"{f:.4g}" if np.isfinite(f) else "nan"


def _version() -> str:
    from gatekit import __version__

    return __version__
